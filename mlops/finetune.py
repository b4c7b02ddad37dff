"""One fine-tuning run: log its inputs, train a LoRA adapter, log curves, metrics and the adapter."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.config import ExperimentConfig, TrainingConfig
from mlops.errors import ConfigError

if TYPE_CHECKING:
    from mlops.data import ClassificationData
    from mlops.models import ModelSource
    from mlops.promotion import PromotionPolicy
    from mlops.training import FinetuneResult, Reporter


@dataclass
class Prepared:
    """What a training run needs, loaded and checked before any MLflow run exists."""

    data: ClassificationData
    source: ModelSource
    tokenizer: Any
    policy: PromotionPolicy | None


def prepare(config: ExperimentConfig, promote: bool) -> Prepared:
    """Everything that can fail on bad input, done before any MLflow run exists."""
    from mlops.data import load_classification_data
    from mlops.models import resolve_source
    from mlops.promotion import load_policy

    base_dir = Path(config.source_file).parent
    policy = None
    if promote:
        policy = load_policy(config.registry.policy, base_dir)
        if policy.model_name != config.registry.model_name:
            raise ConfigError(
                f"registry.model_name '{config.registry.model_name}' does not match the policy's model_name '{policy.model_name}'",
                source=policy.source_file,
            )
    source = resolve_source(config.model.source)
    tokenizer = source.load_tokenizer()
    data = load_classification_data(config.dataset, base_dir, config.training.seed)
    return Prepared(data, source, tokenizer, policy)


def train_and_log(
    config: ExperimentConfig, hp: TrainingConfig, prepared: Prepared, out_dir: Path, reporter: Reporter | None = None
) -> FinetuneResult:
    """Train under the active MLflow run, recording params, dataset inputs, environment, metrics and the adapter.

    Exceptions propagate: the caller's `mlops.runs.ended` tags the run and ends it.
    """
    import mlflow

    from mlops.data import log_dataset_inputs
    from mlops.environment import log_environment
    from mlops.runs import log_params_effective
    from mlops.training import finetune, hyperparameters_as_params

    errors = hp.check("training")
    if errors:
        raise ConfigError(errors)
    log_params_effective({**hyperparameters_as_params(hp), "model_source": config.model.source, "config": config.name})
    log_dataset_inputs(prepared.data)
    log_environment()
    result = finetune(
        config, hp, prepared.data, prepared.source, prepared.tokenizer, out_dir, reporter=reporter, metric=config.search.metric
    )
    mlflow.log_metrics(  # validation metrics are already in as curves; their last point is the final value
        {
            **result.test,
            "trainable_params": result.trainable_params,
            "total_params": result.total_params,
            "train_seconds": result.train_seconds,
        }
    )
    mlflow.log_dict(result.confusion, "confusion_matrix.json")
    mlflow.log_artifacts(str(result.adapter_dir), "adapter")
    return result


def run_finetune(config: ExperimentConfig) -> str:
    """The `finetune` entry point: one run with the config's (overridden) hyperparameters; returns its run id."""
    import tempfile

    from mlops.runs import entry_run
    from mlops.serving import log_adapter_model

    prepared = prepare(config, promote=False)
    with (
        entry_run(config.mlflow_experiment, f"finetune-{config.name}", tags={"mlops.entry_point": "finetune"}) as run,
        tempfile.TemporaryDirectory(prefix="mlops-ft-") as tmp,
    ):
        result = train_and_log(config, config.training, prepared, Path(tmp) / "adapter")
        log_adapter_model(result.adapter_dir, example_texts=prepared.data.test.texts)
    print(f"run {run.info.run_id}: " + ", ".join(f"{k}={v:.4f}" for k, v in {**result.validation, **result.test}.items()))
    run_id: str = run.info.run_id
    return run_id
