"""Duplicate trials: a trial's effective configuration as one key, and the completed trial of the study that already
ran it (whose result a duplicate reuses instead of training again)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from mlops.config import AUGMENT_PARAMETERS, DECODING_PARAMETERS, HYPERPARAMETERS, SERVING_PARAMETERS, ExperimentConfig, ParamSpace
from mlops.data import SPLITS, TaskData, split_digest

if TYPE_CHECKING:
    import optuna

CONFIG_KEY_ATTR = "mlops_config_key"  # trial user attrs
DUPLICATE_OF_ATTR = "mlops_duplicate_of"


def configuration_key(config: ExperimentConfig, space: dict[str, ParamSpace], data: TaskData) -> str:
    """A hash of what decides a trial's result: every setting that applies (drawn or fixed, the seeds included), the
    rest of the training, augmentation, decoding and serving settings, the model, the dataset and the digests of its splits.

    Settings that do not apply leave it unchanged, so `multiplier 0` with any `synonym_p` is one configuration.
    """
    skipped = config.inapplicable(space)
    document = {
        "task": config.task,
        "model": asdict(config.model),
        "dataset": asdict(config.dataset),
        "splits": {name: split_digest(data, name) for name in SPLITS},
        "training": _applying(config.training, HYPERPARAMETERS, skipped),
        "augment": _applying(config.augment, AUGMENT_PARAMETERS, skipped, "augment."),
        "serving": _applying(config.serving, SERVING_PARAMETERS, skipped, "serving."),
    }
    if config.spec.generates:
        document["generation"] = _applying(config.generation, DECODING_PARAMETERS, skipped)
    text = json.dumps(document, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _applying(section: Any, names: tuple[str, ...], skipped: set[str], prefix: str = "") -> dict[str, Any]:
    """A config section as a mapping, without its tunable settings (`names`) that do not apply."""
    dropped = {name.removeprefix(prefix) for name in skipped if name in names}
    return {k: v for k, v in asdict(section).items() if k not in dropped}


def completed_original(study: optuna.Study, key: str) -> optuna.trial.FrozenTrial | None:
    """The first COMPLETE trial of `study` that ran configuration `key` itself (not as a duplicate), if any."""
    import optuna

    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    same = [t for t in done if t.user_attrs.get(CONFIG_KEY_ATTR) == key and DUPLICATE_OF_ATTR not in t.user_attrs]
    return min(same, key=lambda t: t.number, default=None)


def original_of(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> optuna.trial.FrozenTrial:
    """The trial that trained `trial`'s configuration: `trial` itself unless it is a duplicate."""
    number = trial.user_attrs.get(DUPLICATE_OF_ATTR)
    if number is None:
        return trial
    return next(t for t in study.get_trials(deepcopy=False) if t.number == int(number))
