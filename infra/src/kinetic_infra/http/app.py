"""The FastAPI application of a service: its routers, health and readiness, problem+json,
sign-in, OpenAPI at /docs, and the admin pages with the platform's shared look: the
service's own tables, dead letters with replay, and the audit trail with search and export.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import nats
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import select, text

from kinetic_infra.audit.trail import AuditRecord, audit_log, verify_chain, write
from kinetic_infra.auth.principal import Principal, Role
from kinetic_infra.auth.tokens import TokenVerifier
from kinetic_infra.db.schema import dead_letters
from kinetic_infra.http.admin_pages import AdminKit
from kinetic_infra.inbox.consumer import InboxConsumer
from kinetic_infra.service.definition import Runtime
from kinetic_infra.settings import nats_servers

TEMPLATES_DIR = Path(__file__).parent / "templates"


def admin_kit(runtime: Runtime) -> AdminKit:
    """The service's own templates first, then the platform's (``base.html``)."""
    definition = runtime.definition
    directories = [*([str(definition.admin_templates)] if definition.admin_templates else []),
                   str(TEMPLATES_DIR)]
    templates = Jinja2Templates(directory=directories)
    return AdminKit(definition.name, runtime.settings, templates, list(definition.admin_menu))


async def _check(coro: Any, timeout: float = 2.0) -> str:
    try:
        await asyncio.wait_for(coro, timeout)
        return "ok"
    except Exception as exc:  # noqa: BLE001 - readiness reports, it does not raise
        return f"unavailable ({type(exc).__name__})"


def create_app(runtime: Runtime) -> FastAPI:
    definition = runtime.definition
    settings = runtime.settings

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # The process's one NATS connection: readiness pings it, and endpoints that act on
        # the broker itself (a partner's consumer) use it.
        app.state.nats = await nats.connect(nats_servers(settings.nats_url),
                                            max_reconnect_attempts=-1, allow_reconnect=True)
        try:
            yield
        finally:
            await app.state.nats.close()
            await runtime.db.dispose()

    app = FastAPI(
        title=f"Kinetic {definition.name}",
        description=definition.description,
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.verifier = TokenVerifier(settings.oidc_issuer, settings.oidc_audience,
                                       settings.oidc_jwks_url)
    from kinetic_infra.http.problems import install_problem_handlers

    install_problem_handlers(app)
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    # No span per ASGI message ("http send", "http receive"): the request's span says it all.
    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz",
                                       exclude_spans=["receive", "send"])

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
            await app.state.nats.flush(timeout=1)

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
    kit = admin_kit(runtime)
    sign_in, page, _signed_in = kit.sign_in, kit.render, kit.signed_in

    if definition.admin_pages is not None:
        app.include_router(definition.admin_pages(runtime, kit))

    @app.get("/admin", response_class=HTMLResponse, include_in_schema=False)
    async def admin(request: Request, flash: str | None = None) -> Response:
        principal = _signed_in(request)
        if principal is None:
            return sign_in(request)
        # The summary tables and dead letters span every location and every kind of record
        # (patients' names, invoices, partners' settings): the organization's operators only.
        # Everyone else works through the service's own pages, which ask its API as them.
        operator = Role.OPERATOR in principal.org_roles
        async with runtime.db.read(principal.tenant_id) as conn:
            tables = await definition.admin_tables(conn) if (
                operator and definition.admin_tables) else []
            letters = (await conn.execute(
                select(dead_letters).order_by(dead_letters.c.id.desc()).limit(200)
            )).mappings().all() if operator else []
        if tables:  # patients' names among them: a read like any other, in the trail
            await write(runtime.db, AuditRecord(
                tenant_id=principal.tenant_id, actor=principal.staff_id,
                role=principal.role_label(), action="read", resource_type="admin-summary",
                request_id=request.headers.get("x-request-id")))
        return page(request, "admin.html", principal, title="Admin", tables=tables,
                    dead_letters=letters, flash=flash, base="")

    @app.post("/admin/dead-letters/{dead_letter_id}/replay", include_in_schema=False)
    async def replay(request: Request, dead_letter_id: int) -> Response:
        principal = _signed_in(request)
        if principal is None or not principal.has_any([Role.OPERATOR]):
            return sign_in(request) if principal is None else HTMLResponse(
                "Only an operator can replay dead letters.", status_code=403)
        async with runtime.db.read(principal.tenant_id) as conn:
            consumer_name = await conn.scalar(
                select(dead_letters.c.consumer).where(dead_letters.c.id == dead_letter_id))
        consumer = consumers.get(consumer_name or "")
        if consumer is None:  # unknown, or another organization's: the same answer
            return RedirectResponse("/admin?flash=Unknown+dead+letter", status_code=303)
        outcome = await consumer.replay(dead_letter_id, principal.tenant_id)
        message = f"Dead letter {dead_letter_id} replayed: {outcome.value}"
        return RedirectResponse(f"/admin?flash={message.replace(' ', '+')}", status_code=303)

    async def audit_rows(principal: Principal, request: Request, limit: int
                         ) -> list[dict[str, Any]]:
        q = request.query_params
        query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        for name in ("actor", "action", "outcome", "resource_type"):
            if q.get(name):
                query = query.where(audit_log.c[name] == q[name])
        if q.get("patient"):
            query = query.where(audit_log.c.patient_id == _audit_filter(
                "patient", q["patient"], UUID))
        for name, op in (("since", "__ge__"), ("until", "__lt__")):
            if q.get(name):
                at = _audit_filter(name, q[name], datetime.fromisoformat)
                query = query.where(getattr(audit_log.c.at, op)(
                    at if at.tzinfo else at.replace(tzinfo=UTC)))
        async with runtime.db.read(principal.tenant_id) as conn:
            return [dict(r) for r in (await conn.execute(query)).mappings()]

    @app.get("/admin/audit", response_class=HTMLResponse, include_in_schema=False)
    async def audit(request: Request) -> Response:
        principal = _signed_in(request)
        if principal is None:
            return sign_in(request)
        if not principal.has_any([Role.OPERATOR]):
            return HTMLResponse("Only an operator can read the audit trail.", status_code=403)
        try:
            rows, flash = await audit_rows(principal, request, 500), None
        except _BadAuditFilter as exc:
            rows, flash = [], str(exc)
        chain = await verify_chain(runtime.db, principal.tenant_id)
        answer = page(request, "audit.html", principal, title="Audit trail", rows=rows,
                      chain=chain, query=request.query_params, flash=flash, warn=bool(flash))
        answer.status_code = 400 if flash else 200
        return answer

    @app.get("/admin/audit.csv", include_in_schema=False)
    async def audit_export(request: Request) -> Response:
        principal = _signed_in(request)
        if principal is None or not principal.has_any([Role.OPERATOR]):
            return HTMLResponse("Only an operator can export the audit trail.", status_code=403)
        try:
            rows = await audit_rows(principal, request, 100_000)
        except _BadAuditFilter as exc:
            return HTMLResponse(str(exc), status_code=400)
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=[c.name for c in audit_log.columns])
        writer.writeheader()
        writer.writerows(rows)
        return Response(out.getvalue(), media_type="text/csv", headers={
            "Content-Disposition": f'attachment; filename="kinetic-{definition.name}-audit.csv"'})


class _BadAuditFilter(ValueError):
    pass


_T = TypeVar("_T")


def _audit_filter(name: str, value: str, parse: Callable[[str], _T]) -> _T:
    try:
        return parse(value)
    except ValueError:
        raise _BadAuditFilter(f"The filter {name} is not understood: {value!r} (times as "
                              f"2026-01-31T08:00, patients by their id)") from None
