"""The tabular search benchmark's committed table covers its grid (benchmarks/search_efficiency.py replays it)."""

from __future__ import annotations

import json

from tests.helpers import ROOT

TABLE = ROOT / "benchmarks" / "data" / "search_table.json"


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
