from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlops.config import load_config, packaged_configs
from mlops.errors import ConfigError
from mlops.registry import load_policy

from .conftest import ROOT, TINY_CONFIG, write

SHIPPED_CONFIGS = [*packaged_configs(), *map(str, sorted((ROOT / "tests" / "configs").glob("*.yaml")))]
SHIPPED_POLICIES = sorted((ROOT / "registry").glob("*.yaml")) + sorted((ROOT / "tests" / "registry").glob("*.yaml"))


@pytest.mark.parametrize("name", SHIPPED_CONFIGS)
def test_every_shipped_config_loads_and_its_policy_matches(name: str) -> None:
    config = load_config(name)
    policy = load_policy(config.registry.policy, Path(config.source_file).parent)
    assert policy.model_name == config.registry.model_name
    assert config.search.space, "a shipped config should declare its search space"


@pytest.mark.parametrize("path", SHIPPED_POLICIES, ids=lambda p: p.name)
def test_every_shipped_policy_loads(path: Path) -> None:
    policy = load_policy(str(path))
    assert "staging" in policy.aliases and policy.aliases["staging"].gates


def test_default_config_uses_the_guides_ranges() -> None:
    config = load_config("fraud-detection")
    lr = config.search.space["learning_rate"]
    assert (lr.low, lr.high, lr.log) == (1e-5, 5e-5, True)
    assert config.search.space["batch_size"].choices == [8, 16, 32]
    assert config.registry.model_name == "fraud-detector"


def _tiny_with(tmp_path: Path, edit: dict) -> Path:
    data = yaml.safe_load(TINY_CONFIG.read_text())
    for dotted, value in edit.items():
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return write(tmp_path / "c.yaml", yaml.safe_dump(data))


def test_all_problems_reported_at_once_with_key_paths(tmp_path: Path) -> None:
    path = _tiny_with(tmp_path, {"training.learning_rate": 0, "search.n_trials": 0, "training.lerning_rate": 1e-5})
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    errors = info.value.errors
    assert any(e.startswith("training.learning_rate: must be > 0") for e in errors)
    assert any(e.startswith("search.n_trials: must be >= 1") for e in errors)
    assert any("training.lerning_rate: unknown key (did you mean 'learning_rate'?)" in e for e in errors)
    assert len(errors) == 3


def test_overrides_are_validated_like_the_file() -> None:
    with pytest.raises(ConfigError, match=r"training.batch_size: expected an integer, got 'x'"):
        load_config(str(TINY_CONFIG), {"training.batch_size": "x"})
    config = load_config(str(TINY_CONFIG), {"training.learning_rate": "2e-4", "search.n_trials": "5", "training.seed": None})
    assert config.training.learning_rate == 2e-4 and config.search.n_trials == 5 and config.training.seed == 42


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.yaml", "name: x\ntask: [classification\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: malformed YAML at line \d+"):
        load_config(str(path))


def test_non_utf8_config(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="latin1.yaml: not valid UTF-8"):
        load_config(str(path))


def test_unknown_packaged_name_lists_what_exists() -> None:
    with pytest.raises(ConfigError, match="packaged: fraud-detection"):
        load_config("no-such-config")


def test_search_space_problems(tmp_path: Path) -> None:
    path = _tiny_with(
        tmp_path, {"search.space": {"learning_rate": {"type": "float", "low": 1e-3, "high": 1e-4}, "dropout": {"type": "categorical"}}}
    )
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    text = str(info.value)
    assert "search.space.learning_rate: low (0.001) must not exceed high (0.0001)" in text
    assert "search.space.dropout.choices" in text and "search.space.dropout: not a tunable hyperparameter" in text


def test_policy_errors_are_named(tmp_path: Path) -> None:
    path = write(
        tmp_path / "p.yaml", "model_name: m\naliases:\n  staging:\n    gates:\n      - metric: test_f1\n        not_worse_than: prod\n"
    )
    with pytest.raises(ConfigError, match=r"aliases.staging.gates\[0\].not_worse_than: unknown alias 'prod'"):
        load_policy(str(path))


def test_search_space_values_are_checked_against_training_ranges(tmp_path: Path) -> None:
    space = {"learning_rate": {"type": "float", "low": 0.0, "high": 1e-4}, "batch_size": {"type": "categorical", "choices": [0, 8]}}
    with pytest.raises(ConfigError) as info:
        load_config(str(_tiny_with(tmp_path, {"search.space": space})))
    assert sorted(info.value.errors) == [
        "search.space.batch_size.choices[0]: must be >= 1, got 0",
        "search.space.learning_rate.low: must be > 0, got 0.0",
    ]


def test_search_metric_must_be_produced_by_the_task(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="search.metric: 'eval_rougeL' is not produced by classification; use one of eval_f1"):
        load_config(str(_tiny_with(tmp_path, {"search.metric": "eval_rougeL"})))
