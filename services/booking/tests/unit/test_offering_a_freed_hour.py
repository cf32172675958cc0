"""Offering a cancelled hour to the waitlist when another cancellation got there first: the
handler's code as in production, over an in-memory event store and the waitlist rows as the
cancelling transaction read them."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from booking.application import handlers
from kinetic_contracts.booking.v1.events import (
    AppointmentBooked,
    LocationRegistered,
    TherapistRegistered,
    WaitlistJoined,
    WaitlistLeft,
    WaitlistSlotOffered,
)
from kinetic_infra.event_store.model import EventContext, Exactly, RecordedEvent

NOW = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)
TENANT, LOCATION, THERAPIST = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


class InMemoryEventStore:
    """Streams in a dict; appends check the expected version as the real store does."""

    def __init__(self) -> None:
        self.streams: dict[str, list[RecordedEvent]] = defaultdict(list)

    def record(self, stream: Any, *events: Any) -> None:
        for event in events:
            recorded = self.streams[str(stream)]
            recorded.append(RecordedEvent(
                event_id=uuid.uuid4(), stream_name=str(stream), version=len(recorded) + 1,
                global_position=0, type=event.event_type, data=event.model_dump(mode="json"),
                metadata={}, tenant_id=TENANT, recorded_at=NOW))

    async def read(self, conn: Any, stream: Any, *, tenant_id: uuid.UUID
                   ) -> tuple[list[RecordedEvent], int]:
        recorded = list(self.streams[str(stream)])
        return recorded, len(recorded)

    async def read_many(self, conn: Any, streams: Any, *, tenant_id: uuid.UUID
                        ) -> dict[str, tuple[list[RecordedEvent], int]]:
        return {str(s): await self.read(conn, s, tenant_id=tenant_id) for s in streams}

    async def append(self, conn: Any, stream: Any, new_events: Any, *, expected: Exactly,
                     context: EventContext) -> list[RecordedEvent]:
        assert expected.version == len(self.streams[str(stream)])
        self.record(stream, *(e.data for e in new_events))
        return self.streams[str(stream)][-len(new_events):]


class WaitlistRows:
    """The cancelling transaction's read of the ``waitlist`` rows: the entries as they were
    before another cancellation committed."""

    def __init__(self, *entry_ids: uuid.UUID) -> None:
        self.rows = [SimpleNamespace(entry_id=e, appointment_type="treatment_session",
                                     busy=False) for e in entry_ids]

    async def execute(self, _statement: Any) -> Any:
        return SimpleNamespace(all=lambda: self.rows)


def joined(store: InMemoryEventStore, minutes_ago: int) -> uuid.UUID:
    entry_id = uuid.uuid4()
    store.record(handlers.waitlist_stream(entry_id), WaitlistJoined(
        entry_id=entry_id, patient_id=uuid.uuid4(), location_id=LOCATION,
        appointment_type="treatment_session", joined_at=NOW - timedelta(minutes=minutes_ago)))
    return entry_id


def cancelled_hour(days_ahead: int) -> AppointmentBooked:
    starts_at = NOW + timedelta(days=days_ahead)
    return AppointmentBooked(
        appointment_id=uuid.uuid4(), patient_id=uuid.uuid4(), therapist_id=THERAPIST,
        location_id=LOCATION, appointment_type="treatment_session", starts_at=starts_at,
        ends_at=starts_at + timedelta(hours=1), booked_at=NOW - timedelta(days=7))


@pytest.fixture
def store(monkeypatch) -> InMemoryEventStore:
    async def sixty_minutes(_conn: Any, _type: str) -> int:
        return 60

    monkeypatch.setattr(handlers, "minutes_for", sixty_minutes)
    store = InMemoryEventStore()
    store.record(handlers.location_stream(LOCATION), LocationRegistered(
        location_id=LOCATION, name="Mitte", timezone="Europe/Berlin", registered_at=NOW))
    store.record(handlers.therapist_stream(THERAPIST), TherapistRegistered(
        therapist_id=THERAPIST, location_ids=[LOCATION], registered_at=NOW))
    return store


async def offer(store: InMemoryEventStore, rows: WaitlistRows, freed: AppointmentBooked
                ) -> uuid.UUID | None:
    return await handlers.offer_freed_hour(
        rows, store, freed, NOW, EventContext(tenant_id=TENANT))  # type: ignore[arg-type]


def offers(store: InMemoryEventStore, entry_id: uuid.UUID) -> list[dict[str, Any]]:
    return [r.data for r in store.streams[str(handlers.waitlist_stream(entry_id))]
            if r.type == WaitlistSlotOffered.event_type]


async def test_an_entry_offered_another_hour_meanwhile_is_skipped_for_the_next_in_line(store):
    first, second = joined(store, 30), joined(store, 20)
    rows = WaitlistRows(first, second)  # read before the other cancellation committed
    assert await offer(store, WaitlistRows(first, second), cancelled_hour(2)) == first

    freed = cancelled_hour(3)
    assert await offer(store, rows, freed) == second
    assert [o["freed_by"] for o in offers(store, second)] == [str(freed.appointment_id)]
    assert len(offers(store, first)) == 1


async def test_an_entry_that_left_meanwhile_is_skipped_for_the_next_in_line(store):
    first, second = joined(store, 30), joined(store, 20)
    store.record(handlers.waitlist_stream(first), WaitlistLeft(
        entry_id=first, patient_id=uuid.uuid4(), reason="withdrawn", left_at=NOW))
    assert await offer(store, WaitlistRows(first, second), cancelled_hour(2)) == second


async def test_when_every_candidate_closed_meanwhile_the_hour_is_offered_to_no_one(store):
    only = joined(store, 30)
    await offer(store, WaitlistRows(only), cancelled_hour(2))
    assert await offer(store, WaitlistRows(only), cancelled_hour(3)) is None
    assert len(offers(store, only)) == 1
