"""One fine-tuning run: log its inputs, train a LoRA adapter, log curves, metrics and the adapter."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.config import ExperimentConfig, TrainingConfig
from mlops.data import PairSplit, SummarizationData
from mlops.errors import ConfigError

# Decoding settings logged as params of a summarisation run (each may be a trial's suggestion).
_LOGGED_GENERATION = ("decoding", "temperature", "top_p", "num_beams", "max_new_tokens", "max_document_tokens", "max_summary_tokens")

if TYPE_CHECKING:
    from mlops.config import GenerationConfig
    from mlops.data import TaskData
    from mlops.models import ModelSource
    from mlops.promotion import PromotionPolicy
    from mlops.training import FinetuneResult, Reporter


@dataclass
class Prepared:
    """What a training run needs, loaded and checked before any MLflow run exists."""

    data: TaskData
    source: ModelSource
    tokenizer: Any
    policy: PromotionPolicy | None


def prepare(config: ExperimentConfig, promote: bool) -> Prepared:
    """Everything that can fail on bad input, done before any MLflow run exists."""
    from mlops.augment import build_augmenters, methods_in_use
    from mlops.data import load_task_data
    from mlops.models import resolve_source
    from mlops.promotion import load_policy
    from mlops.structure import preflight

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
    preflight(config, source)  # structure options the architecture cannot take (e.g. head pruning on LLaMA)
    data = load_task_data(config.task, config.dataset, base_dir, config.training.seed)
    methods = methods_in_use(config)
    if methods:  # a missing WordNet database or translation model fails here, not in a trial
        build_augmenters(config.augment, methods)
    if isinstance(data, SummarizationData):  # token budgets are checked on the real data, before any run starts
        from mlops.summarization import encode_pairs

        gen = config.generation
        encode_pairs(tokenizer, data.train.documents, data.train.summaries, gen.template, gen.max_document_tokens, gen.max_summary_tokens)
    return Prepared(data, source, tokenizer, policy)


def train_and_log(
    config: ExperimentConfig,
    hp: TrainingConfig,
    prepared: Prepared,
    out_dir: Path,
    reporter: Reporter | None = None,
    generation: GenerationConfig | None = None,
) -> FinetuneResult:
    """Train under the active MLflow run, recording params, dataset inputs, environment, metrics and the adapter.

    `generation` (summarisation) overrides the config's decoding settings, e.g. with a trial's.
    Exceptions propagate: the caller's `mlops.runs.ended` tags the run and ends it.
    """
    import mlflow

    from mlops.data import dataset_lineage, log_dataset_inputs
    from mlops.environment import log_environment
    from mlops.promotion import RESOLVED_CONFIG_ARTIFACT
    from mlops.reproduce import resolved_config
    from mlops.runs import is_main_process, log_params_effective, world_size
    from mlops.training import finetune, hyperparameters_as_params

    gen = generation or config.generation
    errors = hp.check("training") + (gen.check("generation") if config.task == "summarization" else [])
    if errors:
        raise ConfigError(errors)
    main = is_main_process()  # the other ranks of a distributed launch train alongside rank 0 and log nothing
    params = {**hyperparameters_as_params(hp), "model_source": config.model.source, "config": config.name}
    params |= {"world_size": world_size(), "effective_batch_size": world_size() * hp.batch_size * hp.gradient_accumulation_steps}
    if config.task == "summarization":
        params |= {k: v for k, v in asdict(gen).items() if k in _LOGGED_GENERATION and v is not None}
    if main:
        log_params_effective(params)
        mlflow.log_dict(resolved_config(config, hp, gen), RESOLVED_CONFIG_ARTIFACT)  # what `mlops reproduce` re-runs
        # a base model from an earlier run (`pretrain`) or a dataset from one (`augment`) names that run
        mlflow.set_tags({**prepared.source.lineage(), **dataset_lineage(config.dataset)})
    if config.augment.methods:  # the train split, augmented with this run's (a trial's) settings; logged even at multiplier 0
        from mlops.augment import augment_training_data, log_augmentation

        seed = hp.seed if config.augment.seed is None else config.augment.seed
        outcome = augment_training_data(prepared.data, config.augment, seed)  # every rank: they must see the same data
        if main:
            log_augmentation(outcome)
        prepared = replace(prepared, data=outcome.data)
    if main:
        log_dataset_inputs(prepared.data)
        log_environment()
    if isinstance(prepared.data, SummarizationData):
        from mlops.summarizer import finetune_summarizer

        result = finetune_summarizer(
            config, hp, gen, prepared.data, prepared.source, prepared.tokenizer, out_dir, reporter=reporter, metric=config.search.metric
        )
    else:
        result = finetune(
            config, hp, prepared.data, prepared.source, prepared.tokenizer, out_dir, reporter=reporter, metric=config.search.metric
        )
    if not main:
        return result
    mlflow.log_metrics(  # validation metrics are already in as curves; their last point is the final value
        {
            **result.test,
            **result.metrics,
            "trainable_params": result.trainable_params,
            "total_params": result.total_params,
            "train_seconds": result.train_seconds,
        }
    )
    for name, document in result.documents.items():
        mlflow.log_dict(document, name)
    for name, table in result.tables.items():
        mlflow.log_table(table, name)
    mlflow.log_artifacts(str(result.adapter_dir), "adapter")
    return result


def run_finetune(config: ExperimentConfig) -> str:
    """The `finetune` entry point: one run with the config's (overridden) hyperparameters; returns its run id."""
    import tempfile

    from mlops.runs import entry_run, is_main_process
    from mlops.serving import log_adapter_model

    prepared = prepare(config, promote=False)
    if not is_main_process():  # another rank of a distributed launch (accelerate, torchrun): it trains, rank 0 logs the one run
        with tempfile.TemporaryDirectory(prefix="mlops-ft-") as tmp:
            train_and_log(config, config.training, prepared, Path(tmp) / "adapter")
        return ""
    with (
        entry_run(config.mlflow_experiment, f"finetune-{config.name}", tags={"mlops.entry_point": "finetune"}) as run,
        tempfile.TemporaryDirectory(prefix="mlops-ft-") as tmp,
    ):
        result = train_and_log(config, config.training, prepared, Path(tmp) / "adapter")
        test = prepared.data.test
        log_adapter_model(result.adapter_dir, example_texts=test.documents if isinstance(test, PairSplit) else test.texts)
    print(f"run {run.info.run_id}: " + ", ".join(f"{k}={v:.4f}" for k, v in {**result.validation, **result.test}.items()))
    run_id: str = run.info.run_id
    return run_id
