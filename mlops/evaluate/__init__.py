"""Evaluation: metrics as plain functions (F1, ROUGE, key-term recall), per-example scores for the gates, batched
summary generation, the timing maths of the serving cost, and the cheap baselines a run is compared with. Nothing
here imports MLflow or Optuna."""

from mlops.evaluate.baselines import baseline_metrics, lead_baseline, tfidf_baseline
from mlops.evaluate.cost import latency_metrics, percentile, rate, time_each, time_side_by_side
from mlops.evaluate.generation import (
    DEFAULT_TEMPLATE,
    DecodingSettings,
    build_prompt,
    check_budget,
    decoding_settings,
    generate_one_by_one,
    generate_summaries,
    prompt_ids,
    token_ids,
)
from mlops.evaluate.metrics import (
    CLASSIFICATION_METRICS,
    ROUGE_TYPES,
    MacroF1,
    MacroPrecision,
    MacroRecall,
    Metric,
    classification_scores,
    confusion,
    key_term_recall,
    rouge,
)
from mlops.evaluate.per_example import (
    PerExampleScores,
    classification_per_example,
    example_ids,
    summarization_per_example,
)

__all__ = [
    "CLASSIFICATION_METRICS",
    "DEFAULT_TEMPLATE",
    "ROUGE_TYPES",
    "DecodingSettings",
    "MacroF1",
    "MacroPrecision",
    "MacroRecall",
    "Metric",
    "PerExampleScores",
    "baseline_metrics",
    "build_prompt",
    "check_budget",
    "classification_per_example",
    "classification_scores",
    "confusion",
    "decoding_settings",
    "example_ids",
    "generate_one_by_one",
    "generate_summaries",
    "key_term_recall",
    "latency_metrics",
    "lead_baseline",
    "percentile",
    "prompt_ids",
    "rate",
    "rouge",
    "summarization_per_example",
    "tfidf_baseline",
    "time_each",
    "time_side_by_side",
    "token_ids",
]
