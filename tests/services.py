"""Real services for tests, started on 127.0.0.1 and stopped afterwards: PostgreSQL (Debian's server binaries)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL server binaries not found: apt-get install -y postgresql")
    return Path(found[-1]).parent


def _as_postgres(args: list[str]) -> list[str]:
    """initdb refuses to run as root: run the server as the `postgres` user when we are root."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@contextmanager
def postgres(databases: tuple[str, ...] = ("optuna",)) -> Iterator[str]:
    """A throwaway PostgreSQL server; yields `postgresql://postgres@127.0.0.1:<port>` (trust auth).

    Its files live in a fresh directory under the system temp dir (which the `postgres` user can
    reach, unlike pytest's private tmp dirs) and are removed afterwards.
    """
    pg = _pg_bin()
    workdir = Path(tempfile.mkdtemp(prefix="mlops-pg-"))
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres")
    data, log, port = workdir / "data", workdir / "log", free_port()
    quiet = {"check": True, "capture_output": True}
    initdb = [str(pg / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]
    subprocess.run(_as_postgres(initdb), **quiet)
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {workdir} -c fsync=off -c max_connections=200"
    subprocess.run(_as_postgres([str(pg / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-o", options, "start"]), **quiet)
    try:
        for name in databases:
            subprocess.run(_as_postgres([str(pg / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", name]), **quiet)
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(_as_postgres([str(pg / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]), capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)
