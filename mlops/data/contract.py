"""The data contract: checks every loaded dataset passes before any run starts, for every task and source.

- A missing or empty target (label, reference summary) and an empty input (text, document) are an error or are
  dropped, per `dataset.on_invalid`; every dropped row is counted by reason, never silently.
- Labels may be strings, integers or booleans; they are trimmed (`" yes"` and `"yes"` are one class) and the rows
  trimmed are counted. Booleans beside 0 and 1 are those classes (True is 1); beside any other label they are refused.
- Exact duplicates inside train are counted; texts shared across splits (after `mlops.data.text.normalized`) are
  counted and, by default, removed from train so that the test split stays unseen.
- Minimum evidence: `dataset.min_examples_per_class` in every split (classification) and `dataset.min_split_examples`
  in validation and test; a dataset below either is refused.

What was checked, kept and dropped goes into the `DataReport` (`mlops.data.report`), logged with every run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mlops.data.report import DataReport
from mlops.data.text import normalized
from mlops.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    from mlops.config import DatasetConfig

ROW = "__row__"  # the row's 1-based number in its source file, carried through for error messages
SHOWN_ROWS = 5  # row numbers quoted in an error message


def number_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with each row's 1-based position in its source file in column `ROW`."""
    frame = frame.reset_index(drop=True)
    frame[ROW] = range(1, len(frame) + 1)
    return frame


def _blank(values: pd.Series) -> pd.Series:
    """Missing (NaN, None) or empty after stripping whitespace."""
    return values.isna() | values.astype(str).str.strip().eq("")


def _rows(frame: pd.DataFrame) -> str:
    rows = [str(r) for r in frame[ROW].tolist()[:SHOWN_ROWS]]
    more = f" and {len(frame) - SHOWN_ROWS} more" if len(frame) > SHOWN_ROWS else ""
    return f"row{'s' if len(frame) > 1 else ''} {', '.join(rows)}{more}"


def check_text_column(frame: pd.DataFrame, column: str, field: str, source: str) -> None:
    """An input column must hold text: numbers, lists or mappings there are a mistake in the column mapping."""
    values = frame[column].dropna()
    wrong = values[~values.map(lambda v: isinstance(v, str))]
    if len(wrong):
        kind = type(wrong.iloc[0]).__name__
        raise DataError(f"dataset.{field}: column '{column}' of {source} holds {kind} values, not text ({_rows(frame.loc[wrong.index])})")


def apply_row_rules(
    frame: pd.DataFrame, cfg: DatasetConfig, where: str, source: str, fields: tuple[str, str], report: DataReport
) -> pd.DataFrame:
    """Drop or refuse rows with an empty input or a missing target, per `dataset.on_invalid`, counting each drop.
    `fields`: the config keys of the input and the target column."""
    input_field, target_field = fields
    input_column, target_column = getattr(cfg, input_field), getattr(cfg, target_field)
    target_kind = "label" if target_field == "label_column" else "summary"
    input_kind = "text" if input_field == "text_column" else "document"
    rules = (
        (target_field, target_column, f"missing_{target_kind}", cfg.on_invalid.missing_target, f"no {target_kind}", "missing_target"),
        (input_field, input_column, f"empty_{input_kind}", cfg.on_invalid.empty_input, f"an empty {input_kind}", "empty_input"),
    )
    for field, column, reason, action, what, key in rules:
        bad = frame[_blank(frame[column])]
        if bad.empty:
            continue
        if action == "error":
            raise DataError(
                f"dataset.{field}: {len(bad)} row{'s' if len(bad) > 1 else ''} of {source} ({where}) {'have' if len(bad) > 1 else 'has'} "
                f"{what} in column '{column}': {_rows(bad)}; fix them, or set dataset.on_invalid.{key}: drop"
            )
        report.drop(where, reason, len(bad))
        frame = frame.drop(index=bad.index)
    return frame


def label_text(value: Any) -> str:
    """One label as its class name: strings trimmed, integers (also read as floats next to a missing value) as digits,
    booleans as `True`/`False`."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _booleans_as_digits(raw: pd.Series, column: str, source: str) -> pd.Series:
    """Booleans beside 0 and 1 (JSON `true` next to `1`) as those classes: True is 1, False is 0. Booleans beside any
    other label are ambiguous and refused; a column of booleans alone keeps its classes `True` and `False`."""
    booleans = raw.map(lambda v: isinstance(v, bool))
    if not booleans.any() or booleans.all():
        return raw
    others = raw[~booleans]
    if others.map(lambda v: not isinstance(v, str) and label_text(v) in ("0", "1")).all():
        return raw.map(lambda v: int(v) if isinstance(v, bool) else v)
    shown = {kind: ", ".join(dict.fromkeys(repr(v) for v in values)) for kind, values in (("booleans", raw[booleans]), ("others", others))}
    raise DataError(
        f"dataset.label_column: column '{column}' of {source} mixes booleans ({shown['booleans']}) with labels other than 0 and 1 "
        f"({shown['others']}); write every label the same way"
    )


def normalize_labels(frame: pd.DataFrame, column: str, source: str) -> tuple[pd.DataFrame, int]:
    """The frame with its labels as trimmed class names (booleans beside 0 and 1 as those), and how many rows needed
    trimming."""
    raw = _booleans_as_digits(frame[column], column, source)
    names = raw.map(label_text)
    trimmed = int((raw.map(lambda v: isinstance(v, str)) & (raw.astype(str) != names)).sum())
    frame = frame.copy()
    frame[column] = names
    return frame, trimmed


def cross_split_overlap(named: Mapping[str, pd.DataFrame], column: str, cfg: DatasetConfig, report: DataReport) -> dict[str, pd.DataFrame]:
    """Count exact duplicates inside each split and inputs shared between splits (normalised); by default remove from
    train the rows whose input also occurs in validation or test."""
    keys = {name: frame[column].astype(str).map(normalized) for name, frame in named.items()}
    for name, frame in named.items():
        report.split(name).duplicates = int(frame[column].astype(str).duplicated().sum())
    held_out = set(keys["validation"]) | set(keys["test"])
    report.overlaps = {
        "train_validation": int(keys["train"].isin(set(keys["validation"])).sum()),
        "train_test": int(keys["train"].isin(set(keys["test"])).sum()),
        "validation_test": int(keys["validation"].isin(set(keys["test"])).sum()),
    }
    shared = keys["train"].isin(held_out)
    out = dict(named)
    if cfg.on_invalid.cross_split_overlap == "drop" and shared.any():
        report.drop("train", "cross_split_overlap", int(shared.sum()))
        out["train"] = named["train"][~shared.to_numpy()]
    return out


def check_classes(labels: pd.Series, source: str) -> None:
    """A classifier needs at least two classes to learn from."""
    classes = sorted(labels.unique())
    if len(classes) < 2:
        shown = f" ({classes[0]!r})" if classes else ""
        raise DataError(f"dataset.label_column: only one class{shown} in {source}; need at least two")


def check_split_sizes(rows: int, cfg: DatasetConfig, source: str) -> None:
    """Before a seeded split: refuse a dataset whose validation or test split would fall below `min_split_examples`."""
    for name, fraction in (("validation", cfg.validation_fraction), ("test", cfg.test_fraction)):
        expected = math.floor(rows * fraction)
        if expected < cfg.min_split_examples:
            raise DataError(
                f"dataset.min_split_examples: {source} has {rows} usable row{'s' if rows != 1 else ''}, so its {name} split would hold "
                f"{expected} example{'s' if expected != 1 else ''}, fewer than {cfg.min_split_examples}: too few to judge a model on; "
                "add data or lower dataset.min_split_examples"
            )


def check_evidence(named: Mapping[str, pd.DataFrame], cfg: DatasetConfig, sources: Mapping[str, str], label_column: str | None) -> None:
    """Refuse splits too small to judge a model on: a single class (classification), validation and test below
    `min_split_examples`, or a class below `min_examples_per_class` in any split."""
    if label_column is not None:
        check_classes(named["train"][label_column], sources["train"])
    for name in ("validation", "test"):
        n = len(named[name])
        if n < cfg.min_split_examples:
            raise DataError(
                f"dataset.min_split_examples: the {name} split of {sources[name]} has {n} example{'s' if n != 1 else ''}, "
                f"fewer than {cfg.min_split_examples}: too few to judge a model on; add data or lower dataset.min_split_examples"
            )
    if label_column is None:
        return
    classes = sorted(named["train"][label_column].unique())
    for name, frame in named.items():
        counts = frame[label_column].value_counts()
        for label in classes:
            n = int(counts.get(label, 0))
            if n < cfg.min_examples_per_class:
                raise DataError(
                    f"dataset.min_examples_per_class: class {label!r} has {n} example{'s' if n != 1 else ''} in the {name} split of "
                    f"{sources[name]}, fewer than {cfg.min_examples_per_class}; add data or lower dataset.min_examples_per_class"
                )
