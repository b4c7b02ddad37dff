"""Read one table from a file (CSV, JSONL, Parquet) or several, one per split, from a `datasets` directory or hub name.

Every problem is a `DataError` naming the config field or the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet"}


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


def read_datasets(path: str, fmt: str) -> dict[str, pd.DataFrame]:
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
