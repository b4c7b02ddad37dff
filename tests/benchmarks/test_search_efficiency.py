"""The tabular search benchmark: the committed table is complete, and its replay through Optuna prints every method,
the seed's claim, the winner's curse and the P4 line last."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT

TABLE = ROOT / "benchmarks" / "data" / "search_table.json"
SCRIPT = ROOT / "benchmarks" / "search_efficiency.py"
INTERVAL = r"(\d+\.\d+|inf) \[(\d+\.\d+|inf), (\d+\.\d+|inf)\]"


def test_the_committed_table_covers_the_grid() -> None:
    table = json.loads(TABLE.read_text())
    assert len(table["points"]) >= 48 and table["epochs"] >= 4 and len(table["seeds"]) == 3
    keys = {tuple(sorted(p["params"].items())) for p in table["points"]}
    assert len(keys) == len(table["points"]), "every grid point once"
    for point in table["points"]:
        curves = list(point["curves"].values())
        assert len(curves) == 3 and all(len(c) == table["epochs"] for c in curves)
        assert all(0.0 <= v <= 1.0 for c in curves for v in c)
    finals = {round(sum(c[-1] for c in p["curves"].values()) / 3, 4) for p in table["points"]}
    assert len(finals) > 10, "the grid's points must differ, or there is nothing to search"


def test_replay_prints_every_method_and_the_p4_line_last(tmp_path: Path) -> None:
    out_json = tmp_path / "result.json"
    args = ["--seeds", "3", "--gp-seeds", "1", "--pruners", "none", "hyperband", "--out", str(out_json)]
    done = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    rows = {line.split("|")[1].strip(): line for line in lines if re.match(r"\| \w+\+\w+ \|", line)}
    assert set(rows) == {f"{s}+{p}" for s in ("grid", "random", "tpe", "gp", "cmaes", "qmc") for p in ("none", "hyperband")}
    for method, line in rows.items():
        assert len(re.findall(INTERVAL, line)) == 5, line  # to best, to within 0.5 points, regret at 10/25/50 %
        assert line.split("|")[2].strip() == ("1" if method.startswith("gp") else "3")
    assert any(line.startswith("seed claim") and re.search(INTERVAL, line) for line in lines)
    assert any(line.startswith("winner's curse") for line in lines)
    assert re.fullmatch(r"P4 tpe\+hyperband compute-to-best / grid: " + INTERVAL, lines[-1]), lines[-1]
    result = json.loads(out_json.read_text())
    _, low, high = result["results"]["tpe+hyperband"]["to_best"]
    assert low <= high
    curse = result["winners_curse"]
    assert 0.0 <= curse["confirmed_below_best"] <= 1.0 and curse["plain_gap"][0] >= 0.0
