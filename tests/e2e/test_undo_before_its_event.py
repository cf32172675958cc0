"""An undo heard before the event it undoes. Replicas of a consumer read booking's stream
side by side, and a delivery that failed comes back seconds later, so booking's reversal,
cancellation or move of an appointment can reach plan or assessment before the completion or
booking it changes. The outcome is the one the events' own order gives:

- plan: a completion heard after its reversal records no session (it would count toward the
  stall rules, number the sessions after it, and wait on the therapist's list for good);
- assessment: a reassessment booked before the baseline, heard after its cancellation, opens
  no draft; heard after its moves, its draft is the therapist's of the latest move."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from kinetic_contracts.booking.v1.events import (
    AppointmentCancelled,
    AppointmentCompleted,
    AppointmentRescheduled,
    AppointmentReversed,
)
from tests.e2e.test_evaluations import (
    booked,
    booking_event,
    evaluate_the_runner,
    reassessment_drafts,
    the_initial_draft,
)
from tests.e2e.test_plan import evaluated_plan

pytestmark = pytest.mark.platform


def completed(episode: dict[str, str], days_ago: int) -> AppointmentCompleted:
    starts = datetime.now(UTC) - timedelta(days=days_ago)
    return AppointmentCompleted(
        appointment_id=uuid.uuid4(), patient_id=episode["patient_id"],
        therapist_id=uuid.uuid4(), location_id=episode["location_id"],
        episode_id=episode["episode_id"], appointment_type="treatment_session",
        starts_at=starts, at=starts + timedelta(hours=1))


def reversal_of(done: AppointmentCompleted) -> AppointmentReversed:
    return AppointmentReversed(
        appointment_id=done.appointment_id, patient_id=done.patient_id,
        therapist_id=done.therapist_id, location_id=done.location_id,
        episode_id=done.episode_id, appointment_type=done.appointment_type,
        starts_at=done.starts_at, reversed_outcome="completed",
        reason_code="recorded_in_error", reversed_at=datetime.now(UTC))


async def test_a_completion_heard_after_its_reversal_records_no_session(
        platform, api, tenant, episode, wait_for):
    await evaluated_plan(api, episode, wait_for)
    in_error, undone_in_order, real = (completed(episode, 9), completed(episode, 6),
                                       completed(episode, 3))
    for event in (reversal_of(in_error), in_error,  # the reversal overtook the completion
                  undone_in_order, reversal_of(undone_in_order),
                  reversal_of(in_error), in_error,  # both heard again: still no session
                  real):
        await booking_event(platform, tenant, event)

    async def sessions_once_the_last_is_heard() -> list[str] | None:
        listed = await api("plan", "GET", f"/episodes/{episode['episode_id']}/sessions")
        ids = [s["appointment_id"] for s in listed.json()]
        return ids if str(real.appointment_id) in ids else None

    await wait_for(sessions_once_the_last_is_heard)
    await asyncio.sleep(1)  # anything heard with the last one is applied by now
    listed = await api("plan", "GET", f"/episodes/{episode['episode_id']}/sessions")
    assert [(s["appointment_id"], s["session_number"]) for s in listed.json()] == [
        (str(real.appointment_id), 1)]


async def test_a_reassessment_heard_after_its_cancellation_or_moves_follows_them(
        platform, api, tenant, episode, wait_for):
    """Booked before the baseline, and heard only after booking's later word on it: the
    cancelled one opens no draft (the earliest, it would have taken the episode's one
    reassessment draft), the moved one is drafted for the latest move's therapist even
    though the earlier move is heard last."""
    week_3, week_4 = (booked(episode, "reassessment", uuid.uuid4(), 21),
                      booked(episode, "reassessment", uuid.uuid4(), 28))
    who = dict(patient_id=week_4.patient_id, location_id=week_4.location_id)
    first_cover, second_cover = uuid.uuid4(), uuid.uuid4()

    def moved(therapist_id: uuid.UUID, previous: uuid.UUID, days: int,
              minutes_ago: int) -> AppointmentRescheduled:
        return AppointmentRescheduled(
            appointment_id=week_4.appointment_id, therapist_id=therapist_id, **who,
            episode_id=week_4.episode_id, appointment_type="reassessment",
            previous_therapist_id=previous, previous_starts_at=week_4.starts_at,
            starts_at=week_4.starts_at + timedelta(days=days),
            ends_at=week_4.ends_at + timedelta(days=days),
            rescheduled_at=datetime.now(UTC) - timedelta(minutes=minutes_ago))

    for event in (
            AppointmentCancelled(appointment_id=week_3.appointment_id,
                                 therapist_id=week_3.therapist_id, **who,
                                 starts_at=week_3.starts_at, late=False,
                                 cancelled_at=datetime.now(UTC)),
            week_3,
            moved(second_cover, first_cover, 2, minutes_ago=1),  # the latest, heard first
            moved(first_cover, week_4.therapist_id, 1, minutes_ago=5),
            week_4):
        await booking_event(platform, tenant, event)
    initial = await the_initial_draft(platform, api, tenant, episode, wait_for)
    assert await reassessment_drafts(api, episode["episode_id"]) == []

    assert (await evaluate_the_runner(api, initial["evaluation_id"]))["status"] == "completed"
    [draft] = await reassessment_drafts(api, episode["episode_id"])
    assert (draft["appointment_id"], draft["therapist_id"]) == (
        str(week_4.appointment_id), str(second_cover))


async def test_a_reassessment_booked_after_the_baseline_and_heard_after_its_changes_follows_them(
        platform, api, tenant, episode, wait_for):
    """The baseline is there, so the booking opens its draft at once; heard after booking's
    later word on it (a replica's, or a dead letter replayed), it opens none when cancelled
    (it would take the episode's one reassessment draft) and is the latest move's therapist's
    when moved."""
    initial = await the_initial_draft(platform, api, tenant, episode, wait_for)
    assert (await evaluate_the_runner(api, initial["evaluation_id"]))["status"] == "completed"
    cancelled, moved_one = (booked(episode, "reassessment", uuid.uuid4(), 21),
                            booked(episode, "reassessment", uuid.uuid4(), 28))
    who = dict(patient_id=moved_one.patient_id, location_id=moved_one.location_id)
    cover = uuid.uuid4()
    for event in (
            AppointmentCancelled(appointment_id=cancelled.appointment_id,
                                 therapist_id=cancelled.therapist_id, **who,
                                 starts_at=cancelled.starts_at, late=False,
                                 cancelled_at=datetime.now(UTC)),
            cancelled,
            AppointmentRescheduled(
                appointment_id=moved_one.appointment_id, therapist_id=cover, **who,
                episode_id=moved_one.episode_id, appointment_type="reassessment",
                previous_therapist_id=moved_one.therapist_id,
                previous_starts_at=moved_one.starts_at,
                starts_at=moved_one.starts_at + timedelta(days=1),
                ends_at=moved_one.ends_at + timedelta(days=1), rescheduled_at=datetime.now(UTC)),
            moved_one):
        await booking_event(platform, tenant, event)
    [draft] = await wait_for(lambda: reassessment_drafts(api, episode["episode_id"]))
    assert (draft["appointment_id"], draft["therapist_id"]) == (
        str(moved_one.appointment_id), str(cover))
