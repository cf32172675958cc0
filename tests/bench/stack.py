"""The servers every scenario runs against: one durable PostgreSQL and one NATS (JetStream),
and a Temporal dev server started on first use (only the plan scenario needs one).

Nothing is measured here. The stack lives in a throw-away temporary directory, the
PostgreSQL server commits with ``fsync`` on (``durable=True``) and NATS syncs every stored
message (``sync_interval: always``), so the numbers are those of real commits. ``BenchStack``
is a context manager: every server it started is stopped, and the directory removed, on the
way out, also after an error or a Ctrl-C.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import asyncpg
import nats
from nats.js.errors import NotFoundError

from kinetic_infra.broker.streams import ensure_stream, service_stream
from kinetic_infra.db.schema import PLATFORM_DDL
from kinetic_infra.stack.nats import EmbeddedNats, NatsSettings
from kinetic_infra.stack.postgres import EmbeddedPostgres, PostgresSettings
from kinetic_infra.stack.processes import free_port
from kinetic_infra.stack.temporal import EmbeddedTemporal, TemporalSettings

SERVICE = "booking"
PRODUCER_DB = "bench_booking"
CONSUMER_DB = "bench_consumer"

EFFECT_DDL = """
CREATE TABLE bench_effect (
    event_id uuid PRIMARY KEY,
    episode_id uuid NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
"""


@dataclass
class BenchStack:
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="kinetic-bench-")))
    postgres: EmbeddedPostgres | None = None
    nats: EmbeddedNats | None = None
    temporal: EmbeddedTemporal | None = None

    def __enter__(self) -> BenchStack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        logs = self.root / "logs"
        self.postgres = EmbeddedPostgres(
            PostgresSettings(self.root / "postgres", free_port(), durable=True))
        self.postgres.start(logs)
        self.nats = EmbeddedNats(NatsSettings(self.root / "nats", free_port(), free_port()))
        self.nats.start(logs)
        for name in (PRODUCER_DB, CONSUMER_DB):
            self.postgres.psql(f'CREATE DATABASE "{name}"')

    def stop(self) -> None:
        errors: list[BaseException] = []
        for server in (self.temporal, self.nats, self.postgres):
            if server is None:
                continue
            try:
                server.stop()
            except BaseException as exc:  # noqa: BLE001 - stop the others all the same
                errors.append(exc)
        self.temporal = self.nats = self.postgres = None
        shutil.rmtree(self.root, ignore_errors=True)
        if errors:
            raise errors[0]

    def start_temporal(self) -> EmbeddedTemporal:
        """The Temporal dev server (file-backed, in the stack's directory), started on the
        first call; stopped with the other servers."""
        if self.temporal is None:
            self.temporal = EmbeddedTemporal(TemporalSettings(
                self.root / "temporal", free_port(), free_port(), free_port(), free_port()))
            self.temporal.start(self.root / "logs")
        return self.temporal

    def stop_temporal(self) -> None:
        """Stop the Temporal server once its scenario is done, so it takes nothing from the
        scenarios after it."""
        if self.temporal is not None:
            temporal, self.temporal = self.temporal, None
            temporal.stop()

    @property
    def producer_url(self) -> str:
        assert self.postgres is not None
        return self.postgres.dsn(PRODUCER_DB)

    @property
    def consumer_url(self) -> str:
        assert self.postgres is not None
        return self.postgres.dsn(CONSUMER_DB)

    @property
    def nats_url(self) -> str:
        assert self.nats is not None
        return self.nats.url

    def enable_commit_timestamps(self) -> None:
        """Have PostgreSQL record when each transaction commits (``pg_xact_commit_timestamp``),
        which the latency scenario reads; the setting needs a restart."""
        assert self.postgres is not None
        self.postgres.psql("ALTER SYSTEM SET track_commit_timestamp = on")
        self.postgres.stop()
        self.postgres.start(self.root / "logs")

    async def create_schemas(self) -> None:
        for url, extra in ((self.producer_url, ""), (self.consumer_url, EFFECT_DDL)):
            conn = await asyncpg.connect(url)
            try:
                await conn.execute(PLATFORM_DDL + extra)
            finally:
                await conn.close()

    async def reset_tables(self) -> None:
        """Empty both databases, so every run starts from the same (empty) tables."""
        for url, tables in ((self.producer_url, "events, outbox, inbox, dead_letters"),
                            (self.consumer_url, "events, outbox, inbox, dead_letters, "
                                                "bench_effect")):
            conn = await asyncpg.connect(url)
            try:
                await conn.execute(f"TRUNCATE {tables}")
            finally:
                await conn.close()
        await self.settle()

    async def settle(self) -> None:
        """Flush what earlier steps left dirty (a checkpoint, then the OS page cache), so
        their write-back does not compete with the next measured run for the disk."""
        conn = await asyncpg.connect(self.producer_url)
        try:
            await conn.execute("CHECKPOINT")
        finally:
            await conn.close()
        os.sync()

    async def reset_stream(self) -> None:
        """Delete and re-declare the service's JetStream stream: no messages, no consumers,
        and an empty de-duplication window."""
        nc = await nats.connect(self.nats_url)
        try:
            js = nc.jetstream()
            config = service_stream(SERVICE)
            try:
                await js.delete_stream(config.name or "")
            except NotFoundError:
                pass
            await ensure_stream(js, config)
        finally:
            await nc.drain()
