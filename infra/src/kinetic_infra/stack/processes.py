"""Child-process helpers shared by the server runners.

Guarantees: a started process is tracked by PID and stopped with SIGTERM, then SIGKILL
after a grace period; readiness is polled against a TCP port, never assumed from a sleep.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


_handed_out: set[int] = set()

# Where free ports are drawn from, "LOW-HIGH" (default 10000-65535): processes started side by
# side (the test tiers of `make test`) each get a range of their own, so none can pick a port
# another has picked and not bound yet.
PORT_RANGE_VARIABLE = "KINETIC_FREE_PORTS"


def _ephemeral_range() -> range:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return range(int(low), int(high) + 1)
    except (OSError, ValueError):
        return range(32768, 61000)


def _port_range() -> range:
    low, _, high = os.environ.get(PORT_RANGE_VARIABLE, "10000-65535").partition("-")
    return range(int(low), int(high) + 1)


def free_port() -> int:
    """A TCP port that is free on loopback now (the caller binds it soon after).

    Never one of the kernel's ephemeral ports: a port the kernel hands out for `bind(0)` is
    also the local port of the next outgoing connection, and a test run opens thousands of
    them between picking a server's port and the server binding it. Drawn at random so
    processes picking at once rarely meet (and never, given ranges of their own: ``$KINETIC_FREE_PORTS``),
    and never twice in one process."""
    ephemeral = _ephemeral_range()
    candidates = [port for port in _port_range() if port not in ephemeral]
    for _ in range(200):
        port = random.choice(candidates)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free TCP port outside the ephemeral range")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def wait_until(check: Callable[[], bool], *, timeout: float, what: str,
               alive: Callable[[], bool] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if alive is not None and not alive():
            raise RuntimeError(f"{what} exited before it became ready")
        time.sleep(0.05)
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s")


@dataclass
class ChildProcess:
    """One server or service process, started in its own session so a terminal Ctrl-C
    reaches the runner only, which then stops children in reverse order."""

    name: str
    argv: Sequence[str]
    log_path: Path
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    user: str | None = None
    popen: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> ChildProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        env = dict(os.environ if self.env is None else self.env)
        self.popen = subprocess.Popen(
            list(self.argv), stdout=log, stderr=subprocess.STDOUT, env=env,
            cwd=self.cwd, user=self.user, start_new_session=True,
        )
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def ask_to_stop(self, sig: int = signal.SIGTERM) -> None:
        """Ask it to stop without waiting (stop several at once, then wait for each)."""
        if self.alive():
            assert self.popen is not None
            try:
                self.popen.send_signal(sig)
            except ProcessLookupError:
                pass

    def stop(self, sig: int = signal.SIGTERM, grace: float = 15.0) -> None:
        if not self.alive():
            return
        assert self.popen is not None
        try:
            self.popen.send_signal(sig)
            self.popen.wait(grace)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """SIGKILL: the crash a fault test needs, no clean-up code runs."""
        if self.alive():
            assert self.popen is not None
            self.popen.kill()
            self.popen.wait(5)

    def wait_ready(self, check: Callable[[], bool], *, timeout: float, what: str) -> None:
        """Poll `check` until it holds; a process that exits first fails with its log's end,
        which says why (a port taken, a bad configuration)."""
        try:
            wait_until(check, timeout=timeout, what=what, alive=self.alive)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}; the end of {self.log_path}:\n{self.tail()}") from None

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""
