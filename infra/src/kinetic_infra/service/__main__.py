"""Run one role of one service: ``python -m kinetic_infra.service <role>``.

The service comes from ``KINETIC_SERVICE`` (its package must expose
``<service>.bootstrap:SERVICE``). Roles: ``api`` (HTTP API and admin page), ``relay``
(outbox → JetStream), ``consumer`` (FastStream subscribers), ``worker`` (Temporal),
``dispatcher`` (a loop of the service's own, e.g. webhook delivery),
``migrate`` (Alembic upgrade, then exit). Each role is its own process so that each can be
scaled, restarted or killed on its own.

Maintenance: ``python -m kinetic_infra.service rebuild [PROJECTION ...]`` empties the
service's projections (all, or those named) and replays its event log into them, on
``KINETIC_MAINTENANCE_DATABASE_URL`` (a role that bypasses row-level security), then exits.
``python -m kinetic_infra.service catch-up SUBSCRIPTION --since TIME`` rewinds one of the
service's durable consumers to TIME, for a handler an upgrade added for events already in
the stream: the running consumers receive every event from TIME on again, the inbox skips
those handled before, and the new handler applies the rest once.
"""

from __future__ import annotations

import asyncio
import importlib
import signal
import sys

from kinetic_infra.service.definition import ServiceDefinition, build_runtime
from kinetic_infra.settings import Settings, load_settings, nats_servers

ROLES = ("api", "relay", "consumer", "worker", "dispatcher", "migrate")
REBUILD = "rebuild"
CATCH_UP = "catch-up"


def load_definition(service: str) -> ServiceDefinition:
    module = importlib.import_module(f"{service}.bootstrap")
    return module.SERVICE  # type: ignore[no-any-return]


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _relay(settings: Settings) -> None:
    from kinetic_infra.outbox.relay import OutboxRelay, RelaySettings

    relay = OutboxRelay(RelaySettings(settings.service, settings.database_url, settings.nats_url,
                                      batch_size=settings.relay_batch_size,
                                      stream_replicas=settings.stream_replicas))
    await relay.run(_stop_event())


async def _consumer(definition: ServiceDefinition, settings: Settings) -> None:
    from kinetic_infra.broker.faststream_app import build_consumer_app

    runtime = build_runtime(definition, settings)
    subscriptions = definition.build_subscriptions(runtime)
    for s in subscriptions:
        s.max_attempts = settings.consumer_max_attempts
    app, _broker = build_consumer_app(settings.nats_url, runtime.db, subscriptions,
                                      ack_wait=settings.consumer_ack_wait_seconds,
                                      stream_replicas=settings.stream_replicas)
    await app.run()
    await runtime.db.dispose()


async def _worker(definition: ServiceDefinition, settings: Settings) -> None:
    from temporalio.contrib.opentelemetry import MetricsExporter

    from kinetic_infra.temporal import build_worker, sdk_metrics

    runtime = build_runtime(definition, settings)
    sdk_runtime, buffer = sdk_metrics()
    worker = await build_worker(runtime, sdk_runtime)
    stop = _stop_event()
    async with MetricsExporter(buffer), worker:
        await stop.wait()
    await runtime.db.dispose()


async def _dispatcher(definition: ServiceDefinition, settings: Settings) -> None:
    assert definition.dispatcher is not None
    runtime = build_runtime(definition, settings)
    await definition.dispatcher(runtime, _stop_event())
    await runtime.db.dispose()


async def _rebuild(definition: ServiceDefinition, settings: Settings,
                   names: list[str]) -> None:
    from kinetic_infra.db.database import Database
    from kinetic_infra.projections import rebuild

    if not settings.maintenance_database_url:
        raise SystemExit("rebuild replays every organization's events: set "
                         "KINETIC_MAINTENANCE_DATABASE_URL to a role that bypasses row-level "
                         "security")
    known = {p.name: p for p in definition.projections}
    if unknown := [n for n in names if n not in known]:
        raise SystemExit(f"{definition.name} has no projection {', '.join(unknown)} "
                         f"(it has {', '.join(sorted(known)) or 'none'})")
    db = Database(settings.maintenance_database_url)
    try:
        for name in names or sorted(known):
            replayed = await rebuild(db, known[name])
            print(f"{definition.name}: {name} rebuilt from {replayed} events", flush=True)
    finally:
        await db.dispose()


async def _catch_up(definition: ServiceDefinition, settings: Settings,
                    args: list[str]) -> None:
    import argparse
    from datetime import datetime

    import nats

    from kinetic_contracts.naming import stream_name_for_service
    from kinetic_infra.broker.faststream_app import consumer_config
    from kinetic_infra.broker.streams import rewind_consumer

    parser = argparse.ArgumentParser(prog=f"python -m kinetic_infra.service {CATCH_UP}")
    parser.add_argument("subscription", help="the durable consumer's name")
    parser.add_argument("--since", required=True, type=datetime.fromisoformat,
                        help="ISO 8601 time with its offset, e.g. 2026-01-01T00:00:00+00:00")
    options = parser.parse_args(args)
    since: datetime = options.since
    if since.tzinfo is None:
        raise SystemExit("--since needs a time zone offset (e.g. +00:00 or Z)")
    runtime = build_runtime(definition, settings)
    try:
        known = {s.name: s for s in definition.build_subscriptions(runtime)}
    finally:
        await runtime.db.dispose()
    if (subscription := known.get(options.subscription)) is None:
        raise SystemExit(f"{definition.name} has no subscription {options.subscription} "
                         f"(it has {', '.join(sorted(known)) or 'none'})")
    stream = stream_name_for_service(subscription.source_service)
    nc = await nats.connect(nats_servers(settings.nats_url))
    try:
        js = nc.jetstream()
        config = consumer_config(subscription, settings.consumer_ack_wait_seconds, since)
        if not await rewind_consumer(js, stream, config):
            print(f"{subscription.name} has not run yet: its first consumer reads {stream} "
                  f"from the start", flush=True)
            return
        pending = (await js.consumer_info(stream, subscription.name)).num_pending
        print(f"{subscription.name} rewound to {since.isoformat()}: {pending} events of "
              f"{stream} to go through again", flush=True)
    finally:
        await nc.close()


def _api(definition: ServiceDefinition, settings: Settings) -> None:
    from kinetic_infra.http.app import create_app
    from kinetic_infra.http.serving import serve

    settings.require_oidc()
    serve(create_app(build_runtime(definition, settings)), settings.http_host,
          settings.http_port, reuse_port=settings.http_reuse_port,
          log_level=settings.log_level.lower())


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == [REBUILD]:
        settings = load_settings()
        asyncio.run(_rebuild(load_definition(settings.service), settings, args[1:]))
        return
    if args[:1] == [CATCH_UP]:
        settings = load_settings()
        asyncio.run(_catch_up(load_definition(settings.service), settings, args[1:]))
        return
    if len(args) != 1 or args[0] not in ROLES:
        raise SystemExit(f"usage: python -m kinetic_infra.service {{{'|'.join(ROLES)}}}, "
                         f"{REBUILD} [PROJECTION ...], or {CATCH_UP} SUBSCRIPTION --since TIME")
    role = args[0]
    settings = load_settings()
    from kinetic_infra.telemetry import setup_logging, setup_telemetry

    setup_logging(settings.service, role, settings.log_level)
    setup_telemetry(settings.service, role)
    if role == "relay":  # needs only settings: it moves bytes, it knows no domain
        asyncio.run(_relay(settings))
        return
    definition = load_definition(settings.service)
    if role == "migrate":
        from kinetic_infra.db.migrations import upgrade

        upgrade(definition.migrations, settings.migration_database_url or settings.database_url,
                app_role=settings.database_app_role)
    elif role == "api":
        _api(definition, settings)
    elif role == "consumer":
        asyncio.run(_consumer(definition, settings))
    elif role == "worker":
        asyncio.run(_worker(definition, settings))
    elif role == "dispatcher":
        asyncio.run(_dispatcher(definition, settings))


if __name__ == "__main__":
    main()
