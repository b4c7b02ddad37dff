"""Instruction and chat data: conversations as token segments (the chat template's, or a plain template's) with the
loss on assistant turns only, batched generation of the next assistant turn, SQuAD's exact match and token F1, and
the retrieval baseline. Training and serving build prompts here, so a model is asked the way it was taught.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mlops.data import TextTokenizer, split_digest, text_tokenizer_of
from mlops.data.instruction import InstructionData
from mlops.errors import SummarizationConfigError
from mlops.evaluate.generation import DecodingSettings, check_budget, generate_from_ids, token_ids
from mlops.evaluate.metrics import rouge
from mlops.evaluate.per_example import PerExampleScores, example_ids

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from mlops.data import TaskData
    from mlops.data.instruction import ConversationSplit

Turn = Mapping[str, str]

# The plain prompt of a user turn, for a tokenizer without a chat template (or when `generation.template` is set).
PLAIN_TEMPLATE = "### Instruction:\n{document}\n\n### Response:\n"


# --- metrics (SQuAD v1.1's evaluation script, on the dataset's text tokenizer) -------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)
_WORDS = TextTokenizer("words")


def answer_tokens(text: str, tokenizer: TextTokenizer | None = None) -> list[str]:
    """The tokens exact match and token F1 compare: SQuAD's normalisation (lower case, punctuation and the articles
    a/an/the removed), then the dataset's text tokenizer (`mlops.data.text`: words by default, a token a character
    in Chinese, Japanese or Thai, where SQuAD's whitespace split would make a whole answer one token)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return (tokenizer or _WORDS).tokenize(_ARTICLES.sub(" ", text))


def normalize_answer(text: str, tokenizer: TextTokenizer | None = None) -> str:
    """SQuAD's normalised answer: its tokens joined by single spaces."""
    return " ".join(answer_tokens(text, tokenizer))


def exact_match(prediction: str, reference: str, tokenizer: TextTokenizer | None = None) -> float:
    return float(answer_tokens(prediction, tokenizer) == answer_tokens(reference, tokenizer))


def token_f1(prediction: str, reference: str, tokenizer: TextTokenizer | None = None) -> float:
    """SQuAD's F1 over normalised tokens: two empty answers agree (1.0), one empty answer scores 0.0."""
    predicted, wanted = answer_tokens(prediction, tokenizer), answer_tokens(reference, tokenizer)
    if not predicted or not wanted:
        return float(predicted == wanted)
    common = sum((Counter(predicted) & Counter(wanted)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(wanted)
    return 2 * precision * recall / (precision + recall)


def instruction_scores(
    predictions: Sequence[str], references: Sequence[str], prefix: str, tokenizer: TextTokenizer | None = None
) -> tuple[dict[str, float], dict[str, list[float]]]:
    """`<prefix>_exact_match`, `<prefix>_token_f1`, `<prefix>_rougeL` (means), and each example's three scores, all
    three counted in `tokenizer`'s tokens (the dataset's; words when None)."""
    _, per_rouge = rouge(predictions, references, tokenizer)  # also checks that the two are paired and not empty
    pairs = list(zip(predictions, references, strict=True))
    per_example = {
        "exact_match": [exact_match(p, r, tokenizer) for p, r in pairs],
        "token_f1": [token_f1(p, r, tokenizer) for p, r in pairs],
        "rougeL": per_rouge,
    }
    return {f"{prefix}_{k}": sum(v) / len(v) for k, v in per_example.items()}, per_example


# --- conversations as token segments -------------------------------------------------------------------------------


def uses_chat_template(tokenizer: PreTrainedTokenizerBase, template: str | None) -> bool:
    return template is None and bool(getattr(tokenizer, "chat_template", None))


def _render(tokenizer: PreTrainedTokenizerBase, messages: Sequence[Turn], generation_prompt: bool) -> str:
    if not messages:
        return ""
    rendered = tokenizer.apply_chat_template([dict(m) for m in messages], tokenize=False, add_generation_prompt=generation_prompt)
    if not isinstance(rendered, str):
        raise TypeError(f"apply_chat_template(tokenize=False) returned {type(rendered).__name__}, not str")
    return rendered


def _tail(longer: str, prefix: str) -> str:
    if not longer.startswith(prefix):
        raise SummarizationConfigError(
            "the tokenizer's chat template does not render a conversation as a growing prefix (it rewrites earlier turns), "
            "so assistant turns cannot be masked; set generation.template to use a plain template"
        )
    return longer[len(prefix) :]


def text_segments(
    tokenizer: PreTrainedTokenizerBase, messages: Sequence[Turn], template: str | None, generation_prompt: bool = False
) -> list[tuple[str, bool]]:
    """The conversation's text as (text, learned) pieces whose concatenation is the rendered conversation: learned
    pieces are the assistant turns (with their end-of-turn marker), all else (system, user, the assistant header)
    is not. `generation_prompt`: end with the header of the next assistant turn."""
    segments: list[tuple[str, bool]] = []
    if uses_chat_template(tokenizer, template):
        done = ""
        for k, turn in enumerate(messages):
            if turn["role"] == "assistant":
                header = _render(tokenizer, messages[:k], generation_prompt=True)
                segments.append((_tail(header, done), False))
                done = header
            rendered = _render(tokenizer, messages[: k + 1], generation_prompt=False)
            segments.append((_tail(rendered, done), turn["role"] == "assistant"))
            done = rendered
        if generation_prompt:
            segments.append((_tail(_render(tokenizer, messages, generation_prompt=True), done), False))
        return segments
    plain = template or PLAIN_TEMPLATE
    eos = tokenizer.eos_token or ""
    for k, turn in enumerate(messages):
        if turn["role"] == "system":
            segments.append((turn["content"].strip() + "\n\n", False))
        elif turn["role"] == "user":
            separator = "\n\n" if k and messages[k - 1]["role"] == "assistant" else ""
            segments.append((separator + plain.replace("{document}", turn["content"].strip()), False))
        else:
            segments.append((turn["content"].strip() + eos, True))
    return segments


def conversation_ids(
    tokenizer: PreTrainedTokenizerBase,
    messages: Sequence[Turn],
    template: str | None,
    budgets: tuple[int, int],
    generation_prompt: bool = False,
) -> tuple[list[int], list[bool], tuple[bool, bool]]:
    """The conversation's token ids, whether each is learned (an assistant token), and whether a prompt piece (system,
    user) or a response was cut. `budgets`: the most tokens of one prompt piece and of one response (a cut keeps the
    piece's start). Each piece is tokenised alone, in training and at generation alike; a plain template starts with
    the tokenizer's own special tokens (a BOS, say), since a chat template writes its own."""
    max_prompt, max_response = budgets
    check_budget("max_document_tokens", max_prompt)
    check_budget("max_summary_tokens", max_response)
    ids: list[int] = []
    learned: list[bool] = []
    prompt_cut = response_cut = False
    plain = not uses_chat_template(tokenizer, template)
    for i, (text, is_response) in enumerate(text_segments(tokenizer, messages, template, generation_prompt)):
        piece = token_ids(tokenizer, text, special=plain and i == 0)
        limit = max_response if is_response else max_prompt
        if len(piece) > limit:
            response_cut, prompt_cut = response_cut or is_response, prompt_cut or not is_response
            piece = piece[:limit]
        ids += piece
        learned += [is_response] * len(piece)
    return ids, learned, (prompt_cut, response_cut)


def generate_responses(  # noqa: PLR0913  # `generate_summaries`' arguments, with conversations for documents
    model: Any,
    tokenizer: PreTrainedTokenizerBase,
    contexts: Sequence[Sequence[Turn]],
    template: str | None,
    max_prompt_tokens: int,
    settings: DecodingSettings,
    batch_size: int = 8,
) -> list[str]:
    """The next assistant turn of each conversation (its turns so far), generated in batches (`generate_from_ids`)."""
    budgets = (max_prompt_tokens, 1)
    prompts = [conversation_ids(tokenizer, turns, template, budgets, generation_prompt=True)[0] for turns in contexts]
    return generate_from_ids(model, tokenizer, prompts, settings, batch_size, "generating responses")


# --- baseline and per-example scores -------------------------------------------------------------------------------


def _instruction_data(data: TaskData) -> InstructionData:
    if not isinstance(data, InstructionData):
        raise TypeError(f"instruction metrics need instruction data, got {type(data).__name__}")
    return data


def retrieval_baseline(data: TaskData, seed: int = 0) -> dict[str, float]:
    """`baseline_test_exact_match` etc.: the response of the nearest training prompt (TF-IDF, cosine), and
    `baseline_<split>_frequent_*`: the most frequent training response for every prompt (`seed` is unused: no draw)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics.pairwise import linear_kernel

    loaded = _instruction_data(data)
    train: ConversationSplit = loaded.train
    tokenizer = text_tokenizer_of(loaded)
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    train_matrix = vectorizer.fit_transform(train.documents)
    frequent = Counter(train.summaries).most_common(1)[0][0]
    scores: dict[str, float] = {}
    for split in ("validation", "test"):
        pairs: ConversationSplit = loaded.split(split)
        nearest = linear_kernel(vectorizer.transform(pairs.documents), train_matrix).argmax(axis=1)
        retrieved = [train.summaries[int(i)] for i in nearest]
        means, _ = instruction_scores(retrieved, pairs.summaries, f"baseline_{split}", tokenizer)
        scores.update(means)
        means, _ = instruction_scores([frequent] * len(pairs), pairs.summaries, f"baseline_{split}_frequent", tokenizer)
        scores.update(means)
    return scores


def instruction_per_example(data: TaskData, values: Mapping[str, Sequence[float]]) -> dict[str, Any]:
    """The `per_example/test.json` document: each scored test example's exact match, token F1 and ROUGE-L."""
    loaded = _instruction_data(data)
    n = len(next(iter(values.values())))
    scores = PerExampleScores(
        "instruction",
        split_digest(loaded, "test"),
        example_ids(loaded.test.documents[:n]),
        values={k: [float(v) for v in vs] for k, vs in values.items()},
    )
    return scores.to_document()
