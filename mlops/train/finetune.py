"""One fine-tuning run: check everything before any run exists (`prepare`), then train under the active MLflow
run and log its inputs, params, curves, metrics and adapter (`train_and_log`). The `finetune` entry point."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.config import ExperimentConfig, resolved_config
from mlops.data import (
    SPLITS,
    PairSplit,
    SummarizationData,
    add_token_lengths,
    dataset_lineage,
    load_task_data,
    log_data_report,
    log_dataset_inputs,
)
from mlops.data.augment import augment_training_data, build_augmenters, log_augmentation, methods_in_use, ready_for_data
from mlops.models import resolve_source
from mlops.serving import log_adapter_model
from mlops.tracking import (
    ADAPTER_ARTIFACT,
    ENTRY_POINT_TAG,
    RESOLVED_CONFIG_ARTIFACT,
    entry_run,
    is_main_process,
    log_environment,
    log_params_effective,
    world_size,
)
from mlops.train.checkpoints import CheckpointPlan
from mlops.train.cost import measure_cost
from mlops.train.loop import FinetuneResult, Reporter, fit, hyperparameters_as_params
from mlops.train.structure import preflight
from mlops.train.tasks import TaskInputs, encode_pairs, task_for

if TYPE_CHECKING:
    from mlops.data import TaskData
    from mlops.models import ModelSource

# Decoding settings logged as params of a summarisation run (each may be a trial's suggestion).
_LOGGED_GENERATION = (
    "decoding",
    "temperature",
    "top_p",
    "num_beams",
    "length_penalty",
    "max_new_tokens",
    "max_document_tokens",
    "max_summary_tokens",
)


@dataclass
class Prepared:
    """What a training run needs, loaded and checked before any MLflow run exists."""

    data: TaskData
    source: ModelSource
    tokenizer: Any


def prepare(config: ExperimentConfig) -> Prepared:
    """Everything that can fail on bad input, done before any MLflow run exists: the model source and tokenizer, the
    structure options against the architecture, the data, the augmenters, the summarisation token budgets."""
    base_dir = Path(config.source_file).parent
    source = resolve_source(config.model.source)
    tokenizer = source.load_tokenizer()
    preflight(config, source)  # structure options the architecture cannot take (e.g. head pruning on LLaMA)
    data = load_task_data(config.task, config.dataset, base_dir, config.training.seed)
    methods = methods_in_use(config)
    if methods:  # an unknown method, a missing WordNet database or translation model, or a language a method
        # cannot handle fails here, not in a trial
        ready_for_data(build_augmenters(config.augment, methods), data)
    if isinstance(data, SummarizationData):  # token budgets are checked on the real data, before any run starts
        gen = config.generation
        encode_pairs(tokenizer, data.train.documents, data.train.summaries, gen.template, gen.max_document_tokens, gen.max_summary_tokens)
        inputs, budget = {s: data.split(s).documents for s in SPLITS}, gen.max_document_tokens
    else:
        inputs, budget = {s: data.split(s).texts for s in SPLITS}, config.model.max_length
    if data.report is not None:
        add_token_lengths(data.report, inputs, tokenizer, budget)
    return Prepared(data, source, tokenizer)


def _target_modules_param(target_modules: list[str] | str | None) -> str:
    """`model.target_modules` as a run param: the names, all-linear, or `default` (per architecture)."""
    if target_modules is None:
        return "default"
    return target_modules if isinstance(target_modules, str) else ",".join(target_modules)


def log_data_checks(prepared: Prepared) -> None:
    """The data report (what the contract kept and dropped, lengths, overlaps) on the active run."""
    if prepared.data.report is not None:
        log_data_report(prepared.data.report)


def run_params(config: ExperimentConfig, omit_params: Collection[str] = ()) -> dict[str, Any]:
    """The params a training run logs for `config` (a trial's: its searched values applied): the hyperparameters, the
    model and its input budget, the world size and effective batch, for summarisation the generation settings, and how
    the model is served (`serving.*`); `omit_params` left out."""
    hp, gen = config.training, config.generation
    params = {**hyperparameters_as_params(hp), "model_source": config.model.source, "config": config.name}
    params |= {"quantization": config.model.quantization, "target_modules": _target_modules_param(config.model.target_modules)}
    params |= {"world_size": world_size(), "effective_batch_size": world_size() * hp.batch_size * hp.gradient_accumulation_steps}
    if config.spec.generates:
        params |= {k: v for k, v in asdict(gen).items() if k in _LOGGED_GENERATION and v is not None}
    if "model.max_length" in config.spec.sequence_fields:  # the input budget of a task that reads it
        params["max_length"] = config.model.max_length
    params |= {f"serving.{k}": v for k, v in asdict(config.serving).items()}
    return {k: v for k, v in params.items() if k not in omit_params}


def train_and_log(
    config: ExperimentConfig,
    prepared: Prepared,
    out_dir: Path,
    reporter: Reporter | None = None,
    omit_params: Collection[str] = (),
    checkpoints: CheckpointPlan | None = None,
) -> FinetuneResult:
    """Train with `config` (a trial's: its searched values applied) under the active MLflow run, recording params,
    dataset inputs, environment, metrics and the adapter, then the adapter's serving cost (`mlops.train.cost`).
    `omit_params`: settings that have no effect in this run
    (a trial's, e.g. `temperature` with greedy decoding), left out of its params. `checkpoints`: where training
    checkpoints go and what it resumes from (a sweep's trials).

    Exceptions propagate: the caller's `mlops.tracking.ended` tags the run and ends it.
    """
    import mlflow

    hp, gen = config.training, config.generation
    main = is_main_process()  # the other ranks of a distributed launch train alongside rank 0 and log nothing
    if main:
        log_params_effective(run_params(config, omit_params))
        mlflow.log_dict(resolved_config(config, hp, gen), RESOLVED_CONFIG_ARTIFACT)  # what `mlops reproduce` re-runs
        # a base model from an earlier run (`pretrain`) or a dataset from one (`augment`) names that run
        mlflow.set_tags({**prepared.source.lineage(), **dataset_lineage(config.dataset)})
        log_data_checks(prepared)  # the data as loaded and checked; augmentation is logged on its own below
    if config.augment.methods:  # the train split, augmented with this run's (a trial's) settings; logged even at multiplier 0
        seed = hp.seed if config.augment.seed is None else config.augment.seed
        outcome = augment_training_data(prepared.data, config.augment, seed)  # every rank: they must see the same data
        if main:
            log_augmentation(replace(outcome, params={k: v for k, v in outcome.params.items() if k not in omit_params}))
        prepared = replace(prepared, data=outcome.data)
    if main:
        log_dataset_inputs(prepared.data)
        log_environment()
    inputs = TaskInputs(config, hp, gen, prepared.data, prepared.source, prepared.tokenizer)
    result = fit(task_for(config.task), inputs, out_dir, reporter, checkpoints)
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
    mlflow.log_artifacts(str(result.adapter_dir), ADAPTER_ARTIFACT)
    result.cost = measure_cost(config, prepared.data, result.adapter_dir)  # the logged adapter as served
    mlflow.log_metrics(result.cost)
    return result


def run_finetune(config: ExperimentConfig) -> str:
    """The `finetune` entry point: one run with the config's (overridden) hyperparameters; returns its run id."""
    import tempfile

    prepared = prepare(config)
    if not is_main_process():  # another rank of a distributed launch (accelerate, torchrun): it trains, rank 0 logs the one run
        with tempfile.TemporaryDirectory(prefix="mlops-ft-") as tmp:
            train_and_log(config, prepared, Path(tmp) / "adapter")
        return ""
    with (
        entry_run(config.mlflow_experiment, f"finetune-{config.name}", tags={ENTRY_POINT_TAG: "finetune"}) as run,
        tempfile.TemporaryDirectory(prefix="mlops-ft-") as tmp,
    ):
        result = train_and_log(config, prepared, Path(tmp) / "adapter")
        test = prepared.data.test
        log_adapter_model(result.adapter_dir, example_texts=test.documents if isinstance(test, PairSplit) else test.texts)
    print(f"run {run.info.run_id}: " + ", ".join(f"{k}={v:.4f}" for k, v in {**result.validation, **result.test}.items()))
    run_id: str = run.info.run_id
    return run_id
