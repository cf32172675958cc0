"""Session-scoped servers and platform for every test tier.

The same set-up as `make run`, on free ports and in a throw-away directory: PostgreSQL,
NATS JetStream and the Temporal dev server start once per test session. Tests that need
the service processes use ``platform``; infra tests get a scratch database of their own.
PostgreSQL runs with fsync off here (test data is disposable); NATS keeps
``sync_interval: always`` because the relay's guarantees are stated against it.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from kinetic_infra.db.schema import PLATFORM_DDL
from kinetic_infra.db.security import security_migration
from kinetic_infra.stack.platform import Platform, Ports, discover_services


def pytest_configure(config: pytest.Config) -> None:
    """A SIGTERM (a CI job's timeout, or ``make test`` stopped) ends the session as Ctrl-C
    does, through every fixture's teardown: the servers and service processes run in sessions
    of their own, so a session killed outright would leave them running."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.default_int_handler)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that uses the running platform is marked ``platform``, whether or not its
    module says so: ``-m "not platform"`` (make test-unit) then starts no platform at all."""
    for item in items:
        if "platform" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.platform)


@pytest.fixture(scope="session")
def stack() -> Iterator[Platform]:
    data_dir = Path(tempfile.mkdtemp(prefix="kinetic-test-"))
    services = discover_services()
    platform = Platform(data_dir=data_dir, ports=Ports.free(services), services=services,
                        durable=False,
                        extra_env={"KINETIC_CONSUMER_MAX_ATTEMPTS": "3", "KINETIC_LOG_LEVEL": "INFO",
                                   # Spans reach the log files quickly enough to assert on.
                                   "OTEL_BSP_SCHEDULE_DELAY": "200",
                                   "OTEL_METRIC_EXPORT_INTERVAL": "2000",
                                   # Reminders an hour ahead, so a test waits seconds for one.
                                   "KINETIC_BOOKING_REMINDER_LEAD_MINUTES": "60",
                                   # The payment provider's signing secret (none by default).
                                   "KINETIC_BILLING_WEBHOOK_SECRET": "test-provider-secret",
                                   # Partner NATS sessions end (and renew) within a test.
                                   "KINETIC_PARTNERS_NATS_SESSION_SECONDS": "10",
                                   # The test receivers of partner webhooks listen on loopback.
                                   "KINETIC_PARTNERS_ALLOW_LOOPBACK_HTTP": "true"})
    try:
        platform.log_dir.mkdir(parents=True, exist_ok=True)
        platform.start_servers()
        platform.start_issuer()
        yield platform
    finally:
        platform.stop()
        if not os.environ.get("KINETIC_KEEP_TEST_DATA"):
            shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def platform(stack: Platform) -> Platform:
    """Every service's database migrated and its processes running and ready."""
    if not stack.database_urls:
        stack.prepare_databases()
        stack.start_services()
    return stack


@pytest.fixture(scope="session")
def nats_url(stack: Platform) -> str:
    assert stack.nats is not None
    return stack.nats.url


@pytest.fixture
async def scratch_dsn(stack: Platform) -> AsyncIterator[str]:
    assert stack.postgres is not None
    name = f"scratch_{uuid.uuid4().hex[:12]}"
    stack.postgres.psql(f'CREATE DATABASE "{name}"')
    dsn = stack.postgres.dsn(name)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(PLATFORM_DDL)
        await conn.execute(security_migration())
    finally:
        await conn.close()
    yield dsn
