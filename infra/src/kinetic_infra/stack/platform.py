"""The whole platform on one machine: the three servers, one database per service, every
service's migrations, then each service's processes (api, relay, consumer, worker).

``make run`` uses fixed ports and a persistent data directory; the test suite uses free
ports and a temporary one. Services are discovered through the ``kinetic.services`` entry
point group, so infra names no service.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from uuid import UUID

import httpx

from kinetic_infra.auth.dev_issuer import AUDIENCE, key_path, save_staff
from kinetic_infra.auth.principal import Principal, Role
from kinetic_infra.auth.tokens import SigningKey
from kinetic_infra.service.definition import SeedContext, ServiceDefinition
from kinetic_infra.stack.nats import EmbeddedNats, NatsCluster, NatsSettings
from kinetic_infra.stack.postgres import EmbeddedPostgres, PostgresSettings
from kinetic_infra.stack.processes import ChildProcess, free_port, port_open
from kinetic_infra.stack.temporal import NAMESPACE, EmbeddedTemporal, TemporalSettings

ROLES = ("api", "relay", "consumer", "worker", "dispatcher")


def discover_services() -> list[ServiceDefinition]:
    found = [ep.load() for ep in entry_points(group="kinetic.services")]
    return sorted(found, key=lambda d: (d.start_order, d.name))


@dataclass
class Ports:
    postgres: int
    nats: int
    nats_monitor: int
    temporal: int
    temporal_ui: int
    temporal_http: int
    temporal_metrics: int
    issuer: int
    http: dict[str, int]

    @classmethod
    def fixed(cls, services: list[ServiceDefinition]) -> Ports:
        return cls(55432, 4222, 8222, 7233, 8233, 7243, 7244, 8100,
                   {d.name: 8101 + i for i, d in enumerate(services)})

    @classmethod
    def free(cls, services: list[ServiceDefinition]) -> Ports:
        return cls(free_port(), free_port(), free_port(), free_port(), free_port(), free_port(),
                   free_port(), free_port(), {d.name: free_port() for d in services})


def role_password(role: str) -> str:
    # Local-stack credentials only: the servers listen on loopback. Production passes URLs.
    return f"{role}-local"


def app_role(service: str) -> str:
    return f"kinetic_{service}_app"


# The demo organization `make run` seeds (its staff sign in through the development issuer).
DEMO_TENANT = UUID("0194f0a0-0000-7000-8000-00000000de70")


@dataclass
class Platform:
    data_dir: Path
    ports: Ports
    services: list[ServiceDefinition]
    durable: bool = True
    roles: tuple[str, ...] = ROLES
    extra_env: dict[str, str] = field(default_factory=dict)
    postgres: EmbeddedPostgres | None = None
    nats: EmbeddedNats | NatsCluster | None = None
    # 3: a JetStream cluster of three nodes on loopback, streams with three replicas.
    nats_nodes: int = 1
    # Processes of every role of every service (APIs share their port: SO_REUSEPORT).
    replicas: int = 1
    temporal: EmbeddedTemporal | None = None
    processes: list[ChildProcess] = field(default_factory=list)
    database_urls: dict[str, str] = field(default_factory=dict)
    owner_urls: dict[str, str] = field(default_factory=dict)
    issuer: ChildProcess | None = None

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    # -- servers ---------------------------------------------------------------------------
    def start_servers(self) -> None:
        p = self.ports
        self.postgres = EmbeddedPostgres(
            PostgresSettings(self.data_dir / "postgres", p.postgres, self.durable)
        ).start(self.log_dir)
        if self.nats_nodes > 1:
            extra = self.nats_nodes - 1
            self.nats = NatsCluster(
                self.data_dir / "nats", [p.nats, *(free_port() for _ in range(extra))],
                [p.nats_monitor, *(free_port() for _ in range(extra))],
                [free_port() for _ in range(self.nats_nodes)]).start(self.log_dir)
        else:
            self.nats = EmbeddedNats(
                NatsSettings(self.data_dir / "nats", p.nats, p.nats_monitor)
            ).start(self.log_dir)
        self.temporal = EmbeddedTemporal(
            TemporalSettings(self.data_dir / "temporal", p.temporal, p.temporal_ui,
                             p.temporal_http, p.temporal_metrics)
        ).start(self.log_dir)

    @property
    def issuer_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.issuer}"

    def signing_key(self) -> SigningKey:
        return SigningKey.load_or_create(key_path(self.data_dir))

    def mint(self, principal: Principal, ttl_seconds: int = 8 * 3600) -> str:
        """A token from the development issuer (what `kinetic-stack token` prints)."""
        return self.signing_key().mint(principal, issuer=self.issuer_url, audience=AUDIENCE,
                                       ttl_seconds=ttl_seconds)

    def maintenance_url(self, service: str) -> str:
        """A superuser connection to a service's database: it bypasses row-level security,
        for maintenance (rebuilding projections) and for tests that inspect every tenant."""
        assert self.postgres is not None
        return self.postgres.dsn(f"kinetic_{service}")

    def start_issuer(self) -> None:
        self.signing_key()  # created before any service asks for the key set
        self.issuer = ChildProcess(
            "dev-issuer", [sys.executable, "-m", "kinetic_infra.auth.dev_issuer",
                           "--data-dir", str(self.data_dir), "--port", str(self.ports.issuer)],
            self.log_dir / "dev-issuer.log").start()
        self.processes.append(self.issuer)
        self.issuer.wait_ready(lambda: port_open(self.ports.issuer), timeout=30,
                               what="development issuer")

    def prepare_databases(self) -> None:
        assert self.postgres is not None
        for d in self.services:
            owner = f"kinetic_{d.name}"
            self.owner_urls[d.name] = self.postgres.ensure_database(owner, owner,
                                                                    role_password(owner))
            self.postgres.ensure_role(app_role(d.name), role_password(app_role(d.name)))
            self.database_urls[d.name] = self.postgres.dsn(owner, app_role(d.name),
                                                           role_password(app_role(d.name)))
        migrations = [
            subprocess.Popen([sys.executable, "-m", "kinetic_infra.service", "migrate"],
                             env=self.env_for(d), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
            for d in self.services
        ]
        for d, proc in zip(self.services, migrations, strict=True):
            out, _ = proc.communicate(timeout=120)
            if proc.returncode != 0:
                raise RuntimeError(f"migrations of {d.name} failed:\n{out.decode()}")

    # -- services --------------------------------------------------------------------------
    def base_url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports.http[service]}"

    def env_for(self, d: ServiceDefinition, **overrides: str) -> dict[str, str]:
        assert self.nats is not None and self.temporal is not None
        env = {
            **os.environ,
            "KINETIC_SERVICE": d.name,
            "KINETIC_DATABASE_URL": self.database_urls.get(d.name, ""),
            "KINETIC_NATS_URL": self.nats.url,
            "KINETIC_STREAM_REPLICAS": str(self.nats.replicas),
            "KINETIC_HTTP_REUSE_PORT": "true" if self.replicas > 1 else "false",
            "KINETIC_TEMPORAL_ADDRESS": self.temporal.address,
            "KINETIC_TEMPORAL_NAMESPACE": NAMESPACE,
            "KINETIC_MIGRATION_DATABASE_URL": self.owner_urls.get(d.name, ""),
            "KINETIC_DATABASE_APP_ROLE": app_role(d.name),
            "KINETIC_OIDC_ISSUER": self.issuer_url,
            "KINETIC_OIDC_AUDIENCE": AUDIENCE,
            "KINETIC_OIDC_JWKS_URL": f"{self.issuer_url}/jwks.json",
            "KINETIC_OIDC_LOGIN_URL": f"{self.issuer_url}/login",
            "KINETIC_OIDC_LOGOUT_URL": f"{self.issuer_url}/logout",
            "KINETIC_HTTP_PORT": str(self.ports.http[d.name]),
            "KINETIC_ADMIN_LINKS": ",".join(
                f"{s.name}={self.base_url(s.name)}/admin" for s in self.services),
            **self.extra_env,
        }
        if d.answers_nats_auth:
            env["KINETIC_NATS_AUTH_CALLOUT_SEED"] = self.nats.auth_callout_seed
        env.update(overrides)
        return env

    def start_process(self, d: ServiceDefinition, role: str, suffix: str = "") -> ChildProcess:
        process = ChildProcess(
            f"{d.name}-{role}{suffix}",
            [sys.executable, "-m", "kinetic_infra.service", role],
            self.log_dir / f"{d.name}-{role}{suffix}.log",
            env=self.env_for(d),
        ).start()
        self.processes.append(process)
        return process

    def start_services(self) -> None:
        for d in self.services:
            for role in d.roles():
                if role in self.roles:
                    for i in range(self.replicas):
                        self.start_process(d, role, f"-{i + 1}" if self.replicas > 1 else "")
        for d in self.services:
            api = next((p for p in self.processes if p.name.startswith(f"{d.name}-api")),
                       None)
            if api is not None:
                # Every process imports its service at once: more of them take longer.
                api.wait_ready(lambda d=d: self._ready(d), timeout=90 * self.replicas,
                               what=f"{d.name} API")

    def _ready(self, d: ServiceDefinition) -> bool:
        try:
            return httpx.get(f"{self.base_url(d.name)}/readyz", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def seed(self) -> list[str]:
        """Seed the demo organization through the services' APIs, as its operator, and
        give the development issuer the demo staff to sign in as."""
        operator = Principal("kinetic-seed", "Demo seed", DEMO_TENANT,
                             frozenset({Role.OPERATOR}))
        lines: list[str] = []
        staff: list[Principal] = []
        for d in self.services:
            if d.seed is not None:
                ctx = SeedContext(self.base_url(d.name), self.mint(operator, 600), DEMO_TENANT)
                lines += asyncio.run(d.seed(ctx))
                staff += ctx.staff
        save_staff(self.data_dir, staff)
        return lines

    def urls(self) -> list[tuple[str, str]]:
        assert self.temporal is not None and self.nats is not None and self.postgres is not None
        rows = []
        for d in self.services:
            rows.append((f"{d.name} admin", f"{self.base_url(d.name)}/admin"))
            rows.append((f"{d.name} API docs", f"{self.base_url(d.name)}/docs"))
        rows += [
            ("Sign in (dev issuer)", f"{self.issuer_url}/login"),
            ("Temporal web UI", self.temporal.ui_url),
            ("NATS monitoring", f"http://127.0.0.1:{self.ports.nats_monitor}"),
            ("NATS", self.nats.url),
            ("PostgreSQL", self.postgres.url),
        ]
        return rows

    def stop(self) -> None:
        # All service processes drain at once; each is then waited for (and killed after
        # its grace period), before the servers they use go away.
        for process in self.processes:
            process.ask_to_stop()
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()
        for server in (self.temporal, self.nats, self.postgres):
            if server is not None:
                server.stop()

    def start(self, *, seed: bool = False) -> list[str]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.start_servers()
            self.start_issuer()
            self.prepare_databases()
            self.start_services()
            return self.seed() if seed else []
        except BaseException:
            self.stop()
            raise
