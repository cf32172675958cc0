"""The audit trail: one append-only record per read or change of patient data.

Each organization's records form a hash chain: ``hash = sha256(prev_hash + canonical
record)``, with ``prev_hash`` of the first record all zeros. Records are appended under a
per-organization transaction lock, so the chain has no forks; ``verify_chain`` recomputes it
and names the first record that does not match, which is how an edited or deleted row is
detected (the table refuses UPDATE and DELETE anyway; the chain covers a database
superuser or a restored backup).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Column, DateTime, MetaData, Table, Text, select
from sqlalchemy.dialects.postgresql import UUID as PgUUID

from kinetic_infra.db.database import Database
from kinetic_infra.event_store.sql import driver_connection

GENESIS = "0" * 64

audit_log = Table(
    "audit_log", MetaData(),
    Column("id"), Column("tenant_id", PgUUID(as_uuid=True)), Column("at", DateTime(timezone=True)),
    Column("actor", Text), Column("role", Text), Column("location_id", PgUUID(as_uuid=True)),
    Column("patient_id", PgUUID(as_uuid=True)), Column("action", Text),
    Column("resource_type", Text), Column("resource_id", Text), Column("outcome", Text),
    Column("request_id", Text), Column("trace_id", Text), Column("prev_hash", Text),
    Column("hash", Text),
)

CHAINED = ("tenant_id", "at", "actor", "role", "location_id", "patient_id", "action",
           "resource_type", "resource_id", "outcome", "request_id", "trace_id")


@dataclass
class AuditRecord:
    tenant_id: UUID
    actor: str
    role: str
    action: str
    resource_type: str
    outcome: str = "success"
    resource_id: str | None = None
    location_id: UUID | None = None
    patient_id: UUID | None = None
    request_id: str | None = None
    trace_id: str | None = None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


def _canonical(values: dict[str, Any]) -> str:
    def text(v: Any) -> Any:
        if isinstance(v, datetime):
            return v.astimezone(UTC).isoformat(timespec="microseconds")
        return None if v is None else str(v)

    return json.dumps({k: text(values[k]) for k in CHAINED}, sort_keys=True,
                      separators=(",", ":"))


def chain_hash(prev_hash: str, values: dict[str, Any]) -> str:
    return hashlib.sha256((prev_hash + _canonical(values)).encode()).hexdigest()


_TYPES = {"tenant_id": "uuid", "at": "timestamptz", "location_id": "uuid", "patient_id": "uuid"}
# One statement: the chain's last hash, and the new record's hash computed by PostgreSQL
# (sha256 of the same text ``chain_hash`` hashes, which is how ``verify_chain`` checks it).
# Its snapshot is taken after the transaction's organization lock is held, so it sees the
# record the previous holder appended.
_INSERT_SQL = (
    f"INSERT INTO audit_log ({', '.join(CHAINED)}, prev_hash, hash) SELECT "
    + ", ".join(f"${i}::{_TYPES.get(c, 'text')}" for i, c in enumerate(CHAINED, 1))
    + f", last.hash, encode(sha256(convert_to(last.hash || ${len(CHAINED) + 1}::text, 'UTF8')),"
    " 'hex') FROM (SELECT coalesce((SELECT hash FROM audit_log WHERE tenant_id = $1::uuid "
    f"ORDER BY id DESC LIMIT 1), '{GENESIS}') AS hash) AS last")


async def write(db: Database, record: AuditRecord, *more: AuditRecord) -> None:
    """Append records of one organization to its chain, in a transaction of their own:
    BEGIN with the organization's lock (so the chain has no forks), the inserts, COMMIT.
    Three round trips for one record, as every audited request pays for them; several (a
    search answering about many patients, one record each) go in one pipelined batch, each
    insert seeing the one before it."""
    records = (record, *more)
    assert all(r.tenant_id == record.tenant_id for r in records), "one organization's chain"
    lock = f"kinetic-audit:{record.tenant_id}"
    async with db.transaction(record.tenant_id, advisory_lock=lock) as conn:
        driver = await driver_connection(conn)
        rows = [(*(values[c] for c in CHAINED), _canonical(values))
                for values in map(asdict, records)]
        if len(rows) == 1:
            await driver.execute(_INSERT_SQL, *rows[0])
        else:
            await driver.executemany(_INSERT_SQL, rows)


@dataclass
class ChainCheck:
    records: int
    first_broken_id: int | None

    @property
    def intact(self) -> bool:
        return self.first_broken_id is None


VERIFY_BATCH = 5000  # records read at a time: the chain grows by one per audited request


async def verify_chain(db: Database, tenant_id: UUID, batch: int = VERIFY_BATCH
                       ) -> ChainCheck:
    """Recompute the organization's chain from its first record, ``batch`` records at a time
    (keyset by id, which is the chain's order: ids are drawn under the chain's lock), so a
    trail of millions is checked in bounded memory. ``records`` counts those checked, up to
    the first broken one."""
    prev, after, checked = GENESIS, 0, 0
    while True:
        async with db.read(tenant_id) as conn:
            rows = (await conn.execute(
                select(audit_log).where(audit_log.c.tenant_id == tenant_id,
                                        audit_log.c.id > after)
                .order_by(audit_log.c.id).limit(batch))).mappings().all()
        for row in rows:
            checked += 1
            if row["prev_hash"] != prev or chain_hash(prev, dict(row)) != row["hash"]:
                return ChainCheck(checked, row["id"])
            prev = row["hash"]
        if len(rows) < batch:
            return ChainCheck(checked, None)
        after = rows[-1]["id"]
