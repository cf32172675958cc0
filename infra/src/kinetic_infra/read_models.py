"""Reads of a service's own read models, scoped twice: to the caller's organization by
row-level security (the transaction carries the tenant), and to the locations where the
caller holds one of the allowed roles. What the caller may not see answers 404, exactly
like what does not exist, so existence does not leak."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Column, Select, Table, select

from kinetic_infra.auth.principal import Principal, Role
from kinetic_infra.db.database import Database


async def fetch_one(db: Database, table: Table, key: Column[Any], value: Any,
                    principal: Principal, missing: Exception, *,
                    location: Column[Any] | None = None, roles: Iterable[Role] = ()
                    ) -> dict[str, Any]:
    async with db.read(principal.tenant_id) as conn:
        row = (await conn.execute(select(table).where(key == value))).mappings().one_or_none()
    if row is None or (location is not None and not principal.can_at(row[location.name], roles)):
        raise missing
    return dict(row)


def at_visible_locations(query: Select[Any], principal: Principal, location: Column[Any],
                         roles: Iterable[Role]) -> Select[Any]:
    """Only the rows at locations where the caller holds one of the roles (all of the
    organization's for an operator)."""
    visible = principal.locations_for(roles)
    return query if visible is None else query.where(location.in_(visible))


async def fetch_all(db: Database, table: Table, principal: Principal, *order_by: Column[Any],
                    location: Column[Any] | None = None, roles: Iterable[Role] = (),
                    limit: int = 500) -> list[dict[str, Any]]:
    query = select(table).order_by(*order_by).limit(limit)
    if location is not None:
        query = at_visible_locations(query, principal, location, roles)
    async with db.read(principal.tenant_id) as conn:
        return [dict(r) for r in (await conn.execute(query)).mappings()]
