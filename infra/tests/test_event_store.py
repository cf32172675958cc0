"""The event store on the real PostgreSQL: append, read, optimistic concurrency, tenancy."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from relay_support import item_event_class, unique_service_name
from sqlalchemy import func, select

from kinetic_infra.commands import ConcurrencyConflictError, run_command
from kinetic_infra.db.database import Database
from kinetic_infra.db.schema import events, inbox, outbox
from kinetic_infra.event_store.errors import WrongExpectedVersionError
from kinetic_infra.event_store.model import (
    ANY,
    NO_STREAM,
    EventContext,
    Exactly,
    NewEvent,
    StreamName,
)
from kinetic_infra.event_store.store import EventStore


@pytest.fixture
async def db(scratch_dsn: str):
    database = Database(scratch_dsn, pool_size=20)
    yield database
    await database.dispose()


@pytest.fixture
def kind():
    service = unique_service_name()
    return service, item_event_class(service)


async def test_append_then_read_returns_events_in_version_order(db, kind):
    service, Item = kind
    store, tenant, item = EventStore(service), uuid.uuid4(), uuid.uuid4()
    stream = StreamName("item", item)
    async with db.transaction() as conn:
        await store.append(conn, stream, [NewEvent.of(Item(item_id=item, n=i)) for i in range(3)],
                           expected=NO_STREAM, context=EventContext(tenant_id=tenant))
    async with db.read() as conn:
        recorded, version = await store.read(conn, stream, tenant_id=tenant)
    assert version == 3
    assert [e.version for e in recorded] == [1, 2, 3]
    assert [e.data["n"] for e in recorded] == [0, 1, 2]


async def test_append_writes_one_outbox_row_per_public_event_in_the_same_transaction(db, kind):
    service, Item = kind
    store, tenant, item = EventStore(service), uuid.uuid4(), uuid.uuid4()
    with pytest.raises(RuntimeError):
        async with db.transaction() as conn:
            await store.append(conn, StreamName("item", item), [NewEvent.of(Item(item_id=item, n=1))],
                               expected=NO_STREAM, context=EventContext(tenant_id=tenant))
            raise RuntimeError("the command failed after appending")
    async with db.read() as conn:
        assert await conn.scalar(select(func.count()).select_from(events)) == 0
        assert await conn.scalar(select(func.count()).select_from(outbox)) == 0
    async with db.transaction() as conn:
        await store.append(conn, StreamName("item", item), [NewEvent.of(Item(item_id=item, n=1))],
                           expected=NO_STREAM, context=EventContext(tenant_id=tenant))
    async with db.read() as conn:
        row = (await conn.execute(select(outbox))).mappings().one()
    assert row["subject"] == f"kinetic.{tenant}.{service}.item.appended"


async def test_append_with_stale_version_raises_wrong_expected_version(db, kind):
    service, Item = kind
    store, tenant, item = EventStore(service), uuid.uuid4(), uuid.uuid4()
    stream, ctx = StreamName("item", item), EventContext(tenant_id=tenant)
    async with db.transaction() as conn:
        await store.append(conn, stream, [NewEvent.of(Item(item_id=item, n=1))],
                           expected=NO_STREAM, context=ctx)
    with pytest.raises(WrongExpectedVersionError):
        async with db.transaction() as conn:
            await store.append(conn, stream, [NewEvent.of(Item(item_id=item, n=2))],
                               expected=Exactly(0), context=ctx)


async def test_several_streams_read_at_once_match_their_reads_one_by_one(db, kind):
    service, Item = kind
    store, tenant, stranger = EventStore(service), uuid.uuid4(), uuid.uuid4()
    items = [uuid.uuid4() for _ in range(3)]
    async with db.transaction() as conn:
        for count, item in zip((2, 3, 1), items, strict=True):
            await store.append(conn, StreamName("item", item),
                               [NewEvent.of(Item(item_id=item, n=i)) for i in range(count)],
                               expected=NO_STREAM, context=EventContext(tenant_id=tenant))
        theirs = StreamName("item", uuid.uuid4())  # another organization's stream
        await store.append(conn, theirs, [NewEvent.of(Item(item_id=theirs.id, n=0))],
                           expected=NO_STREAM, context=EventContext(tenant_id=stranger))
    missing = StreamName("item", uuid.uuid4())
    asked = [StreamName("item", i) for i in items] + [missing, theirs]
    async with db.read() as conn:
        together = await store.read_many(conn, asked, tenant_id=tenant)
        one_by_one = {str(s): await store.read(conn, s, tenant_id=tenant) for s in asked}
    assert together == one_by_one
    assert [together[str(s)][1] for s in asked] == [2, 3, 1, 0, 0]


async def test_another_tenants_stream_reads_as_empty(db, kind):
    service, Item = kind
    store, item = EventStore(service), uuid.uuid4()
    async with db.transaction() as conn:
        await store.append(conn, StreamName("item", item), [NewEvent.of(Item(item_id=item, n=1))],
                           expected=ANY, context=EventContext(tenant_id=uuid.uuid4()))
    async with db.read() as conn:
        recorded, version = await store.read(conn, StreamName("item", item),
                                             tenant_id=uuid.uuid4())
    assert (recorded, version) == ([], 0)


async def test_concurrent_commands_on_one_version_lose_no_update(db, kind):
    """16 commands read the same version at once; each that loses the race is retried on the
    new state, so all 16 land with contiguous versions — or get a 409-style conflict."""
    service, Item = kind
    store, tenant, item = EventStore(service), uuid.uuid4(), uuid.uuid4()
    stream, ctx = StreamName("item", item), EventContext(tenant_id=tenant)
    barrier = asyncio.Barrier(16)

    async def increment(n: int) -> str:
        first_attempt = True

        async def work(conn):
            nonlocal first_attempt
            _events, version = await store.read(conn, stream, tenant_id=tenant)
            if first_attempt:
                first_attempt = False
                await barrier.wait()  # everyone has read the same version
            await store.append(conn, stream, [NewEvent.of(Item(item_id=item, n=n))],
                               expected=Exactly(version), context=ctx)
            return {}

        try:
            await run_command(db, work, tenant_id=tenant, attempts=20)
            return "ok"
        except ConcurrencyConflictError:
            return "conflict"

    outcomes = await asyncio.gather(*(increment(n) for n in range(16)))
    async with db.read() as conn:
        recorded, version = await store.read(conn, stream, tenant_id=tenant)
    assert outcomes.count("ok") == version
    assert [e.version for e in recorded] == list(range(1, version + 1))
    assert sorted(e.data["n"] for e in recorded) == sorted(
        n for n, o in enumerate(outcomes) if o == "ok")
    assert version == 16  # with 20 attempts each, every one eventually wins


async def test_concurrent_commands_beyond_the_retry_budget_get_a_conflict(db, kind):
    service, Item = kind
    store, tenant, item = EventStore(service), uuid.uuid4(), uuid.uuid4()
    stream, ctx = StreamName("item", item), EventContext(tenant_id=tenant)
    barrier = asyncio.Barrier(2)

    async def racer(n: int) -> str:
        async def work(conn):
            _events, version = await store.read(conn, stream, tenant_id=tenant)
            await barrier.wait()
            await store.append(conn, stream, [NewEvent.of(Item(item_id=item, n=n))],
                               expected=Exactly(version), context=ctx)
            return {}

        try:
            await run_command(db, work, tenant_id=tenant, attempts=1)
            return "ok"
        except ConcurrencyConflictError:
            return "conflict"

    assert sorted(await asyncio.gather(racer(1), racer(2))) == ["conflict", "ok"]


async def test_repeated_command_id_returns_the_first_result_and_writes_once(db, kind):
    service, Item = kind
    store, tenant = EventStore(service), uuid.uuid4()
    command_id = str(uuid.uuid4())

    async def work(conn):
        item = uuid.uuid4()
        await store.append(conn, StreamName("item", item), [NewEvent.of(Item(item_id=item, n=1))],
                           expected=NO_STREAM, context=EventContext(tenant_id=tenant))
        return {"id": str(item)}

    results = await asyncio.gather(*(
        run_command(db, work, tenant_id=tenant, idempotency_scope="items", command_id=command_id)
        for _ in range(5)))
    assert len({r["id"] for r in results}) == 1
    async with db.read() as conn:
        assert await conn.scalar(select(func.count()).select_from(events)) == 1
        assert await conn.scalar(select(func.count()).select_from(inbox)) == 1
