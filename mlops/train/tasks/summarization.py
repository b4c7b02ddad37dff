"""Summarisation on a causal LM: (prompt, summary) pairs with the loss on summary tokens only, leak-free packing,
ROUGE on summaries generated from a fixed validation subset at each evaluation (a curve and a pruning signal), and at
the end on the validation and test splits (or `generation.eval_examples` of each), with a readable predictions table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from mlops.data import PairSplit, SummarizationData, once_per_split, text_tokenizer_of
from mlops.errors import SummarizationConfigError
from mlops.evaluate import (
    build_prompt,
    check_budget,
    decoding_settings,
    generate_summaries,
    key_term_recall,
    prompt_ids,
    rouge,
    summarization_per_example,
    token_ids,
)
from mlops.models import default_causal_lm_targets, load_causal_lm
from mlops.tasks.summarization import SPEC
from mlops.tracking import PER_EXAMPLE_ARTIFACT, PREDICTIONS_ARTIFACT
from mlops.train.device import pick_device
from mlops.train.structure import adapt
from mlops.train.tasks._base import Scores, Task, TaskInputs, TrainingSets, data_of, probe_indices

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from mlops.config import GenerationConfig, TrainingConfig
    from mlops.data import PairSplit, SummarizationData, TextTokenizer
    from mlops.evaluate import DecodingSettings
    from mlops.models import ModelSource
    from mlops.train.structure import StructureReport

IGNORE_INDEX = -100  # label value that the causal-LM loss skips


Row = Mapping[str, Sequence[int]]


@dataclass
class EncodeStats:
    """What `encode_pairs` had to cut to fit the token budgets; nothing is cut silently."""

    examples: int
    documents_truncated: int
    summaries_truncated: int

    def as_metrics(self, prefix: str) -> dict[str, float]:
        """E.g. prefix 'train' gives train_examples, train_documents_truncated, train_summaries_truncated."""
        return {
            f"{prefix}_examples": float(self.examples),
            f"{prefix}_documents_truncated": float(self.documents_truncated),
            f"{prefix}_summaries_truncated": float(self.summaries_truncated),
        }


def encode_pairs(
    tokenizer: PreTrainedTokenizerBase,
    documents: Sequence[str],
    summaries: Sequence[str],
    template: str | None,
    max_document_tokens: int,
    max_summary_tokens: int,
) -> tuple[list[dict[str, list[int]]], EncodeStats]:
    """Training rows (input_ids, attention_mask, labels) where only the summary and a closing eos are learned.

    Labels are IGNORE_INDEX on the prompt. The document is cut to `max_document_tokens` before it goes into
    the template and the summary to `max_summary_tokens` before the eos; both cuts are counted, no example is
    dropped. A budget that cuts every summary is a mistake, not a choice, and raises.
    """
    if len(documents) != len(summaries):
        raise ValueError(f"documents and summaries differ in length: {len(documents)} != {len(summaries)}")
    check_budget("max_document_tokens", max_document_tokens)
    check_budget("max_summary_tokens", max_summary_tokens)
    eos = tokenizer.eos_token_id
    if eos is None:
        raise SummarizationConfigError("the tokenizer has no eos_token; summaries need one to learn where to stop")
    # After a prompt such as 'Summary:', the summary is written as ' Summary text': the word tokens a
    # byte-level BPE uses mid-sentence, which a pretrained model is far more likely to produce.
    lead = "" if build_prompt(tokenizer, "", template)[-1:].isspace() else " "
    rows: list[dict[str, list[int]]] = []
    documents_truncated = summaries_truncated = longest_summary = 0
    for document, summary in zip(documents, summaries, strict=True):
        prompt, cut = prompt_ids(tokenizer, document, template, max_document_tokens)
        target = token_ids(tokenizer, lead + summary.strip())
        documents_truncated += cut
        summaries_truncated += len(target) > max_summary_tokens
        longest_summary = max(longest_summary, len(target))
        target = [*target[:max_summary_tokens], eos]
        rows.append(
            {
                "input_ids": prompt + target,
                "attention_mask": [1] * (len(prompt) + len(target)),
                "labels": [IGNORE_INDEX] * len(prompt) + target,
            }
        )
    if rows and summaries_truncated == len(rows):
        raise SummarizationConfigError(
            f"generation.max_summary_tokens: {max_summary_tokens} cuts every reference summary (the longest has {longest_summary} tokens); "
            "raise max_summary_tokens"
        )
    return rows, EncodeStats(len(rows), documents_truncated, summaries_truncated)


@dataclass(frozen=True)
class _Collator:
    """Batches encoded rows; a class rather than a closure so that dataloader workers can pickle it."""

    pad_token_id: int
    packing: bool
    pad_to_multiple_of: int | None

    def __call__(self, rows: Sequence[Row]) -> dict[str, torch.Tensor]:
        if not rows:
            raise ValueError("cannot collate an empty batch")
        return self._pack(rows) if self.packing else self._pad(rows)

    def _padded_length(self, length: int) -> int:
        step = self.pad_to_multiple_of or 1
        return -(-length // step) * step

    def _pad(self, rows: Sequence[Row]) -> dict[str, torch.Tensor]:
        import torch

        width = self._padded_length(max(len(row["input_ids"]) for row in rows))
        input_ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
        for i, row in enumerate(rows):
            n = len(row["input_ids"])
            input_ids[i, :n] = torch.tensor(row["input_ids"])
            attention_mask[i, :n] = 1
            labels[i, :n] = torch.tensor(row["labels"])
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}

    def _pack(self, rows: Sequence[Row]) -> dict[str, torch.Tensor]:
        """One row holding every example, each seeing only itself.

        position_ids restart at 0 per example; the first label of each example is IGNORE_INDEX, so no token
        is predicted across a boundary; the attention mask is a 4D block-diagonal causal mask in additive
        form (0 = attend, dtype minimum = blocked), which the eager and sdpa implementations both apply as
        given. transformers' own route (DataCollatorWithFlattening: position_ids and no mask) only
        isolates examples when the forward runs without a KV cache: LLaMA's forward builds a DynamicCache
        whenever use_cache is on (the config default, in training too), and a cache turns off the
        packed-sequence detection, so with sdpa the examples silently attend to each other.
        Padding up to `pad_to_multiple_of` forms one more block, attending only to itself.
        """
        import torch

        lengths = [len(row["input_ids"]) for row in rows]
        total = sum(lengths)
        lengths.append(self._padded_length(total) - total)
        input_ids = torch.cat([*(torch.tensor(row["input_ids"]) for row in rows), torch.full((lengths[-1],), self.pad_token_id)])
        labels = torch.cat([*(_boundary_masked(row["labels"]) for row in rows), torch.full((lengths[-1],), IGNORE_INDEX)])
        position_ids = torch.cat([torch.arange(n) for n in lengths])
        block = torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths))
        width = len(block)
        allowed = (block[:, None] == block[None, :]) & torch.ones(width, width, dtype=torch.bool).tril()
        blocked = torch.tensor(torch.finfo(torch.float32).min)
        attention_mask = torch.where(allowed, torch.tensor(0.0), blocked)
        return {
            "input_ids": input_ids.long()[None],
            "attention_mask": attention_mask[None, None],
            "position_ids": position_ids[None],
            "labels": labels.long()[None],
        }


def _boundary_masked(labels: Sequence[int]) -> torch.Tensor:
    import torch

    masked = torch.tensor(labels, dtype=torch.long)
    if len(masked):
        masked[0] = IGNORE_INDEX
    return masked


def make_collator(
    tokenizer: PreTrainedTokenizerBase, packing: bool = False, pad_to_multiple_of: int | None = None
) -> Callable[[Sequence[Row]], dict[str, torch.Tensor]]:
    """A collator for `encode_pairs` rows: right padding to the batch's longest row, or packing into one row.

    Padded label positions are IGNORE_INDEX. Packing (see `_Collator._pack`) needs the eager or sdpa attention
    implementation: flash-attention kernels ignore a 4D mask.
    """
    if tokenizer.pad_token_id is None:
        raise SummarizationConfigError("the tokenizer has no pad_token; set tokenizer.pad_token (its eos_token will do) before collating")
    if pad_to_multiple_of is not None and pad_to_multiple_of < 1:
        raise SummarizationConfigError(f"pad_to_multiple_of should be at least 1, got {pad_to_multiple_of}")
    return _Collator(int(tokenizer.pad_token_id), packing, pad_to_multiple_of)


class _Rows:
    """Encoded examples that `Trainer` can index (and measure, for length grouping)."""

    def __init__(self, rows: list[dict[str, list[int]]]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        return self.rows[i]


def build_causal_lm(
    source: ModelSource, hp: TrainingConfig, target_modules: list[str] | str | None, quantization: str = "none"
) -> tuple[PreTrainedModel, StructureReport]:
    """The causal LM, its base quantised as `quantization` asks (model.quantization), with its adapter (`hp.adapter`:
    lora, prefix or bottleneck) and structure (frozen layers, FFN gates)."""
    base = load_causal_lm(source, quantization, pick_device(hp.device)[0])
    return adapt(base, hp, SPEC.name, target_modules or default_causal_lm_targets(base), None)


def causal_lm_for(inputs: TaskInputs) -> tuple[PreTrainedModel, StructureReport]:
    """The causal LM a generative task trains (`build_causal_lm` on the config's model section); a tokenizer without
    a pad token pads with its end-of-sequence token."""
    if inputs.tokenizer.pad_token is None:
        inputs.tokenizer.pad_token = inputs.tokenizer.eos_token
    model = inputs.config.model
    return build_causal_lm(inputs.source, inputs.hp, model.target_modules, model.quantization)


@dataclass(frozen=True)
class Scoring:
    """How generated summaries are made and scored: the generation section, the decoding settings, and the dataset's
    text tokenizer that ROUGE and key-term recall count in."""

    gen: GenerationConfig
    settings: DecodingSettings
    units: TextTokenizer


def score_generation(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    split: PairSplit,
    scoring: Scoring,
    prefix: str,
) -> tuple[dict[str, float], dict[str, list[Any]]]:
    """Generate summaries for the examples of `split` and score them: ROUGE-1/2/L (F) and key-term recall, counted
    in the tokens of `scoring.units` (the dataset's). Returns the metrics and a per-example table."""
    documents, references = split.documents, split.summaries
    gen, settings, units = scoring.gen, scoring.settings, scoring.units
    predictions = generate_summaries(model, tokenizer, documents, gen.template, gen.max_document_tokens, settings, gen.batch_size)
    scores, per_example = rouge(predictions, references, units)
    metrics = {f"{prefix}_{k}": v for k, v in scores.items()}
    table: dict[str, list[Any]] = {"document": documents, "reference": references, "prediction": predictions, "rougeL": per_example}
    terms = split.key_terms
    if any(terms):
        recall, per_example_recall = key_term_recall(predictions, terms, units)
        metrics[f"{prefix}_key_term_recall"] = recall
        table["key_term_recall"] = per_example_recall
    return metrics, table


def _generative_trainer(
    tokenizer: PreTrainedTokenizerBase,
    subset: PairSplit,
    scoring: Scoring,
    train_subset: PairSplit | None = None,
) -> Any:
    """A `Trainer` whose evaluation adds ROUGE on generated summaries of a fixed validation subset (and, predicting
    with prefix `train_probe`, of `train_subset`: the generalisation gap's training side)."""
    from transformers import Trainer

    generated = {"eval": subset, "train_probe": train_subset}

    class GenerativeTrainer(Trainer):  # type: ignore[misc]
        def evaluation_loop(self, *args: Any, **kwargs: Any) -> Any:
            output = super().evaluation_loop(*args, **kwargs)
            prefix = kwargs.get("metric_key_prefix", "eval")
            examples = generated.get(prefix)
            if examples is not None:
                model: Any = self.model
                metrics, _ = score_generation(model, tokenizer, examples, scoring, prefix)
                output.metrics.update(metrics)  # type: ignore[union-attr]  # always a dict from evaluation_loop
            return output

    return GenerativeTrainer


def _head(split: PairSplit, n: int | None) -> PairSplit:
    """The first `n` examples of `split` (all of them for None)."""
    return PairSplit(split.documents[:n], split.summaries[:n], split.key_terms[:n], split.source)


def _validation_subset(data: SummarizationData, gen: GenerationConfig) -> PairSplit:
    """Evaluation during training (loss, ROUGE, the pruning signal) uses this fixed subset of the validation split."""
    return _head(data.validation, gen.eval_subset)


class Summarization(Task):
    name = SPEC.name

    def build_model(self, inputs: TaskInputs) -> tuple[PreTrainedModel, StructureReport]:
        return causal_lm_for(inputs)

    def training_sets(self, inputs: TaskInputs) -> TrainingSets:
        data, gen, hp, tokenizer = data_of(inputs.data, SummarizationData, SPEC.name), inputs.gen, inputs.hp, inputs.tokenizer
        budgets = (gen.template, gen.max_document_tokens, gen.max_summary_tokens)
        key = ("pairs", id(tokenizer), *budgets)
        train = data.train
        train_rows, train_stats = once_per_split(train, key, lambda: encode_pairs(tokenizer, train.documents, train.summaries, *budgets))
        subset = _validation_subset(data, gen)
        val_rows, val_stats = once_per_split(
            data.validation, (*key, gen.eval_subset), lambda: encode_pairs(tokenizer, subset.documents, subset.summaries, *budgets)
        )
        probe, train_subset = None, None
        if hp.early_stopping is not None:  # generation is costly: the gap is measured on eval_subset training examples
            chosen = probe_indices(len(train_rows), len(val_rows), hp.seed)
            probe = _Rows([train_rows[i] for i in chosen])
            train_subset = PairSplit(
                [train.documents[i] for i in chosen],
                [train.summaries[i] for i in chosen],
                [train.key_terms[i] for i in chosen] if train.key_terms else [],
                train.source,
            )
        return TrainingSets(
            _Rows(train_rows),
            _Rows(val_rows),
            make_collator(tokenizer, packing=gen.packing),
            trainer_class=_generative_trainer(
                tokenizer, subset, Scoring(gen, decoding_settings(gen, hp.seed), text_tokenizer_of(data)), train_subset
            ),
            train_probe=probe,
            eval_batch_size=max(8, hp.batch_size),
            group_by_length=gen.group_by_length,
            metrics={**train_stats.as_metrics("train"), **val_stats.as_metrics("eval_subset")},
        )

    def score(self, inputs: TaskInputs, trainer: Any, last_eval: dict[str, float], sets: TrainingSets) -> Scores:
        data, gen, tokenizer = data_of(inputs.data, SummarizationData, SPEC.name), inputs.gen, inputs.tokenizer
        model = trainer.model
        model.eval()
        scoring, n = Scoring(gen, decoding_settings(gen, inputs.hp.seed), text_tokenizer_of(data)), gen.eval_examples
        validation, _ = score_generation(model, tokenizer, _head(data.validation, n), scoring, "eval")
        validation["eval_loss"] = last_eval.get("eval_loss", float("nan"))  # on the subset: loss needs no generation
        test, table = score_generation(model, tokenizer, _head(data.test, n), scoring, "test")
        per_example = {f"test_{k}": table[k] for k in ("rougeL", "key_term_recall") if k in table}
        rows = min(gen.table_rows, len(table["document"]))
        return Scores(
            validation,
            test,
            tables={PREDICTIONS_ARTIFACT: {k: v[:rows] for k, v in table.items()}},
            documents={PER_EXAMPLE_ARTIFACT: summarization_per_example(data, per_example)},  # resampled by champion/challenger gates
        )

    def card(self, inputs: TaskInputs) -> dict[str, Any]:
        return {"generation": asdict(inputs.gen), "seed": inputs.hp.seed}
