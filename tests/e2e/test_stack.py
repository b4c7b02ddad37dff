"""The toolkit on a production-like stack (scripts/stack): an MLflow server on PostgreSQL behind basic auth with
artifacts in S3 (SeaweedFS), Optuna on the same PostgreSQL; and each way that stack can be misconfigured or go away.

The session's stack has basic auth, so the sweep below is also the "correct credentials work" case.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest
import yaml
from mlflow import MlflowClient

from mlops.search.study import normalize_url
from tests.helpers import ROOT, TINY_CONFIG
from tests.services import Stack, free_port, stacks

pytestmark = [pytest.mark.stack, pytest.mark.e2e]


def _mlops(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`mlops <args>` as a user would run it; the timeout is the bound on a command that must fail fast."""
    return subprocess.run([sys.executable, "-m", "mlops", *args], env=env, capture_output=True, text=True, timeout=300)


def _sweep_args(storage: str) -> list[str]:
    return ["sweep", "--config", str(TINY_CONFIG), "--n-trials", "1", "--storage", storage, "--study-name", uuid.uuid4().hex[:8]]


def _error_line(out: subprocess.CompletedProcess[str]) -> str:
    """The one-line error of a user mistake: exit code 2, no traceback, the error last on stderr."""
    assert out.returncode == 2, out.stderr[-3000:]
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    errors = [line for line in out.stderr.splitlines() if line.startswith("mlops sweep: error:")]
    assert len(errors) == 1 and out.stderr.strip().splitlines()[-1] == errors[0], out.stderr[-3000:]
    return errors[0]


def _all_runs(client: MlflowClient) -> list:
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


@pytest.fixture
def on_stack(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    """This process talks to the session's stack as a user who sourced its env file."""
    for key, value in stack.env.items():
        monkeypatch.setenv(key, value)
    return stack


@dataclass(frozen=True)
class StackSweep:
    parent_id: str
    worker_ids: list[str]  # the two `mlflow run` project runs: the parent and the other worker's run
    experiment_id: str
    child_ids: list[str]
    study_name: str
    workdir: Path


TRIALS = 3


@pytest.fixture(scope="module")
def stack_sweep(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> StackSweep:
    """Two `mlflow run . -e sweep` workers side by side against the stack (tracking server, S3 artifacts, Optuna
    on PostgreSQL), sharing one study of TRIALS trials and one parent run."""
    workdir = tmp_path_factory.mktemp("stack-sweep")
    env = stack.client_env()
    mlflow_cli = shutil.which("mlflow", path=env["PATH"])
    assert mlflow_cli, "the mlflow CLI must be installed beside this Python"
    study, experiment = f"stack-{uuid.uuid4().hex[:8]}", f"stack-e2e-{uuid.uuid4().hex[:8]}"
    params = ["config=tests/configs/tiny.yaml", f"n_trials={TRIALS}", f"storage={stack.storage}", f"study_name={study}", "sampler=random"]
    cmd = [mlflow_cli, "run", str(ROOT), "-e", "sweep", "--env-manager", "local", "--experiment-name", experiment]
    cmd += [a for p in params for a in ("-P", p)]
    with pytest.MonkeyPatch.context() as mp:  # the workers join an existing experiment: two `mlflow run`s race to create one
        for key, value in stack.env.items():
            mp.setenv(key, value)
        MlflowClient(stack.tracking_uri).create_experiment(experiment)
    workers = [subprocess.Popen(cmd, env=env, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [w.communicate(timeout=900)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], "\n".join(o[-3000:] for o in outputs)
    with pytest.MonkeyPatch.context() as mp:
        for key, value in stack.env.items():
            mp.setenv(key, value)
        client = MlflowClient(stack.tracking_uri)
        experiment_id = client.get_experiment_by_name(experiment).experiment_id
        runs = client.search_runs([experiment_id])
        parent_id = optuna.load_study(study_name=study, storage=normalize_url(stack.storage)).user_attrs["mlflow_parent_run_id"]
    project_runs = [r.info.run_id for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r.info.run_id for r in runs if r.data.tags.get("mlflow.parentRunId") == parent_id]
    return StackSweep(parent_id, project_runs, experiment_id, children, study, workdir)


def test_two_workers_share_one_exact_budget_and_leave_no_orphan(on_stack: Stack, stack_sweep: StackSweep) -> None:
    """Read back through the server's REST API: exactly TRIALS trials across both workers, one child run per
    trial under the one parent, both project runs FINISHED, nothing left RUNNING, one registered version."""
    client = MlflowClient(on_stack.tracking_uri)
    study = optuna.load_study(study_name=stack_sweep.study_name, storage=normalize_url(on_stack.storage))
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * TRIALS, "exactly n_trials across both workers"
    assert {t.user_attrs["mlflow_run_id"] for t in study.trials} == set(stack_sweep.child_ids), "no orphan or duplicate child"
    children = [client.get_run(c) for c in stack_sweep.child_ids]
    assert sorted(int(c.data.tags["optuna.trial_number"]) for c in children) == list(range(TRIALS))
    workers = [client.get_run(r) for r in stack_sweep.worker_ids]
    assert len(workers) == 2 and stack_sweep.parent_id in stack_sweep.worker_ids
    assert all(w.info.status == "FINISHED" for w in workers)
    other = next(w for w in workers if w.info.run_id != stack_sweep.parent_id)
    assert other.data.tags["mlops.sweep_parent_run_id"] == stack_sweep.parent_id
    assert sum(w.data.metrics["trials_run_by_worker"] for w in workers) == TRIALS
    assert {c.data.tags["mlops.worker_run_id"] for c in children} <= set(stack_sweep.worker_ids)
    assert all(r.info.status != "RUNNING" for r in client.search_runs([stack_sweep.experiment_id]))
    assert len(client.search_model_versions("name='tiny-detector'")) == 1, "the best trial is registered once"
    assert client.get_run(stack_sweep.parent_id).data.metrics["n_complete"] == TRIALS


def test_sweep_artifacts_land_in_s3_and_the_alias_on_the_server(on_stack: Stack, stack_sweep: StackSweep) -> None:
    client = MlflowClient(on_stack.tracking_uri)
    assert client.get_run(stack_sweep.parent_id).info.status == "FINISHED"
    assert len(stack_sweep.child_ids) == TRIALS
    assert all(client.get_run(c).info.status == "FINISHED" for c in stack_sweep.child_ids)
    child = client.get_run(stack_sweep.child_ids[0]).data.params
    assert (child["world_size"], child["effective_batch_size"]) == ("1", child["batch_size"]), "one process: the per-device batch"

    s3 = on_stack.client("s3")
    keys = {
        obj["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=on_stack.bucket, Prefix=f"{stack_sweep.experiment_id}/")
        for obj in page.get("Contents", [])
    }
    for child in stack_sweep.child_ids:
        run_root = f"{stack_sweep.experiment_id}/{child}/artifacts"
        assert {f"{run_root}/adapter/adapter_model.safetensors", f"{run_root}/environment.json"} <= keys, sorted(keys)
    parent_root = f"{stack_sweep.experiment_id}/{stack_sweep.parent_id}/artifacts"
    assert f"{parent_root}/environment.json" in keys
    assert any(k.startswith(f"{parent_root}/plots/") and k.endswith(".png") for k in keys), sorted(keys)
    assert not (stack_sweep.workdir / "mlruns").exists() and not (stack_sweep.workdir / "mlartifacts").exists(), "nothing stored locally"

    version = client.get_model_version_by_alias("tiny-detector", "staging")
    assert version.run_id in stack_sweep.child_ids and version.tags["sweep_run_id"] == stack_sweep.parent_id
    model_id = version.source.removeprefix("models:/")
    assert any(k.endswith(f"/models/{model_id}/artifacts/MLmodel") for k in keys), "the registered model's files are in the bucket"


def test_no_credential_reaches_params_tags_or_artifacts(on_stack: Stack, stack_sweep: StackSweep, tmp_path: Path) -> None:
    import mlflow

    pg_password = Path(on_stack.env["PGPASSFILE"]).read_text().strip().rsplit(":", 1)[1]
    secrets = {
        "tracking password": on_stack.env["MLFLOW_TRACKING_PASSWORD"],
        "AWS secret key": on_stack.env["AWS_SECRET_ACCESS_KEY"],
        "PostgreSQL password": pg_password,
    }
    assert all(len(value) >= 16 for value in secrets.values()), "the stack's secrets are long random strings, so a match means a leak"
    client = MlflowClient(on_stack.tracking_uri)
    texts: dict[str, str] = {}
    for run in _all_runs(client):
        texts[f"run {run.info.run_id} params"] = repr(run.data.params)
        texts[f"run {run.info.run_id} tags"] = repr(run.data.tags)
    for version in client.search_model_versions("name='tiny-detector'"):
        texts[f"tiny-detector v{version.version} tags"] = repr(version.tags) + (version.description or "")
    registered = client.get_model_version_by_alias("tiny-detector", "staging").source
    downloads = {run_id: {"run_id": run_id} for run_id in (*stack_sweep.worker_ids, *stack_sweep.child_ids)}
    downloads["registered"] = {"artifact_uri": registered}  # the logged model: MLmodel, requirements, code
    for name, where in downloads.items():
        folder = Path(mlflow.artifacts.download_artifacts(**where, dst_path=str(tmp_path / name)))
        for path in folder.rglob("*"):
            if path.is_file():
                texts[str(path.relative_to(tmp_path))] = path.read_bytes().decode("utf-8", errors="replace")
    assert any(p.endswith("environment.json") for p in texts) and any(p.endswith("MLmodel") for p in texts), sorted(texts)
    leaks = [f"{what} in {where}" for where, text in texts.items() for what, secret in secrets.items() if secret in text]
    assert not leaks


def test_downloads_come_from_s3_through_presigned_urls(on_stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server proxies uploads but hands clients presigned URLs for downloads (MLflow's default): the file
    comes straight from SeaweedFS, which checks the URL's signature, as real S3 does."""
    import mlflow
    import requests

    with mlflow.start_run() as run:
        mlflow.log_text("fetched from the bucket", "presigned/note.txt")
    requests_sent: list[tuple[str, str]] = []
    send = requests.Session.request

    def spy(self: requests.Session, method: str, url: str, *args: object, **kwargs: object) -> requests.Response:
        requests_sent.append((method.upper(), url))
        return send(self, method, url, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(requests.Session, "request", spy)
    path = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="presigned/note.txt", dst_path=str(tmp_path))
    assert Path(path).read_text() == "fetched from the bucket"
    s3 = on_stack.env["MLFLOW_S3_ENDPOINT_URL"]
    from_s3 = [url for method, url in requests_sent if method == "GET" and url.startswith(f"{s3}/{on_stack.bucket}/")]
    assert len(from_s3) == 1 and "X-Amz-Signature=" in from_s3[0], requests_sent
    tampered = from_s3[0].replace("X-Amz-Signature=", "X-Amz-Signature=0")
    assert requests.get(tampered, timeout=10).status_code == 403, "SeaweedFS refuses a URL whose signature does not match"


def test_wrong_password_is_one_line_and_starts_no_run(on_stack: Stack) -> None:
    if "MLFLOW_TRACKING_PASSWORD" not in on_stack.env:
        pytest.fail("this stack has no basic auth: start it with `scripts/stack up --auth`")
    client = MlflowClient(on_stack.tracking_uri)
    before = len(_all_runs(client))
    wrong = on_stack.env["MLFLOW_TRACKING_PASSWORD"] + "-wrong"
    out = _mlops(on_stack.client_env(MLFLOW_TRACKING_PASSWORD=wrong), *_sweep_args(on_stack.storage))
    line = _error_line(out)
    assert f"tracking server {on_stack.tracking_uri} refused the credentials (HTTP 401)" in line and "MLFLOW_TRACKING_PASSWORD" in line
    assert wrong not in out.stderr + out.stdout
    assert len(_all_runs(client)) == before, "no run was started"


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("server down", "is not reachable (connection refused): is it running? Check MLFLOW_TRACKING_URI"),
        ("not an MLflow server", "does not answer as an MLflow tracking server (GET /health: HTTP"),
    ],
)
def test_unusable_tracking_uri_is_one_line(on_stack: Stack, case: str, expected: str) -> None:
    uri = f"http://127.0.0.1:{free_port()}" if case == "server down" else on_stack.env["MLFLOW_S3_ENDPOINT_URL"]
    out = _mlops(on_stack.client_env(MLFLOW_TRACKING_URI=uri), *_sweep_args(on_stack.storage))
    line = _error_line(out)
    assert uri in line and expected in line


def test_unreachable_storage_is_one_line_and_starts_no_run(on_stack: Stack) -> None:
    client = MlflowClient(on_stack.tracking_uri)
    before = len(_all_runs(client))
    out = _mlops(on_stack.client_env(), *_sweep_args("postgresql://postgres@127.0.0.1:1/optuna"))
    line = _error_line(out)
    assert "storage: cannot open Optuna storage 'postgresql+psycopg2://postgres@127.0.0.1:1/optuna'" in line
    assert "port 1 failed: Connection refused" in line
    assert len(_all_runs(client)) == before


@pytest.fixture(scope="module")
def spare_stacks() -> Iterator[list[Stack]]:
    """Two more stacks (without auth: the script's default), started side by side, one for each test below
    that breaks its stack for good."""
    with stacks(2) as running:
        yield running


def test_missing_bucket_and_revoked_s3_key_stop_the_sweep_before_any_run(spare_stacks: list[Stack]) -> None:
    """On a stack of its own, whose bucket and S3 key this test takes away."""
    spare = spare_stacks[0]
    env = spare.client_env()
    spare.client("s3").delete_bucket(Bucket=spare.bucket)  # still empty: nothing was logged
    line = _error_line(_mlops(env, *_sweep_args(spare.storage)))
    assert f"cannot use its artifact store (HTTP 404): Failed to list artifacts in s3://{spare.bucket}" in line
    assert "bucket does not exist" in line

    spare.client("s3").create_bucket(Bucket=spare.bucket)
    _revoke_s3_key(spare)
    line = _error_line(_mlops(env, *_sweep_args(spare.storage)))
    assert "cannot use its artifact store" in line and "access key id you provided does not exist" in line.lower(), line

    with pytest.MonkeyPatch.context() as mp:
        for key, value in spare.env.items():
            mp.setenv(key, value)
        assert _all_runs(MlflowClient(spare.tracking_uri)) == [], "no run was started"


def _revoke_s3_key(spare: Stack) -> None:
    """Take the stack's one access key away from SeaweedFS: its identities file with another key, re-read on SIGHUP."""
    from botocore.exceptions import ClientError

    identities = spare.dir / "s3" / "identities.json"
    config = json.loads(identities.read_text())
    (user,) = config["identities"]
    assert [c["accessKey"] for c in user["credentials"]] == [spare.env["AWS_ACCESS_KEY_ID"]]
    user["credentials"] = [{"accessKey": "AKIA" + uuid.uuid4().hex[:16].upper(), "secretKey": uuid.uuid4().hex}]
    identities.write_text(json.dumps(config))
    os.kill(spare.pid("s3"), signal.SIGHUP)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            spare.client("s3").head_bucket(Bucket=spare.bucket)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("403", "InvalidAccessKeyId"):
                return
            raise
        time.sleep(0.2)
    pytest.fail("SeaweedFS still takes the revoked key 30 s after SIGHUP")


def _wait_for_trial(sweep: subprocess.Popen[str], storage: str, number: int) -> None:
    """Until trial `number` of study 'doomed' has its MLflow run; fails if the sweep ends first."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and sweep.poll() is None:
        try:
            trials = optuna.load_study(study_name="doomed", storage=storage).get_trials()
        except KeyError:  # not created yet
            trials = []
        if len(trials) > number and "mlflow_run_id" in trials[number].user_attrs:
            return
        time.sleep(0.2)
    pytest.fail(f"trial {number} never started: {sweep.stderr.read() if sweep.stderr else ''}"[-3000:])


def test_server_going_away_mid_sweep_fails_the_running_trial_and_keeps_the_study(
    spare_stacks: list[Stack], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sweep on a stack of its own; its tracking server is killed once the second trial's run exists."""
    doomed = spare_stacks[1]
    monkeypatch.setenv("PGPASSFILE", doomed.env["PGPASSFILE"])
    config = yaml.safe_load(TINY_CONFIG.read_text())
    config["registry"]["policy"] = str(ROOT / "tests" / "registry" / "tiny-detector.yaml")
    config["search"]["heartbeat_interval"] = 1
    config_file = tmp_path / "sweep.yaml"
    config_file.write_text(yaml.safe_dump(config))
    args = ["sweep", "--config", str(config_file), "--n-trials", "3", "--storage", doomed.storage, "--study-name", "doomed"]
    sweep = subprocess.Popen(
        [sys.executable, "-m", "mlops", *args, "--promote", "false"],
        env=doomed.client_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_trial(sweep, normalize_url(doomed.storage), 1)
        os.killpg(doomed.pid("mlflow"), signal.SIGKILL)
        _, stderr = sweep.communicate(timeout=180)
    finally:
        if sweep.poll() is None:
            sweep.kill()
            sweep.wait()
    line = _error_line(subprocess.CompletedProcess(sweep.args, sweep.returncode, "", stderr))
    assert "is not reachable (connection refused)" in line and "it went away during the run" in line
    trials = optuna.load_study(study_name="doomed", storage=normalize_url(doomed.storage)).get_trials()
    states = [t.state.name for t in trials]
    assert states == ["COMPLETE", "FAIL"], f"no trial left RUNNING, none burned after the server went away: {states}"
    assert trials[0].value is not None and "mlflow_run_id" in trials[0].user_attrs
    assert "tracking server" in trials[1].user_attrs["fail_reason"]
