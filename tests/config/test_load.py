from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlops.config import load_config, packaged_configs
from mlops.errors import ConfigError
from mlops.registry import load_policy
from tests.helpers import ROOT, TINY_CONFIG, write

TINY_SUMMARIZER = TINY_CONFIG.parent / "tiny-summarizer.yaml"
SHIPPED_CONFIGS = [*packaged_configs(), *map(str, sorted((ROOT / "tests" / "configs").glob("*.yaml")))]
SHIPPED_POLICIES = sorted((ROOT / "mlops" / "registry" / "policies").glob("*.yaml")) + sorted((ROOT / "tests" / "registry").glob("*.yaml"))


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


def test_a_key_given_twice_is_refused_with_its_path_and_both_lines(tmp_path: Path) -> None:
    text = TINY_CONFIG.read_text(encoding="utf-8")
    assert "\ntraining:\n" in text and "\n  epochs: 1\n" in text
    path = write(tmp_path / "twice.yaml", text.replace("\ntraining:\n", "\ntraining:\n  epochs: 7\n", 1))
    lines = path.read_text(encoding="utf-8").splitlines()
    first, second = lines.index("  epochs: 7") + 1, lines.index("  epochs: 1") + 1
    with pytest.raises(ConfigError) as refused:
        load_config(str(path))
    assert str(refused.value) == f"{path}: training.epochs: key given twice (lines {first} and {second})"


def test_a_policy_key_given_twice_is_refused(tmp_path: Path) -> None:
    text = "model_name: m\naliases:\n  staging:\n    gates: [{metric: test_f1, min: 0.5, min: 0.9}]\n  staging:\n    gates: []\n"
    path = write(tmp_path / "policy.yaml", text)
    with pytest.raises(ConfigError) as refused:
        load_policy(str(path))
    assert str(refused.value) == (
        f"{path}: aliases.staging.gates[0].min: key given twice (lines 4 and 4); aliases.staging: key given twice (lines 3 and 5)"
    )


def test_non_utf8_config(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="latin1.yaml: not valid UTF-8"):
        load_config(str(path))


def test_unknown_packaged_name_lists_what_exists() -> None:
    with pytest.raises(ConfigError, match="packaged: deepseek-7b-qlora, fraud-detection"):
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


def test_when_problems_are_named_and_reported_at_once() -> None:
    space = {
        "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-3},
        "lr_scheduler": {"type": "categorical", "choices": ["linear", "cosine"]},
        "lora_r": {"type": "categorical", "choices": [4, 8], "when": {"adapterr": "lora"}},
        "num_cycles": {"type": "int", "low": 1, "high": 3},  # built in: only with cosine_with_restarts, never drawn here
        "warmup_ratio": {"type": "float", "low": 0.0, "high": 0.1, "when": {"lr_scheduler": "cosine_restarts"}},
        "weight_decay": {"type": "float", "low": 0.0, "high": 0.1, "when": {"lr_scheduler": {"gt": 1}, "learning_rate": {"over": 1e-4}}},
        "lora_dropout": {"type": "float", "low": 0.0, "high": 0.2, "when": {"learning_rate": {"gt": 0.01}}},
        "batch_size": {"type": "categorical", "choices": [8, 16], "when": {"epochs": {"ge": 2}}},  # valid: epochs is fixed
        "augment.multiplier": {"type": "int", "low": 0, "high": 2, "when": {"augment.synonym_p": {"gt": 0}}},
    }
    with pytest.raises(ConfigError) as info:
        load_config(str(TINY_CONFIG), {"search.space": space})
    assert sorted(info.value.errors) == [
        "search.space.augment.multiplier.when: settings that depend on each other in a circle: "
        "augment.multiplier -> augment.synonym_p -> augment.multiplier",
        "search.space.lora_dropout.when.learning_rate: never applies: lora_dropout needs learning_rate > 0.01, "
        "which search.space.learning_rate never draws",
        "search.space.lora_r.when.adapterr: not a tunable setting (did you mean 'adapter'?)",
        "search.space.num_cycles: never applies: num_cycles needs lr_scheduler = cosine_with_restarts, "
        "which search.space.lr_scheduler never draws",
        "search.space.warmup_ratio.when.lr_scheduler: 'cosine_restarts' is not a value of lr_scheduler; "
        "it takes linear, cosine, cosine_with_restarts",
        "search.space.weight_decay.when.learning_rate.over: unknown operator; use a value or one of eq, ne, gt, ge, lt, le, in",
        "search.space.weight_decay.when.lr_scheduler.gt: lr_scheduler takes linear, cosine, cosine_with_restarts, not a number; "
        "use eq, ne or in",
    ]
    with pytest.raises(ConfigError, match=r"pipeline.structure_space.lora_r.when.adapter: 'prefx' is not a value of adapter"):
        load_config(
            str(TINY_CONFIG), {"pipeline.structure_space": {"lora_r": {"type": "int", "low": 4, "high": 8, "when": {"adapter": "prefx"}}}}
        )


def test_built_in_dependencies_and_a_when_that_extends_or_replaces_them() -> None:
    from mlops.config import BUILTIN_CONDITIONS

    config = load_config(str(TINY_SUMMARIZER))  # greedy decoding, linear schedule, LoRA, augmentation multiplier 1
    assert set(BUILTIN_CONDITIONS) == {
        *("temperature", "top_p", "num_beams", "length_penalty", "num_cycles", "num_virtual_tokens", "reduction_factor"),
        *("augment.synonym_p", "augment.max_replacements", "augment.eda_alpha", "serving.merge_adapter"),
    }
    assert config.inapplicable() == {
        *("temperature", "top_p", "num_beams", "length_penalty", "num_cycles", "num_virtual_tokens", "reduction_factor"),
    }
    other = config.with_params(
        {"decoding": "beam", "lr_scheduler": "cosine_with_restarts", "adapter": "bottleneck", "augment.multiplier": 0}
    )
    assert other.inapplicable() == {
        "temperature",
        "top_p",
        "num_virtual_tokens",
        "augment.synonym_p",
        "augment.max_replacements",
        "augment.eda_alpha",
        "serving.merge_adapter",  # a bottleneck adapter has no LoRA weights to merge
    }

    when = {"decoding": {"in": ["sample", "beam"]}, "augment.multiplier": {"gt": 0}}  # replaces the decoding test, adds one
    top_p = {"type": "float", "low": 0.8, "high": 1.0, "when": {"temperature": {"ge": 1.0}}}  # adds to top_p's decoding test
    config = load_config(str(TINY_SUMMARIZER), {"search.space.temperature.when": when, "search.space.top_p": top_p})
    space = config.search.space

    def skipped(params: dict[str, object]) -> set[str]:
        return config.with_params(params).inapplicable(space) & {"temperature", "top_p"}

    assert skipped({"decoding": "beam", "temperature": 1.1}) == {"top_p"}
    assert skipped({"decoding": "sample", "temperature": 1.1}) == set()
    assert skipped({"decoding": "sample", "temperature": 0.9}) == {"top_p"}
    assert skipped({"decoding": "sample", "temperature": 1.1, "augment.multiplier": 0}) == {"temperature", "top_p"}, "top_p follows"


def test_a_misspelt_task_is_one_error_naming_the_nearest_task(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(str(_tiny_with(tmp_path, {"task": "summarisation"})))
    assert info.value.errors == ["task: unknown task 'summarisation' (did you mean 'summarization'?)"]


def test_a_wrong_choice_is_one_error_with_the_nearest_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(str(_tiny_with(tmp_path, {"training.adapter": "foo"})))
    assert info.value.errors == ["training.adapter: must be one of 'lora', 'prefix', 'bottleneck', got 'foo'"]
    with pytest.raises(ConfigError) as info:
        load_config(str(_tiny_with(tmp_path, {"training.lr_scheduler": "cosin", "model.quantization": "nf5"})))
    assert sorted(info.value.errors) == [
        "model.quantization: must be one of 'none', 'nf4', 'fp4', 'int8', got 'nf5' (did you mean 'nf4'?)",
        "training.lr_scheduler: must be one of 'linear', 'cosine', 'cosine_with_restarts', got 'cosin' (did you mean 'cosine'?)",
    ]


def test_a_wrong_choice_in_a_search_space_is_refused_with_its_path(tmp_path: Path) -> None:
    path = _tiny_with(tmp_path, {"search.space.adapter": {"type": "categorical", "choices": ["lora", "bottlenek"]}})
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert info.value.errors == [
        "search.space.adapter.choices[1]: must be one of 'lora', 'prefix', 'bottleneck', got 'bottlenek' (did you mean 'bottleneck'?)"
    ]


def test_bad_cost_knobs_are_each_one_line_naming_the_field(tmp_path: Path) -> None:
    path = _tiny_with(
        tmp_path,
        {
            "training.drop_layers": -1,
            "serving.precision": "int4",
            "serving.merge_adapter": "sometimes",
            "generation.length_penalty": 12,
            "search.space": {
                "max_document_tokens": {"type": "int", "low": 32, "high": 64},
                "max_length": {"type": "int", "low": 4, "high": 64},
                "drop_layers": {"type": "int", "low": -1, "high": 1},
                "serving.precision": {"type": "categorical", "choices": ["fp32", "fp8"]},
            },
        },
    )
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    errors = info.value.errors
    expected = [
        "training.drop_layers: must be >= 0 (a count of top layers removed), got -1",
        "serving.precision: must be one of 'fp32', 'dynamic_int8', 'bnb_int8', 'bnb_nf4', got 'int4'",
        "serving.merge_adapter: expected true or false, got 'sometimes'",
        "generation.length_penalty: must be in [-10, 10], got 12.0",
        "search.space.max_document_tokens: not a token budget of classification (it has no effect there); search max_length",
        "search.space.max_length.low: must be in [8, 8192], got 4",
        "search.space.drop_layers.low: must be >= 0 (a count of top layers removed), got -1",
        "search.space.serving.precision.choices[1]: must be one of 'fp32', 'dynamic_int8', 'bnb_int8', 'bnb_nf4', got 'fp8'",
    ]
    assert [e for e in expected if not any(line.startswith(e) for line in errors)] == []
    assert len(errors) == len(expected) and all("\n" not in e for e in errors)
    assert "\n" not in str(info.value), "one line"


def test_serving_choices_the_trained_model_cannot_take_are_refused(tmp_path: Path) -> None:
    summarizer = yaml.safe_load(TINY_SUMMARIZER.read_text())
    summarizer["training"]["adapter"] = "prefix"
    summarizer["model"]["quantization"] = "nf4"
    summarizer["serving"] = {"merge_adapter": True, "precision": "dynamic_int8"}
    with pytest.raises(ConfigError) as info:
        load_config(str(write(tmp_path / "s.yaml", yaml.safe_dump(summarizer))))
    assert any(e.startswith("serving.precision: the base is trained quantised (model.quantization nf4)") for e in info.value.errors)
    assert any(
        e.startswith("serving.merge_adapter: only a LoRA adapter merges into the base, but training.adapter is prefix")
        for e in info.value.errors
    )
    searched = {"serving.precision": {"type": "categorical", "choices": ["fp32", "bnb_nf4"]}}
    path = _tiny_with(tmp_path, {"training.prune_heads": 1, "search.space": searched})
    with pytest.raises(ConfigError, match=r"^\S+: training.prune_heads: head pruning rewrites the attention weights, which a bitsandbytes"):
        load_config(str(path))


def test_cost_knobs_apply_to_their_sections_and_count_in_the_configuration() -> None:
    config = load_config(str(TINY_SUMMARIZER))
    params = {"drop_layers": 1, "max_document_tokens": 64, "max_new_tokens": 5, "length_penalty": 0.5, "serving.precision": "dynamic_int8"}
    trial = config.with_params({**params, "serving.merge_adapter": True, "num_beams": 2})
    assert (trial.training.drop_layers, trial.generation.max_document_tokens, trial.generation.max_new_tokens) == (1, 64, 5)
    assert (trial.generation.length_penalty, trial.generation.num_beams) == (0.5, 2)
    assert (trial.serving.precision, trial.serving.merge_adapter) == ("dynamic_int8", True)
    assert (config.serving.precision, config.training.drop_layers) == ("fp32", 0), "the config itself is unchanged"
    assert {k: trial.tunable_values()[k] for k in params} == params
    classifier = load_config(str(TINY_CONFIG)).with_params({"max_length": 16})
    assert classifier.model.max_length == 16
