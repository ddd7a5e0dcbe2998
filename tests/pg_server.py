"""A throwaway PostgreSQL server for the tests: initdb + pg_ctl from the machine's PostgreSQL, on a Unix socket
in a temporary folder (no TCP), stopped and removed after. As root it runs as the ``postgres`` user (the server
refuses root). Tests that need it skip, saying why, only where no PostgreSQL binaries exist."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def missing() -> str | None:
    """Why no server can start here, or None."""
    absent = [b for b in ("initdb", "pg_ctl") if shutil.which(b) is None]
    if absent:
        return f"no PostgreSQL binaries ({', '.join(absent)}) on PATH"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser to start PostgreSQL as another user"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'synthgen[postgres]')"
    return None


@contextlib.contextmanager
def server() -> Iterator[str]:
    """Start a server; yield its SQLAlchemy URL (database ``postgres``); stop it and remove its files."""
    base = tempfile.mkdtemp(prefix="sgpg-", dir="/tmp")  # short: a socket path has at most 107 characters
    data = os.path.join(base, "data")
    port = _free_port()
    prefix: list[str] = []
    if os.geteuid() == 0:
        import pwd

        user = pwd.getpwnam("postgres")
        os.chown(base, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    os.chmod(base, 0o755)
    run = lambda *args: subprocess.run(prefix + list(args), check=True, capture_output=True, text=True)  # noqa: E731
    try:
        run("initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync")
        run("pg_ctl", "-D", data, "-w", "-l", os.path.join(base, "log"),
            "-o", f"-k {base} -c listen_addresses='' -p {port} -c fsync=off", "start")
        try:
            yield f"postgresql://postgres@/postgres?host={base}&port={port}"
        finally:
            run("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(base, ignore_errors=True)
