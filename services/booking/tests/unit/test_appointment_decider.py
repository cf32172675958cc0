"""The appointment decider as given/when/then: pure, no I/O."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from booking.domain import appointment
from booking.domain.location import Location
from booking.domain.therapist import Therapist
from kinetic_contracts.booking.v1.events import Hours
from booking.domain.errors import (
    AlreadyCancelledError,
    AppointmentNotFoundError,
    EpisodeClosedError,
    FirstSessionIsAssessmentError,
    LocationClosedError,
    OutsideOpeningHoursError,
    InThePastError,
    NotAtLocationError,
    TherapistNotFoundError,
    WrongAppointmentStateError,
)

NOW = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)
LOCATION = uuid.uuid4()
THERAPIST = uuid.uuid4()
CLINIC = Location(location_id=LOCATION, name="Riverside", timezone="Europe/Berlin")


def therapist_at(*locations: uuid.UUID) -> Therapist:
    return Therapist(therapist_id=THERAPIST, location_ids=frozenset(locations))


def book(**overrides) -> appointment.BookAppointment:
    values = dict(appointment_id=uuid.uuid4(), patient_id=uuid.uuid4(),
                  therapist_id=THERAPIST, location_id=LOCATION,
                  appointment_type="initial_assessment", starts_at=NOW + timedelta(days=1),
                  now=NOW, patient_exists=True, location=CLINIC,
                  therapist=therapist_at(LOCATION))
    return appointment.BookAppointment(**(values | overrides))


def booked(**overrides) -> appointment.AppointmentState:
    [event] = appointment.decide(book(**overrides), appointment.INITIAL)
    return appointment.evolve(appointment.INITIAL, event)


def cancel(state, *, hours_before: float, window: int = 24):
    starts_at = state.booked.starts_at
    return appointment.decide(appointment.CancelAppointment(
        appointment_id=state.booked.appointment_id, now=starts_at - timedelta(hours=hours_before),
        late_cancel_hours=window), state)


def test_given_free_therapist_when_booked_then_one_hour_session_by_default():
    [event] = appointment.decide(book(), appointment.INITIAL)
    assert event.ends_at - event.starts_at == timedelta(minutes=60)


def test_given_start_in_the_past_when_booked_then_refused():
    with pytest.raises(InThePastError):
        appointment.decide(book(starts_at=NOW - timedelta(minutes=1)), appointment.INITIAL)


def test_given_unknown_therapist_when_booked_then_not_found():
    with pytest.raises(TherapistNotFoundError):
        appointment.decide(book(therapist=None), appointment.INITIAL)


def test_given_therapist_elsewhere_when_booked_then_refused():
    with pytest.raises(NotAtLocationError):
        appointment.decide(book(therapist=therapist_at(uuid.uuid4())),
                           appointment.INITIAL)


def test_given_booked_appointment_when_cancelled_within_24h_then_late_cancel_recorded():
    [event] = cancel(booked(), hours_before=23)
    assert event.late is True


def test_given_booked_appointment_when_cancelled_earlier_than_the_window_then_not_late():
    [event] = cancel(booked(), hours_before=25)
    assert event.late is False


def test_given_a_location_without_late_window_when_cancelled_an_hour_before_then_not_late():
    [event] = cancel(booked(), hours_before=1, window=0)
    assert event.late is False


def test_given_cancelled_appointment_when_cancelled_again_then_conflict():
    state = booked()
    state = appointment.evolve(state, cancel(state, hours_before=48)[0])
    with pytest.raises(AlreadyCancelledError):
        cancel(state, hours_before=47)


def arrive(state, outcome: str, *, minutes_after_start: float):
    now = state.booked.starts_at + timedelta(minutes=minutes_after_start)
    return appointment.decide(appointment.RecordArrival(
        appointment_id=state.booked.appointment_id, outcome=outcome, now=now), state)


def test_given_booked_session_when_checked_in_and_completed_then_both_recorded():
    state = booked()
    state = appointment.evolve(state, arrive(state, "checked_in", minutes_after_start=-10)[0])
    [done] = arrive(state, "completed", minutes_after_start=60)
    assert done.event_type == "kinetic.booking.appointment.completed.v1"


def test_given_booked_session_when_checked_in_two_hours_early_then_refused():
    with pytest.raises(WrongAppointmentStateError):
        arrive(booked(), "checked_in", minutes_after_start=-120)


def test_given_booked_session_when_no_show_after_the_start_then_recorded():
    [event] = arrive(booked(), "no_show", minutes_after_start=15)
    assert event.event_type == "kinetic.booking.appointment.no_show.v1"


def test_given_booked_session_when_no_show_before_the_start_then_refused():
    with pytest.raises(WrongAppointmentStateError):
        arrive(booked(), "no_show", minutes_after_start=-5)


def test_given_checked_in_session_when_cancelled_then_refused():
    state = booked()
    state = appointment.evolve(state, arrive(state, "checked_in", minutes_after_start=-5)[0])
    with pytest.raises(WrongAppointmentStateError):
        cancel(state, hours_before=0.05)


MON_TO_FRI_8_TO_18 = {d: [Hours(opens="08:00", closes="18:00")]
                      for d in ("mon", "tue", "wed", "thu", "fri")}


def test_given_opening_hours_when_booked_outside_them_then_refused():
    clinic = CLINIC.model_copy(update={"opening_hours": MON_TO_FRI_8_TO_18})
    saturday_10 = datetime(2027, 3, 6, 10, tzinfo=ZoneInfo("Europe/Berlin"))
    with pytest.raises(OutsideOpeningHoursError):
        appointment.decide(book(location=clinic, starts_at=saturday_10), appointment.INITIAL)


def test_given_a_closure_when_booked_that_day_then_refused():
    clinic = CLINIC.model_copy(update={"closures": ((date(2027, 3, 2), date(2027, 3, 2)),)})
    with pytest.raises(LocationClosedError):
        appointment.decide(book(location=clinic), appointment.INITIAL)


def test_given_an_episode_without_sessions_when_a_treatment_is_booked_then_refused():
    facts = appointment.EpisodeFacts(patient_id=uuid.uuid4(), closed=False)
    command = book(episode_id=uuid.uuid4(), episode=facts, appointment_type="treatment_session")
    with pytest.raises(FirstSessionIsAssessmentError):
        appointment.decide(command.model_copy(update={"patient_id": facts.patient_id}),
                           appointment.INITIAL)


def into_episode(appointment_type: str, starts_at: datetime, **facts):
    patient = uuid.uuid4()
    episode = appointment.EpisodeFacts(patient_id=patient, closed=False, **facts)
    return book(patient_id=patient, episode_id=uuid.uuid4(), episode=episode,
                appointment_type=appointment_type, starts_at=starts_at)


def test_given_an_assessment_on_wednesday_when_a_treatment_is_booked_on_monday_then_refused():
    monday, wednesday = NOW + timedelta(days=7), NOW + timedelta(days=9)
    with pytest.raises(FirstSessionIsAssessmentError):
        appointment.decide(into_episode("treatment_session", monday,
                                        first_assessment_at=wednesday), appointment.INITIAL)
    [event] = appointment.decide(into_episode("treatment_session", wednesday + timedelta(days=2),
                                              first_assessment_at=wednesday),
                                 appointment.INITIAL)
    assert event.appointment_type == "treatment_session"


def test_given_a_treatment_on_monday_when_the_assessment_is_booked_after_it_then_refused():
    monday = NOW + timedelta(days=7)
    with pytest.raises(FirstSessionIsAssessmentError):
        appointment.decide(into_episode("initial_assessment", monday + timedelta(days=1),
                                        first_session_at=monday), appointment.INITIAL)
    [event] = appointment.decide(into_episode("initial_assessment", monday - timedelta(days=1),
                                              first_session_at=monday), appointment.INITIAL)
    assert event.appointment_type == "initial_assessment"


def test_given_a_closed_episode_when_booked_into_then_refused():
    patient = uuid.uuid4()
    facts = appointment.EpisodeFacts(patient_id=patient, closed=True,
                                     first_assessment_at=NOW - timedelta(days=7))
    with pytest.raises(EpisodeClosedError):
        appointment.decide(book(patient_id=patient, episode_id=uuid.uuid4(), episode=facts),
                           appointment.INITIAL)


def reschedule(state, starts_at, therapist=None):
    return appointment.decide(appointment.RescheduleAppointment(
        appointment_id=state.booked.appointment_id, starts_at=starts_at, now=NOW,
        location=CLINIC, therapist=therapist or therapist_at(LOCATION)), state)


def test_given_booked_when_rescheduled_then_moved_with_its_length_and_reminder_reset():
    state = booked(minutes=45)
    later = state.booked.starts_at + timedelta(days=2)
    [moved] = reschedule(state, later)
    assert (moved.previous_starts_at, moved.starts_at) == (state.booked.starts_at, later)
    assert moved.ends_at - moved.starts_at == timedelta(minutes=45)
    after = appointment.evolve(state, moved)
    assert after.booked.starts_at == later and after.reminded_for is None


def test_given_booked_when_rescheduled_to_the_same_time_then_nothing_happens():
    state = booked()
    assert reschedule(state, state.booked.starts_at) == []


def test_given_a_cancelled_appointment_when_rescheduled_then_refused():
    state = booked()
    state = appointment.evolve(state, cancel(state, hours_before=48)[0])
    with pytest.raises(WrongAppointmentStateError):
        reschedule(state, NOW + timedelta(days=3))


def remind(state, starts_at):
    return appointment.decide(appointment.EmitReminder(
        appointment_id=state.booked.appointment_id, for_starts_at=starts_at, lead_minutes=1440,
        now=NOW), state)


def test_a_reminder_is_due_once_and_only_for_the_current_time():
    state = booked()
    [due] = remind(state, state.booked.starts_at)
    assert due.lead_minutes == 1440
    reminded = appointment.evolve(state, due)
    assert remind(reminded, state.booked.starts_at) == []
    assert remind(state, state.booked.starts_at - timedelta(hours=1)) == []
    cancelled = appointment.evolve(state, cancel(state, hours_before=48)[0])
    assert remind(cancelled, state.booked.starts_at) == []


def reverse(state, reason_code: str = "recorded_in_error"):
    return appointment.decide(appointment.ReverseOutcome(
        appointment_id=state.booked.appointment_id, reason_code=reason_code,
        now=state.booked.starts_at + timedelta(hours=2)), state)


def completed():
    state = booked()
    state = appointment.evolve(state, arrive(state, "checked_in", minutes_after_start=-10)[0])
    return appointment.evolve(state, arrive(state, "completed", minutes_after_start=60)[0])


def test_given_a_completion_recorded_in_error_when_reversed_then_billing_learns_what():
    state = completed()
    [undone] = reverse(state)
    assert undone.event_type == "kinetic.booking.appointment.reversed.v1"
    assert (undone.reversed_outcome, undone.reason_code) == ("completed", "recorded_in_error")
    assert (undone.appointment_type, undone.starts_at) == (
        state.booked.appointment_type, state.booked.starts_at)
    assert isinstance(appointment.evolve(state, undone), appointment.Reversed)


def test_given_a_no_show_when_its_fee_is_waived_then_the_no_show_is_reversed():
    state = booked()
    state = appointment.evolve(state, arrive(state, "no_show", minutes_after_start=15)[0])
    [undone] = reverse(state, "fee_waived")
    assert (undone.reversed_outcome, undone.reason_code) == ("no_show", "fee_waived")


def test_given_a_late_cancellation_when_its_fee_is_waived_then_reversed():
    state = booked()
    state = appointment.evolve(state, cancel(state, hours_before=2)[0])
    [undone] = reverse(state, "fee_waived")
    assert undone.reversed_outcome == "cancelled"
    reversed_ = appointment.evolve(state, undone)
    with pytest.raises(AlreadyCancelledError):
        cancel(reversed_, hours_before=1)


def test_given_a_cancellation_in_good_time_when_reversed_then_refused():
    state = booked()
    state = appointment.evolve(state, cancel(state, hours_before=48)[0])
    with pytest.raises(WrongAppointmentStateError, match="late cancellation"):
        reverse(state, "fee_waived")


@pytest.mark.parametrize("checked_in", [False, True], ids=["booked", "checked_in"])
def test_given_a_session_not_yet_recorded_when_reversed_then_refused(checked_in):
    state = booked()
    if checked_in:
        state = appointment.evolve(state, arrive(state, "checked_in", minutes_after_start=-5)[0])
    with pytest.raises(WrongAppointmentStateError, match="completed, no-show or late"):
        reverse(state)


def test_given_no_appointment_when_reversed_then_not_found():
    with pytest.raises(AppointmentNotFoundError):
        appointment.decide(appointment.ReverseOutcome(
            appointment_id=uuid.uuid4(), reason_code="recorded_in_error", now=NOW),
            appointment.INITIAL)


def test_given_a_reversed_appointment_when_reversed_again_then_nothing_happens():
    state = completed()
    state = appointment.evolve(state, reverse(state)[0])
    assert reverse(state) == []
    assert reverse(state, "fee_waived") == []


def test_given_a_reversed_completion_then_it_cannot_be_recorded_again():
    state = completed()
    state = appointment.evolve(state, reverse(state)[0])
    with pytest.raises(WrongAppointmentStateError):
        arrive(state, "completed", minutes_after_start=90)


def test_streams_recorded_before_reversals_existed_still_fold():
    """Events as stored before this change (no new fields) replay to the same states."""
    state = booked()
    b = state.booked
    stored_cancel = {"appointment_id": str(b.appointment_id), "patient_id": str(b.patient_id),
                     "therapist_id": str(b.therapist_id), "location_id": str(b.location_id),
                     "starts_at": b.starts_at.isoformat(), "late": True,
                     "cancelled_at": NOW.isoformat()}
    event = appointment.EVENT_TYPES["kinetic.booking.appointment.cancelled.v1"].model_validate(
        stored_cancel)
    cancelled = appointment.evolve(state, event)
    assert isinstance(cancelled, appointment.Cancelled) and cancelled.late
    done = completed()
    assert isinstance(done, appointment.Finished) and done.outcome == "completed"


def test_given_a_treatment_when_moved_before_the_episodes_assessment_then_refused():
    assessment_at, patient = NOW + timedelta(days=2), uuid.uuid4()
    facts = appointment.EpisodeFacts(patient_id=patient, closed=False,
                                     first_assessment_at=assessment_at)
    state = booked(appointment_type="treatment_session", starts_at=NOW + timedelta(days=3),
                   patient_id=patient, episode_id=uuid.uuid4(), episode=facts)
    command = appointment.RescheduleAppointment(
        appointment_id=state.booked.appointment_id, starts_at=NOW + timedelta(days=1), now=NOW,
        location=CLINIC, therapist=therapist_at(LOCATION), episode=facts)
    with pytest.raises(FirstSessionIsAssessmentError):
        appointment.decide(command, state)
    later = command.model_copy(update={"starts_at": NOW + timedelta(days=4)})
    assert appointment.decide(later, state)


def test_given_an_assessment_when_moved_after_the_episodes_first_treatment_then_refused():
    state = booked(starts_at=NOW + timedelta(days=1))  # the initial assessment
    facts = appointment.EpisodeFacts(patient_id=state.booked.patient_id, closed=False,
                                     first_session_at=NOW + timedelta(days=3))
    command = appointment.RescheduleAppointment(
        appointment_id=state.booked.appointment_id, starts_at=NOW + timedelta(days=4), now=NOW,
        location=CLINIC, therapist=therapist_at(LOCATION), episode=facts)
    with pytest.raises(FirstSessionIsAssessmentError):
        appointment.decide(command, state)


def test_given_a_closed_episode_when_its_session_is_moved_then_refused():
    state = booked(starts_at=NOW + timedelta(days=1))
    facts = appointment.EpisodeFacts(patient_id=state.booked.patient_id, closed=True)
    with pytest.raises(EpisodeClosedError):
        appointment.decide(appointment.RescheduleAppointment(
            appointment_id=state.booked.appointment_id, starts_at=NOW + timedelta(days=2),
            now=NOW, location=CLINIC, therapist=therapist_at(LOCATION), episode=facts), state)


def test_given_a_session_that_has_started_when_cancelled_then_refused():
    state = booked()
    for hours_before in (0, -0.5, -3):  # at the start, during it, after it
        with pytest.raises(WrongAppointmentStateError):
            cancel(state, hours_before=hours_before)


def arrive_after(no_show, replacement=appointment.INITIAL, minutes_after_start: int = 20):
    return appointment.decide(appointment.ArriveAfterNoShow(
        appointment_id=uuid.UUID(int=7), no_show=no_show,
        now=no_show.booked.starts_at + timedelta(minutes=minutes_after_start)), replacement)


def no_show():
    state = booked()
    return appointment.evolve(state, arrive(state, "no_show", minutes_after_start=15)[0])


def test_given_a_no_show_when_the_patient_arrives_after_all_then_a_replacement_is_checked_in():
    missed = no_show()
    booked_again, checked_in = arrive_after(missed)
    b = missed.booked
    assert booked_again.replaces == b.appointment_id
    assert booked_again.appointment_id == checked_in.appointment_id == uuid.UUID(int=7)
    assert (booked_again.patient_id, booked_again.therapist_id, booked_again.location_id,
            booked_again.episode_id, booked_again.appointment_type, booked_again.starts_at,
            booked_again.ends_at) == (b.patient_id, b.therapist_id, b.location_id,
                                      b.episode_id, b.appointment_type, b.starts_at, b.ends_at)
    state = appointment.evolve(appointment.evolve(appointment.INITIAL, booked_again), checked_in)
    assert isinstance(state, appointment.CheckedIn)
    # The replacement is then completed like any session checked in.
    [done] = arrive(state, "completed", minutes_after_start=60)
    assert done.event_type == "kinetic.booking.appointment.completed.v1"


def test_given_a_no_show_reversed_already_when_the_patient_arrives_then_replaced_too():
    missed = no_show()
    missed = appointment.evolve(missed, reverse(missed)[0])
    assert [e.event_type for e in arrive_after(missed)] == [
        "kinetic.booking.appointment.booked.v1", "kinetic.booking.appointment.checked_in.v1"]


def test_given_a_replacement_booked_when_the_arrival_is_retried_then_nothing_happens():
    missed = no_show()
    replacement = appointment.INITIAL
    for event in arrive_after(missed):
        replacement = appointment.evolve(replacement, event)
    assert arrive_after(missed, replacement) == []


@pytest.mark.parametrize("outcome", ["booked", "checked_in", "completed", "reversed_completion"])
def test_given_anything_but_a_no_show_when_an_arrival_replaces_it_then_refused(outcome):
    state = booked()
    if outcome != "booked":
        state = appointment.evolve(state, arrive(state, "checked_in", minutes_after_start=-5)[0])
    if outcome in ("completed", "reversed_completion"):
        state = appointment.evolve(state, arrive(state, "completed", minutes_after_start=60)[0])
    if outcome == "reversed_completion":
        state = appointment.evolve(state, reverse(state)[0])
    with pytest.raises(WrongAppointmentStateError, match="no-show"):
        arrive_after(state)


def test_given_no_appointment_when_an_arrival_replaces_it_then_not_found():
    with pytest.raises(AppointmentNotFoundError):
        appointment.decide(appointment.ArriveAfterNoShow(
            appointment_id=uuid.uuid4(), no_show=appointment.INITIAL, now=NOW),
            appointment.INITIAL)


def move_at(state, now: datetime):
    return appointment.decide(appointment.RescheduleAppointment(
        appointment_id=state.booked.appointment_id,
        starts_at=state.booked.starts_at + timedelta(days=7), now=now, location=CLINIC,
        therapist=therapist_at(LOCATION)), state)


def test_given_a_session_that_has_started_when_moved_then_refused():
    state = booked()
    for minutes_after_start in (0, 40, 180):  # at the start, during it, after it
        with pytest.raises(WrongAppointmentStateError):
            move_at(state, state.booked.starts_at + timedelta(minutes=minutes_after_start))


def test_given_a_session_about_to_start_when_moved_then_moved():
    state = booked()
    [moved] = move_at(state, state.booked.starts_at - timedelta(minutes=1))
    assert moved.starts_at == state.booked.starts_at + timedelta(days=7)
