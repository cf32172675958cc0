"""The therapist's evaluation page over an API kept in memory: the real page routes and
template. A form refused (by the page, for a value it cannot send as typed, or by the API) is
drawn again with the refusal's status, its problem as the warning and what was typed still
in its inputs, and nothing saved; every input on the page has an accessible name, and each
red-flag question names its own pair of radios."""

from __future__ import annotations

import uuid
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.templating import Jinja2Templates

from assessment.adapters import admin_pages
from assessment.domain.findings import ObjectiveFindings
from assessment.domain.history import RED_FLAGS
from kinetic_infra.auth.principal import Principal, Role
from kinetic_infra.http.admin_pages import AdminKit
from kinetic_infra.http.app import TEMPLATES_DIR
from kinetic_infra.settings import Settings

TEMPLATES = Path(admin_pages.__file__).parent / "templates"
EVALUATION = str(uuid.uuid4())
PAGE = f"/admin/evaluations/{EVALUATION}"
TARA = Principal("t1", "Tara", uuid.uuid4(),
                 location_roles={uuid.uuid4(): frozenset({Role.THERAPIST})})
RECORDED = ObjectiveFindings.model_validate({
    "strength": [{"muscle_group": "hip_abduction", "unit": "kgf", "involved_side": "right",
                  "trials_right": [13.6, 14.2], "trials_left": [17.5, 18.0]}],
    "mobility": [{"measure": "ankle_dorsiflexion", "unit": "cm", "left": 12, "right": 8}],
}).model_dump(mode="json")
INDICES = [{"finding_id": "strength:hip_abduction", "index": "lsi", "value": 78.9, "unit": "%",
            "passed": False}]


def draft(**parts: Any) -> dict[str, Any]:
    """An evaluation as the API answers it."""
    return {"evaluation_id": EVALUATION, "kind": "initial", "status": "draft",
            "episode_id": str(uuid.uuid4()), "patient_id": str(uuid.uuid4()),
            "location_id": str(uuid.uuid4()), "baseline_evaluation_id": None,
            "history": None, "red_flags": None, "goals": [], "measures": [], "findings": None,
            "reasoning": None, "explanation": None, "addenda": [], "completed_at": None,
            "version": 4, **parts}


class Api:
    """Assessment's API as the pages call it: the evaluation, and every write sent, each
    answered with ``answer`` (the problem a test makes the API refuse with)."""

    def __init__(self, evaluation: dict[str, Any]) -> None:
        self.evaluation = evaluation
        self.writes: list[tuple[str, str, Any, dict[str, str]]] = []
        self.answer = httpx.Response(200, json=evaluation)

    async def call(self, _request: Any, method: str, path: str, json: Any = None,
                   headers: dict[str, str] | None = None) -> httpx.Response:
        if method == "GET":
            if path.startswith("/evaluations?"):
                return httpx.Response(200, json=[])
            if path.endswith("/explanation/draft"):
                return httpx.Response(200, json={"text": "Your knee hurts because…"})
            return httpx.Response(200, json=self.evaluation)
        self.writes.append((method, path, json, headers or {}))
        return self.answer


def refusing(api: Api, status: int, slug: str, title: str) -> None:
    api.answer = httpx.Response(status, json={"type": f"/problems/{slug}", "title": title,
                                              "status": status})


@pytest.fixture
def api() -> Api:
    return Api(draft(findings={"recorded": RECORDED, "indices": INDICES}))


@pytest.fixture
async def client(api: Api) -> Any:
    kit = AdminKit("assessment", Settings(service="assessment", database_url="postgresql://x/y"),
                   Jinja2Templates(directory=[str(TEMPLATES), str(TEMPLATES_DIR)]),
                   admin_pages.MENU)
    kit.signed_in = lambda _request: TARA  # type: ignore[method-assign]
    kit.call = api.call  # type: ignore[method-assign]
    app = FastAPI()
    app.include_router(admin_pages.router(None, kit))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://admin") as c:
        yield c


# -- a small reading of the page: its elements, their attributes and text ------------------

VOID = {"input", "br", "meta", "link", "img", "hr", "area", "base", "col", "source", "wbr"}


class Element:
    def __init__(self, tag: str, attrs: dict[str, str], parent: Element | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Element | str] = []

    def text(self, skip: frozenset[str] = frozenset()) -> str:
        return " ".join(" ".join(c.split()) if isinstance(c, str) else c.text(skip)
                        for c in self.children
                        if isinstance(c, str) or c.tag not in skip).strip()

    def walk(self) -> Any:
        for c in self.children:
            if isinstance(c, Element):
                yield c
                yield from c.walk()

    def ancestors(self) -> Any:
        node = self.parent
        while node is not None:
            yield node
            node = node.parent


class Page(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__()
        self.root = self.at = Element("#root", {}, None)
        self.feed(html)
        self.all = list(self.root.walk())
        self.by_id = {e.attrs["id"]: e for e in self.all if "id" in e.attrs}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs}, self.at)
        self.at.children.append(element)
        if tag not in VOID:
            self.at = element

    def handle_endtag(self, tag: str) -> None:
        node: Element | None = self.at
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.at = node.parent

    def handle_data(self, data: str) -> None:
        self.at.children.append(data)

    def form(self, part: str) -> Element:
        return next(e for e in self.all if e.tag == "form"
                    and e.attrs.get("action", "").endswith(f"/{part}"))

    def labelled_by(self, element: Element) -> str:
        return " ".join(self.by_id[i].text() for i in element.attrs["aria-labelledby"].split()
                        if i in self.by_id)

    def accessible_name(self, control: Element) -> str:
        """aria-labelledby, aria-label, a <label for=…>, or the <label> around it (the
        text of a select's own options is not its name)."""
        if control.attrs.get("aria-labelledby"):
            return self.labelled_by(control)
        if control.attrs.get("aria-label", "").strip():
            return control.attrs["aria-label"].strip()
        if control.attrs.get("id"):
            for e in self.all:
                if e.tag == "label" and e.attrs.get("for") == control.attrs["id"]:
                    return e.text()
        label = next((a for a in control.ancestors() if a.tag == "label"), None)
        return label.text(skip=frozenset({"select", "textarea"})) if label else ""


def values(form: Element) -> dict[str, Any]:
    """What a form would send: text inputs' values, chosen radios, checkboxes and options."""
    sent: dict[str, Any] = {}
    for e in form.walk():
        name = e.attrs.get("name")
        if not name:
            continue
        if e.tag == "input" and e.attrs.get("type") in ("radio", "checkbox"):
            if "checked" in e.attrs:
                sent.setdefault(name, []).append(e.attrs["value"])
        elif e.tag == "input":
            sent[name] = e.attrs.get("value", "")
        elif e.tag == "textarea":
            sent[name] = e.text()
        elif e.tag == "select":
            options = [o for o in e.walk() if o.tag == "option"]
            chosen = next((o for o in options if "selected" in o.attrs), options[0])  # as sent
            sent[name] = chosen.attrs.get("value", chosen.text())
    return sent


# -- a refused form keeps what was typed -------------------------------------------------------

async def test_findings_refused_for_one_y_balance_side_come_back_as_typed_and_save_nothing(
        client: httpx.AsyncClient, api: Api) -> None:
    typed = {"version": "4", "involved_side": "left", "unit": "N",
             **{f"{m}_{side}_{n}": f"{100 + i}.{n}" for i, m in enumerate(admin_pages.MUSCLES)
                for side in ("right", "left") for n in (1, 2, 3)},
             "sls_right": "poor", "sls_left": "good", "ybal_right": "58.5", "ybal_left": ""}
    response = await client.post(f"{PAGE}/findings", data=typed)

    assert response.status_code == 422, response.text
    assert "Not saved: Y-balance anterior: enter the reach of both sides" in response.text
    shown = values(Page(response.text).form("findings"))
    assert {k: shown[k] for k in typed} == typed
    assert api.writes == [], "nothing was sent to be saved"


async def test_reasoning_the_api_refuses_comes_back_as_typed_with_the_problem(
        client: httpx.AsyncClient, api: Api) -> None:
    refusing(api, 422, "unknown-finding", "A driver cites a finding not recorded")
    typed = {"version": "4", "symptom_site": "knee_anterior_right, hip_lateral_right",
             "episode_type": "chronic_multifactor", "driver": "hip_abductor_weakness",
             "rationale": "Hip abduction 21% weaker; valgus on the SLS",
             "finding_ids": ["strength:hip_abduction"], "working_diagnosis": "PFP",
             "icd10": "M22.2"}
    response = await client.post(f"{PAGE}/reasoning", data=typed)

    assert response.status_code == 422, response.text
    assert "Not saved: A driver cites a finding not recorded" in response.text
    assert values(Page(response.text).form("reasoning")) == typed
    [(_, _, sent, _)] = api.writes
    assert sent["drivers"][0]["finding_ids"] == ["strength:hip_abduction"]


async def test_a_measure_answer_that_is_no_whole_number_comes_back_with_every_answer_typed(
        client: httpx.AsyncClient, api: Api) -> None:
    typed = {"version": "4", "measure": "psfs", "item:psfs_01": "7", "label:psfs_01": "running",
             "item:psfs_02": "1e1", "label:psfs_02": "stairs", "item:psfs_03": ""}
    response = await client.post(f"{PAGE}/measures", data=typed)

    assert response.status_code == 422, response.text
    assert "psfs_02: &#39;1e1&#39; is not a whole number" in response.text
    shown = values(Page(response.text).form("measures"))
    assert {k: shown[k] for k in typed} == typed, "the measure typed in, not the default LEFS"
    assert api.writes == []


async def test_history_and_goals_sent_with_the_button_and_refused_come_back_as_typed(
        client: httpx.AsyncClient, api: Api) -> None:
    history = {"version": "4", "mechanism": "Weekly distance 20 to 45 km", "onset": "2027-01-10",
               "aggravating": "stairs, running", "easing": "rest",
               "previous_treatment_1": "massage", "previous_treatment_helped_1": "no",
               "previous_treatment_2": "taping", "previous_treatment_helped_2": "",
               "training_or_work": "runner, 40 km a week"}
    response = await client.post(f"{PAGE}/history", data=history)
    assert response.status_code == 422, response.text
    assert "say whether it helped" in response.text
    shown = values(Page(response.text).form("history"))
    assert {k: shown[k] for k in history} == history
    assert shown["previous_treatment_3"] == "", "a blank row to add one"

    refusing(api, 422, "validation", "Goal 2 needs a level")
    goals = {"version": "4", "activity_1": "running", "level_1": "10 km",
             "target_date_1": "2027-06-01", "activity_2": "stairs", "level_2": "",
             "target_date_2": ""}
    response = await client.post(f"{PAGE}/goals", data=goals)
    assert response.status_code == 422, response.text
    shown = values(Page(response.text).form("goals"))
    assert {k: shown[k] for k in goals} == goals


async def test_a_form_refused_because_another_tab_saved_keeps_the_version_it_was_typed_over(
        client: httpx.AsyncClient, api: Api) -> None:
    """Sending it again is refused again: what was typed never lands over the other save."""
    api.evaluation["version"] = 5
    refusing(api, 409, "evaluation-changed",
             "The evaluation changed since you loaded it (another tab?): reload it")
    response = await client.post(f"{PAGE}/reasoning", data={
        "version": "4", "symptom_site": "knee", "driver": "hip_abductor_weakness",
        "rationale": "weak", "episode_type": "acute_clear_driver"})

    assert response.status_code == 409, response.text
    page = Page(response.text)
    assert values(page.form("reasoning"))["version"] == "4"
    assert values(page.form("findings"))["version"] == "5", "the other forms show the new one"


async def test_a_refused_addendum_comes_back_as_typed(client: httpx.AsyncClient,
                                                       api: Api) -> None:
    api.evaluation.update(status="completed", explanation="Your knee…")
    refusing(api, 422, "validation", "The reason is too long")
    typed = {"version": "4", "key": str(uuid.uuid4()), "reason": "Corrected hip ER",
             "text": "Hip ER was 9.0 kgf"}
    response = await client.post(f"{PAGE}/addenda", data=typed)

    assert response.status_code == 422, response.text
    shown = values(Page(response.text).form("addenda"))
    assert (shown["reason"], shown["text"]) == (typed["reason"], typed["text"])


async def test_a_saved_form_still_redirects(client: httpx.AsyncClient, api: Api) -> None:
    response = await client.post(f"{PAGE}/explanation", data={"version": "4", "text": "ok"})
    assert response.status_code == 303
    assert response.headers["location"].startswith(f"{PAGE}?flash=Saved.")


# -- every input has an accessible name ------------------------------------------------------

@pytest.mark.parametrize("status", ["draft", "completed"])
@pytest.mark.parametrize("measure", ["lefs", "psfs"])
async def test_every_input_on_the_evaluation_page_has_an_accessible_name(
        client: httpx.AsyncClient, api: Api, status: str, measure: str) -> None:
    api.evaluation.update(
        status=status, history={"mechanism": "m", "onset": None, "aggravating": [],
                                "easing": [], "training_or_work": "",
                                "previous_treatment": [{"treatment": "massage",
                                                        "helped": False}]},
        reasoning={"symptom_sites": ["knee"], "episode_type": "acute_clear_driver",
                   "working_diagnosis": "", "working_diagnosis_icd10": None,
                   "drivers": [{"code": "hip_abductor_weakness", "rationale": "weak",
                                "finding_ids": ["strength:hip_abduction"]}]})
    page = Page((await client.get(f"{PAGE}?measure={measure}")).text)
    controls = [e for e in page.all if e.tag in ("select", "textarea") or (
        e.tag == "input" and e.attrs.get("type") not in ("hidden", "submit", "button"))]

    assert controls
    unnamed = [e.attrs for e in controls if not page.accessible_name(e)]
    assert unnamed == []


async def test_each_red_flag_question_names_its_own_pair_of_radios(
        client: httpx.AsyncClient) -> None:
    """A screen reader says the question with its "no" and "yes", not "no, radio button"."""
    page = Page((await client.get(PAGE)).text)
    radios = [e for e in page.form("red-flags").walk() if e.attrs.get("type") == "radio"]

    assert len(radios) == 2 * len(RED_FLAGS)
    for radio in radios:
        group = next(a for a in radio.ancestors()
                     if a.attrs.get("role") == "radiogroup" or a.tag == "fieldset")
        name = page.labelled_by(group) if group.tag != "fieldset" else next(
            c.text() for c in group.walk() if c.tag == "legend")
        assert name == RED_FLAGS[radio.attrs["name"]], radio.attrs
        assert page.accessible_name(radio) == radio.attrs["value"]


async def test_each_measure_answer_is_described_by_its_question(
        client: httpx.AsyncClient) -> None:
    page = Page((await client.get(f"{PAGE}?measure=lefs")).text)
    answers = [e for e in page.form("measures").walk()
               if e.attrs.get("name", "").startswith("item:")]

    assert answers
    for answer in answers:
        described = page.by_id[answer.attrs["aria-describedby"]].text()
        assert described and described != answer.attrs["name"].removeprefix("item:")
