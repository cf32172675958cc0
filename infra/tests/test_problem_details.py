"""Errors reach clients as RFC 9457 problem+json, with the right status and no internals."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict

from kinetic_infra.commands import ConcurrencyConflictError
from kinetic_infra.http.problems import install_problem_handlers


class Reading(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)
    value: float


def app_raising(exc: Exception) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise exc

    return app


async def get(app: FastAPI) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get("/boom")


async def test_a_concurrency_conflict_after_retries_answers_409_problem_json():
    response = await get(app_raising(ConcurrencyConflictError(
        "the record changed while the request was processed", stream="patient-1", expected=3,
        attempts=3)))
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "/problems/concurrency-conflict"
    assert body["expected"] == 3 and body["attempts"] == 3


async def test_an_unexpected_error_answers_500_without_its_message_or_sql():
    response = await get(app_raising(RuntimeError(
        'relation "patients" does not exist: SELECT given_name FROM patients')))
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "/problems/internal-error"
    assert "SELECT" not in response.text and "patients" not in response.text


async def test_a_number_json_does_not_have_is_refused_with_422_problem_json_not_a_500():
    """FastAPI's parser reads NaN and Infinity; a model that refuses them must answer 422."""
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/readings")
    async def record(reading: Reading) -> dict[str, float]:
        return {"value": reading.value}

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for raw in ("NaN", "Infinity", "-Infinity"):
            response = await client.post("/readings", content=f'{{"value": {raw}}}',
                                         headers={"content-type": "application/json"})
            assert response.status_code == 422, (raw, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            [error] = response.json()["errors"]
            assert error["loc"] == ["body", "value"] and error["input"] in ("nan", "inf", "-inf")


async def test_a_date_too_far_out_to_compute_with_answers_422_problem_json():
    from datetime import date, timedelta

    response = await get(app_raising(OverflowError("date value out of range")))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "/problems/out-of-range"
    with pytest.raises(OverflowError):  # what a week's search from the last day does
        date(9999, 12, 31) + timedelta(days=7)


class Note(BaseModel):
    body: str


async def test_a_nul_character_in_any_text_answers_422_and_writes_nothing(scratch_dsn: str):
    """PostgreSQL stores no NUL in text or jsonb; pydantic lets one through. Through
    SQLAlchemy or straight to asyncpg, the refusal is the input's fault, not a 500."""
    import asyncpg
    from sqlalchemy import text

    from kinetic_infra.db.database import Database
    from kinetic_infra.event_store.sql import driver_connection

    db = Database(scratch_dsn, pool_size=1, max_overflow=0)
    async with db.transaction() as conn:
        await conn.execute(text("CREATE TABLE notes (body text, doc jsonb)"))
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/notes/{way}")
    async def write(way: str, note: Note) -> dict[str, str]:
        async with db.transaction() as conn:
            if way == "sqlalchemy":
                await conn.execute(text("INSERT INTO notes (body) VALUES (:b)"), {"b": note.body})
            elif way == "asyncpg-jsonb":
                await (await driver_connection(conn)).execute(
                    "INSERT INTO notes (doc) VALUES ($1::jsonb)", note.model_dump_json())
            else:
                await conn.execute(text("SELECT 1/0"))  # any other database error
        return {}

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            for way in ("sqlalchemy", "asyncpg-jsonb"):
                response = await client.post(f"/notes/{way}", json={"body": "Ada\u0000"})
                assert response.status_code == 422, (way, response.text)
                assert response.headers["content-type"] == "application/problem+json"
                assert response.json()["type"] == "/problems/unstorable-text"
            other = await client.post("/notes/other", json={"body": "Ada"})
            assert other.status_code == 500
            assert other.json()["type"] == "/problems/internal-error"
        conn = await asyncpg.connect(scratch_dsn)
        try:
            assert await conn.fetchval("SELECT count(*) FROM notes") == 0
        finally:
            await conn.close()
    finally:
        await db.dispose()
