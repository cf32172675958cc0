"""Read-model upserts straight through the driver.

A projection applies an event with one ``INSERT … ON CONFLICT (key) DO UPDATE`` of the
row's columns, so a rebuild and a live apply end identical. Built with SQLAlchemy's
``insert().on_conflict_do_update()`` on every call, the statement cost more of a booking's
CPU than PostgreSQL spent running it; here its text is built once per table and set of
columns, and the values go to asyncpg as they are (JSON columns as their JSON text, the
form the engine's codecs take).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from sqlalchemy import JSON, Table
from sqlalchemy.ext.asyncio import AsyncConnection

from kinetic_infra.event_store.sql import raw_driver


@lru_cache(maxsize=512)
def upsert_sql(table: Table, columns: tuple[str, ...], key: tuple[str, ...]) -> str:
    names = ", ".join(f'"{c}"' for c in columns)
    values = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    conflict = ", ".join(f'"{c}"' for c in key)
    updates = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in columns if c not in key)
    return (f'INSERT INTO "{table.name}" ({names}) VALUES ({values}) '
            f"ON CONFLICT ({conflict}) DO UPDATE SET {updates}")


@lru_cache(maxsize=512)
def _json_columns(table: Table) -> frozenset[str]:
    return frozenset(c.name for c in table.columns if isinstance(c.type, JSON))


async def upsert(conn: AsyncConnection, table: Table, key: str | tuple[str, ...],
                 row: Mapping[str, Any]) -> None:
    """Insert ``row`` into ``table``, or update every other given column of the row with
    the same ``key`` (a unique column, or several)."""
    keys = (key,) if isinstance(key, str) else key
    as_json = _json_columns(table)
    values = [json.dumps(v) if c in as_json and v is not None else v for c, v in row.items()]
    await (await raw_driver(conn)).execute(upsert_sql(table, tuple(row), keys), *values)
