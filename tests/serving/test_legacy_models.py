"""Registered versions survive upgrades: models logged by an earlier release load and predict exactly as they did.

The fixtures under tests/fixtures/legacy_models were logged by that release (tests/fixtures/make_legacy_models.py):
their model-from-code files import that release's module paths, and the predictions they made then are recorded.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.helpers import TESTS

FIXTURES = TESTS / "fixtures" / "legacy_models"


@pytest.mark.parametrize("kind", ["classifier", "summarizer"])
def test_old_release_model_loads_and_predicts_as_recorded(kind: str, tmp_path: Path) -> None:
    import mlflow
    import pandas as pd

    model_dir = shutil.copytree(FIXTURES / kind, tmp_path / kind)  # loading must not depend on (or touch) the checked-in copy
    expected = json.loads((model_dir / "expected.json").read_text(encoding="utf-8"))
    model = mlflow.pyfunc.load_model(str(model_dir))
    predictions = model.predict(pd.DataFrame(expected["inputs"])).to_dict(orient="list")
    assert set(predictions) == set(expected["predictions"])
    for column, values in expected["predictions"].items():
        if isinstance(values[0], float):
            assert predictions[column] == pytest.approx(values, abs=1e-6), column
        else:
            assert predictions[column] == values, column
