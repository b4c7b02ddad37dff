"""Gate decisions (pure): thresholds, policy validation, and the paired bootstrap that compares a challenger with
the champion on per-example scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score

from mlops.errors import ConfigError, SplitMismatch
from mlops.evaluate import PerExampleScores, classification_scores
from mlops.registry import AliasPolicy, Compare, Gate, decide, load_policy, metric_on_weights, paired_bootstrap
from tests.helpers import CHAMPION, CLEARLY_BETTER, LABELS, MARGINALLY_BETTER, policy_for, scores_with, write


def test_threshold_pass_and_fail() -> None:
    rules = policy_for().aliases["staging"]
    assert decide("staging", rules, {"test_f1": 0.51}, {}).passed
    report = decide("staging", rules, {"test_f1": 0.49}, {})
    assert not report.passed and "test_f1=0.4900 >= 0.5: FAIL" in report.summary()
    assert not decide("staging", rules, {}, {}).passed, "a missing metric must fail the gate"


def test_not_worse_than_current_holder() -> None:
    rules = AliasPolicy([Gate("test_f1", min=0.9, not_worse_than="production")])
    assert decide("production", rules, {"test_f1": 0.93}, {"production": None}).passed
    assert decide("production", rules, {"test_f1": 0.93}, {"production": {"test_f1": 0.92}}).passed
    worse = decide("production", rules, {"test_f1": 0.93}, {"production": {"test_f1": 0.95}})
    assert not worse.passed and "not worse than production (0.9500): FAIL" in worse.summary()


def test_policy_problems_are_all_reported_with_their_key_path(tmp_path: Path) -> None:
    bad = write(
        tmp_path / "p.yaml",
        "model_name: m\nafter_sweep: stagin\naliases:\n  staging:\n    gates:\n      - {metric: test_f1, min: 1.2}\n"
        "      - {metric: test_acuracy, min: 0.5}\n  production:\n    candidate_from: production\n    gates:\n"
        "      - {metric: test_loss, max: 0.3}\n    compare: {rule: non_inferiority, confidence: 1.5, n_bootstrap: 10}\n",
    )
    with pytest.raises(ConfigError) as info:
        load_policy(str(bad))
    assert sorted(info.value.errors) == [
        "after_sweep: unknown alias 'stagin'; policy defines: staging, production",
        "aliases.production.candidate_from: must name another alias of this policy, got 'production'",
        "aliases.production.compare.confidence: must be in [0.5, 1), got 1.5",
        "aliases.production.compare.margin: non_inferiority needs a margin > 0 (how much worse is still acceptable)",
        "aliases.production.compare.n_bootstrap: must be >= 100, got 10",
        "aliases.production.compare: none of the gated metrics has per-example scores; name them in compare.metrics",
        "aliases.staging.gates[0].min: 1.2 is outside the range of test_f1 [0.0, 1.0]",
        "aliases.staging.gates[1].metric: unknown metric 'test_acuracy' (did you mean 'test_exact_match'?)",
    ]


def test_vectorised_macro_scores_match_scikit_learn_on_resamples() -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, 50).tolist()
    predictions = [y if rng.random() < 0.6 else int(rng.integers(0, 3)) for y in labels]
    scores = PerExampleScores("classification", "d", [str(i) for i in range(50)], labels, predictions, ["a", "b", "c"])
    indices = rng.integers(0, 50, size=(20, 50))
    weights = np.stack([np.bincount(row, minlength=50) for row in indices]).astype(float)
    for metric, reference in (("test_f1", f1_score), ("test_precision", precision_score), ("test_recall", recall_score)):
        ours = metric_on_weights(scores, metric, weights)
        theirs = [reference([labels[i] for i in row], [predictions[i] for i in row], average="macro", zero_division=0) for row in indices]
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)


def test_paired_bootstrap_is_deterministic_and_the_interval_decides() -> None:
    champion = scores_with(CHAMPION)
    same_seed = Compare(n_bootstrap=1000, seed=7)
    clear = paired_bootstrap(scores_with(CLEARLY_BETTER), champion, "test_f1", same_seed)
    assert clear == paired_bootstrap(scores_with(CLEARLY_BETTER), champion, "test_f1", same_seed), "same seed, same CI"
    assert clear.champion == pytest.approx(classification_scores(champion.predictions, LABELS, "test")["test_f1"], abs=1e-12)
    assert clear.delta == pytest.approx(0.2, abs=0.01) and 0.1 < clear.low < clear.delta < clear.high < 0.3

    marginal = paired_bootstrap(scores_with(MARGINALLY_BETTER), champion, "test_f1", Compare(n_bootstrap=1000, seed=7))
    assert marginal.delta > 0 and marginal.low < 0 < marginal.high, "better on the point estimate, yet not significantly"
    assert marginal.low > -0.05, "but within a 0.05 non-inferiority margin"
    other_seed = paired_bootstrap(scores_with(MARGINALLY_BETTER), champion, "test_f1", Compare(n_bootstrap=1000, seed=8))
    assert (other_seed.low, other_seed.high) != (marginal.low, marginal.high) and other_seed.delta == marginal.delta

    with pytest.raises(SplitMismatch, match="test splits differ"):
        paired_bootstrap(scores_with(CLEARLY_BETTER, digest="other"), champion, "test_f1")


def test_summary_metrics_resample_as_means_ignoring_unscored_examples() -> None:
    values = {"test_key_term_recall": [1.0, float("nan"), 0.0, 0.5]}
    scores = PerExampleScores("summarization", "d", ["a", "b", "c", "d"], values=values)
    weights = np.array([[1.0, 1.0, 1.0, 1.0], [0.0, 4.0, 0.0, 0.0], [2.0, 0.0, 0.0, 2.0]])
    np.testing.assert_allclose(metric_on_weights(scores, "test_key_term_recall", weights), [0.5, np.nan, 0.75])
    assert PerExampleScores.from_document(json.loads(json.dumps(scores.to_document()))).values["test_key_term_recall"][0] == 1.0
