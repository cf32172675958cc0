"""Tenant-scoped reads of a service's own read models. Every query filters on the caller's
tenant, so another organization's id is indistinguishable from one that does not exist."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import Column, Table, select

from kinetic_infra.db.database import Database


async def fetch_one(db: Database, table: Table, key: Column[Any], value: Any, tenant_id: UUID,
                    missing: Exception) -> dict[str, Any]:
    async with db.read() as conn:
        row = (await conn.execute(
            select(table).where(key == value, table.c.tenant_id == tenant_id)
        )).mappings().one_or_none()
    if row is None:
        raise missing
    return dict(row)


async def fetch_all(db: Database, table: Table, tenant_id: UUID, *order_by: Column[Any],
                    limit: int = 500) -> list[dict[str, Any]]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(table).where(table.c.tenant_id == tenant_id).order_by(*order_by).limit(limit)
        )
        return [dict(r) for r in rows.mappings()]
