"""Summary scores by hand: ROUGE on known strings, the demo data's key-term column, and key-term recall."""

from __future__ import annotations

import math

import pytest

from mlops.data import key_terms
from mlops.evaluate import key_term_recall, rouge
from tests.helpers import legal_rows


def test_rouge_on_known_strings() -> None:
    means, per_example = rouge(["the cat sat on the mat"], ["the cat sat on the mat"])
    assert means == {"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0}
    assert per_example == [1.0]
    means, per_example = rouge(["alpha beta gamma", "the cat sat"], ["delta epsilon zeta", "the cat sat"])
    assert means["rougeL"] == pytest.approx(0.5)
    assert per_example == [0.0, 1.0]
    assert rouge(["payments"], ["payment"])[0]["rouge1"] == 1.0  # stemmed
    with pytest.raises(ValueError, match="differ in length"):
        rouge(["a"], ["a", "b"])


def test_key_terms_parse_the_demo_column() -> None:
    assert key_terms('["Bluestone plc", "2%"]') == ["Bluestone plc", "2%"]
    assert key_terms(["a", "b"]) == ["a", "b"]
    assert key_terms("") == []
    with pytest.raises(ValueError, match="key_terms"):
        key_terms("Bluestone plc, 2%")
    assert all(key_terms(row["key_terms"]) for row in legal_rows("test", n=100))


def test_key_term_recall_by_hand() -> None:
    predictions = ["BLUESTONE  plc must pay £780,000.", "No terms here.", "Due within 18\nmonths."]
    terms = [["Bluestone plc", "£780,000", "18 months"], [], ["within 18 months"]]
    mean, per_example = key_term_recall(predictions, terms)
    assert per_example[0] == pytest.approx(2 / 3)
    assert math.isnan(per_example[1])  # no key terms: not scored
    assert per_example[2] == 1.0
    assert mean == pytest.approx((2 / 3 + 1) / 2)
