"""Load a dataset (CSV, JSONL, Parquet, `datasets`), map its columns and split it: text
classification (text, label) or summarisation (document, summary, optional key terms).

Every problem is a `DataError` naming the config field or the file.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.config import demo_dataset_dir
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
from mlops.data.memo import once_per_split
from mlops.data.report import BEFORE_SPLIT, DataReport, LengthStats
from mlops.data.text import resolve_text_tokenizer
from mlops.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    from mlops.config import DatasetConfig

SPLITS = ("train", "validation", "test")
RUN_ARTIFACT_SCHEME = "runs:/"
_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet"}


@dataclass
class Split:
    texts: list[str]
    labels: list[int]
    source: str

    def __len__(self) -> int:
        return len(self.texts)


@dataclass
class ClassificationData:
    train: Split
    validation: Split
    test: Split
    label_names: list[str]
    name: str
    report: DataReport | None = None  # what the data contract checked, kept and dropped

    def split(self, name: str) -> Split:
        return {"train": self.train, "validation": self.validation, "test": self.test}[name]

    def frame(self, name: str) -> tuple[pd.DataFrame, str]:
        """The split as a table, and its target column (for MLflow's dataset inputs)."""
        import pandas as pd

        split = self.split(name)
        return pd.DataFrame({"text": split.texts, "label": [self.label_names[i] for i in split.labels]}), "label"


@dataclass
class PairSplit:
    """Documents with their reference summaries (and the key terms each summary must keep, if given)."""

    documents: list[str]
    summaries: list[str]
    key_terms: list[list[str]]
    source: str

    def __len__(self) -> int:
        return len(self.documents)


@dataclass
class SummarizationData:
    train: PairSplit
    validation: PairSplit
    test: PairSplit
    name: str
    report: DataReport | None = None  # what the data contract checked, kept and dropped

    def split(self, name: str) -> PairSplit:
        return {"train": self.train, "validation": self.validation, "test": self.test}[name]

    def frame(self, name: str) -> tuple[pd.DataFrame, str]:
        import json

        import pandas as pd

        split = self.split(name)
        terms = [json.dumps(t) for t in split.key_terms]
        return pd.DataFrame({"document": split.documents, "summary": split.summaries, "key_terms": terms}), "summary"


TaskData = ClassificationData | SummarizationData


def read_frame(path: Path, fmt: str, field: str) -> pd.DataFrame:
    import pandas as pd

    if not path.exists():
        raise DataError(f"{field}: file not found: {path}")
    if fmt == "auto":
        fmt = "disk" if path.is_dir() else _FORMATS.get(path.suffix.lower(), "")
        if not fmt:
            raise DataError(f"{field}: cannot tell the format of {path}; set dataset.format to csv, jsonl, parquet or disk")
    try:
        if fmt == "csv":
            return pd.read_csv(path, encoding="utf-8-sig")  # -sig: a leading byte-order mark is not part of the first column's name
        if fmt == "jsonl":
            return _read_jsonl(path)
        if fmt == "parquet":
            return pd.read_parquet(path)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not valid UTF-8 (byte {exc.start})") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: dataset is empty") from None
    except ValueError as exc:
        raise DataError(f"{path}: cannot parse as {fmt}: {str(exc).splitlines()[0]}") from None
    raise DataError(f"{field}: format '{fmt}' needs a `datasets` directory or hub name, not the file {path}")


def _read_jsonl(path: Path) -> pd.DataFrame:
    """One JSON object per line; a malformed line is an error naming its number (blank lines are skipped)."""
    import pandas as pd

    records = []
    with path.open(encoding="utf-8-sig") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}: line {number} is not valid JSON ({exc.msg}, column {exc.colno})") from None
            if not isinstance(record, dict):
                raise DataError(f"{path}: line {number} is a JSON {type(record).__name__}, not an object with the dataset's columns")
            records.append(record)
    if not records:
        raise pd.errors.EmptyDataError
    return pd.DataFrame.from_records(records)


def _read_datasets(path: str, fmt: str) -> dict[str, pd.DataFrame]:
    """A `datasets` directory (`load_from_disk`) or a hub name, as one frame per split."""
    import datasets

    try:
        if fmt == "hub":
            loaded: Any = datasets.load_dataset(path)
        else:
            loaded = datasets.load_from_disk(path)
    except FileNotFoundError:
        raise DataError(f"dataset.path: not a `datasets` directory: {path}") from None
    except Exception as exc:  # the hub raises many kinds; all mean "cannot get it here"
        raise DataError(f"dataset.path: cannot load '{path}' ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    if isinstance(loaded, datasets.DatasetDict):
        return {name: ds.to_pandas() for name, ds in loaded.items()}  # type: ignore[misc]
    return {"all": loaded.to_pandas()}


def _frames(cfg: DatasetConfig, base_dir: Path) -> dict[str, tuple[pd.DataFrame, str]]:
    def local(p: str) -> Path:
        path = Path(p).expanduser()
        return path if path.is_absolute() or path.exists() else base_dir / path

    if cfg.splits:
        return {name: (read_frame(local(p), cfg.format, f"dataset.splits.{name}"), str(local(p))) for name, p in cfg.splits.items()}
    if cfg.path.startswith("demo:"):
        folder = demo_dataset_dir(cfg.path[len("demo:") :])
        return {s: (read_frame(folder / f"{s}.csv", "csv", "dataset.path"), str(folder / f"{s}.csv")) for s in SPLITS}
    if cfg.path.startswith(RUN_ARTIFACT_SCHEME):
        return _run_artifact_frames(cfg.path)
    if cfg.path.startswith("hub:") or cfg.format == "hub":
        name = cfg.path.removeprefix("hub:")
        return {k: (v, f"{name}/{k}") for k, v in _read_datasets(name, "hub").items()}
    path = local(cfg.path)
    if cfg.format in ("auto", "csv") and all((path / f"{s}.csv").is_file() for s in SPLITS):  # e.g. a copy of `augment`'s output
        return {s: (read_frame(path / f"{s}.csv", "csv", "dataset.path"), str(path / f"{s}.csv")) for s in SPLITS}
    if cfg.format == "disk" or (cfg.format == "auto" and path.is_dir()):
        return {k: (v, f"{path}/{k}") for k, v in _read_datasets(str(path), "disk").items()}
    return {"all": (read_frame(path, cfg.format, "dataset.path"), str(path))}


def _run_artifact_frames(uri: str) -> dict[str, tuple[pd.DataFrame, str]]:
    """The three split CSVs logged to a run (`runs:/<run_id>/augmented`, from `augment`), read from a temporary download."""
    import tempfile

    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException

    run_id, _, artifact_path = uri[len(RUN_ARTIFACT_SCHEME) :].strip("/").partition("/")
    if not run_id or not artifact_path:
        raise DataError(f"dataset.path: '{uri}' is not a run artifact URI; expected runs:/<run_id>/augmented")
    with tempfile.TemporaryDirectory(prefix="mlops-data-") as tmp:
        try:
            folder = Path(download_artifacts(run_id=run_id, artifact_path=artifact_path, dst_path=tmp))
        except (MlflowException, OSError) as exc:
            raise DataError(f"dataset.path: cannot download '{uri}' ({str(exc).splitlines()[0]})") from None
        missing = [f"{s}.csv" for s in SPLITS if not (folder / f"{s}.csv").is_file()]
        if missing:
            raise DataError(f"dataset.path: '{uri}' has no {', '.join(missing)}; expected the `augmented` artifact of an augment run")
        return {s: (read_frame(folder / f"{s}.csv", "csv", "dataset.path"), f"{uri.rstrip('/')}/{s}.csv") for s in SPLITS}


def dataset_lineage(cfg: DatasetConfig) -> dict[str, str]:
    """Run tags naming the `augment` run a dataset came from (`runs:/<run_id>/augmented`); empty for any other dataset."""
    if not cfg.path.startswith(RUN_ARTIFACT_SCHEME):
        return {}
    run_id = cfg.path[len(RUN_ARTIFACT_SCHEME) :].strip("/").partition("/")[0]
    return {"mlops.augment_run_id": run_id, "mlops.dataset_uri": cfg.path}


def write_task_data(data: TaskData, cfg: DatasetConfig, folder: Path) -> None:
    """Write each split to `<folder>/<split>.csv` under the config's column names, so that `dataset.path`
    (that folder, or the run artifact it was logged as) reads it back with the same config."""
    import json

    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    for name in SPLITS:
        columns: dict[str, list[Any]]
        if isinstance(data, ClassificationData):
            split = data.split(name)
            columns = {cfg.text_column: split.texts, cfg.label_column: [data.label_names[i] for i in split.labels]}
        else:
            pairs = data.split(name)
            columns = {cfg.document_column: pairs.documents, cfg.summary_column: pairs.summaries}
            if cfg.key_terms_column is not None:
                columns[cfg.key_terms_column] = [json.dumps(t, ensure_ascii=False) for t in pairs.key_terms]
        pd.DataFrame(columns).to_csv(folder / f"{name}.csv", index=False)


def _check_columns(frame: pd.DataFrame, cfg: DatasetConfig, source: str, fields: tuple[str, ...]) -> None:
    for field in fields:
        column = getattr(cfg, field)
        if column is not None and column not in frame.columns:
            raise DataError(f"dataset.{field}: column '{column}' not in {source} (columns: {', '.join(map(str, frame.columns))})")


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
    frames = _frames(cfg, base_dir)
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
        frame = apply_row_rules(frame, cfg, where, source, input_field, target_field, report)
        if stratify:
            frame, trimmed = normalize_labels(frame, columns[1])
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
    units = resolve_text_tokenizer(cfg.text_tokenizer, [*map(str, train[cfg.document_column]), *map(str, train[cfg.summary_column])])
    report.text_tokenizer = units.mode
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
    report.text_tokenizer = resolve_text_tokenizer(cfg.text_tokenizer, map(str, named["train"][cfg.text_column])).mode
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
    if task == "summarization":
        return load_summarization_data(cfg, base_dir, seed)
    return load_classification_data(cfg, base_dir, seed)


@functools.cache
def _register_run_artifact_source() -> None:
    """Teach MLflow's dataset-source registry `runs:/<run_id>/<path>` (data read from an `augment` run's artifact),
    which it does not resolve itself, so that such splits keep that URI as their logged source."""
    from mlflow.artifacts import download_artifacts
    from mlflow.data.dataset_source import DatasetSource
    from mlflow.data.dataset_source_registry import register_dataset_source

    class RunArtifactDatasetSource(DatasetSource):
        def __init__(self, uri: str) -> None:
            self.uri = uri

        @staticmethod
        def _get_source_type() -> str:
            return "mlflow_run_artifact"

        def load(self, dst_path: str | None = None) -> str:
            return download_artifacts(artifact_uri=self.uri, dst_path=dst_path)

        @staticmethod
        def _can_resolve(raw_source: Any) -> bool:
            return isinstance(raw_source, str) and raw_source.startswith(RUN_ARTIFACT_SCHEME)

        @classmethod
        def _resolve(cls, raw_source: Any) -> RunArtifactDatasetSource:
            return cls(str(raw_source))

        def to_dict(self) -> dict[str, Any]:
            return {"uri": self.uri}

        @classmethod
        def from_dict(cls, source_dict: dict[Any, Any]) -> RunArtifactDatasetSource:
            return cls(source_dict["uri"])

    register_dataset_source(RunArtifactDatasetSource)  # type: ignore[arg-type]  # it takes the class; its hint says an instance


def log_dataset_inputs(data: TaskData, splits: tuple[str, ...] = SPLITS, context: str | None = None) -> None:
    """Record each split as an MLflow input (name + content digest) for lineage in the UI; the context is the
    split's name unless given (e.g. `augment_source` for the train split an augmented one was made from)."""
    import warnings

    import mlflow
    from mlflow.data.pandas_dataset import from_pandas

    _register_run_artifact_source()

    def dataset(name: str) -> Any:
        frame, target = data.frame(name)
        with warnings.catch_warnings():  # mlflow warns when a source is not a URI it knows
            warnings.simplefilter("ignore")
            return from_pandas(frame, source=data.split(name).source, name=f"{data.name}:{name}", targets=target)

    logged = [once_per_split(data.split(name), ("mlflow_dataset", data.name, name), lambda name=name: dataset(name)) for name in splits]  # type: ignore[misc]
    mlflow.log_inputs(logged, [context or name for name in splits], [None] * len(splits))  # one store call for all the splits


def split_digest(data: TaskData, split: str) -> str:
    """The digest MLflow records for this split as a dataset input (content only)."""
    from mlflow.data.digest_utils import compute_pandas_digest

    return once_per_split(data.split(split), ("digest", data.name, split), lambda: str(compute_pandas_digest(data.frame(split)[0])))


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
