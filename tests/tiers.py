"""`make test`: the tests that need the running platform and those that do not, side by side.

The platform tiers (end-to-end, browser, workflows: every test using the ``platform``
fixture, marked ``platform`` by the root conftest) spend most of their time waiting on the
service processes, while the others (domain, contract, deployment and infra tests) mostly
compute: run one after the other they leave a core idle for minutes. Each runs in its own
pytest process with its own servers, so each draws free ports from a range of its own
(``KINETIC_FREE_PORTS``) and neither can take a port the other picked.

The platform run is shown as it goes; the other's output follows when both have ended. The
exit status is non-zero when either failed. ``PYTEST_ADDOPTS`` reaches both.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from kinetic_infra.stack.processes import PORT_RANGE_VARIABLE

ROOT = Path(__file__).resolve().parents[1]
# Below the kernel's usual ephemeral range (32768-60999), which free_port avoids anyway.
WITHOUT_PLATFORM = ("-m", "not platform"), "10000-21383"
WITH_PLATFORM = ("-m", "platform"), "21384-32767"


def _pytest(marker: tuple[str, ...], ports: str, **kwargs: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "pytest", *marker], cwd=ROOT,
                            env={**os.environ, PORT_RANGE_VARIABLE: ports}, **kwargs)


def main() -> int:
    with tempfile.TemporaryFile() as quiet_log:
        without = _pytest(*WITHOUT_PLATFORM, stdout=quiet_log, stderr=subprocess.STDOUT)
        try:
            with_platform = _pytest(*WITH_PLATFORM).wait()
        finally:
            without_platform = without.wait()
        quiet_log.seek(0)
        print("\n==== tests without the platform (run alongside) ====", flush=True)
        sys.stdout.buffer.write(quiet_log.read())
        sys.stdout.flush()
    print(f"\n==== platform tiers: exit {with_platform}; the others: exit {without_platform} ====")
    return with_platform or without_platform


if __name__ == "__main__":
    sys.exit(main())
