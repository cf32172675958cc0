"""Run one role of one service: ``python -m kinetic_infra.service <role>``.

The service comes from ``KINETIC_SERVICE`` (its package must expose
``<service>.bootstrap:SERVICE``). Roles: ``api`` (HTTP API and admin page), ``relay``
(outbox → JetStream), ``consumer`` (FastStream subscribers), ``worker`` (Temporal),
``dispatcher`` (a loop of the service's own, e.g. webhook delivery),
``migrate`` (Alembic upgrade, then exit). Each role is its own process so that each can be
scaled, restarted or killed on its own.
"""

from __future__ import annotations

import asyncio
import importlib
import signal
import socket
import sys

from kinetic_infra.service.definition import ServiceDefinition, build_runtime
from kinetic_infra.settings import Settings, load_settings

ROLES = ("api", "relay", "consumer", "worker", "dispatcher", "migrate")


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


def _api(definition: ServiceDefinition, settings: Settings) -> None:
    import uvicorn

    from kinetic_infra.http.app import create_app

    settings.require_oidc()
    app = create_app(build_runtime(definition, settings))
    config = uvicorn.Config(app, host=settings.http_host, port=settings.http_port,
                            log_level=settings.log_level.lower(), access_log=False)
    if not settings.http_reuse_port:
        uvicorn.Server(config).run()
        return
    # Replicas on one machine: each process binds the same port and the kernel hands each
    # new connection to one of them, so no proxy stands in between.
    sock = socket.socket(socket.AF_INET6 if ":" in settings.http_host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((settings.http_host, settings.http_port))
    uvicorn.Server(config).run(sockets=[sock])


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in ROLES:
        raise SystemExit(f"usage: python -m kinetic_infra.service {{{'|'.join(ROLES)}}}")
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
