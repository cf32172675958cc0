"""`make test`: the test tiers in two pytest sessions side by side, each with its own servers.

The end-to-end tier (``tests/e2e``) spends most of its time waiting on the service processes
(events crossing the broker, workflows, retries), so in one session with everything else the
two cores sit half idle for minutes. Here it runs in a session of its own, with its own
PostgreSQL, NATS, Temporal and service processes, beside a session of every other tier (the
domain, contract, deployment and infra tests, which mostly compute, then the browser,
workflow and API-fuzzing tiers on a platform of that session's own, and, to even the two
sessions out, the partner-facing end-to-end modules, ``test_partner*.py``). Each session draws free
ports from a range of its own (``KINETIC_FREE_PORTS``), so neither can take a port the other
picked and has not bound yet, and keeps its own pytest cache (``--lf`` reads one session's).

The end-to-end session is shown as it runs; the other's output goes to a log file, named at
the start and printed when both have ended, however they end. The sessions run in process
groups of their own, so a Ctrl-C or a SIGTERM (a CI job's timeout, sent to the whole group)
reaches them once, from here, as a Ctrl-C: each tears its servers down, and both are waited
for. The exit
status is non-zero when either failed. ``PYTEST_ADDOPTS`` reaches both; with it set, a
session it leaves without a test to run counts as passed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from types import FrameType

from kinetic_infra.stack.processes import PORT_RANGE_VARIABLE

ROOT = Path(__file__).resolve().parents[1]
END_TO_END = "tests/e2e"
# End-to-end modules run by the other session, which has time to spare (about a seventh of
# the tier's time): the two sessions then end at about the same time.
MOVED = "test_partner*.py"
NO_TESTS_COLLECTED = 5
# Both below the kernel's usual ephemeral range (32768-60999), which free_port avoids anyway.
SHOWN_PORTS, ALONGSIDE_PORTS = "21384-32767", "10000-21383"


def _deselect(modules: list[Path]) -> list[str]:
    return [f"--deselect={module.relative_to(ROOT).as_posix()}" for module in modules]


def split() -> tuple[tuple[str, list[str], str], tuple[str, list[str], str]]:
    """The end-to-end session (shown as it runs) and the one alongside: name, pytest
    arguments, port range. Every end-to-end module runs in exactly one of them."""
    modules = sorted((ROOT / END_TO_END).glob("test_*.py"))
    moved = sorted((ROOT / END_TO_END).glob(MOVED))
    kept = [m for m in modules if m not in moved]
    return (("end-to-end tier", [END_TO_END, "-o", "cache_dir=.pytest_cache/e2e",
                                 *_deselect(moved)], SHOWN_PORTS),
            ("every other tier", _deselect(kept), ALONGSIDE_PORTS))


def _pytest(args: list[str], ports: str, **kwargs: object) -> subprocess.Popen[bytes]:
    # A session of its own: a second interrupt, from the terminal beside ours, would cut its
    # teardown short and leave its servers running.
    return subprocess.Popen([sys.executable, "-m", "pytest", *args], cwd=ROOT,
                            env={**os.environ, PORT_RANGE_VARIABLE: ports},
                            start_new_session=True, **kwargs)


def _passed(code: int) -> bool:
    return code == 0 or (code == NO_TESTS_COLLECTED and bool(os.environ.get("PYTEST_ADDOPTS")))


def main() -> int:
    (shown_name, shown_args, shown_ports), (other_name, other_args, other_ports) = split()
    log = Path(tempfile.gettempdir()) / f"kinetic-tests-{os.getpid()}.log"
    print(f"{other_name}: running alongside, its output in {log} (shown at the end)", flush=True)
    sessions: list[subprocess.Popen[bytes]] = []
    interrupted: set[int] = set()

    def pass_on(_signum: int, _frame: FrameType | None) -> None:
        for session in sessions:
            if session.poll() is None and session.pid not in interrupted:
                interrupted.add(session.pid)
                session.send_signal(signal.SIGINT)

    signal.signal(signal.SIGINT, pass_on)
    signal.signal(signal.SIGTERM, pass_on)
    with log.open("wb") as other_log:
        try:
            sessions.append(_pytest(other_args, other_ports, stdout=other_log,
                                    stderr=subprocess.STDOUT))
            sessions.append(_pytest(shown_args, shown_ports))
        finally:
            codes = [session.wait() for session in sessions]
    other_exit, shown_exit = codes
    sys.stdout.write(f"\n==== {other_name} (ran alongside; {log}) ====\n")
    sys.stdout.flush()
    sys.stdout.buffer.write(log.read_bytes())
    sys.stdout.flush()
    print(f"\n==== {shown_name}: exit {shown_exit}; {other_name}: exit {other_exit} ====")
    if _passed(shown_exit) and _passed(other_exit):
        log.unlink()
        return 0
    return shown_exit or other_exit or 1


if __name__ == "__main__":
    sys.exit(main())
