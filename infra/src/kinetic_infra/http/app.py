"""The FastAPI application of a service: its routers, health and readiness, problem+json,
OpenAPI at /docs, and the admin page at /admin with the platform's shared look."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import nats
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import select, text

from kinetic_infra.db.schema import dead_letters
from kinetic_infra.inbox.consumer import InboxConsumer
from kinetic_infra.service.definition import Runtime

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


async def _check(coro: Any, timeout: float = 2.0) -> str:
    try:
        await asyncio.wait_for(coro, timeout)
        return "ok"
    except Exception as exc:  # noqa: BLE001 - readiness reports, it does not raise
        return f"unavailable ({type(exc).__name__})"


def create_app(runtime: Runtime) -> FastAPI:
    definition = runtime.definition
    settings = runtime.settings
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        state["nats"] = await nats.connect(settings.nats_url, max_reconnect_attempts=-1,
                                           allow_reconnect=True)
        try:
            yield
        finally:
            await state["nats"].close()
            await runtime.db.dispose()

    app = FastAPI(
        title=f"Kinetic {definition.name}",
        description=definition.description,
        version="0.1.0",
        lifespan=lifespan,
    )
    from kinetic_infra.http.problems import install_problem_handlers

    install_problem_handlers(app)

    @app.get("/healthz", tags=["operations"], summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], summary="Database, NATS and Temporal reachable",
             responses={503: {"description": "A dependency is unreachable"}})
    async def readyz() -> JSONResponse:
        async def db_ping() -> None:
            async with runtime.db.read() as conn:
                await conn.execute(text("SELECT 1"))

        async def nats_ping() -> None:
            await state["nats"].flush(timeout=1)

        checks = {"database": await _check(db_ping()), "nats": await _check(nats_ping())}
        if definition.uses_temporal:
            from kinetic_infra.temporal import temporal_client

            async def temporal_ping() -> None:
                client = await temporal_client(runtime)
                await client.service_client.check_health()

            checks["temporal"] = await _check(temporal_ping(), timeout=5)
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                            status_code=200 if ready else 503)

    for router in definition.routers(runtime):
        app.include_router(router)

    _install_admin(app, runtime)
    return app


def _install_admin(app: FastAPI, runtime: Runtime) -> None:
    definition = runtime.definition
    consumers = {s.name: InboxConsumer(runtime.db, s) for s in definition.build_subscriptions(runtime)}

    @app.get("/admin", response_class=HTMLResponse, include_in_schema=False)
    async def admin(request: Request, flash: str | None = None) -> HTMLResponse:
        async with runtime.db.read() as conn:
            tables = await definition.admin_tables(conn) if definition.admin_tables else []
            letters = (await conn.execute(
                select(dead_letters).order_by(dead_letters.c.id.desc()).limit(200)
            )).mappings().all()
        return TEMPLATES.TemplateResponse(request, "admin.html", {
            "title": "Admin", "service": definition.name, "nav": runtime.settings.admin_nav(),
            "tables": tables, "dead_letters": letters, "flash": flash, "base": "",
        })

    @app.post("/admin/dead-letters/{dead_letter_id}/replay", include_in_schema=False)
    async def replay(dead_letter_id: int) -> RedirectResponse:
        async with runtime.db.read() as conn:
            consumer_name = await conn.scalar(
                select(dead_letters.c.consumer).where(dead_letters.c.id == dead_letter_id))
        consumer = consumers.get(consumer_name or "")
        if consumer is None:
            return RedirectResponse("/admin?flash=Unknown+dead+letter", status_code=303)
        outcome = await consumer.replay(dead_letter_id)
        message = f"Dead letter {dead_letter_id} replayed: {outcome.value}"
        return RedirectResponse(f"/admin?flash={message.replace(' ', '+')}", status_code=303)
