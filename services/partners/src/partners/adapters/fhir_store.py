"""Each partner's FHIR resources, kept from the events the feed delivers to it: the same grant
and the same consent decide what its EHR can read at /fhir/R4 as what its webhook receives.

The projection (domain/fhir.py) is pure and asks for the stored bodies it builds on through a
lookup. Here that lookup answers from what has been fetched so far and notes what it was asked
for; the event is projected again once those rows are read, until it asks for nothing new. A
resource's ``version_id`` counts its changes (FHIR's ``meta.versionId``).

What the FHIR API asks of them is here too: a partner's one resource, and a page of a search
with the count of every match (adapters/fhir_api.py parses the search).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    Column,
    ColumnElement,
    DateTime,
    Integer,
    MetaData,
    RowMapping,
    Table,
    Text,
    delete,
    func,
    select,
    true,
    tuple_,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.dialects.postgresql import UUID as PgUUID
from sqlalchemy.ext.asyncio import AsyncConnection

from partners.domain.fhir import Body, FhirResource, project

metadata = MetaData()

fhir_resources = Table(
    "fhir_resources", metadata,
    Column("partner_id", PgUUID(as_uuid=True), primary_key=True),
    Column("resource_type", Text, primary_key=True),
    Column("id", Text, primary_key=True),
    Column("tenant_id", PgUUID(as_uuid=True), nullable=False),
    Column("patient_id", PgUUID(as_uuid=True)),
    Column("version_id", Integer, nullable=False),
    Column("body", JSONB, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

MAX_PASSES = 5  # an event builds on a handful of stored resources, found in one or two passes


async def _stored(conn: AsyncConnection, partner_id: UUID, keys: set[tuple[str, str]]
                  ) -> dict[tuple[str, str], Body]:
    rows = await conn.execute(
        select(fhir_resources.c.resource_type, fhir_resources.c.id, fhir_resources.c.body)
        .where(fhir_resources.c.partner_id == partner_id,
               tuple_(fhir_resources.c.resource_type, fhir_resources.c.id).in_(list(keys))))
    return {(kind, rid): body for kind, rid, body in rows}


async def project_for(conn: AsyncConnection, partner_id: UUID, envelope: dict[str, Any]
                      ) -> list[FhirResource]:
    """What the event makes of this partner's resources (the stored ones it builds on read)."""
    known: dict[tuple[str, str], Body | None] = {}
    for _ in range(MAX_PASSES):
        asked: set[tuple[str, str]] = set()

        def lookup(kind: str, rid: str) -> Body | None:
            if (kind, rid) not in known:
                asked.add((kind, rid))
            return known.get((kind, rid))

        produced = project(envelope, lookup)
        if not asked:
            return produced
        found = await _stored(conn, partner_id, asked)
        known.update({key: found.get(key) for key in asked})
    return produced


async def apply(conn: AsyncConnection, partner_id: UUID, tenant_id: UUID,
                envelope: dict[str, Any]) -> int:
    """Store what the event changes in the partner's resources; returns how many."""
    produced = await project_for(conn, partner_id, envelope)
    for resource in produced:
        row = {"partner_id": partner_id, "resource_type": resource.resource_type,
               "id": resource.id, "tenant_id": tenant_id,
               "patient_id": UUID(resource.patient_id) if resource.patient_id else None,
               "version_id": 1, "body": resource.body,
               "updated_at": datetime.fromisoformat(envelope["time"])}
        statement = insert(fhir_resources).values(**row)
        await conn.execute(statement.on_conflict_do_update(
            index_elements=["partner_id", "resource_type", "id"],
            set_={"body": statement.excluded.body, "patient_id": statement.excluded.patient_id,
                  "updated_at": statement.excluded.updated_at,
                  "version_id": fhir_resources.c.version_id + 1}))
    return len(produced)


async def forget_patient(conn: AsyncConnection, partner_ids: list[UUID], patient_id: UUID
                         ) -> None:
    """A patient withdrew data sharing with these partners: their EHRs read nothing more of
    the patient (what was already delivered is theirs; what is served here is not)."""
    if partner_ids:
        await conn.execute(delete(fhir_resources).where(
            fhir_resources.c.partner_id.in_(partner_ids),
            fhir_resources.c.patient_id == patient_id))


# -- what the FHIR API reads -------------------------------------------------------------------

def with_identifier(system: str | None, value: str | None) -> ColumnElement[bool]:
    """The stored resource carries an identifier of this system and value (either may be
    left out: any system, any value): JSONB containment on the body's ``identifier[]``."""
    wanted = {key: text for key, text in (("system", system), ("value", value))
              if text is not None}
    return fhir_resources.c.body.contains({"identifier": [wanted]})


async def find(conn: AsyncConnection, partner_id: UUID, resource_type: str, resource_id: str
               ) -> RowMapping | None:
    """One of the partner's resources, if it has it."""
    return (await conn.execute(select(fhir_resources).where(
        fhir_resources.c.partner_id == partner_id,
        fhir_resources.c.resource_type == resource_type,
        fhir_resources.c.id == resource_id))).mappings().first()


async def search(conn: AsyncConnection, partner_id: UUID, resource_type: str,
                 conditions: Sequence[ColumnElement[bool]], count: int, offset: int
                 ) -> tuple[int, list[RowMapping]]:
    """How many of the partner's resources of this type meet every condition, and the page
    of ``count`` of them after the first ``offset`` (oldest change first, then by id). One
    statement, so the total and the page are counted and read in the same snapshot."""
    where = (fhir_resources.c.partner_id == partner_id,
             fhir_resources.c.resource_type == resource_type, *conditions)
    counted = select(func.count().label("total")).select_from(fhir_resources).where(
        *where).subquery("counted")
    page = (select(fhir_resources).where(*where)
            .order_by(fhir_resources.c.updated_at, fhir_resources.c.id)
            .offset(offset).limit(count).subquery("page").lateral())
    rows = list((await conn.execute(select(counted.c.total, *page.c).select_from(
        counted.outerjoin(page, true())))).mappings())
    return rows[0]["total"], [row for row in rows if row["id"] is not None]
