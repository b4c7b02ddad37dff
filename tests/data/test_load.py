from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mlops.config import DatasetConfig
from mlops.data import load_classification_data
from mlops.errors import DataError
from tests.helpers import ROOT, write


def _frame(n: int = 60) -> pd.DataFrame:
    return pd.DataFrame({"msg": [f"message number {i}" for i in range(n)], "y": ["fraud" if i % 2 == 0 else "ok" for i in range(n)]})


def _cfg(path: Path | str, **kw: object) -> DatasetConfig:
    return DatasetConfig(path=str(path), text_column="msg", label_column="y", **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("suffix", ["csv", "jsonl", "parquet"])
def test_file_formats_load_and_split_reproducibly(tmp_path: Path, suffix: str) -> None:
    frame = _frame(200)
    path = tmp_path / f"d.{suffix}"
    {
        "csv": lambda: frame.to_csv(path, index=False),
        "jsonl": lambda: frame.to_json(path, orient="records", lines=True),
        "parquet": lambda: frame.to_parquet(path),
    }[suffix]()
    a = load_classification_data(_cfg(path), tmp_path, seed=1)
    b = load_classification_data(_cfg(path), tmp_path, seed=1)
    c = load_classification_data(_cfg(path), tmp_path, seed=2)
    assert a.label_names == ["fraud", "ok"]
    assert len(a.train) + len(a.validation) + len(a.test) == 200
    assert a.test.texts == b.test.texts and a.test.texts != c.test.texts
    assert not set(a.train.texts) & set(a.test.texts)


def test_datasets_directory_with_given_splits(tmp_path: Path) -> None:
    import datasets

    frame = _frame()
    dd = datasets.DatasetDict(
        {s: datasets.Dataset.from_pandas(frame.iloc[i::3].reset_index(drop=True)) for i, s in enumerate(["train", "validation", "test"])}
    )
    dd.save_to_disk(str(tmp_path / "ds"))
    data = load_classification_data(_cfg(tmp_path / "ds"), tmp_path, seed=0)
    assert len(data.train) == len(data.validation) == len(data.test) == 20
    assert data.test.texts[0] == "message number 2"


def test_packaged_demo_data() -> None:
    data = load_classification_data(DatasetConfig(path="demo:fraud"), Path("."), seed=0)
    # one training text also occurs in the test split: the data contract removes it from train, and counts it
    assert len(data.train) == 1399 and len(data.validation) == 200 and len(data.test) == 400
    assert data.report is not None and data.report.dropped()["cross_split_overlap"] == 1
    assert data.label_names == ["fraud", "legitimate"]
    unseen = set(data.test.texts) - set(data.train.texts)
    assert len(unseen) > len(set(data.test.texts)) / 2, "the test split should mostly hold texts training never shows"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"dataset.path: file not found: .*nope.csv"):
        load_classification_data(_cfg("nope.csv"), tmp_path, seed=0)


def test_missing_column(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "text,y\na,fraud\nb,ok\n")
    with pytest.raises(DataError, match=r"dataset.text_column: column 'msg' not in .*d.csv \(columns: text, y\)"):
        load_classification_data(_cfg(path), tmp_path, seed=0)


@pytest.mark.parametrize("content", ["", "msg,y\n"])
def test_empty_dataset(tmp_path: Path, content: str) -> None:
    path = write(tmp_path / "d.csv", content)
    with pytest.raises(DataError, match="d.csv: dataset is empty"):
        load_classification_data(_cfg(path), tmp_path, seed=0)


def test_single_class(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    _frame().assign(y="ok").to_csv(path, index=False)
    with pytest.raises(DataError, match=r"dataset.label_column: only one class \('ok'\)"):
        load_classification_data(_cfg(path), tmp_path, seed=0)


def test_non_utf8_data(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes("msg,y\ncaf\xe9,ok\nb,fraud\n".encode("latin-1"))
    with pytest.raises(DataError, match="d.csv: not valid UTF-8"):
        load_classification_data(_cfg(path), tmp_path, seed=0)


def test_demo_data_is_reproducible_from_its_script(tmp_path: Path) -> None:
    import subprocess
    import sys

    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_demo_data.py"), "--out-dir", str(tmp_path)], check=True, capture_output=True
    )
    for split in ("train", "validation", "test"):
        assert (tmp_path / f"{split}.csv").read_bytes() == (ROOT / "mlops" / "data" / "demo" / "fraud" / f"{split}.csv").read_bytes()
