"""Deciding a session's progression after the fact (CLINICAL.md §3.4): a provisional hold the
therapist accepted is reopened when the next-morning answer changes what is proposed, and a
proposal is accepted only while the plan still holds the prescription it was judged against."""

from __future__ import annotations

from uuid import UUID

import pytest

from plan.domain import plan as p
from plan.domain.rules import DEFAULT_RULES
from services.plan.tests.unit.test_plan_aggregate import NOW, THERAPIST, Episode, published

HIP = "side_lying_hip_abduction"  # 3×15 @ BW, progressed by reps: 3×16 up, 3×13 down


def accept(e: Episode, session: UUID, *changes: object) -> list[object]:
    return e.do(p.DecideProgression(plan_id=e.plan_id, now=NOW, appointment_id=session,
                                    changes=tuple(changes), by=THERAPIST))


def next_morning(e: Episode, session: UUID, settled: bool) -> list[object]:
    return e.do(p.RecordNextMorning(plan_id=e.plan_id, now=NOW, appointment_id=session,
                                    settled=settled, rules=DEFAULT_RULES))


def reps(e: Episode, exercise: str = HIP) -> tuple[int, int]:
    x = e.plan.content.prescription(exercise)
    assert x is not None
    return x.sets, x.reps


# -- the next-morning answer after a provisional hold was accepted ----------------------------

def test_given_an_accepted_provisional_hold_when_not_settled_next_morning_then_the_regress_is_to_decide(
        ) -> None:
    e = Episode().draft().activate()
    session = e.log(2, settled=None)
    accept(e, session)  # "hold until we know": the plan keeps 3×15
    assert e.plan.session(session).decided and reps(e) == (3, 15)

    next_morning(e, session, settled=False)

    reopened = e.plan.session(session)
    assert not reopened.decided, "the regress is offered, not hidden behind 'decided'"
    assert {x.action for x in reopened.proposals} == {"regress"}
    [revised] = published(accept(e, session))
    assert reps(e) == (3, 13) and revised.revision == 3


def test_given_an_accepted_provisional_hold_when_settled_next_morning_then_the_progress_is_to_decide(
        ) -> None:
    e = Episode().draft().activate()
    session = e.log(2, settled=None)
    accept(e, session)
    next_morning(e, session, settled=True)
    assert not e.plan.session(session).decided
    accept(e, session)
    assert reps(e) == (3, 16)


def test_given_an_accepted_provisional_hold_when_the_answer_still_proposes_a_hold_then_it_stays_decided(
        ) -> None:
    e = Episode().draft().activate()
    session = e.log(2, settled=None, rpe=8)  # RPE 8: a hold either way it settles
    accept(e, session)
    next_morning(e, session, settled=True)
    assert e.plan.session(session).decided


def test_the_next_morning_answer_of_an_earlier_session_is_judged_against_the_prescription_it_was_done_to(
        ) -> None:
    e = Episode().draft().activate()
    earlier = e.log(2, settled=None)
    later = e.log(3)
    accept(e, later)  # 3×16 from session 3's date on
    next_morning(e, earlier, settled=False)
    [regress] = [x for x in e.plan.session(earlier).proposals if x.next.exercise == HIP]
    assert regress.action == "regress" and (regress.next.sets, regress.next.reps) == (3, 13)
    assert regress.basis is not None and regress.basis.reps == 15


# -- a proposal applies only to the prescription it was judged against ------------------------

def test_given_later_sessions_accepted_when_an_earlier_sessions_proposals_are_accepted_then_it_is_refused(
        ) -> None:
    e = Episode().draft().activate()
    third = e.log(3)
    for number in (4, 5):
        accept(e, e.log(number))
    assert reps(e) == (3, 17)
    before = e.plan

    with pytest.raises(p.ProposalSupersededError) as refused:
        accept(e, third)

    assert "session 5" in refused.value.detail
    assert e.plan == before, "nothing rolled back, no revision published"
    assert p.superseded(e.plan, e.plan.session(third)) is not None


def test_given_two_sessions_to_decide_when_the_earlier_is_accepted_then_the_later_is_superseded(
        ) -> None:
    e = Episode().draft().activate()
    third, fourth = e.log(3, rpe=8), e.log(4)  # session 3 proposes a hold, session 4 progress
    accept(e, fourth)
    assert reps(e) == (3, 16)
    with pytest.raises(p.ProposalSupersededError):
        accept(e, third)  # its hold would put 3×15 back
    assert reps(e) == (3, 16)


def test_given_a_revision_after_the_session_when_its_proposals_are_accepted_then_it_is_refused(
        ) -> None:
    from plan.domain.exercises import Library

    e = Episode().draft().activate()
    session = e.log(2)
    content = e.plan.content
    revised = tuple(x.model_copy(update={"reps": 20}) if x.exercise == HIP else x
                    for x in content.prescriptions)
    e.do(p.EditPlan(plan_id=e.plan_id, now=NOW, by=THERAPIST, reason="more volume",
                    content=content.model_copy(update={"prescriptions": revised}),
                    known_exercises=frozenset(Library.seeded().codes)))
    with pytest.raises(p.ProposalSupersededError) as refused:
        accept(e, session)
    assert HIP in refused.value.detail and reps(e) == (3, 20)


def test_a_superseded_proposal_can_be_set_otherwise_for_the_exercises_that_moved() -> None:
    e = Episode().draft().activate()
    third, fourth = e.log(3), e.log(4)
    accept(e, third)  # session 4's proposals were judged against the parameters before it
    mine = [x.model_copy(update={"reps": 18}) if x.exercise == HIP else x
            for x in e.plan.content.prescriptions]
    accept(e, fourth, *mine)  # every exercise set by the therapist: nothing is rolled back
    assert reps(e) == (3, 18)


def test_the_same_acceptance_sent_twice_is_one_revision() -> None:
    e = Episode().draft().activate()
    session = e.log(2)
    assert published(accept(e, session))
    assert accept(e, session) == []


def test_a_session_still_to_decide_whose_plan_did_not_move_is_not_superseded() -> None:
    e = Episode().draft().activate()
    session = e.log(2)
    assert p.superseded(e.plan, e.plan.session(session)) is None
