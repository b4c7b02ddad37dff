"""LoRA fine-tuning of a decoder-only LM for summarisation, judged by ROUGE on generated summaries.

Training uses the shared `run_trainer` loop; at each evaluation the model also generates
summaries for a small fixed validation subset, so `eval_rougeL` is a curve and a pruning signal.
At the end, the full validation and test splits (or `generation.eval_examples` of each) are
generated in batches and scored, and the first test examples are logged as a readable table.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.environment import seed_everything
from mlops.training import FinetuneResult, Reporter, count_parameters, run_trainer, save_adapter

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from mlops.config import ExperimentConfig, GenerationConfig, TrainingConfig
    from mlops.data import PairSplit, SummarizationData
    from mlops.models import ModelSource
    from mlops.structure import StructureReport
    from mlops.summarization import DecodingSettings


def decoding_settings(gen: GenerationConfig, seed: int) -> DecodingSettings:
    from mlops.summarization import DecodingSettings

    return DecodingSettings(
        max_new_tokens=gen.max_new_tokens,
        decoding=gen.decoding,
        temperature=gen.temperature,
        top_p=gen.top_p,
        num_beams=gen.num_beams,
        seed=seed,
    )


def build_peft_causal_lm(source: ModelSource, hp: TrainingConfig, target_modules: list[str] | None) -> PreTrainedModel:
    return build_causal_lm(source, hp, target_modules)[0]


def build_causal_lm(source: ModelSource, hp: TrainingConfig, target_modules: list[str] | None) -> tuple[PreTrainedModel, StructureReport]:
    """The causal LM with its adapter (`hp.adapter`: lora, prefix or bottleneck) and structure (frozen layers, FFN gates)."""
    from mlops.models import default_causal_lm_targets
    from mlops.structure import adapt

    base = source.load_causal_lm()
    model, report = adapt(base, hp, "summarization", target_modules or default_causal_lm_targets(base), None)
    return model, report


class _Rows:
    """Encoded examples that `Trainer` can index (and measure, for length grouping)."""

    def __init__(self, rows: list[dict[str, list[int]]]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        return self.rows[i]


def score_generation(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    split: PairSplit,
    gen: GenerationConfig,
    settings: DecodingSettings,
    prefix: str,
    limit: int | None,
) -> tuple[dict[str, float], dict[str, list[Any]]]:
    """Generate summaries for the first `limit` examples and score them: ROUGE-1/2/L (F, stemmed)
    and key-term recall. Returns the metrics and a per-example table."""
    from mlops.summarization import generate_summaries, key_term_recall, rouge

    n = len(split) if limit is None else min(limit, len(split))
    documents, references = split.documents[:n], split.summaries[:n]
    predictions = generate_summaries(model, tokenizer, documents, gen.template, gen.max_document_tokens, settings, gen.batch_size)
    scores, per_example = rouge(predictions, references)
    metrics = {f"{prefix}_{k}": v for k, v in scores.items()}
    table: dict[str, list[Any]] = {"document": documents, "reference": references, "prediction": predictions, "rougeL": per_example}
    terms = split.key_terms[:n]
    if any(terms):
        recall, per_example_recall = key_term_recall(predictions, terms)
        metrics[f"{prefix}_key_term_recall"] = recall
        table["key_term_recall"] = per_example_recall
    return metrics, table


def _generative_trainer(tokenizer: PreTrainedTokenizerBase, subset: PairSplit, gen: GenerationConfig, settings: DecodingSettings) -> Any:
    """A `Trainer` whose evaluation adds ROUGE on generated summaries of a fixed validation subset."""
    from transformers import Trainer

    class GenerativeTrainer(Trainer):  # type: ignore[misc]
        def evaluation_loop(self, *args: Any, **kwargs: Any) -> Any:
            output = super().evaluation_loop(*args, **kwargs)
            prefix = kwargs.get("metric_key_prefix", "eval")
            if prefix == "eval":
                model: Any = self.model
                metrics, _ = score_generation(model, tokenizer, subset, gen, settings, prefix, None)
                output.metrics.update(metrics)  # type: ignore[union-attr]  # always a dict from evaluation_loop
            return output

    return GenerativeTrainer


def finetune_summarizer(
    config: ExperimentConfig,
    hp: TrainingConfig,
    gen: GenerationConfig,
    data: SummarizationData,
    source: ModelSource,
    tokenizer: PreTrainedTokenizerBase,
    output_dir: Path,
    reporter: Reporter | None = None,
    metric: str = "eval_rougeL",
) -> FinetuneResult:
    """Train a LoRA adapter on (prompt, summary) pairs with the loss on summary tokens only,
    score generated summaries on validation and test, and save the adapter.

    Needs an active MLflow run: curves are logged to it as training goes.
    """
    import mlflow

    from mlops.data import PairSplit
    from mlops.promotion import PER_EXAMPLE_ARTIFACT, summarization_per_example
    from mlops.runs import is_main_process
    from mlops.summarization import encode_pairs, make_collator

    seed_everything(hp.seed)
    model, structure = build_causal_lm(source, hp, config.model.target_modules)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    trainable, total = count_parameters(model)
    budgets = (gen.template, gen.max_document_tokens, gen.max_summary_tokens)
    train_rows, train_stats = encode_pairs(tokenizer, data.train.documents, data.train.summaries, *budgets)
    settings = decoding_settings(gen, hp.seed)
    subset = PairSplit(  # evaluation during training (loss, ROUGE, the pruning signal) uses this fixed subset
        data.validation.documents[: gen.eval_subset],
        data.validation.summaries[: gen.eval_subset],
        data.validation.key_terms[: gen.eval_subset],
        data.validation.source,
    )
    val_rows, val_stats = encode_pairs(tokenizer, subset.documents, subset.summaries, *budgets)
    with run_trainer(
        model,
        hp,
        _Rows(train_rows),
        _Rows(val_rows),
        make_collator(tokenizer, packing=gen.packing),
        reporter,
        metric,
        trainer_class=_generative_trainer(tokenizer, subset, gen, settings),
        eval_batch_size=max(8, hp.batch_size),
        group_by_length=gen.group_by_length,
    ) as (trainer, curves, train_seconds):
        subset_scores = dict(curves.last_eval)
        last_step = trainer.state.global_step
    model.eval()
    validation, _ = score_generation(model, tokenizer, data.validation, gen, settings, "eval", gen.eval_examples)
    validation["eval_loss"] = subset_scores.get("eval_loss", float("nan"))  # on the subset: loss needs no generation
    test, table = score_generation(model, tokenizer, data.test, gen, settings, "test", gen.eval_examples)
    per_example = {f"test_{k}": table[k] for k in ("rougeL", "key_term_recall") if k in table}
    if is_main_process():  # the other ranks of a distributed launch have no run
        mlflow.log_metrics(validation, step=last_step)  # full-validation scores supersede the last subset point
    save_adapter(model, tokenizer, output_dir, config, {"generation": asdict(gen), "seed": hp.seed})
    mlflow.flush_async_logging()
    rows = min(gen.table_rows, len(table["document"]))
    return FinetuneResult(
        validation=validation,
        test=test,
        adapter_dir=output_dir,
        trainable_params=trainable,
        total_params=total,
        train_seconds=train_seconds,
        metrics={**train_stats.as_metrics("train"), **val_stats.as_metrics("eval_subset"), **structure.metrics()},
        tables={"predictions.json": {k: v[:rows] for k, v in table.items()}},
        documents={PER_EXAMPLE_ARTIFACT: summarization_per_example(data, per_example)},  # resampled by champion/challenger gates
    )
