"""The `evaluate` and `promote` entry points: score a model on the test split; gate and move an alias."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlops.config import ExperimentConfig
from mlops.errors import ConfigError, RegistryError

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

    from mlops.promotion import GateReport, PromotionPolicy


def run_evaluate(config: ExperimentConfig, model_uri: str | None) -> dict[str, float]:
    """Load a pyfunc model, predict the test split and log `test_*` metrics to a new run: F1 and a
    confusion matrix for classification, ROUGE and key-term recall plus a predictions table for
    summarisation; and the per-example scores the champion/challenger comparison resamples."""
    from pathlib import Path

    import mlflow
    import pandas as pd

    from mlops.data import ClassificationData, load_task_data, log_dataset_inputs
    from mlops.environment import log_environment
    from mlops.promotion import PER_EXAMPLE_ARTIFACT, classification_per_example, load_policy, summarization_per_example
    from mlops.runs import entry_run

    if model_uri is None:  # the alias a sweep gates its best version for (staging)
        alias = load_policy(config.registry.policy, Path(config.source_file).parent).after_sweep
        model_uri = f"models:/{config.registry.model_name}@{alias}"
    uri = model_uri
    data = load_task_data(config.task, config.dataset, Path(config.source_file).parent, config.training.seed)
    try:
        model = mlflow.pyfunc.load_model(uri)
    except mlflow.exceptions.MlflowException as exc:
        raise RegistryError(f"model-uri: cannot load {uri}: {str(exc).splitlines()[0]}") from None
    with entry_run(config.mlflow_experiment, f"evaluate-{config.name}", tags={"mlops.entry_point": "evaluate", "model_uri": uri}):
        log_dataset_inputs(data, ("test",))
        log_environment()
        if isinstance(data, ClassificationData):
            from mlops.metrics import classification_scores, confusion

            output = model.predict(pd.DataFrame({"text": data.test.texts}))
            index = {name: i for i, name in enumerate(data.label_names)}
            predictions = [index.get(label, -1) for label in output["label"]]
            scores = classification_scores(predictions, data.test.labels, "test")
            mlflow.log_dict(confusion(predictions, data.test.labels, data.label_names), "confusion_matrix.json")
            mlflow.log_dict(classification_per_example(data, predictions), PER_EXAMPLE_ARTIFACT)
        else:
            from mlops.summarization import key_term_recall, rouge

            n = config.generation.eval_examples or len(data.test)
            documents, references = data.test.documents[:n], data.test.summaries[:n]
            summaries = model.predict(pd.DataFrame({"document": documents}))["summary"].astype(str).tolist()
            rouge_scores, per_example = rouge(summaries, references)
            scores = {f"test_{k}": v for k, v in rouge_scores.items()}
            values = {"test_rougeL": per_example}
            if any(data.test.key_terms[:n]):
                scores["test_key_term_recall"], values["test_key_term_recall"] = key_term_recall(summaries, data.test.key_terms[:n])
            mlflow.log_dict(summarization_per_example(data, values), PER_EXAMPLE_ARTIFACT)
            rows = config.generation.table_rows
            table = {"document": documents, "reference": references, "prediction": summaries, "rougeL": per_example}
            mlflow.log_table({k: v[:rows] for k, v in table.items()}, "predictions.json")
        mlflow.log_metrics(scores)
    return scores


def _pick_version(client: MlflowClient, policy: PromotionPolicy, alias: str, version: str | None) -> ModelVersion:
    """`version`, else the holder of the alias's `candidate_from` (default: the sweep's alias, staging, for any other
    alias), else the latest version."""
    from mlflow.exceptions import MlflowException

    from mlops.promotion import alias_holder, registered_model

    name = policy.model_name
    registered_model(client, name)
    try:
        if version is not None:
            return client.get_model_version(name, version)
        source = policy.for_alias(alias).candidate_from or (policy.after_sweep if alias != policy.after_sweep else None)
        if source is not None:
            holder = alias_holder(client, name, source)
            if holder is None:
                raise RegistryError(f"{name}: no version holds '{source}' (the candidate for '{alias}'); pass --version")
            return holder
        versions = client.search_model_versions(f"name='{name}'", order_by=["version_number DESC"], max_results=1)
    except MlflowException as exc:
        raise RegistryError(f"{name}: {str(exc).splitlines()[0]}") from None
    if not versions:
        raise RegistryError(f"{name}: no registered versions; run the sweep first")
    return versions[0]


def run_promote(config: ExperimentConfig, alias: str, version: str | None, legacy_stage: bool = False) -> GateReport:
    """Apply `alias`'s gates from the model's policy to one version; raises `GateFailed` without moving anything.

    `legacy_stage` also sets the deprecated registry stage (for servers that read stages, not aliases).
    """
    from pathlib import Path

    from mlflow import MlflowClient

    from mlops.promotion import load_policy, promote_if_gates_pass

    policy = load_policy(config.registry.policy, Path(config.source_file).parent)
    if policy.model_name != config.registry.model_name:
        raise ConfigError(
            f"registry.model_name '{config.registry.model_name}' does not match the policy's model_name '{policy.model_name}'",
            source=policy.source_file,
        )
    policy.for_alias(alias)  # unknown alias: fail before touching the registry
    if legacy_stage:
        policy.legacy_stage(alias)
    client = MlflowClient()
    candidate = _pick_version(client, policy, alias, version)
    return promote_if_gates_pass(client, policy, candidate, alias, legacy_stage=legacy_stage)
