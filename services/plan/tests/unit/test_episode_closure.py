"""Closing an episode whose plan never became active (CLINICAL.md §3.5 judges an active plan;
before one there are no criteria to meet or override): from a draft or with no plan at all,
by a clinician with the reason in words or by assessment's referral out. The episode is
discharged with ``ended_before_plan`` saying why, and nothing else applies to it after."""

from __future__ import annotations

from datetime import timedelta
import pytest
from pydantic import ValidationError

from kinetic_contracts.plan.v1 import events as public
from plan.domain import plan as p
from plan.domain.exercises import Library
from plan.domain.rules import DEFAULT_RULES
from services.plan.tests.unit.test_drafting import draft, evaluation
from services.plan.tests.unit.test_plan_aggregate import NOW, THERAPIST, Episode, published

LATER = NOW + timedelta(days=3)


def close(e: Episode, reason: str = "patient_withdrew", *, by: object = THERAPIST,
          free_text: str = "Moved abroad for work", **extra: object) -> list[object]:
    ids = e.plan.ids if isinstance(e.state, p.Plan) else IDS
    return e.do(p.CloseEpisode(plan_id=e.plan_id, now=LATER, episode_id=ids.episode_id,
                               patient_id=ids.patient_id, location_id=ids.location_id,
                               reason=reason, free_text=free_text, by=by, **extra))


def refer_out(e: Episode, referred_at=NOW) -> list[object]:
    return close(e, "referred_out", by=None, free_text="",
                 red_flags=("unexplained_weight_loss",), referred_at=referred_at)


_done = evaluation()
IDS = p._Ids(episode_id=_done.episode_id, patient_id=_done.patient_id,
             location_id=_done.location_id)


def test_given_a_draft_plan_when_the_patient_withdraws_then_the_episode_is_discharged_saying_so(
        ) -> None:
    e = Episode().draft()
    [event] = close(e, "patient_withdrew", free_text="Moved abroad for work")
    assert e.plan.status == "discharged"
    assert e.plan.closure is not None
    assert (e.plan.closure.reason, e.plan.closure.free_text, e.plan.closure.by,
            e.plan.closure.at) == ("patient_withdrew", "Moved abroad for work", THERAPIST, LATER)
    [discharged] = published([event])
    assert isinstance(discharged, public.EpisodeDischarged)
    assert (discharged.ended_before_plan, discharged.plan_id, discharged.discharged_by,
            discharged.discharged_at) == ("patient_withdrew", e.plan_id, THERAPIST, LATER)
    assert (discharged.basis, discharged.override_reason) == (None, None), \
        "no criteria were there to meet or override"
    assert "Moved abroad" not in discharged.model_dump_json(), "free text stays in plan"


def test_given_no_plan_when_the_clinician_closes_it_as_nothing_to_treat_then_it_is_discharged(
        ) -> None:
    e = Episode()
    [event] = close(e, "nothing_to_treat", free_text="Only TSK measured; no impairment found")
    assert isinstance(e.state, p.ClosedWithoutPlan)
    assert (e.state.status, e.state.closure.reason) == ("discharged", "nothing_to_treat")
    [discharged] = published([event])
    assert (discharged.episode_id, discharged.patient_id, discharged.location_id) == (
        IDS.episode_id, IDS.patient_id, IDS.location_id)
    assert (discharged.ended_before_plan, discharged.plan_id) == ("nothing_to_treat", None)


def test_given_no_plan_when_assessment_refers_the_patient_out_then_it_is_discharged_as_referred(
        ) -> None:
    e = Episode()
    [event] = refer_out(e)
    assert isinstance(e.state, p.ClosedWithoutPlan)
    assert e.state.closure.red_flags == ("unexplained_weight_loss",)
    [discharged] = published([event])
    assert (discharged.ended_before_plan, discharged.discharged_by) == ("referred_out", None)


def test_given_a_draft_when_discharged_then_it_is_refused_and_closing_is_named() -> None:
    e = Episode().draft()
    with pytest.raises(p.PlanStatusError, match="close the episode"):
        e.do(p.DischargePatient(plan_id=e.plan_id, now=NOW, by=THERAPIST))
    assert e.plan.status == "draft"


def test_given_an_active_plan_when_closed_before_plan_then_it_is_refused() -> None:
    e = Episode().draft().activate()
    with pytest.raises(p.PlanStatusError, match="discharge the patient"):
        close(e)
    with pytest.raises(p.PlanStatusError):
        refer_out(e, referred_at=LATER)  # a reassessment's referral: the clinician discharges
    assert e.plan.status == "active"


def test_given_a_closed_episode_when_closed_again_with_its_reason_then_nothing_changes() -> None:
    e = Episode().draft()
    close(e, "referred_out", free_text="Sent to the GP")
    assert refer_out(e) == [], "the referral after the clinician closed it: one closure"
    with pytest.raises(p.PlanStatusError, match="already closed"):
        close(e, "patient_withdrew")
    assert e.plan.closure.reason == "referred_out"


def test_given_an_episode_closed_without_a_plan_when_its_evaluation_arrives_then_nothing_is_drafted(
        ) -> None:
    e = Episode()
    refer_out(e)
    done = evaluation(episode_id=IDS.episode_id)
    assert e.do(p.DraftPlan(plan_id=e.plan_id, now=LATER, episode_id=done.episode_id,
                            patient_id=done.patient_id, location_id=done.location_id,
                            evaluation_id=done.evaluation_id, content=draft(),
                            rules=DEFAULT_RULES)) == []
    assert isinstance(e.state, p.ClosedWithoutPlan)


def test_given_an_episode_closed_without_a_plan_when_checked_then_nothing_happens() -> None:
    e = Episode()
    close(e, "nothing_to_treat")
    assert e.do(p.CheckProgress(plan_id=e.plan_id, now=LATER, today=LATER.date(),
                                sessions_used=1, rules=DEFAULT_RULES)) == []
    with pytest.raises(p.PlanStatusError, match="before a plan was drafted"):
        e.do(p.ActivatePlan(plan_id=e.plan_id, now=LATER, by=THERAPIST))


def test_given_a_closed_draft_when_edited_or_activated_then_it_is_refused() -> None:
    e = Episode().draft()
    close(e)
    with pytest.raises(p.PlanStatusError):
        e.activate()
    with pytest.raises(p.PlanStatusError):
        e.do(p.EditPlan(plan_id=e.plan_id, now=LATER, content=e.plan.content, by=THERAPIST,
                        known_exercises=frozenset(Library.seeded().codes)))
    assert e.plan.status == "discharged"


def test_given_a_draft_made_after_a_referral_when_the_referral_arrives_then_nothing_closes(
        ) -> None:
    e = Episode().draft()  # drafted at NOW, from an evaluation after the patient came back
    assert refer_out(e, referred_at=NOW - timedelta(days=20)) == []
    assert e.plan.status == "draft"


def test_given_a_clinician_when_closing_without_saying_why_then_it_is_refused() -> None:
    with pytest.raises(ValidationError, match="say why"):
        close(Episode(), free_text="  ")


def test_given_a_closure_stored_without_a_plan_when_read_back_then_it_folds_to_the_same_state(
        ) -> None:
    e = Episode()
    close(e, "patient_withdrew")
    state = None
    for event in e.events:
        state = p.evolve(state, p.EVENT_TYPES[event.event_type].model_validate(
            event.model_dump(mode="json")))
    assert state == e.state
