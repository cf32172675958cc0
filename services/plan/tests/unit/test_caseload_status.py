"""What the caseload shows of an episode's plan, read from the plan's record: the status an
``episode.opened`` heard late writes, and the one the migration sets for earlier rows."""

from __future__ import annotations

from plan.adapters.caseload import status_of
from plan.domain import plan as p
from plan.domain.discharge import DischargeOverride
from services.plan.tests.unit.test_episode_closure import LATER, close
from services.plan.tests.unit.test_plan_aggregate import THERAPIST, Episode


def test_given_no_plan_record_then_the_caseload_awaits_the_evaluation() -> None:
    assert status_of(Episode().state) == "awaiting_evaluation"


def test_given_a_draft_plan_then_the_caseload_shows_the_episode_evaluated() -> None:
    assert status_of(Episode().draft().state) == "evaluated"


def test_given_an_activated_plan_then_the_caseload_shows_it_active() -> None:
    assert status_of(Episode().draft().activate().state) == "active"


def test_given_a_discharged_plan_then_the_caseload_shows_it_discharged() -> None:
    e = Episode().draft().activate()
    e.do(p.DischargePatient(plan_id=e.plan_id, now=LATER, by=THERAPIST, override=DischargeOverride(
        clinician_id=THERAPIST, reason_code="patient_withdrew", free_text="Moved abroad",
        timestamp=LATER)))
    assert status_of(e.state) == "discharged"


def test_given_a_closed_draft_then_the_caseload_shows_it_discharged() -> None:
    e = Episode().draft()
    close(e)
    assert status_of(e.state) == "discharged"


def test_given_an_episode_closed_with_no_plan_then_the_caseload_shows_it_discharged() -> None:
    e = Episode()
    close(e, "nothing_to_treat", free_text="Nothing the rule set tracks was measured")
    assert status_of(e.state) == "discharged"
