from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import LEGAL, ROOT

SPLITS = {"train": 400, "validation": 80, "test": 80}


def _rows(split: str) -> list[dict[str, str]]:
    with (LEGAL / f"{split}.csv").open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _normalised(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def test_legal_data_is_reproducible_from_its_script(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_legal_data.py"), "--out", str(tmp_path)], check=True, capture_output=True)
    for split in SPLITS:
        assert (tmp_path / f"{split}.csv").read_bytes() == (LEGAL / f"{split}.csv").read_bytes()


@pytest.mark.parametrize("split", SPLITS)
def test_columns_and_sizes(split: str) -> None:
    with (LEGAL / f"{split}.csv").open(newline="", encoding="utf-8") as fh:
        assert next(csv.reader(fh)) == ["document", "summary", "key_terms"]
    assert len(_rows(split)) == SPLITS[split]


@pytest.mark.parametrize("split", SPLITS)
def test_every_key_term_is_in_its_document_and_summary(split: str) -> None:
    for row in _rows(split):
        terms = json.loads(row["key_terms"])
        assert len(terms) >= 3 and all(isinstance(t, str) and t for t in terms), row
        missing = [t for t in terms if t not in row["document"] or t not in row["summary"]]
        assert not missing, f"{missing} not verbatim in {row}"


def test_splits_are_disjoint_by_normalised_document() -> None:
    seen: dict[str, str] = {}
    for split in SPLITS:
        for row in _rows(split):
            key = _normalised(row["document"])
            assert key not in seen, f"document in both {seen[key]} and {split}: {row['document']!r}"
            seen[key] = split


def test_held_out_splits_use_words_training_never_shows() -> None:
    train_words = {w for row in _rows("train") for w in _normalised(row["document"]).split()}
    for split in ("validation", "test"):
        rows = _rows(split)
        novel = [row for row in rows if set(_normalised(row["document"]).split()) - train_words]
        assert len(novel) > len(rows) / 2, f"{split}: most documents should hold names or wording the training split never shows"
