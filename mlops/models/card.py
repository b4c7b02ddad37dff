"""The adapter card: `mlops_model.json` beside an adapter's weights names its task, its base model source and
how to rebuild it (structure, labels, generation settings). Serving, export and evaluation read it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MODEL_CARD = "mlops_model.json"


def read_card(adapter_dir: Path) -> dict[str, Any]:
    card: dict[str, Any] = json.loads((adapter_dir / MODEL_CARD).read_text(encoding="utf-8"))
    return card


def write_card(adapter_dir: Path, card: dict[str, Any]) -> None:
    (adapter_dir / MODEL_CARD).write_text(json.dumps(card, indent=2), encoding="utf-8")
