"""Generate the packaged instruction demo dataset (`demo:instruction-qa`) from the legal demo clauses, in code.

Usage: python scripts/make_instruction_data.py [--out mlops/data/demo/instruction-qa]

Each row is a two-turn conversation (`messages`, JSON) about one clause of `demo:legal`, with a system turn: first
who the clause's first-named party is, then the amounts and deadlines it sets, answered with the clause's own key
terms (verbatim in the clause). The splits are the legal demo's, so no clause occurs in more than one split.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LEGAL = ROOT / "mlops" / "data" / "demo" / "legal"
DEFAULT_OUT = ROOT / "mlops" / "data" / "demo" / "instruction-qa"
SYSTEM = "You answer questions about contract clauses with the clause's own words, as briefly as possible."


def conversation(clause: str, terms: list[str]) -> list[dict[str, str]]:
    party, rest = terms[0], terms[2:] or terms[1:]
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"{clause}\n\nWhich party does this clause name first?"},
        {"role": "assistant", "content": party},
        {"role": "user", "content": "Which amounts and deadlines does it set?"},
        {"role": "assistant", "content": "; ".join(rest)},
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    for split in ("train", "validation", "test"):
        with (LEGAL / f"{split}.csv").open(encoding="utf-8", newline="") as f:
            rows = [conversation(r["document"], json.loads(r["key_terms"])) for r in csv.DictReader(f)]
        with (out / f"{split}.csv").open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["messages"])
            writer.writerows([json.dumps(turns, ensure_ascii=False)] for turns in rows)
        print(f"{split}: {len(rows)} conversations -> {out / f'{split}.csv'}")


if __name__ == "__main__":
    main()
