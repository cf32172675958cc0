"""Waitlist: a patient who wants an earlier slot at a location (with one therapist, or
any). A cancellation offers the freed hour to the first matching waiting entry (first come,
first served); the offered entry is skipped by later cancellations until it is booked or
withdrawn. Which entry comes first is read in the cancelling transaction; two cancellations
racing for the same entry meet at its stream version, and the loser retries with the next.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, assert_never
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from booking.domain.errors import (
    AlreadyExistsError,
    LocationNotFoundError,
    PatientNotFoundError,
    WaitlistEntryClosedError,
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


class NoEntry(BaseModel):
    model_config = ConfigDict(frozen=True)


class Entry(BaseModel):
    model_config = ConfigDict(frozen=True)
    joined: WaitlistJoined
    status: Literal["waiting", "offered", "left"] = "waiting"


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
            return state.model_copy(update={"status": "offered"})
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
            if entry.status != "waiting":
                raise WaitlistEntryClosedError("the entry already has an offer")
            j = entry.joined
            return [WaitlistSlotOffered(
                entry_id=j.entry_id, patient_id=j.patient_id, location_id=j.location_id,
                appointment_type=j.appointment_type, therapist_id=command.therapist_id,
                starts_at=command.starts_at, ends_at=command.ends_at,
                freed_by=command.freed_by, offered_at=command.now)]
        case LeaveWaitlist():
            entry = _open(command.entry_id, state)
            return [WaitlistLeft(entry_id=command.entry_id, patient_id=entry.joined.patient_id,
                                 reason=command.reason, left_at=command.now)]
        case _:
            assert_never(command)


def _open(entry_id: UUID, state: WaitlistState) -> Entry:
    if not isinstance(state, Entry):
        raise WaitlistEntryNotFoundError(f"waitlist entry {entry_id} not found")
    if state.status == "left":
        raise WaitlistEntryClosedError("the patient is no longer on the waitlist")
    return state
