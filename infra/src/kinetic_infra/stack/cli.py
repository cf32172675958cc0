"""``make run``: the whole platform on its embedded stack, until Ctrl-C.

A second run on the same data directory while one is alive says so and exits, instead of
failing later on a taken port: the running one holds an exclusive lock on ``run.lock``.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import signal
import sys
import time
from pathlib import Path

from kinetic_infra.stack.platform import Platform, Ports, discover_services


def _already_running(data_dir: Path) -> str:
    info = data_dir / "run.json"
    details = json.loads(info.read_text()) if info.exists() else {}
    urls = "\n".join(f"  {name:<22} {url}" for name, url in details.get("urls", []))
    return (f"Kinetic is already running from {data_dir} (pid {details.get('pid', '?')}).\n"
            f"{urls}\nStop it with Ctrl-C in its terminal (or kill {details.get('pid', '<pid>')})"
            " before starting another.")


def run(data_dir: Path, nats_nodes: int = 1, replicas: int = 1) -> int:
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = open(data_dir / "run.lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(_already_running(data_dir), file=sys.stderr)
        return 1

    services = discover_services()
    platform = Platform(data_dir=data_dir, ports=Ports.fixed(services), services=services,
                        nats_nodes=nats_nodes, replicas=replicas)

    def on_signal(_sig: int, _frame: object) -> None:
        raise KeyboardInterrupt

    # Explicit for SIGINT too: a parent that started us in the background may have set it
    # to "ignore", and Ctrl-C must still stop everything.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    print(f"Starting Kinetic (data in {data_dir}) ...", flush=True)
    try:
        seeded = platform.start(seed=True)
        urls = platform.urls()
        (data_dir / "run.json").write_text(json.dumps({"pid": os.getpid(), "urls": urls}))
        print("\nKinetic is running:\n")
        for name, url in urls:
            print(f"  {name:<22} {url}")
        print()
        for line in seeded:
            print(f"  {line}")
        print("\n  API token for a demo staff member: make token STAFF=olivia.operator")
        print(f"\nLogs: {platform.log_dir}\nPress Ctrl-C to stop everything.\n", flush=True)
        while True:
            dead = [p for p in platform.processes if not p.alive()]
            if dead:
                for p in dead:
                    print(f"{p.name} exited; last log lines:\n{p.tail()}", file=sys.stderr)
                return 1
            time.sleep(1)
    except KeyboardInterrupt:
        print("\nStopping Kinetic ...", flush=True)
        return 0
    finally:
        # A terminal Ctrl-C reaches us twice (directly and forwarded by `uv run`), and people
        # press it again while waiting: nothing may interrupt the clean-up itself.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        platform.stop()
        (data_dir / "run.json").unlink(missing_ok=True)
        print("Stopped.", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="kinetic-stack")
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="start the platform on its embedded stack")
    run_parser.add_argument("--data-dir", type=Path, default=Path(".kinetic"))
    run_parser.add_argument("--nats-nodes", type=int, choices=(1, 3, 5), default=1,
                            help="NATS nodes: 3 is a JetStream cluster with replicated streams")
    run_parser.add_argument("--replicas", type=int, choices=range(1, 6), default=1,
                            help="processes of every role of every service")
    token_parser = sub.add_parser("token", help="print a token for a demo staff member, for API use")
    token_parser.add_argument("staff_id", nargs="?", default="olivia.operator")
    token_parser.add_argument("--data-dir", type=Path, default=Path(".kinetic"))
    token_parser.add_argument("--hours", type=int, default=8)
    args = parser.parse_args()
    if args.command == "run":
        raise SystemExit(run(args.data_dir.resolve(), args.nats_nodes, args.replicas))
    if args.command == "token":
        raise SystemExit(print_token(args.data_dir.resolve(), args.staff_id, args.hours))


def print_token(data_dir: Path, staff_id: str, hours: int) -> int:
    from kinetic_infra.auth.dev_issuer import load_staff
    from kinetic_infra.stack.platform import Platform, Ports

    staff = {p.staff_id: p for p in load_staff(data_dir)}
    if staff_id not in staff:
        known = ", ".join(sorted(staff)) or "none yet: run `make run` once first"
        print(f"unknown staff {staff_id!r}; demo staff: {known}", file=sys.stderr)
        return 2
    services = discover_services()
    platform = Platform(data_dir=data_dir, ports=Ports.fixed(services), services=services)
    print(platform.mint(staff[staff_id], ttl_seconds=hours * 3600))
    return 0


if __name__ == "__main__":
    main()
