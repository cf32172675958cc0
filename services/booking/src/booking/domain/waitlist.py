"""Waitlist: a patient who wants an earlier slot at a location (with one therapist, or
any). A cancellation offers the freed hour to the first waiting entry that can take it (first
come, first served): the hour must be one the therapist can still work (no time off, no
closure), the patient free then, and the session they wait for no longer than the hour. The
offered entry is skipped by later cancellations until it is booked or withdrawn, or until the
offered hour has begun unbooked (the offer lapsed). Which entry comes first is read in the
cancelling transaction; two cancellations racing for the same entry meet at its stream
version, and the loser retries with the next.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, assert_never
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from booking.domain.errors import (
    AlreadyExistsError,
    LocationNotFoundError,
    PatientNotFoundError,
    WaitlistEntryClosedError,
    WaitlistEntryElsewhereError,
    WaitlistEntryNotFoundError,
)
from kinetic_contracts.booking.v1.events import (
    AppointmentType,
    WaitlistJoined,
    WaitlistLeft,
    WaitlistSlotOffered,
)


class JoinWaitlist(BaseModel):
    model_config = ConfigDict(frozen=True)
    entry_id: UUID
    patient_id: UUID
    location_id: UUID
    therapist_id: UUID | None = None
    appointment_type: AppointmentType
    wants_before: datetime | None = None
    now: datetime
    patient_exists: bool
    location_exists: bool


class OfferSlot(BaseModel):
    model_config = ConfigDict(frozen=True)
    entry_id: UUID
    therapist_id: UUID
    starts_at: datetime
    ends_at: datetime
    freed_by: UUID
    now: datetime


class LeaveWaitlist(BaseModel):
    model_config = ConfigDict(frozen=True)
    entry_id: UUID
    reason: Literal["booked", "withdrawn"]
    now: datetime
    # For "booked": who was booked where, which must be the entry's patient and location.
    booked_patient_id: UUID | None = None
    booked_location_id: UUID | None = None


@dataclass(frozen=True)
class Candidate:
    """A waiting entry, as the cancelling transaction finds it."""

    entry_id: UUID
    patient_busy: bool  # booked elsewhere during the freed hour
    minutes: int  # the length of the session the patient waits for


def first_to_offer(candidates: Sequence[Candidate], hour: timedelta) -> UUID | None:
    """First come, first served among those who can take the hour (candidates come in the
    order they joined)."""
    return next((c.entry_id for c in candidates
                 if not c.patient_busy and timedelta(minutes=c.minutes) <= hour), None)


class NoEntry(BaseModel):
    model_config = ConfigDict(frozen=True)


class Entry(BaseModel):
    model_config = ConfigDict(frozen=True)
    joined: WaitlistJoined
    status: Literal["waiting", "offered", "left"] = "waiting"
    offered_starts_at: datetime | None = None


WaitlistState = NoEntry | Entry
WaitlistEvent = WaitlistJoined | WaitlistSlotOffered | WaitlistLeft
INITIAL: WaitlistState = NoEntry()
EVENT_TYPES: dict[str, type[WaitlistEvent]] = {
    e.event_type: e for e in (WaitlistJoined, WaitlistSlotOffered, WaitlistLeft)}


def evolve(state: WaitlistState, event: WaitlistEvent) -> WaitlistState:
    match event:
        case WaitlistJoined():
            return Entry(joined=event)
        case WaitlistSlotOffered():
            assert isinstance(state, Entry)
            return state.model_copy(update={"status": "offered",
                                            "offered_starts_at": event.starts_at})
        case WaitlistLeft():
            assert isinstance(state, Entry)
            return state.model_copy(update={"status": "left"})
        case _:
            assert_never(event)


def decide(command: JoinWaitlist | OfferSlot | LeaveWaitlist, state: WaitlistState
           ) -> list[WaitlistEvent]:
    match command:
        case JoinWaitlist():
            if isinstance(state, Entry):
                raise AlreadyExistsError(f"waitlist entry {command.entry_id} already exists")
            if not command.patient_exists:
                raise PatientNotFoundError(f"patient {command.patient_id} does not exist")
            if not command.location_exists:
                raise LocationNotFoundError(f"location {command.location_id} does not exist")
            return [WaitlistJoined(**command.model_dump(
                exclude={"now", "patient_exists", "location_exists"}), joined_at=command.now)]
        case OfferSlot():
            entry = _open(command.entry_id, state)
            if entry.status == "offered" and not lapsed(entry.offered_starts_at, command.now):
                raise WaitlistEntryClosedError("the entry already has an offer")
            j = entry.joined
            return [WaitlistSlotOffered(
                entry_id=j.entry_id, patient_id=j.patient_id, location_id=j.location_id,
                appointment_type=j.appointment_type, therapist_id=command.therapist_id,
                starts_at=command.starts_at, ends_at=command.ends_at,
                freed_by=command.freed_by, offered_at=command.now)]
        case LeaveWaitlist():
            entry = _open(command.entry_id, state)
            j = entry.joined
            if command.reason == "booked" and (command.booked_patient_id, command.booked_location_id
                                               ) != (j.patient_id, j.location_id):
                raise WaitlistEntryElsewhereError(
                    "the waitlist entry is another patient's, or at another location")
            return [WaitlistLeft(entry_id=command.entry_id, patient_id=entry.joined.patient_id,
                                 reason=command.reason, left_at=command.now)]
        case _:
            assert_never(command)


def lapsed(offered_starts_at: datetime | None, now: datetime) -> bool:
    """An offer lapses once its hour has begun without the patient booked into it."""
    return offered_starts_at is not None and offered_starts_at <= now


def _open(entry_id: UUID, state: WaitlistState) -> Entry:
    if not isinstance(state, Entry):
        raise WaitlistEntryNotFoundError(f"waitlist entry {entry_id} not found")
    if state.status == "left":
        raise WaitlistEntryClosedError("the patient is no longer on the waitlist")
    return state
