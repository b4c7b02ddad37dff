"""Real services for tests, started on 127.0.0.1 and stopped afterwards: PostgreSQL (Debian's server binaries),
and the whole tracking stack of scripts/stack (PostgreSQL, SeaweedFS's S3, an MLflow server)."""

from __future__ import annotations

import glob
import importlib.machinery
import importlib.util
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STACK_SCRIPT = ROOT / "scripts" / "stack"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_ports(count: int) -> list[int]:
    """`count` different free ports: each socket stays bound until all are picked, so none comes back twice."""
    with ExitStack() as held:
        sockets = [held.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]


def stack_port_variables() -> list[str]:
    """The variables that set the ports of scripts/stack (its PORTS), read from the script itself."""
    loader = importlib.machinery.SourceFileLoader("mlops_stack_script", str(STACK_SCRIPT))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = sys.modules.setdefault(loader.name, importlib.util.module_from_spec(spec))  # its dataclasses look it up there
    loader.exec_module(module)
    return list(module.PORTS)


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


@dataclass(frozen=True)
class Stack:
    """A running scripts/stack: the variables of its env file, and the process ids it recorded."""

    dir: Path
    env: dict[str, str]

    @classmethod
    def from_env_file(cls, path: Path) -> Stack:
        env = {}
        for line in path.read_text().splitlines():
            if line.startswith("export "):
                key, _, value = line.removeprefix("export ").partition("=")
                env[key] = shlex.split(value)[0] if value else ""
        return cls(path.parent, env)

    @property
    def tracking_uri(self) -> str:
        return self.env["MLFLOW_TRACKING_URI"]

    @property
    def storage(self) -> str:
        """The Optuna storage URL; its password comes from PGPASSFILE."""
        return self.env["MLOPS_OPTUNA_STORAGE"]

    @property
    def bucket(self) -> str:
        return self.env["MLOPS_STACK_BUCKET"]

    def pid(self, service: str) -> int:
        return int(json.loads((self.dir / "stack.json").read_text())["pids"][service])

    def client(self, service: str) -> Any:
        """A boto3 client for the stack's S3 store (SeaweedFS), with the stack's S3 credentials."""
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.env["MLFLOW_S3_ENDPOINT_URL"],
            region_name=self.env["AWS_DEFAULT_REGION"],
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
        )

    def client_env(self, **overrides: str) -> dict[str, str]:
        """The environment of a user who sourced the env file: this Python's scripts first, no inherited run."""
        env = {**os.environ, **self.env, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", **overrides}
        for inherited in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
            env.pop(inherited, None)
        return env


@contextmanager
def stacks(count: int, auth: bool = False) -> Iterator[list[Stack]]:
    """`count` stacks started side by side by `scripts/stack up`, each on free ports in a fresh directory; `down`
    afterwards. A failed start raises with the script's output."""
    command = [sys.executable, str(STACK_SCRIPT)]
    names = stack_port_variables()
    ports = iter(free_ports(count * len(names)))  # all at once: no two stacks, and no two services, share a port
    envs: list[dict[str, str]] = []
    for _ in range(count):
        workdir = Path(tempfile.mkdtemp(prefix="mlops-stack-"))
        workdir.chmod(0o711)  # the postgres user must be able to enter it
        env = {**os.environ, "MLOPS_STACK_DIR": str(workdir), "MLOPS_STACK_WORKERS": "1"}
        envs.append(env | {name: str(next(ports)) for name in names})
    up = [*command, "up", *(["--auth"] if auth else [])]
    ups = [subprocess.Popen(up, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for env in envs]
    outputs = [p.communicate(timeout=600)[0] for p in ups]
    try:
        failed = [f"scripts/stack up failed (exit {p.returncode}):\n{out}" for p, out in zip(ups, outputs, strict=True) if p.returncode]
        if failed:
            raise RuntimeError("\n".join(failed))
        yield [Stack.from_env_file(Path(env["MLOPS_STACK_DIR"]) / "env") for env in envs]
    finally:
        for env in envs:
            subprocess.run([*command, "down"], env=env, capture_output=True, timeout=300)
            shutil.rmtree(env["MLOPS_STACK_DIR"], ignore_errors=True)


@contextmanager
def stack(auth: bool = False) -> Iterator[Stack]:
    """One stack, as `stacks` starts them."""
    with stacks(1, auth) as (running,):
        yield running
