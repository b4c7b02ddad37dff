"""Summaries from a causal LM: the decoding settings, prompts, and batched generation (left padding, KV cache).

Training (`mlops.train.tasks.summarization`) and generation build prompts with the same function (`prompt_ids`),
so a model is always asked for a summary exactly the way it was taught to give one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from mlops.config import decoding_errors
from mlops.errors import SummarizationConfigError
from mlops.progress import step

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from mlops.config import GenerationConfig

DEFAULT_TEMPLATE = "Summarize the following text in one sentence.\n\n{document}\n\nSummary:"


@dataclass(frozen=True)
class DecodingSettings:
    """How summaries are generated; every field is checked when the settings are built."""

    max_new_tokens: int = 48
    decoding: Literal["greedy", "sample", "beam"] = "greedy"
    temperature: float = 1.0  # sample only
    top_p: float = 1.0  # sample only
    num_beams: int = 4  # beam only
    seed: int = 0  # seeds sampling, so sampled summaries are reproducible
    length_penalty: float = 1.0  # beam only

    def __post_init__(self) -> None:
        problems = decoding_errors("decoding", self)
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
            return {**kwargs, "do_sample": False, "num_beams": self.num_beams, "length_penalty": self.length_penalty}
        return {**kwargs, "do_sample": False, "num_beams": 1}


def decoding_settings(gen: GenerationConfig, seed: int) -> DecodingSettings:
    """The settings `gen` (a config's or a trial's `generation` section) decodes with, sampling seeded by `seed`."""
    return DecodingSettings(
        max_new_tokens=gen.max_new_tokens,
        decoding=gen.decoding,
        temperature=gen.temperature,
        top_p=gen.top_p,
        num_beams=gen.num_beams,
        seed=seed,
        length_penalty=gen.length_penalty,
    )


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


def token_ids(tokenizer: PreTrainedTokenizerBase, text: str, special: bool = False) -> list[int]:
    ids: list[int] = tokenizer(text, add_special_tokens=special)["input_ids"]
    return ids


def _cut_document(tokenizer: PreTrainedTokenizerBase, document: str, max_document_tokens: int) -> tuple[str, bool]:
    """The document's text up to the end of its `max_document_tokens`-th token, and whether anything was cut."""
    try:
        encoded = tokenizer(document, add_special_tokens=False, return_offsets_mapping=True)
    except NotImplementedError:  # a tokenizer without offsets: decode the kept tokens instead
        ids = token_ids(tokenizer, document)
        if len(ids) <= max_document_tokens:
            return document, False
        return str(tokenizer.decode(ids[:max_document_tokens])), True
    if len(encoded["input_ids"]) <= max_document_tokens:
        return document, False
    return document[: encoded["offset_mapping"][max_document_tokens - 1][1]], True


def check_budget(name: str, value: int) -> None:
    if value < 1:
        raise SummarizationConfigError(f"{name} should be at least 1, got {value}")


def prompt_ids(tokenizer: PreTrainedTokenizerBase, document: str, template: str | None, max_document_tokens: int) -> tuple[list[int], bool]:
    """The prompt's token ids with the document cut to `max_document_tokens` first, and whether it was cut.

    Cutting the document, not the prompt, keeps the template's tail (e.g. 'Summary:') in every prompt. The
    ids are those of the whole prompt text tokenized at once, exactly what a caller (a serving wrapper, say)
    gets from `tokenizer(build_prompt(...))`; only a plain prompt gets the tokenizer's own special tokens
    (a BOS, say), since a chat template writes its own.
    """
    check_budget("max_document_tokens", max_document_tokens)
    kept, cut = _cut_document(tokenizer, document, max_document_tokens)
    text = build_prompt(tokenizer, kept, template)
    return token_ids(tokenizer, text, special=not _uses_chat_template(tokenizer, template)), cut


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


# Summarizer models logged by earlier releases call this positionally with these seven arguments (their pickled
# `_pyfunc_summarizer.py`): the signature is theirs, so it keeps its arguments.
def generate_summaries(  # noqa: PLR0913
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
    prompts = [prompt_ids(tokenizer, document, template, max_document_tokens)[0] for document in documents]
    return generate_from_ids(model, tokenizer, prompts, settings, batch_size, "generating summaries")


def generate_from_ids(  # the model, its prompts and how to decode them, batched, with a progress label
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[Sequence[int]],
    settings: DecodingSettings,
    batch_size: int = 8,
    label: str = "generating",
) -> list[str]:
    """The text each prompt (token ids) continues with, generated as `generate_summaries` describes."""
    import torch

    check_budget("batch_size", batch_size)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad is None:
        raise SummarizationConfigError("the tokenizer has neither a pad_token nor an eos_token to pad prompts with")
    kwargs = {**settings.generate_kwargs(), "pad_token_id": pad, "eos_token_id": _stop_token_ids(model, tokenizer)}
    # Batches of similar prompt lengths waste little on padding; the results go back in input order.
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    texts: list[str] = [""] * len(prompts)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), _seeded(settings.seed, model.device), step(label, len(order)) as progress:
            for start in range(0, len(order), batch_size):
                batch = order[start : start + batch_size]
                input_ids, attention_mask = _left_padded([prompts[i] for i in batch], int(pad), model.device)
                output = model.generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)  # type: ignore[operator]
                new_tokens = output[:, input_ids.shape[1] :]
                for i, text in zip(batch, tokenizer.batch_decode(new_tokens, skip_special_tokens=True), strict=True):
                    texts[i] = text.strip()
                progress.update(start + len(batch))
    finally:
        model.train(was_training)
    return texts


def _left_padded(prompts: Sequence[Sequence[int]], pad: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    width = max(len(p) for p in prompts)
    input_ids = torch.full((len(prompts), width), pad, dtype=torch.long)
    attention_mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, prompt in enumerate(prompts):
        input_ids[i, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
        attention_mask[i, width - len(prompt) :] = 1
    return input_ids.to(device), attention_mask.to(device)


def generate_one_by_one(  # noqa: PLR0913  # `generate_summaries`' signature, so that both are called the same way
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
