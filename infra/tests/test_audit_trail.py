"""The audit trail on the real PostgreSQL: records written at once by many requests of one
organization form one unbroken hash chain, the hash PostgreSQL computes is the one
``verify_chain`` recomputes, and each organization has a chain of its own."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from kinetic_infra.audit.trail import GENESIS, AuditRecord, chain_hash, verify_chain, write
from kinetic_infra.db.database import Database


@pytest.fixture
async def db(scratch_dsn: str):
    database = Database(scratch_dsn, pool_size=10)
    yield database
    await database.dispose()


def record(tenant: uuid.UUID, n: int) -> AuditRecord:
    return AuditRecord(tenant_id=tenant, actor=f"staff-{n % 3}", role="front_desk",
                       action="read", resource_type="patient", resource_id=f"Patient/{n}",
                       patient_id=uuid.uuid4(), request_id=f"request-{n}")


async def chain(db: Database, tenant: uuid.UUID) -> list[dict]:
    async with db.read(tenant) as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        rows = await driver.fetch("SELECT * FROM audit_log WHERE tenant_id = $1 ORDER BY id",
                                  tenant)
    return [dict(r) for r in rows]


async def test_concurrent_records_of_one_organization_form_one_unbroken_chain(db):
    tenant, other = uuid.uuid4(), uuid.uuid4()
    await asyncio.gather(*(write(db, record(tenant if n % 4 else other, n)) for n in range(60)))
    for organization, count in ((tenant, 45), (other, 15)):
        rows = await chain(db, organization)
        assert len(rows) == count
        assert rows[0]["prev_hash"] == GENESIS  # each organization's chain starts afresh
        assert [r["prev_hash"] for r in rows[1:]] == [r["hash"] for r in rows[:-1]]  # no fork
        check = await verify_chain(db, organization)
        assert check.intact and check.records == count


async def test_the_stored_hash_is_the_chain_hash_of_the_record(db):
    tenant = uuid.uuid4()
    await write(db, record(tenant, 1))
    (row,) = await chain(db, tenant)
    assert row["hash"] == chain_hash(GENESIS, row)


async def test_the_chain_is_checked_batch_by_batch_and_a_record_altered_later_is_named(
        db, scratch_dsn):
    """The check reads the trail a batch at a time (it grows by one record per audited
    request); a record altered in a later batch is still the one it names."""
    import asyncpg

    tenant = uuid.uuid4()
    for n in range(7):
        await write(db, record(tenant, n))
    check = await verify_chain(db, tenant, batch=3)
    assert check.intact and check.records == 7
    fifth = (await chain(db, tenant))[4]["id"]
    superuser = await asyncpg.connect(scratch_dsn)
    try:  # what the trigger refuses the application, a superuser or a restore can do
        await superuser.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update")
        await superuser.execute("UPDATE audit_log SET actor = 'someone else' WHERE id = $1",
                                fifth)
    finally:
        await superuser.close()
    check = await verify_chain(db, tenant, batch=3)
    assert (check.intact, check.first_broken_id, check.records) == (False, fifth, 5)


async def test_records_written_together_join_the_chain_in_order(db):
    """A search answering about several patients writes one record each, in one batch."""
    tenant = uuid.uuid4()
    await write(db, record(tenant, 0))
    await write(db, *(record(tenant, n) for n in range(1, 6)))
    await write(db, record(tenant, 6))
    rows = await chain(db, tenant)
    assert [r["request_id"] for r in rows] == [f"request-{n}" for n in range(7)]
    assert [r["prev_hash"] for r in rows[1:]] == [r["hash"] for r in rows[:-1]]
    check = await verify_chain(db, tenant)
    assert check.intact and check.records == 7
