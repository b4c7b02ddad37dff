"""The `cost` section: defaults, 0 to measure nothing, and out-of-range values reported with their key path."""

from __future__ import annotations

import pytest

from mlops.config import load_config
from mlops.errors import ConfigError
from tests.helpers import TINY_CONFIG


def test_cost_defaults_and_zero_disables() -> None:
    config = load_config("fraud-detection")  # no cost section: the defaults
    assert (config.cost.examples, config.cost.warmup, config.cost.repeats) == (32, 2, 1)
    assert load_config(str(TINY_CONFIG)).cost.examples == 4
    assert load_config(str(TINY_CONFIG), {"cost.examples": 0}).cost.examples == 0


def test_bad_cost_settings_are_all_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(str(TINY_CONFIG), {"cost.examples": -1, "cost.repeats": 0, "cost.warmpu": 1})
    assert sorted(info.value.errors) == [
        "cost.examples: must be in [0, 10000] (0: no cost measured), got -1",
        "cost.repeats: must be in [1, 100], got 0",
        "cost.warmpu: unknown key (did you mean 'warmup'?)",
    ]
