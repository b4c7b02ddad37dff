"""The MLflow UI in a real browser (Debian's chromium, driven by Playwright) over a tiny finished sweep: what a person
looks at. The link the sweep printed opens the runs view; the parent row expands to its trials; the compare view of
the trials shows the searched params and the eval metric; the registered model shows its version with `staging`; the
parent's artifacts list the report and the plots. Screenshots of a failing check are kept under test-artifacts/."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT, TESTS, TINY_CONFIG, wait_until_answers, write

pytestmark = [pytest.mark.browser, pytest.mark.e2e]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    for inherited in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_TRACKING_URI"):
        env.pop(inherited, None)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A finished two-trial sweep of the tiny config in a folder of its own; (folder, what the CLI printed)."""
    folder = tmp_path_factory.mktemp("ui-sweep")
    data = yaml.safe_load(TINY_CONFIG.read_text())
    data["registry"]["policy"] = str(TESTS / "registry" / f"{data['registry']['policy']}.yaml")
    data["training"] |= {"max_steps": 4}
    config = write(folder / "tiny.yaml", yaml.safe_dump(data))
    argv = [sys.executable, "-m", "mlops", "sweep", "--config", str(config), "--n-trials", "2"]
    done = subprocess.run(argv, cwd=folder, env=_env(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return folder, done.stdout


@pytest.fixture(scope="module")
def ui(sweep: tuple[Path, str]) -> Iterator[str]:
    """`mlflow ui` over the sweep's store, on a free port of 127.0.0.1; its address."""
    folder, _ = sweep
    port = _free_port()
    argv = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}", "--host", "127.0.0.1"]
    proc = subprocess.Popen([*argv, "--port", str(port)], cwd=folder, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    address = f"http://127.0.0.1:{port}"
    wait_until_answers(proc, f"{address}/health", "mlflow ui")
    yield address
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture
def page(request: pytest.FixtureRequest) -> Iterator[object]:
    """A chromium page; a screenshot of it is kept in test-artifacts/ when the test fails."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: scripts/setup installs Debian's chromium (apt-get install -y chromium)")
    failed_before = request.session.testsfailed
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        tab = browser.new_page(viewport={"width": 1600, "height": 1000})
        tab.set_default_timeout(60_000)
        yield tab
        if request.session.testsfailed > failed_before:  # the call phase is reported before teardown
            ARTIFACTS.mkdir(exist_ok=True)
            tab.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
        browser.close()


def _printed(stdout: str, label: str, ui: str) -> str:
    """The link the CLI printed after `label`, pointed at this test's `mlflow ui` instead of the default port."""
    match = re.search(rf"^{label}:\s+(\S+)", stdout, re.MULTILINE)
    assert match, stdout[-2000:]
    assert match[1].startswith("http://127.0.0.1:5000/#/") and match[1].endswith("workflowType=machine_learning")
    return match[1].replace("http://127.0.0.1:5000", ui)


def test_the_printed_link_opens_the_runs_and_the_parent_expands_to_its_trials(sweep: tuple[Path, str], ui: str, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(_printed(sweep[1], "runs", ui))
    parent = page.get_by_role("row").filter(has_text="sweep-tiny")
    parent.first.wait_for()
    page.get_by_text("Runs of the mlops toolkit").first.wait_for()  # the experiment's description
    assert not page.get_by_text("trial-0", exact=True).is_visible()  # children start collapsed
    parent.get_by_role("button").first.click()  # the row's expander
    page.get_by_text("trial-0", exact=True).first.wait_for()
    page.get_by_text("trial-1", exact=True).first.wait_for()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "mlflow-ui-runs.png"))

    for trial in ("trial-0", "trial-1"):
        page.get_by_role("row").filter(has_text=trial).get_by_role("checkbox").first.check()
    page.get_by_role("button", name=re.compile("^Compare")).first.click()
    page.get_by_text("Comparing 2 Runs").first.wait_for()
    for searched in ("learning_rate", "lora_r", "eval_f1"):  # tests/configs/tiny.yaml's space, and the search metric
        page.get_by_text(searched, exact=True).first.wait_for()


def test_the_parent_run_lists_the_report_and_plots(sweep: tuple[Path, str], ui: str, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(_printed(sweep[1], "run", ui).replace("?", "/artifacts?", 1))
    page.get_by_text("sweep_report.md", exact=True).first.wait_for()
    page.get_by_text("sweep_summary.json", exact=True).first.wait_for()
    assert page.get_by_text("plots", exact=True).count() == 1


def test_the_registered_version_holds_staging(sweep: tuple[Path, str], ui: str, page) -> None:  # type: ignore[no-untyped-def]
    link = _printed(sweep[1], "model", ui)
    version = re.search(r"/versions/(\d+)\?", link)
    assert version
    page.goto(link)
    page.get_by_text(f"Version {version[1]}", exact=True).first.wait_for()
    page.get_by_text(re.compile(r"^@\s*staging$")).first.wait_for()  # the alias chip
