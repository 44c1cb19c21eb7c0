"""A throwaway PostgreSQL server from Debian's packages, for tests and benchmarks.

``initdb`` refuses to run as root, so as root the cluster is made and run as the ``postgres`` user the
Debian package creates (``runuser``); as anyone else it runs as that user. It listens on 127.0.0.1 on a
free port, with trust authentication for local connections only, and is removed on ``stop``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


class PgTempError(Exception):
    """PostgreSQL's binaries are missing or the server would not start."""


def server_bin() -> Path:
    """The newest installed server's bin folder (Debian keeps them off PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[4]))
    if not found:
        raise PgTempError("PostgreSQL server binaries not found under /usr/lib/postgresql: "
                          "apt-get install postgresql (make system-deps does)")
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class TempServer:
    root: Path
    port: int
    user: str  # the OS user the server runs as, and the database superuser

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str, template: str = "template0") -> str:
        """An empty database (UTF-8), or a copy of ``template`` (which must have no open connection);
        returns its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}" ENCODING UTF8 TEMPLATE "{template}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        _as(self.user, [str(server_bin() / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "-w",
                        "stop"], check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def _as(user: str, cmd: list[str], check: bool = True) -> subprocess.CompletedProcess:
    if os.geteuid() == 0 and user != "root":
        cmd = ["runuser", "-u", user, "--", *cmd]
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if check and r.returncode:
        raise PgTempError(f"{' '.join(cmd)} failed: {r.stderr.strip() or r.stdout.strip()}")
    return r


def start(max_connections: int = 50) -> TempServer:
    """initdb + pg_ctl start in a new temporary folder; the caller must ``stop()`` it."""
    bin_dir = server_bin()
    user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    if os.geteuid() == 0:
        try:
            pw = pwd.getpwnam(user)
        except KeyError:
            raise PgTempError("no `postgres` user to run the server as (the Debian package creates it)") from None
    root = Path(tempfile.mkdtemp(prefix="vaudit-pg-"))
    if os.geteuid() == 0:
        os.chown(root, pw.pw_uid, pw.pw_gid)
    port = _free_port()
    data = root / "data"
    try:
        _as(user, [str(bin_dir / "initdb"), "-D", str(data), "-U", user, "-A", "trust", "-E", "UTF8",
                   "--locale", "C", "--no-sync"])
        opts = (f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root} "
                f"-c max_connections={max_connections} -c fsync=off -c full_page_writes=off "
                "-c synchronous_commit=off -c shared_buffers=64MB")
        _as(user, [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-o", opts, "-w",
                   "-t", "60", "start"])
    except PgTempError as e:
        log = root / "server.log"
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise PgTempError(f"{e}\n{tail}") from None
    server = TempServer(root, port, user)
    _wait_ready(server)
    return server


def _wait_ready(server: TempServer, timeout_s: float = 30.0) -> None:
    import psycopg

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            psycopg.connect(server.url(), connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
