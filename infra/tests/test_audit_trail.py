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
