"""The packaged Chinese demo sets come from their script, and every key term is in its clause and its summary."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT

DEMO = ROOT / "mlops" / "data" / "demo"


def test_chinese_demo_data_is_reproducible_from_its_script(tmp_path: Path) -> None:
    script = ROOT / "scripts" / "make_chinese_data.py"
    subprocess.run([sys.executable, str(script), "--out", str(tmp_path)], check=True, capture_output=True)
    for name in ("fraud-zh", "legal-zh"):
        for split in ("train", "validation", "test"):
            assert (tmp_path / name / f"{split}.csv").read_bytes() == (DEMO / name / f"{split}.csv").read_bytes(), (name, split)


def test_every_chinese_key_term_is_in_its_clause_and_summary_and_no_clause_repeats() -> None:
    seen: set[str] = set()
    for split in ("train", "validation", "test"):
        with (DEMO / "legal-zh" / f"{split}.csv").open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                terms = json.loads(row["key_terms"])
                assert len(terms) >= 4 and all(t in row["document"] and t in row["summary"] for t in terms), row
                assert row["document"] not in seen
                seen.add(row["document"])
    with (DEMO / "fraud-zh" / "train.csv").open(newline="", encoding="utf-8") as fh:
        assert {row["label"] for row in csv.DictReader(fh)} == {"诈骗", "正常"}
