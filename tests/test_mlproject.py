"""The MLproject contract: every declared parameter reaches its command, and the CLI spells them the same."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from mlops.cli import _parser
from tests.helpers import ROOT

MLPROJECT = yaml.safe_load((ROOT / "MLproject").read_text())
ENTRY_POINTS = MLPROJECT["entry_points"]


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_every_parameter_appears_in_its_command(name: str) -> None:
    entry = ENTRY_POINTS[name]
    for param in entry["parameters"]:
        assert "{" + param + "}" in entry["command"], f"{name}: parameter {param} is declared but never used"
        assert f"--{param.replace('_', '-')} {{{param}}}" in entry["command"]
    script = entry["command"].split()[1]
    assert (ROOT / script).is_file()


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_cli_accepts_the_mlproject_parameters(name: str) -> None:
    parser = _parser()
    argv = [name]
    for param in ENTRY_POINTS[name]["parameters"]:
        argv += [f"--{param.replace('_', '-')}", str(ENTRY_POINTS[name]["parameters"][param].get("default", "") or "1")]
    if name == "promote":
        argv[argv.index("--to") + 1] = "staging"
    if "--promote" in argv:
        argv[argv.index("--promote") + 1] = "true"
    parser.parse_args(argv)  # raises SystemExit on an unknown option


def test_required_entry_points_exist() -> None:
    assert {"sweep", "finetune", "evaluate", "promote"} <= set(ENTRY_POINTS)
    sweep = {
        "n_trials",
        "sampler",
        "pruner",
        "seed",
        "seeds_per_trial",
        "confirm_top_k",
        "storage",
        "study_name",
        "promote",
        "verbose",
        "config",
    }
    assert sweep == set(ENTRY_POINTS["sweep"]["parameters"])
    from mlops.config import HYPERPARAMETERS, hyperparameter_help

    hp = set(HYPERPARAMETERS)
    assert all(hyperparameter_help().values()), "every hyperparameter has a help text"
    assert {"learning_rate", "batch_size", "epochs", "lora_r", "seed", "freeze_ratio", "adapter", "lr_scheduler"} <= hp
    assert hp | {"config"} == set(ENTRY_POINTS["finetune"]["parameters"])


def test_help_does_not_import_heavy_libraries() -> None:
    heavy = ("torch", "transformers", "mlflow", "optuna", "pandas")
    code = (
        "import sys\nfrom mlops.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip().splitlines()[-1] == "[]"
