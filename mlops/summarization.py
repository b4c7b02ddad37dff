"""Causal-LM summarisation without MLflow: prompts, label-masked encoding, leak-free packing, batched generation, scores.

Training and generation build prompts with the same function (`prompt_ids`), so a model is always asked for a
summary exactly the way it was taught to give one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from mlops.errors import ConfigError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

DEFAULT_TEMPLATE = "Summarize the following text in one sentence.\n\n{document}\n\nSummary:"
IGNORE_INDEX = -100  # label value that the causal-LM loss skips

Row = Mapping[str, Sequence[int]]


class SummarizationConfigError(ConfigError, ValueError):
    """A summarisation setting (template, token budget, decoding) that cannot work; also a `ValueError`."""


@dataclass(frozen=True)
class DecodingSettings:
    """How summaries are generated; every field is checked when the settings are built."""

    max_new_tokens: int = 48
    decoding: Literal["greedy", "sample", "beam"] = "greedy"
    temperature: float = 1.0  # sample only
    top_p: float = 1.0  # sample only
    num_beams: int = 4  # beam only
    seed: int = 0  # seeds sampling, so sampled summaries are reproducible

    def __post_init__(self) -> None:
        problems = []
        if self.max_new_tokens < 1:
            problems.append(f"decoding.max_new_tokens should be at least 1, got {self.max_new_tokens}")
        if self.decoding not in ("greedy", "sample", "beam"):
            problems.append(f"decoding.decoding should be one of 'greedy', 'sample', 'beam', got {self.decoding!r}")
        if not self.temperature > 0:
            problems.append(f"decoding.temperature should be positive, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            problems.append(f"decoding.top_p should be in (0, 1], got {self.top_p}")
        if self.num_beams < 1:
            problems.append(f"decoding.num_beams should be at least 1, got {self.num_beams}")
        if problems:
            raise SummarizationConfigError(problems)

    def generate_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `model.generate`, explicit enough that a checkpoint's generation config cannot change them.

        Sampling disables top-k (`top_k=0`), so temperature and top-p alone shape the distribution.
        """
        kwargs: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "use_cache": True}
        if self.decoding == "sample":
            return {**kwargs, "do_sample": True, "temperature": self.temperature, "top_p": self.top_p, "top_k": 0, "num_beams": 1}
        if self.decoding == "beam":
            return {**kwargs, "do_sample": False, "num_beams": self.num_beams}
        return {**kwargs, "do_sample": False, "num_beams": 1}


def _check_template(template: str) -> None:
    if "{document}" not in template:
        raise SummarizationConfigError(f"generation.template: must contain '{{document}}' where the text goes, got {template!r}")


def build_prompt(tokenizer: PreTrainedTokenizerBase, document: str, template: str | None) -> str:
    """The prompt text for one document.

    With no template, a tokenizer that has a chat template gets DEFAULT_TEMPLATE as the user turn followed by
    the assistant's generation prompt; one without gets DEFAULT_TEMPLATE itself. A given template is used as is.
    """
    if template is not None:
        _check_template(template)
        return template.replace("{document}", document)
    instruction = DEFAULT_TEMPLATE.replace("{document}", document)
    if not getattr(tokenizer, "chat_template", None):
        return instruction
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": instruction}], tokenize=False, add_generation_prompt=True)
    if not isinstance(rendered, str):
        raise TypeError(f"apply_chat_template(tokenize=False) returned {type(rendered).__name__}, not str")
    return rendered


def _uses_chat_template(tokenizer: PreTrainedTokenizerBase, template: str | None) -> bool:
    return template is None and bool(getattr(tokenizer, "chat_template", None))


def _token_ids(tokenizer: PreTrainedTokenizerBase, text: str, special: bool = False) -> list[int]:
    ids: list[int] = tokenizer(text, add_special_tokens=special)["input_ids"]
    return ids


def _cut_document(tokenizer: PreTrainedTokenizerBase, document: str, max_document_tokens: int) -> tuple[str, bool]:
    """The document's text up to the end of its `max_document_tokens`-th token, and whether anything was cut."""
    try:
        encoded = tokenizer(document, add_special_tokens=False, return_offsets_mapping=True)
    except NotImplementedError:  # a tokenizer without offsets: decode the kept tokens instead
        ids = _token_ids(tokenizer, document)
        if len(ids) <= max_document_tokens:
            return document, False
        return str(tokenizer.decode(ids[:max_document_tokens])), True
    if len(encoded["input_ids"]) <= max_document_tokens:
        return document, False
    return document[: encoded["offset_mapping"][max_document_tokens - 1][1]], True


def prompt_ids(tokenizer: PreTrainedTokenizerBase, document: str, template: str | None, max_document_tokens: int) -> tuple[list[int], bool]:
    """The prompt's token ids with the document cut to `max_document_tokens` first, and whether it was cut.

    Cutting the document, not the prompt, keeps the template's tail (e.g. 'Summary:') in every prompt. The
    ids are those of the whole prompt text tokenized at once, exactly what a caller (a serving wrapper, say)
    gets from `tokenizer(build_prompt(...))`; only a plain prompt gets the tokenizer's own special tokens
    (a BOS, say), since a chat template writes its own.
    """
    _check_budget("max_document_tokens", max_document_tokens)
    kept, cut = _cut_document(tokenizer, document, max_document_tokens)
    text = build_prompt(tokenizer, kept, template)
    return _token_ids(tokenizer, text, special=not _uses_chat_template(tokenizer, template)), cut


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


def _check_budget(name: str, value: int) -> None:
    if value < 1:
        raise SummarizationConfigError(f"{name} should be at least 1, got {value}")


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
    _check_budget("max_document_tokens", max_document_tokens)
    _check_budget("max_summary_tokens", max_summary_tokens)
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
        target = _token_ids(tokenizer, lead + summary.strip())
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


def _stop_token_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """The tokenizer's eos (what `encode_pairs` teaches) and whatever the checkpoint's generation config stops on."""
    configured = getattr(model.generation_config, "eos_token_id", None)
    ids = [configured] if isinstance(configured, int) else list(configured or [])
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(int(tokenizer.eos_token_id))
    return ids


@contextmanager
def _seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch for the block and restore the caller's RNG state afterwards."""
    import torch

    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield


def generate_summaries(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    documents: Sequence[str],
    template: str | None,
    max_document_tokens: int,
    settings: DecodingSettings,
    batch_size: int = 8,
) -> list[str]:
    """One summary per document, generated `batch_size` prompts at a time with the KV cache,
    in batches of similar prompt length (returned in input order).

    Prompts are left-padded by hand (the tokenizer's padding_side is never touched) and passed with their
    attention mask; `generate` derives position ids from that mask (cumsum - 1), so a padded prompt gets
    the positions it would have alone. Only the new tokens are decoded. The model is put in eval mode and
    its training mode restored afterwards.
    """
    import torch

    _check_budget("batch_size", batch_size)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad is None:
        raise SummarizationConfigError("the tokenizer has neither a pad_token nor an eos_token to pad prompts with")
    prompts = [prompt_ids(tokenizer, document, template, max_document_tokens)[0] for document in documents]
    kwargs = {**settings.generate_kwargs(), "pad_token_id": pad, "eos_token_id": _stop_token_ids(model, tokenizer)}
    # Batches of similar prompt lengths waste little on padding; the results go back in input order.
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    summaries: list[str] = [""] * len(prompts)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), _seeded(settings.seed, model.device):
            for start in range(0, len(order), batch_size):
                batch = order[start : start + batch_size]
                input_ids, attention_mask = _left_padded([prompts[i] for i in batch], int(pad), model.device)
                output = model.generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)  # type: ignore[operator]
                new_tokens = output[:, input_ids.shape[1] :]
                for i, text in zip(batch, tokenizer.batch_decode(new_tokens, skip_special_tokens=True), strict=True):
                    summaries[i] = text.strip()
    finally:
        model.train(was_training)
    return summaries


def _left_padded(prompts: Sequence[Sequence[int]], pad: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    width = max(len(p) for p in prompts)
    input_ids = torch.full((len(prompts), width), pad, dtype=torch.long)
    attention_mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, prompt in enumerate(prompts):
        input_ids[i, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
        attention_mask[i, width - len(prompt) :] = 1
    return input_ids.to(device), attention_mask.to(device)


def generate_one_by_one(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    documents: Sequence[str],
    template: str | None,
    max_document_tokens: int,
    settings: DecodingSettings,
    batch_size: int = 1,
) -> list[str]:
    """The unbatched reference: each prompt alone, so no padding at all. Greedy output equals `generate_summaries`'.

    `batch_size` is accepted (and ignored) only so that both functions can be called the same way.
    """
    return generate_summaries(model, tokenizer, documents, template, max_document_tokens, settings, batch_size=1)


ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


def rouge(predictions: Sequence[str], references: Sequence[str]) -> tuple[dict[str, float], list[float]]:
    """Mean ROUGE-1/2/L F-measures (rouge-score, Porter stemming) and the per-example ROUGE-L F-measures."""
    from rouge_score import rouge_scorer

    _check_paired(predictions, references, "references")
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    scores = [scorer.score(reference, prediction) for prediction, reference in zip(predictions, references, strict=True)]
    means = {name: sum(s[name].fmeasure for s in scores) / len(scores) for name in ROUGE_TYPES}
    return means, [float(s["rougeL"].fmeasure) for s in scores]


def _check_paired(predictions: Sequence[Any], references: Sequence[Any], name: str) -> None:
    if len(predictions) != len(references):
        raise ValueError(f"predictions and {name} differ in length: {len(predictions)} != {len(references)}")
    if not predictions:
        raise ValueError("no predictions to score")


def key_terms(text_or_json: str | Sequence[str]) -> list[str]:
    """Key terms from a JSON list string (the demo CSVs' key_terms column) or a list; an empty string has none."""
    if not isinstance(text_or_json, str):
        return [str(term) for term in text_or_json]
    if not text_or_json.strip():
        return []
    try:
        terms = json.loads(text_or_json)
    except json.JSONDecodeError:
        terms = None
    if not isinstance(terms, list) or not all(isinstance(term, str) for term in terms):
        raise ValueError(f"key_terms should be a JSON list of strings, got {text_or_json[:80]!r}")
    return terms


def _normalised(text: str) -> str:
    return " ".join(text.casefold().split())


def key_term_recall(predictions: Sequence[str], terms: Sequence[Sequence[str]]) -> tuple[float, list[float]]:
    """The share of each reference's key terms found in its prediction (case- and whitespace-insensitive substrings).

    Returns the mean over examples that have key terms and the per-example shares; an example without key terms
    scores NaN and is left out of the mean (NaN too if no example has any).
    """
    _check_paired(predictions, terms, "terms")
    per_example: list[float] = []
    for prediction, example_terms in zip(predictions, terms, strict=True):
        wanted = [_normalised(term) for term in example_terms if term.strip()]
        text = _normalised(prediction)
        per_example.append(sum(term in text for term in wanted) / len(wanted) if wanted else math.nan)
    scored = [value for value in per_example if not math.isnan(value)]
    return (sum(scored) / len(scored) if scored else math.nan), per_example
