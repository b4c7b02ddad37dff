"""Load a dataset, check it against the data contract and split it: text classification (text, label) or
summarisation (document, summary, optional key terms). Its tables come from `mlops.data.sources`.

Every problem is a `DataError` naming the config field or the file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mlops.data._task_data import SPLITS, ClassificationData, PairSplit, Split, SummarizationData, TaskData
from mlops.data.contract import (
    apply_row_rules,
    check_classes,
    check_evidence,
    check_split_sizes,
    check_text_column,
    cross_split_overlap,
    normalize_labels,
    number_rows,
)
from mlops.data.report import BEFORE_SPLIT, DataReport, LengthStats
from mlops.data.sources import read_frames
from mlops.data.text import TextTokenizer, resolve_text_tokenizer
from mlops.errors import DataError
from mlops.tasks import resolve, spec_for

if TYPE_CHECKING:
    import pandas as pd

    from mlops.config import DatasetConfig


def _check_columns(frame: pd.DataFrame, cfg: DatasetConfig, source: str, fields: tuple[str, ...]) -> None:
    for field in fields:
        column = getattr(cfg, field)
        if column is not None and column not in frame.columns:
            raise DataError(f"dataset.{field}: column '{column}' not in {source} (columns: {', '.join(map(str, frame.columns))})")


def resolve_units(cfg: DatasetConfig, report: DataReport, texts: Iterable[str]) -> TextTokenizer:
    """The dataset's text tokenizer (`dataset.text_tokenizer`; `auto` reads `texts`, the training texts), noted on
    its report: what the report's lengths and the text metrics count in."""
    units = resolve_text_tokenizer(cfg.text_tokenizer, texts)
    report.text_tokenizer = units.mode
    return units


def _seeded_split(frame: pd.DataFrame, cfg: DatasetConfig, seed: int, label_column: str | None) -> dict[str, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    stratify = None
    if label_column is not None and frame[label_column].value_counts().min() >= 2:
        stratify = frame[label_column]
    rest, test = train_test_split(frame, test_size=cfg.test_fraction, random_state=seed, stratify=stratify)
    val_share = cfg.validation_fraction / (1.0 - cfg.test_fraction)
    stratify_rest = rest[label_column] if stratify is not None else None
    train, validation = train_test_split(rest, test_size=val_share, random_state=seed, stratify=stratify_rest)
    return {"train": train, "validation": validation, "test": test}


def _split_frames(
    cfg: DatasetConfig, base_dir: Path, seed: int, fields: tuple[str, str], stratify: bool, report: DataReport
) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """Train/validation/test frames that pass the data contract (`mlops.data.contract`), and where each came from:
    from the files when all three are given (`splits` or a `datasets` dict), otherwise a seeded split (stratified by
    the label when `stratify`). `fields` are the config keys of the input and the target column."""
    input_field, target_field = fields
    columns = [getattr(cfg, f) for f in fields]
    frames = read_frames(cfg, base_dir)
    named: dict[str, pd.DataFrame] = {}
    sources = {k: v[1] for k, v in frames.items()}
    for name, (frame, source) in frames.items():
        if frame.empty:
            raise DataError(f"{source}: dataset is empty")
        _check_columns(frame, cfg, source, (*fields, "key_terms_column"))
        frame = number_rows(frame)
        check_text_column(frame, columns[0], input_field, source)
        where = name if name in SPLITS else BEFORE_SPLIT
        report.rows_read += len(frame)
        frame = apply_row_rules(frame, cfg, where, source, fields, report)
        if stratify:
            frame, trimmed = normalize_labels(frame, columns[1], source)
            report.labels_trimmed += trimmed
        else:
            check_text_column(frame, columns[1], target_field, source)
        named[name] = frame
    if not all(s in named for s in SPLITS):
        import pandas as pd

        whole = pd.concat(list(named.values()), ignore_index=True)
        if whole.empty:
            raise DataError(f"{', '.join(sources.values())}: no rows left after the data contract")
        origin = ", ".join(sources.values())
        if cfg.max_samples:
            whole = whole.sample(n=min(cfg.max_samples, len(whole)), random_state=seed)
        if stratify:
            check_classes(whole[columns[1]], origin)
        check_split_sizes(len(whole), cfg, origin)
        named = _seeded_split(whole, cfg, seed, columns[1] if stratify else None)
        sources = {s: f"{origin} ({s}, seed {seed})" for s in SPLITS}
    elif cfg.max_samples:
        named["train"] = named["train"].head(cfg.max_samples)
    named = {s: named[s] for s in SPLITS}
    for name, frame in named.items():
        report.split(name).rows_read = len(frame) + sum(report.split(name).dropped.values())
    named = cross_split_overlap(named, columns[0], cfg, report)
    check_evidence(named, cfg, sources, columns[1] if stratify else None)
    for name, frame in named.items():
        report.split(name).rows_kept = len(frame)
    return named, sources


def load_summarization_data(cfg: DatasetConfig, base_dir: Path, seed: int) -> SummarizationData:
    """Read document/summary pairs (and key terms, if configured) into train/validation/test."""
    report = DataReport("summarization")
    named, sources = _split_frames(cfg, base_dir, seed, ("document_column", "summary_column"), False, report)
    train = named["train"]
    units = resolve_units(cfg, report, [*map(str, train[cfg.document_column]), *map(str, train[cfg.summary_column])])
    splits: dict[str, PairSplit] = {}
    for name in SPLITS:
        frame = named[name]
        terms: list[list[str]] = [[] for _ in range(len(frame))]
        if cfg.key_terms_column is not None:
            try:
                terms = [key_terms(v) if isinstance(v, str) and v.strip() else [] for v in frame[cfg.key_terms_column]]
            except ValueError as exc:
                raise DataError(f"dataset.key_terms_column: {sources[name]}: {exc}") from None
        documents = frame[cfg.document_column].astype(str).tolist()
        summaries = frame[cfg.summary_column].astype(str).tolist()
        splits[name] = PairSplit(documents, summaries, terms, sources[name])
        report.split(name).reference_words = LengthStats.of([units.length(s) for s in summaries])
    return SummarizationData(**splits, name=cfg.path, report=report)


def load_classification_data(cfg: DatasetConfig, base_dir: Path, seed: int) -> ClassificationData:
    """Read the dataset named by `cfg`, check it against the data contract, and return train/validation/test splits.

    Splits come from the files when given (`splits` or a `datasets` dict with all three),
    otherwise from a seeded, stratified split.
    """
    report = DataReport("classification")
    named, sources = _split_frames(cfg, base_dir, seed, ("text_column", "label_column"), True, report)
    resolve_units(cfg, report, map(str, named["train"][cfg.text_column]))
    label_names = sorted(named["train"][cfg.label_column].unique())
    index = {name: i for i, name in enumerate(label_names)}
    report.label_ids = index
    splits: dict[str, Split] = {}
    for name in SPLITS:
        labels = named[name][cfg.label_column]
        unknown = sorted(set(labels) - set(index))
        if unknown:
            raise DataError(f"dataset.label_column: labels {unknown} in {sources[name]} never occur in the train split")
        splits[name] = Split(named[name][cfg.text_column].astype(str).tolist(), [index[v] for v in labels], sources[name])
        report.split(name).classes = {label: int((labels == label).sum()) for label in label_names}
    return ClassificationData(**splits, label_names=label_names, name=cfg.path, report=report)


def load_task_data(task: str, cfg: DatasetConfig, base_dir: Path, seed: int) -> TaskData:
    """The splits of `task`'s data, read by the loader its spec names."""
    loaded: TaskData = resolve(spec_for(task).loader)(cfg, base_dir, seed)
    return loaded


def key_terms(text_or_json: str | Sequence[str]) -> list[str]:
    """Key terms from a JSON list string (the demo CSVs' key_terms column) or a list; an empty string has none."""
    if not isinstance(text_or_json, str):
        return [str(term) for term in text_or_json]
    if not text_or_json.strip():
        return []
    try:
        terms = json.loads(text_or_json)
    except json.JSONDecodeError:
        terms = None
    if not isinstance(terms, list) or not all(isinstance(term, str) for term in terms):
        raise ValueError(f"key_terms should be a JSON list of strings, got {text_or_json[:80]!r}")
    return terms
