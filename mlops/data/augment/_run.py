"""Augment a training split and log what was done; the `augment` entry point, whose output is a dataset for later runs.

Only the train split is augmented; validation and test pass through as the same objects. A copy is
dropped when it is empty, repeats a training text or an earlier copy, is a near-duplicate of a
validation or test text (same normalised text), or lost a protected token or key term.
"""

from __future__ import annotations

import logging
import random
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.config import DEFAULT_AUGMENT_METHODS, AugmentConfig, ExperimentConfig
from mlops.data import (
    ClassificationData,
    PairSplit,
    Split,
    SummarizationData,
    dataset_lineage,
    load_task_data,
    log_dataset_inputs,
    write_task_data,
)
from mlops.data.augment._base import Augmenter, build_augmenter, check_methods
from mlops.data.augment._text import protected_tokens, protected_words
from mlops.data.language import training_texts
from mlops.data.report import log_data_report
from mlops.data.text import fingerprint, normalized, text_language
from mlops.errors import ConfigError
from mlops.tracking import AUGMENTED_ARTIFACT, AUGMENTED_URI_TAG, ENTRY_POINT_TAG, entry_run, log_environment, log_params_effective

if TYPE_CHECKING:
    from mlops.data import TaskData

logger = logging.getLogger(__name__)

REJECTIONS = ("empty", "duplicates", "near_duplicates", "lost_protected")


@dataclass
class AugmentOutcome:
    data: TaskData  # train: the originals, then the accepted copies; validation and test: the source's own
    source: TaskData
    params: dict[str, Any]
    counts: dict[str, int]
    origins: list[int]  # for each accepted copy, in order, the index of the training example it was made from


@dataclass
class AugmentResult:
    run_id: str
    dataset_uri: str  # runs:/<run_id>/augmented, usable as `dataset.path`
    counts: dict[str, int]


def methods_in_use(config: ExperimentConfig) -> list[str]:
    """The configured methods; the default ones when none are named but the search space tunes `augment.*`."""
    if config.augment.methods:
        return list(config.augment.methods)
    return list(DEFAULT_AUGMENT_METHODS) if any(k.startswith("augment.") for k in config.search.space) else []


def build_augmenters(config: AugmentConfig, methods: list[str] | None = None) -> dict[str, Augmenter]:
    """The augmenters of `methods` (default: the config's); a missing database or model fails here, with the fix."""
    methods = config.methods if methods is None else methods
    check_methods(methods)
    return {name: build_augmenter(name, config) for name in methods}


def ready_for_data(augmenters: dict[str, Augmenter], data: TaskData) -> None:
    """Every method made ready for the language of the training texts: a method that cannot handle it stops here, with
    one line naming it and the language's share (before any run starts, when called from `prepare` or `run_augment`)."""
    language = text_language(training_texts(data))
    for augmenter in augmenters.values():
        augmenter.ready_for(language)


def nothing_added(counts: dict[str, int]) -> str | None:
    """Why no copy was kept, when none was: the rejections by reason. None when rows were added or none were asked."""
    if counts.get("candidates", 0) == 0 or counts["rows_out"] > counts["rows_in"]:
        return None
    rejected = ", ".join(f"{k.removeprefix('rejected_')} {n}" for k, n in counts.items() if k.startswith("rejected_") and n)
    return (
        f"augment: none of {counts['candidates']} candidate copies was kept (rejected: {rejected or 'none'}); the train split is unchanged"
    )


def augment_training_data(
    data: TaskData, config: AugmentConfig, seed: int, augmenters: dict[str, Augmenter] | None = None
) -> AugmentOutcome:
    """`config.multiplier` candidate copies per training example, methods taken in turn; the accepted copies
    keep their example's label (or summary and key terms) and are appended to the train split."""
    if not config.methods:
        raise ConfigError("augment.methods: name at least one method to augment with")
    augmenters = augmenters if augmenters is not None else build_augmenters(config)
    ready_for_data(augmenters, data)
    texts, terms = _train_texts(data)
    base = protected_words(config.protected_words)
    keep = [base | protected_words(t) for t in terms]
    slots = [i for i in range(len(texts)) for _ in range(config.multiplier)]  # candidate k is a copy of example slots[k]
    method_of = [config.methods[k % len(config.methods)] for k in range(len(slots))]
    candidates = _candidates(texts, keep, slots, method_of, augmenters, seed)

    heldout = {fingerprint(t) for name in ("validation", "test") for t in _split_texts(data, name)}
    seen = {fingerprint(t) for t in texts}
    counts: Counter[str] = Counter({f"rejected_{r}": 0 for r in REJECTIONS} | {f"added_{m}": 0 for m in config.methods})
    accepted: list[tuple[int, str]] = []
    for i, text, method in zip(slots, candidates, method_of, strict=True):
        verdict = _verdict(texts[i], text, keep[i], terms[i], seen, heldout)
        if verdict is None:
            seen.add(fingerprint(text))
            accepted.append((i, text))
            verdict = f"added_{method}"
        counts[verdict] += 1
    sizes = {"rows_in": len(texts), "rows_out": len(texts) + len(accepted), "candidates": len(slots)}
    params = _params(config, seed)
    train = _with_copies(data, accepted, params)
    if (why := nothing_added({**counts, **sizes})) is not None:
        logger.warning(why)
    return AugmentOutcome(replace(data, train=train), data, params, {**counts, **sizes}, [i for i, _ in accepted])


def _candidates(
    texts: list[str], keep: list[frozenset[str]], slots: list[int], method_of: list[str], augmenters: dict[str, Augmenter], seed: int
) -> list[str]:
    """Candidate k, made by `method_of[k]` from `texts[slots[k]]`; each method gets all its texts in one call (so
    back-translation batches them) and its own random stream, seeded from `seed` and the method's name."""
    out = [""] * len(slots)
    for method in dict.fromkeys(method_of):
        ks = [k for k, m in enumerate(method_of) if m == method]
        made = augmenters[method].augment([texts[slots[k]] for k in ks], [keep[slots[k]] for k in ks], random.Random(f"{seed}:{method}"))
        if len(made) != len(ks):
            raise RuntimeError(f"augmenter {method!r} returned {len(made)} texts for {len(ks)} inputs")
        for k, text in zip(ks, made, strict=True):
            out[k] = text
    return out


def _verdict(source: str, text: str, keep: frozenset[str], terms: list[str], seen: set[str], heldout: set[str]) -> str | None:
    """Why the copy `text` of `source` is dropped, or None to keep it."""
    if not normalized(text):
        return "rejected_empty"
    digest = fingerprint(text)
    if digest in seen:
        return "rejected_duplicates"
    if digest in heldout:
        return "rejected_near_duplicates"
    lowered = text.lower()
    must_keep = protected_tokens(source, keep) + [t for t in terms if t.lower() in source.lower()]
    if any(token.lower() not in lowered for token in must_keep):
        return "rejected_lost_protected"
    return None


def _train_texts(data: TaskData) -> tuple[list[str], list[list[str]]]:
    """The texts to augment (documents, for summarisation) and each one's key terms."""
    if isinstance(data, SummarizationData):
        return data.train.documents, data.train.key_terms
    return data.train.texts, [[] for _ in data.train.texts]


def _split_texts(data: TaskData, name: str) -> list[str]:
    split = data.split(name)
    return split.documents if isinstance(split, PairSplit) else split.texts


def _with_copies(data: TaskData, accepted: list[tuple[int, str]], params: dict[str, Any]) -> Any:
    origin = ", ".join(f"{k.removeprefix('augment.')}={v}" for k, v in params.items())
    if isinstance(data, SummarizationData):
        t = data.train
        return PairSplit(
            t.documents + [text for _, text in accepted],
            t.summaries + [t.summaries[i] for i, _ in accepted],
            t.key_terms + [t.key_terms[i] for i, _ in accepted],
            f"{t.source} + augmented ({origin})",
        )
    assert isinstance(data, ClassificationData)
    s = data.train
    labels = s.labels + [s.labels[i] for i, _ in accepted]
    return Split(s.texts + [text for _, text in accepted], labels, f"{s.source} + augmented ({origin})")


def _params(config: AugmentConfig, seed: int) -> dict[str, Any]:
    params: dict[str, Any] = {
        "augment.methods": ",".join(config.methods),
        "augment.multiplier": config.multiplier,
        "augment.synonym_p": config.synonym_p,
        "augment.max_replacements": config.max_replacements,
        "augment.eda_alpha": config.eda_alpha,
        "augment.seed": seed,
        "augment.protected_words": ",".join(config.protected_words)[:500] or "none",
    }
    if "back_translation" in config.methods:
        params |= {"augment.back_translation.forward": config.back_translation.forward}
        params |= {"augment.back_translation.backward": config.back_translation.backward}
    return params


def log_augmentation(outcome: AugmentOutcome) -> None:
    """On the active run: the settings as params, the counts as `augment_*` metrics, and the train split the
    copies were made from as an input (context `augment_source`); the caller logs the augmented splits."""
    import mlflow

    log_params_effective(outcome.params)
    mlflow.log_metrics({f"augment_{k}": v for k, v in outcome.counts.items()})
    log_dataset_inputs(outcome.source, ("train",), context="augment_source")


def run_augment(config: ExperimentConfig, output_dir: Path | None = None) -> AugmentResult:
    """The `augment` entry point: augment the train split, log the three splits as the run's `augmented` artifact
    (and copy them to `output_dir`, which must be new or empty), with inputs, params and counts."""
    import mlflow

    settings = replace(config.augment, methods=config.augment.methods or list(DEFAULT_AUGMENT_METHODS))
    if settings.multiplier < 1:
        raise ConfigError(f"augment.multiplier: augment makes at least one copy per example, got {settings.multiplier}")
    if output_dir is not None and output_dir.exists() and (not output_dir.is_dir() or any(output_dir.iterdir())):
        raise ConfigError(f"output_dir: {output_dir} already exists and is not an empty folder; augment never overwrites data")
    augmenters = build_augmenters(settings)
    data = load_task_data(config.task, config.dataset, Path(config.source_file).parent, config.training.seed)
    ready_for_data(augmenters, data)
    with entry_run(config.mlflow_experiment, f"augment-{config.name}", tags={ENTRY_POINT_TAG: "augment"}) as run:
        seed = config.training.seed if settings.seed is None else settings.seed
        outcome = augment_training_data(data, settings, seed, augmenters)
        log_params_effective({"config": config.name, "task": config.task, "dataset": config.dataset.path})
        mlflow.set_tags(dataset_lineage(config.dataset))  # augmenting an augmented set names the earlier run
        log_augmentation(outcome)
        log_dataset_inputs(outcome.data)
        if data.report is not None:
            log_data_report(data.report)
        log_environment()
        with tempfile.TemporaryDirectory(prefix="mlops-augment-") as tmp:
            folder = Path(tmp) / AUGMENTED_ARTIFACT
            write_task_data(outcome.data, config.dataset, folder)
            mlflow.log_artifacts(str(folder), AUGMENTED_ARTIFACT)
            if output_dir is not None:
                shutil.copytree(folder, output_dir, dirs_exist_ok=True)
        uri = f"runs:/{run.info.run_id}/{AUGMENTED_ARTIFACT}"
        mlflow.set_tag(AUGMENTED_URI_TAG, uri)
    return AugmentResult(run.info.run_id, uri, outcome.counts)
