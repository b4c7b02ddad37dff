"""The `evaluate` entry point: score a logged or registered model on the test split, with the per-example scores a
champion/challenger gate resamples."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlops.config import ExperimentConfig
from mlops.data import ClassificationData, load_task_data, log_data_report, log_dataset_inputs, text_tokenizer_of
from mlops.errors import RegistryError
from mlops.evaluate import classification_per_example, classification_scores, confusion, key_term_recall, rouge, summarization_per_example
from mlops.registry.policy import policy_for
from mlops.tracking import (
    CONFUSION_MATRIX_ARTIFACT,
    ENTRY_POINT_TAG,
    MODEL_URI_TAG,
    PER_EXAMPLE_ARTIFACT,
    PREDICTIONS_ARTIFACT,
    entry_run,
    log_environment,
)

if TYPE_CHECKING:
    pass


def run_evaluate(config: ExperimentConfig, model_uri: str | None) -> dict[str, float]:
    """Load a pyfunc model, predict the test split and log `test_*` metrics to a new run: F1 and a
    confusion matrix for classification, ROUGE and key-term recall plus a predictions table for
    summarisation; and the per-example scores the champion/challenger comparison resamples."""
    import warnings
    from pathlib import Path

    import mlflow
    import pandas as pd

    if model_uri is None:  # the alias a sweep gates its best version for (staging)
        alias = policy_for(config).after_sweep
        model_uri = f"models:/{config.registry.model_name}@{alias}"
    uri = model_uri
    data = load_task_data(config.task, config.dataset, Path(config.source_file).parent, config.training.seed)
    try:
        with warnings.catch_warnings():
            # Models logged by release 0.1.0 have an untyped `predict`, and MLflow asks for type hints when it loads one.
            # Nothing to act on: their signature, from the input example, still checks every input.
            warnings.filterwarnings("ignore", message=r"(\x1b\[\d+m)?Add type hints to the `predict` method", category=UserWarning)
            model = mlflow.pyfunc.load_model(uri)
    except mlflow.exceptions.MlflowException as exc:
        raise RegistryError(f"model-uri: cannot load {uri}: {str(exc).splitlines()[0]}") from None
    with entry_run(config.mlflow_experiment, f"evaluate-{config.name}", tags={ENTRY_POINT_TAG: "evaluate", MODEL_URI_TAG: uri}):
        log_dataset_inputs(data, ("test",))
        if data.report is not None:
            log_data_report(data.report)
        log_environment()
        if isinstance(data, ClassificationData):
            output = model.predict(pd.DataFrame({"text": data.test.texts}))
            index = {name: i for i, name in enumerate(data.label_names)}
            predictions = [index.get(label, -1) for label in output["label"]]
            scores = classification_scores(predictions, data.test.labels, "test")
            mlflow.log_dict(confusion(predictions, data.test.labels, data.label_names), CONFUSION_MATRIX_ARTIFACT)
            mlflow.log_dict(classification_per_example(data, predictions), PER_EXAMPLE_ARTIFACT)
        else:
            n = config.generation.eval_examples or len(data.test)
            documents, references = data.test.documents[:n], data.test.summaries[:n]
            summaries = model.predict(pd.DataFrame({"document": documents}))["summary"].astype(str).tolist()
            units = text_tokenizer_of(data)
            rouge_scores, per_example = rouge(summaries, references, units)
            scores = {f"test_{k}": v for k, v in rouge_scores.items()}
            values = {"test_rougeL": per_example}
            if any(data.test.key_terms[:n]):
                scores["test_key_term_recall"], values["test_key_term_recall"] = key_term_recall(summaries, data.test.key_terms[:n], units)
            mlflow.log_dict(summarization_per_example(data, values), PER_EXAMPLE_ARTIFACT)
            rows = config.generation.table_rows
            table = {"document": documents, "reference": references, "prediction": summaries, "rougeL": per_example}
            mlflow.log_table({k: v[:rows] for k, v in table.items()}, PREDICTIONS_ARTIFACT)
        mlflow.log_metrics(scores)
    return scores
