"""Instruction and chat data on a causal LM: every assistant turn of a conversation is learned, nothing of the system
or user turns; leak-free packing and dynamic padding as summarisation has them (its collator); exact match, token F1
and ROUGE-L on the last assistant turn generated for a fixed validation subset at each evaluation (the pruning
signal), and at the end on the validation and test splits (or `generation.eval_examples` of each)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from mlops.data import text_tokenizer_of
from mlops.data.instruction import ConversationSplit, InstructionData
from mlops.errors import SummarizationConfigError
from mlops.evaluate import decoding_settings
from mlops.evaluate.instruction import conversation_ids, generate_responses, instruction_per_example, instruction_scores
from mlops.tasks.instruction import SPEC
from mlops.tracking import PER_EXAMPLE_ARTIFACT, PREDICTIONS_ARTIFACT
from mlops.train.tasks._base import Scores, Task, TaskInputs, TrainingSets, data_of
from mlops.train.tasks.summarization import IGNORE_INDEX, Scoring, _Rows, causal_lm_for, make_collator

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from mlops.config import GenerationConfig
    from mlops.train.structure import StructureReport


@dataclass
class ConversationStats:
    """What `encode_conversations` had to cut to fit the token budgets; nothing is cut silently."""

    examples: int
    prompts_truncated: int
    responses_truncated: int

    def as_metrics(self, prefix: str) -> dict[str, float]:
        return {
            f"{prefix}_examples": float(self.examples),
            f"{prefix}_prompts_truncated": float(self.prompts_truncated),
            f"{prefix}_responses_truncated": float(self.responses_truncated),
        }


def encode_conversations(
    tokenizer: PreTrainedTokenizerBase, conversations: Sequence[Sequence[dict[str, str]]], gen: GenerationConfig
) -> tuple[list[dict[str, list[int]]], ConversationStats]:
    """Training rows (input_ids, attention_mask, labels) where only assistant tokens carry labels (IGNORE_INDEX
    elsewhere). Each system/user piece is cut to `generation.max_document_tokens`, each response to
    `generation.max_summary_tokens`; conversations with a cut are counted, none is dropped."""
    if tokenizer.eos_token_id is None:
        raise SummarizationConfigError("the tokenizer has no eos_token; responses need one to learn where to stop")
    rows: list[dict[str, list[int]]] = []
    prompts_cut = responses_cut = 0
    budgets = (gen.max_document_tokens, gen.max_summary_tokens)
    for turns in conversations:
        ids, learned, (prompt_cut, response_cut) = conversation_ids(tokenizer, turns, gen.template, budgets)
        prompts_cut += prompt_cut
        responses_cut += response_cut
        labels = [token if keep else IGNORE_INDEX for token, keep in zip(ids, learned, strict=True)]
        rows.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels})
    return rows, ConversationStats(len(rows), prompts_cut, responses_cut)


def score_responses(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, split: ConversationSplit, scoring: Scoring, prefix: str
) -> tuple[dict[str, float], dict[str, list[Any]]]:
    """Generate the last assistant turn of each conversation of `split` and score it against the reference, in the
    dataset's text tokenizer (`scoring.units`): `<prefix>_exact_match`, `<prefix>_token_f1`, `<prefix>_rougeL`;
    also a per-example table."""
    gen = scoring.gen
    contexts = split.contexts()
    predictions = generate_responses(model, tokenizer, contexts, gen.template, gen.max_document_tokens, scoring.settings, gen.batch_size)
    metrics, per_example = instruction_scores(predictions, split.summaries, prefix, scoring.units)
    table: dict[str, list[Any]] = {"prompt": split.documents, "reference": split.summaries, "prediction": predictions, **per_example}
    return metrics, table


def _generative_trainer(tokenizer: PreTrainedTokenizerBase, subset: ConversationSplit, scoring: Scoring) -> Any:
    """A `Trainer` whose evaluation adds exact match, token F1 and ROUGE-L on a fixed validation subset."""
    from transformers import Trainer

    class GenerativeTrainer(Trainer):  # type: ignore[misc]
        def evaluation_loop(self, *args: Any, **kwargs: Any) -> Any:
            output = super().evaluation_loop(*args, **kwargs)
            if kwargs.get("metric_key_prefix", "eval") == "eval":
                model: Any = self.model
                metrics, _ = score_responses(model, tokenizer, subset, scoring, "eval")
                output.metrics.update(metrics)  # type: ignore[union-attr]  # always a dict from evaluation_loop
            return output

    return GenerativeTrainer


class Instruction(Task):
    name = SPEC.name

    def build_model(self, inputs: TaskInputs) -> tuple[PreTrainedModel, StructureReport]:
        return causal_lm_for(inputs)

    def training_sets(self, inputs: TaskInputs) -> TrainingSets:
        data, gen, hp, tokenizer = data_of(inputs.data, InstructionData, SPEC.name), inputs.gen, inputs.hp, inputs.tokenizer
        train_rows, train_stats = encode_conversations(tokenizer, data.train.conversations, gen)
        subset = data.validation.first(gen.eval_subset)
        val_rows, val_stats = encode_conversations(tokenizer, subset.conversations, gen)
        return TrainingSets(
            _Rows(train_rows),
            _Rows(val_rows),
            make_collator(tokenizer, packing=gen.packing),
            trainer_class=_generative_trainer(tokenizer, subset, Scoring(gen, decoding_settings(gen, hp.seed), text_tokenizer_of(data))),
            eval_batch_size=max(8, hp.batch_size),
            group_by_length=gen.group_by_length,
            metrics={**train_stats.as_metrics("train"), **val_stats.as_metrics("eval_subset")},
        )

    def score(self, inputs: TaskInputs, trainer: Any, last_eval: dict[str, float], sets: TrainingSets) -> Scores:
        data, gen, tokenizer = data_of(inputs.data, InstructionData, SPEC.name), inputs.gen, inputs.tokenizer
        model = trainer.model
        model.eval()
        scoring = Scoring(gen, decoding_settings(gen, inputs.hp.seed), text_tokenizer_of(data))
        validation, _ = score_responses(model, tokenizer, data.validation.first(gen.eval_examples), scoring, "eval")
        validation["eval_loss"] = last_eval.get("eval_loss", float("nan"))  # on the subset: loss needs no generation
        test, table = score_responses(model, tokenizer, data.test.first(gen.eval_examples), scoring, "test")
        per_example = {f"test_{k}": table[k] for k in ("exact_match", "token_f1", "rougeL")}
        rows = min(gen.table_rows, len(table["prompt"]))
        return Scores(
            validation,
            test,
            tables={PREDICTIONS_ARTIFACT: {k: v[:rows] for k, v in table.items()}},
            documents={PER_EXAMPLE_ARTIFACT: instruction_per_example(data, per_example)},  # resampled by champion/challenger gates
        )

    def card(self, inputs: TaskInputs) -> dict[str, Any]:
        return {"generation": asdict(inputs.gen), "seed": inputs.hp.seed, "system_prompt": inputs.config.dataset.system_prompt}
