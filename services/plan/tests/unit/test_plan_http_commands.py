"""Plan's HTTP commands and the episode page over a plan kept in memory: the real router,
problem handlers and template; the plan's stream is an ``Episode`` (decide, then evolve), so
what a request changes is what the decider decided. Covers what crosses HTTP: If-Match on a
revision, an advance repeated with ``from_stage``, a superseded proposal, and the page's forms
offering only what the API accepts."""

from __future__ import annotations

import json
import re
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from uuid import UUID

import httpx
import pytest
from fastapi import FastAPI
from jinja2 import Environment, FileSystemLoader

import plan.adapters.http_plans as http_plans
from kinetic_infra.http.app import TEMPLATES_DIR
from kinetic_infra.http.auth import current_principal
from kinetic_infra.http.problems import install_problem_handlers
from plan.adapters.admin_pages import episode_context
from plan.application import plans
from plan.domain import plan as p
from plan.domain.exercises import Library
from plan.domain.rules import DEFAULT_RULES
from services.plan.tests.unit.test_http_plans import OPERATOR
from services.plan.tests.unit.test_plan_aggregate import NOW, THERAPIST, Episode

PLAN_TEMPLATES = Path(http_plans.__file__).parent / "templates"


@pytest.fixture
def episode(monkeypatch: pytest.MonkeyPatch) -> Episode:
    """The plan every request of the test reads and changes."""
    e = Episode().draft()

    async def loaded(*_: Any) -> tuple[p.PlanState, int]:
        return e.state, len(e.events)

    async def run(_conn: Any, _store: Any, command: p.PlanCommand, _context: Any) -> list[Any]:
        return e.do(command)

    async def rules_of(*_: Any) -> Any:
        return DEFAULT_RULES

    async def library_of(*_: Any) -> Library:
        return Library.seeded()

    async def in_one_transaction(_db: Any, work: Any, **_: Any) -> dict[str, Any]:
        return await work(None)

    monkeypatch.setattr(plans, "loaded", loaded)
    monkeypatch.setattr(plans, "run", run)
    monkeypatch.setattr(plans, "rules_of", rules_of)
    monkeypatch.setattr(plans, "library_of", library_of)
    monkeypatch.setattr(http_plans, "run_command", in_one_transaction)
    return e


def api() -> FastAPI:
    @asynccontextmanager
    async def read(_tenant: Any) -> Any:
        yield None

    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(http_plans.router(SimpleNamespace(db=SimpleNamespace(read=read),
                                                         store=None)))  # type: ignore[arg-type]
    app.dependency_overrides[current_principal] = lambda: OPERATOR
    return app


async def call(method: str, path: str, body: Any = None, **headers: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=api(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        if body is not None:
            headers["content-type"] = "application/json"
        return await client.request(method, path, headers=headers,
                                    content=None if body is None else json.dumps(body))


def base(e: Episode) -> str:
    return f"/episodes/{e.plan.ids.episode_id}"


# -- If-Match on a revision of an active plan -------------------------------------------------

async def test_revising_an_active_plan_without_if_match_is_a_428_problem_and_changes_nothing(
        episode: Episode) -> None:
    episode.activate()
    before = episode.plan
    content = episode.plan.content.model_dump(mode="json")
    refused = await call("PUT", f"{base(episode)}/plan", {"content": content, "reason": "x"})
    assert refused.status_code == 428, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["type"].endswith("if-match-required")
    assert episode.plan == before


async def test_revising_an_active_plan_with_the_version_read_is_done(episode: Episode) -> None:
    episode.activate()
    read = (await call("GET", f"{base(episode)}/plan")).json()
    done = await call("PUT", f"{base(episode)}/plan", {"content": read["content"]},
                      **{"If-Match": str(read["version"])})
    assert done.status_code == 200, done.text
    assert done.json()["revision"] == 2


async def test_editing_a_draft_without_if_match_is_still_done(episode: Episode) -> None:
    content = episode.plan.content.model_dump(mode="json")
    done = await call("PUT", f"{base(episode)}/plan", {"content": content})
    assert done.status_code == 200, done.text


# -- an advance sent twice ----------------------------------------------------------------

async def test_an_advance_sent_twice_with_its_from_stage_advances_once(episode: Episode) -> None:
    from services.plan.tests.unit.test_plan_aggregate import RESTORED

    episode.activate()
    episode.log(2, nprs=2)
    episode.task("calm.home_program_adherence_pct", 90)
    episode.measured(3, findings=RESTORED)  # restore could close too
    answers = [await call("POST", f"{base(episode)}/stage/advance", {"from_stage": "calm"})
               for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 200], answers[-1].text
    assert [a.json()["stage"] for a in answers] == ["restore", "restore"]


async def test_an_advance_without_a_body_still_advances(episode: Episode) -> None:
    episode.activate()
    episode.log(2, nprs=2)
    episode.task("calm.home_program_adherence_pct", 90)
    done = await call("POST", f"{base(episode)}/stage/advance")
    assert done.status_code == 200 and done.json()["stage"] == "restore", done.text


async def test_an_advance_from_a_stage_not_reached_is_a_409_stage_changed(
        episode: Episode) -> None:
    episode.activate()
    refused = await call("POST", f"{base(episode)}/stage/advance", {"from_stage": "build"})
    assert refused.status_code == 409 and refused.json()["type"].endswith("stage-changed")


# -- a superseded proposal -----------------------------------------------------------------

async def test_accepting_an_earlier_sessions_proposals_after_a_later_one_is_a_409(
        episode: Episode) -> None:
    episode.activate()
    third, fourth = episode.log(3), episode.log(4)
    episode.do(p.DecideProgression(plan_id=episode.plan_id, now=NOW, appointment_id=fourth,
                                   by=THERAPIST))
    shown = (await call("GET", f"{base(episode)}/plan")).json()
    [earlier] = [s for s in shown["sessions"] if s["appointment_id"] == str(third)]
    assert not earlier["decided"] and "session 4" in earlier["superseded"]
    refused = await call("POST", f"{base(episode)}/sessions/{third}/progression", {})
    assert refused.status_code == 409, refused.text
    assert refused.json()["type"].endswith("proposal-superseded")


# -- the episode page ------------------------------------------------------------------------

def page(e: Episode) -> str:
    out = http_plans.as_out(e.plan, len(e.events), DEFAULT_RULES, date(2025, 5, 6))
    plan = http_plans.PlanOut.model_validate(out).model_dump(mode="json")
    templates = Environment(loader=FileSystemLoader([str(PLAN_TEMPLATES), str(TEMPLATES_DIR)]),
                            autoescape=True)
    completed = [{"appointment_id": str(s.appointment_id), "session_number": s.number,
                  "appointment_type": "treatment_session", "starts_at": "2025-05-08T09:00:00",
                  "logged": True} for s in e.plan.sessions]
    completed.append({"appointment_id": "00000000-0000-0000-0000-000000000009",
                      "session_number": 9, "appointment_type": "treatment_session",
                      "starts_at": "2025-05-20T09:00:00", "logged": False})
    library = [x.model_dump(mode="json") for x in Library.seeded().exercises]
    return templates.get_template("episode.html").render(
        **episode_context(plan, {}, completed, library, []), title="Episode", service="plan",
        nav=[], staff=None, is_operator=False, menu=[], current_path="/admin")


def session_block(html: str, appointment: UUID) -> str:
    start = html.index(f'id="session-{appointment}"')
    end = html.find('<div id="session-', start)
    return html[start:end if end > 0 else html.index("</section>", start)]


def test_the_quick_nprs_field_steps_in_whole_numbers_as_the_score_does(episode: Episode) -> None:
    episode.activate()
    [field] = re.findall(r'<input name="nprs"[^>]*>', page(episode))
    assert 'step="1"' in field


def test_the_result_form_is_offered_only_for_task_milestones(episode: Episode) -> None:
    episode.activate()
    offered = set(re.findall(r'name="criterion_id" value="([^"]+)"', page(episode)))
    tasks = {c.id for c in episode.plan.content.all_criteria() if c.source == "task"}
    assert offered == tasks == {"calm.home_program_adherence_pct", "discharge.goal.running"}


def test_the_advance_form_sends_the_stage_it_was_shown_in(episode: Episode) -> None:
    episode.activate()
    [form] = re.findall(r'<form[^>]*stage/advance.*?</form>', page(episode), re.S)
    assert '<input type="hidden" name="from_stage" value="calm">' in form


def test_a_reopened_provisional_hold_offers_accept_and_a_superseded_session_does_not(
        episode: Episode) -> None:
    episode.activate()
    provisional = episode.log(2, settled=None)
    episode.do(p.DecideProgression(plan_id=episode.plan_id, now=NOW, appointment_id=provisional,
                                   by=THERAPIST))
    episode.do(p.RecordNextMorning(plan_id=episode.plan_id, now=NOW, appointment_id=provisional,
                                   settled=False, rules=DEFAULT_RULES))
    html = page(episode)
    assert ">Accept</button>" in session_block(html, provisional)

    third, fourth = episode.log(3), episode.log(4)
    episode.do(p.DecideProgression(plan_id=episode.plan_id, now=NOW, appointment_id=fourth,
                                   by=THERAPIST))
    shown = session_block(page(episode), third)
    assert "superseded" in shown and ">Accept</button>" not in shown
