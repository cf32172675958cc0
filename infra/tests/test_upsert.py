"""Read-model upserts through the driver, on the real PostgreSQL: the first apply inserts,
a second apply of the same key updates only the columns it gives, and JSON columns
round-trip as JSON."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, Text, select, text
from sqlalchemy.dialects.postgresql import JSONB, UUID

from kinetic_infra.db.database import Database
from kinetic_infra.db.upsert import upsert

rooms = Table("rooms", MetaData(), Column("room_id", UUID(as_uuid=True), primary_key=True),
              Column("name", Text), Column("seats", Integer), Column("hours", JSONB))


@pytest.fixture
async def db(scratch_dsn: str):
    database = Database(scratch_dsn)
    async with database.transaction() as conn:
        await conn.execute(text("CREATE TABLE rooms (room_id uuid PRIMARY KEY, name text, "
                                "seats int, hours jsonb)"))
    yield database
    await database.dispose()


async def test_an_upsert_inserts_then_updates_only_the_columns_it_is_given(db):
    room = uuid.uuid4()
    hours = {"mon": [{"opens": "08:00", "closes": "12:00"}]}
    async with db.transaction() as conn:
        await upsert(conn, rooms, "room_id", {"room_id": room, "name": "Gym", "seats": 4,
                                              "hours": hours})
    async with db.transaction() as conn:
        await upsert(conn, rooms, "room_id", {"room_id": room, "seats": 6})
    async with db.read() as conn:
        rows = (await conn.execute(select(rooms))).mappings().all()
    assert [dict(r) for r in rows] == [{"room_id": room, "name": "Gym", "seats": 6,
                                        "hours": hours}]


async def test_an_upsert_on_a_key_of_several_columns_updates_the_row_with_all_of_them(db):
    shifts = Table("shifts", MetaData(), Column("room", Text), Column("day", Text),
                   Column("staff", Integer))
    async with db.transaction() as conn:
        await conn.execute(text("CREATE TABLE shifts (room text, day text, staff int, "
                                "PRIMARY KEY (room, day))"))
        for room, day, staff in (("gym", "mon", 1), ("gym", "tue", 2), ("gym", "mon", 3)):
            await upsert(conn, shifts, ("room", "day"), {"room": room, "day": day,
                                                         "staff": staff})
    async with db.read() as conn:
        rows = (await conn.execute(select(shifts).order_by(shifts.c.day))).all()
    assert [tuple(r) for r in rows] == [("gym", "mon", 3), ("gym", "tue", 2)]
