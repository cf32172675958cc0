"""The servers a stack starts get ports an outgoing connection cannot take in the meantime,
and a server that exits before it is ready says why."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from kinetic_infra.stack.processes import ChildProcess, _ephemeral_range, free_port


def test_a_free_port_is_never_one_the_kernel_gives_outgoing_connections() -> None:
    ports = [free_port() for _ in range(200)]
    ephemeral = _ephemeral_range()
    assert not [port for port in ports if port in ephemeral]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # drawn from where outgoing connections' local ports are
        assert s.getsockname()[1] in ephemeral


def test_one_process_never_hands_out_the_same_port_twice() -> None:
    ports = [free_port() for _ in range(500)]
    assert len(set(ports)) == len(ports)


def test_processes_given_ranges_of_their_own_never_pick_the_same_port(monkeypatch) -> None:
    """The test tiers run side by side, each its own servers: with its own range, neither can
    pick a port the other has picked and not yet bound."""
    from kinetic_infra.stack.processes import PORT_RANGE_VARIABLE

    monkeypatch.setenv(PORT_RANGE_VARIABLE, "20000-20999")
    ports = [free_port() for _ in range(100)]
    assert all(20000 <= port <= 20999 for port in ports)


def test_a_port_handed_out_is_one_nobody_listens_on() -> None:
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", free_port()))
        listening.listen()
        taken = listening.getsockname()[1]
        assert taken not in [free_port() for _ in range(300)]


def test_a_server_that_exits_before_it_is_ready_fails_with_the_end_of_its_log(
        tmp_path: Path) -> None:
    server = ChildProcess("broken", [sys.executable, "-c",
                                     "import sys; print('listen: address already in use'); "
                                     "sys.exit(1)"], tmp_path / "broken.log").start()
    with pytest.raises(RuntimeError, match="(?s)broken exited before it became ready.*"
                                           "address already in use"):
        server.wait_ready(lambda: False, timeout=30, what="broken")
