"""What a service hands to the platform: its name, migrations, projections, HTTP routers,
event subscriptions, workflows and admin summary. The service's ``bootstrap.py`` builds one
``ServiceDefinition``; infra runs it in any role (api, relay, consumer, worker, migrate)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from fastapi import APIRouter
from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncConnection

from kinetic_infra.auth.principal import Principal
from kinetic_infra.db.database import Database
from kinetic_infra.event_store.store import EventStore
from kinetic_infra.inbox.consumer import Subscription
from kinetic_infra.projections import Projection
from kinetic_infra.settings import Settings


@dataclass
class AdminTable:
    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]
    empty: str = "Nothing yet."


def _cell(value: Any) -> Any:
    return value.strftime("%Y-%m-%d %H:%M") if isinstance(value, datetime) else value


async def latest_rows(conn: AsyncConnection, title: str, headings: Sequence[str],
                      columns: Sequence[ColumnElement[Any]], *, newest_first: ColumnElement[Any],
                      empty: str, limit: int = 50) -> AdminTable:
    """The newest rows of a read model, as an admin-page table (times in UTC, to the minute)."""
    rows = (await conn.execute(select(*columns).order_by(newest_first.desc()).limit(limit))).all()
    return AdminTable(title, headings, [[_cell(v) for v in row] for row in rows], empty)


@dataclass
class SeedContext:
    """What a service's demo seed gets: its API, an operator's token for the demo
    organization, and a place to register demo staff for the development issuer."""

    base_url: str
    token: str
    tenant_id: UUID
    staff: list[Principal] = field(default_factory=list)


@dataclass
class Runtime:
    """The wired dependencies of one process, built from settings at start-up."""

    definition: ServiceDefinition
    settings: Settings
    db: Database
    store: EventStore
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class ServiceDefinition:
    name: str
    migrations: Path
    projections: Sequence[Projection] = ()
    routers: Callable[[Runtime], Sequence[APIRouter]] = lambda _rt: ()
    subscriptions: Callable[[Runtime], Sequence[Subscription]] | None = None
    admin_tables: Callable[[AsyncConnection], Awaitable[Sequence[AdminTable]]] | None = None
    # The service's own admin pages (a router built with the platform's AdminKit), their
    # templates and their links in the admin header.
    admin_pages: Callable[[Runtime, Any], APIRouter] | None = None
    admin_templates: Path | None = None
    admin_menu: Sequence[tuple[str, str]] = ()
    workflows: Sequence[type] = ()
    activities: Callable[[Runtime], Sequence[Callable[..., Any]]] = lambda _rt: ()
    description: str = ""
    # Demo data for `make run`, written through the service's own HTTP API (idempotently).
    seed: Callable[[SeedContext], Awaitable[Sequence[str]]] | None = None
    # A loop of the service's own that runs as the "dispatcher" process until the event is
    # set (for example: delivering webhooks from a table, so delivery state survives restarts).
    dispatcher: Callable[[Runtime, asyncio.Event], Awaitable[None]] | None = None
    # The dispatcher also answers the NATS server's auth callout (it is given the seed).
    answers_nats_auth: bool = False
    # Settings that are secrets of this service alone (a provider's signing secret): the
    # deployment gives them to its processes only, from a secret of its own.
    secret_settings: Sequence[str] = ()
    start_order: int = 100

    @property
    def task_queue(self) -> str:
        return f"kinetic-{self.name}"

    @property
    def uses_temporal(self) -> bool:
        return bool(self.workflows)

    def build_subscriptions(self, runtime: Runtime) -> list[Subscription]:
        return list(self.subscriptions(runtime)) if self.subscriptions else []

    def roles(self) -> list[str]:
        """The processes this service runs: consumers and a worker only where it has them."""
        roles = ["api", "relay"]
        if self.subscriptions is not None:
            roles.append("consumer")
        if self.uses_temporal:
            roles.append("worker")
        if self.dispatcher is not None:
            roles.append("dispatcher")
        return roles


def build_runtime(definition: ServiceDefinition, settings: Settings) -> Runtime:
    db = Database(settings.database_url, traced=True)
    return Runtime(definition, settings, db, EventStore(definition.name, definition.projections))
