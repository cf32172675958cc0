"""`make test`: the test tiers in two pytest sessions side by side, each with its own servers.

The end-to-end tier (``tests/e2e``) spends most of its time waiting on the service processes
(events crossing the broker, workflows, retries), so in one session with everything else the
two cores sit half idle for minutes. Here it runs in a session of its own, with its own
PostgreSQL, NATS, Temporal and service processes, beside a session of every other tier (the
domain, contract, deployment and infra tests, which mostly compute, then the browser,
workflow and API-fuzzing tiers on a platform of that session's own). Each session draws free
ports from a range of its own (``KINETIC_FREE_PORTS``), so neither can take a port the other
picked and has not bound yet.

The end-to-end session is shown as it runs; the other's output follows when both have ended.
The exit status is non-zero when either failed. ``PYTEST_ADDOPTS`` reaches both.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from kinetic_infra.stack.processes import PORT_RANGE_VARIABLE

ROOT = Path(__file__).resolve().parents[1]
END_TO_END = "tests/e2e"
# Both below the kernel's usual ephemeral range (32768-60999), which free_port avoids anyway.
SHOWN = ("end-to-end tier", [END_TO_END], "21384-32767")
ALONGSIDE = ("every other tier", [f"--ignore={END_TO_END}"], "10000-21383")


def _pytest(args: list[str], ports: str, **kwargs: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "pytest", *args], cwd=ROOT,
                            env={**os.environ, PORT_RANGE_VARIABLE: ports}, **kwargs)


def main() -> int:
    (shown_name, shown_args, shown_ports), (other_name, other_args, other_ports) = \
        SHOWN, ALONGSIDE
    with tempfile.TemporaryFile() as other_log:
        other = _pytest(other_args, other_ports, stdout=other_log, stderr=subprocess.STDOUT)
        try:
            shown_exit = _pytest(shown_args, shown_ports).wait()
        finally:
            other_exit = other.wait()
        other_log.seek(0)
        print(f"\n==== {other_name} (run alongside) ====", flush=True)
        sys.stdout.buffer.write(other_log.read())
        sys.stdout.flush()
    print(f"\n==== {shown_name}: exit {shown_exit}; {other_name}: exit {other_exit} ====")
    return shown_exit or other_exit


if __name__ == "__main__":
    sys.exit(main())
