"""The summarisation task on the tiny random LLaMA: label masking, budgets, prompt templates, collation, packing isolation.
Generation and the scores are tested in tests/evaluate."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from mlops.errors import SummarizationConfigError
from mlops.evaluate import DEFAULT_TEMPLATE, build_prompt, prompt_ids
from mlops.train.tasks import EncodeStats, encode_pairs, make_collator
from mlops.train.tasks.summarization import IGNORE_INDEX
from tests.helpers import legal_rows

CHAT_TEMPLATE = (
    "{% for message in messages %}### {{ message['role'] }}\n{{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}### assistant\n{% endif %}"
)


@pytest.fixture(scope="module")
def source() -> Any:
    from mlops.models import resolve_source

    return resolve_source("tiny-random-llama")


@pytest.fixture(scope="module")
def tokenizer(source: Any) -> Any:
    return source.load_tokenizer()


@pytest.fixture(scope="module")
def model(source: Any) -> Any:
    return source.load_causal_lm().eval()


@pytest.fixture
def chat_tokenizer(source: Any) -> Any:
    tokenizer = source.load_tokenizer()
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def test_import_does_not_load_torch() -> None:
    code = (
        "import sys, mlops.evaluate.generation, mlops.train.tasks.summarization; "
        "print(sorted({'torch', 'transformers', 'rouge_score'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- prompts and encoding ---------------------------------------------------------------------------------------------


def test_labels_mask_the_prompt_and_keep_the_summary_and_eos(tokenizer: Any) -> None:
    data = legal_rows(n=3)
    documents, summaries = [r["document"] for r in data], [r["summary"] for r in data]
    rows, stats = encode_pairs(tokenizer, documents, summaries, None, max_document_tokens=512, max_summary_tokens=128)
    assert stats == EncodeStats(examples=3, documents_truncated=0, summaries_truncated=0)
    for row, document, summary in zip(rows, documents, summaries, strict=True):
        prompt, _ = prompt_ids(tokenizer, document, None, 512)
        n = len(prompt)
        assert row["input_ids"][:n] == prompt
        assert row["labels"][:n] == [IGNORE_INDEX] * n
        assert row["labels"][n:] == row["input_ids"][n:]
        assert IGNORE_INDEX not in row["labels"][n:]
        assert row["labels"][-1] == tokenizer.eos_token_id
        assert row["attention_mask"] == [1] * len(row["input_ids"])
        assert prompt == tokenizer(build_prompt(tokenizer, document, None))["input_ids"]  # as a serving wrapper would tokenize it
        assert tokenizer.decode(row["labels"][n:-1]).strip() == summary


def test_plain_tokenizer_uses_the_default_template(tokenizer: Any) -> None:
    assert build_prompt(tokenizer, "The text.", None) == DEFAULT_TEMPLATE.replace("{document}", "The text.")
    assert build_prompt(tokenizer, "a {b} c", "Doc: {document}\nTL;DR:") == "Doc: a {b} c\nTL;DR:"


def test_documents_are_cut_before_the_template_so_its_tail_survives(tokenizer: Any) -> None:
    data = legal_rows(n=4)
    summaries = [r["summary"] for r in data]
    budget = min(len(tokenizer(s, add_special_tokens=False)["input_ids"]) for s in summaries) + 1  # cuts some, not all
    rows, stats = encode_pairs(tokenizer, [r["document"] for r in data], summaries, None, max_document_tokens=8, max_summary_tokens=budget)
    assert stats.examples == 4
    assert stats.documents_truncated == 4
    assert 0 < stats.summaries_truncated < 4
    assert stats.as_metrics("train") == {
        "train_examples": 4.0,
        "train_documents_truncated": 4.0,
        "train_summaries_truncated": float(stats.summaries_truncated),
    }
    for row in rows:
        n = row["labels"].count(IGNORE_INDEX)
        assert tokenizer.decode(row["input_ids"][:n]).endswith("\n\nSummary:")
        assert len(row["labels"]) - n <= budget + 1  # summary budget plus the eos
        assert row["labels"][-1] == tokenizer.eos_token_id


def test_a_budget_that_cuts_every_summary_is_refused(tokenizer: Any) -> None:
    summaries = ["The provider pays the fees within thirty days.", "Liability is capped at one million pounds."]
    longest = max(len(tokenizer(" " + s, add_special_tokens=False)["input_ids"]) for s in summaries)
    with pytest.raises(ValueError, match=rf"generation.max_summary_tokens: 3 .*longest has {longest} tokens"):
        encode_pairs(tokenizer, ["doc one", "doc two"], summaries, None, max_document_tokens=64, max_summary_tokens=3)


def test_a_template_without_the_document_slot_is_refused(tokenizer: Any) -> None:
    with pytest.raises(ValueError, match="template"):
        build_prompt(tokenizer, "text", "Summarize this:")
    with pytest.raises(SummarizationConfigError, match="template"):
        encode_pairs(tokenizer, ["text"], ["sum"], "Summarize this:", 16, 16)


def test_chat_template_wraps_the_default_instruction(chat_tokenizer: Any) -> None:
    instruction = DEFAULT_TEMPLATE.replace("{document}", "The text.")
    assert build_prompt(chat_tokenizer, "The text.", None) == f"### user\n{instruction}\n### assistant\n"
    assert build_prompt(chat_tokenizer, "The text.", "{document} =>") == "The text. =>"  # an explicit template wins
    prompt, cut = prompt_ids(chat_tokenizer, "The text.", None, 64)
    assert not cut
    assert prompt == chat_tokenizer.apply_chat_template([{"role": "user", "content": instruction}], add_generation_prompt=True)["input_ids"]


def test_chat_template_prompts_keep_the_assistant_turn_when_the_document_is_cut(chat_tokenizer: Any) -> None:
    document, summary = legal_rows(n=1)[0]["document"], legal_rows(n=1)[0]["summary"]
    rows, stats = encode_pairs(chat_tokenizer, [document], [summary], None, max_document_tokens=10, max_summary_tokens=128)
    assert stats.documents_truncated == 1
    n = rows[0]["labels"].count(IGNORE_INDEX)
    prompt = chat_tokenizer.decode(rows[0]["input_ids"][:n])
    assert prompt.startswith("### user\nSummarize the following text in one sentence.\n\n")
    assert prompt.endswith("\n\nSummary:\n### assistant\n")
    assert chat_tokenizer.decode(rows[0]["labels"][n:-1]) == summary  # after a newline: no leading space added


# --- collation and packing --------------------------------------------------------------------------------------------


def test_collator_pads_to_the_longest_row_and_masks_padding(tokenizer: Any) -> None:
    rows = [
        {"input_ids": [5, 6, 7], "attention_mask": [1, 1, 1], "labels": [-100, 6, 7]},
        {"input_ids": [8, 9, 10, 11, 12], "attention_mask": [1] * 5, "labels": [-100, -100, 10, 11, 12]},
    ]
    batch = make_collator(tokenizer)(rows)
    assert batch["input_ids"].tolist() == [[5, 6, 7, tokenizer.pad_token_id, tokenizer.pad_token_id], [8, 9, 10, 11, 12]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1] * 5]
    assert batch["labels"].tolist() == [[-100, 6, 7, -100, -100], [-100, -100, 10, 11, 12]]
    assert make_collator(tokenizer, pad_to_multiple_of=8)(rows)["input_ids"].shape == (2, 8)


def _packed_examples(tokenizer: Any) -> list[dict[str, list[int]]]:
    data = legal_rows(n=3)
    rows, _ = encode_pairs(tokenizer, [r["document"] for r in data], [r["summary"] for r in data], None, 24, 64)
    return rows


def test_packed_examples_cannot_see_each_other(tokenizer: Any, model: Any) -> None:
    """The proof: every token's logits in the packed row equal those of its example run alone."""
    import torch

    rows = _packed_examples(tokenizer)
    batch = make_collator(tokenizer, packing=True)(rows)
    assert batch["input_ids"].shape == (1, sum(len(r["input_ids"]) for r in rows))
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], position_ids=batch["position_ids"]).logits[0]
        start = 0
        for row in rows:
            alone = model(input_ids=torch.tensor([row["input_ids"]])).logits[0]
            torch.testing.assert_close(packed[start : start + len(alone)], alone, rtol=1e-4, atol=1e-5)
            start += len(alone)
        # The check has teeth: restarted positions under a plain causal mask let later examples see earlier ones.
        n = batch["input_ids"].shape[1]
        causal = torch.where(torch.ones(n, n, dtype=torch.bool).tril(), 0.0, torch.finfo(torch.float32).min)[None, None]
        leaky = model(input_ids=batch["input_ids"], attention_mask=causal, position_ids=batch["position_ids"]).logits[0]
        first = len(rows[0]["input_ids"])
        assert not torch.allclose(leaky[first:], packed[first:], atol=1e-3)


def test_packed_loss_is_the_token_weighted_loss_of_the_examples_alone(tokenizer: Any, source: Any) -> None:
    import torch

    model = source.load_causal_lm().train()  # the training path: gradients on, the mask must work in train mode
    rows = _packed_examples(tokenizer)
    packed = model(**make_collator(tokenizer, packing=True)(rows)).loss
    packed.backward()
    total = weighted = 0.0
    for row in rows:
        alone = model(input_ids=torch.tensor([row["input_ids"]]), labels=torch.tensor([row["labels"]])).loss.item()
        targets = sum(label != IGNORE_INDEX for label in row["labels"][1:])
        weighted, total = weighted + alone * targets, total + targets
    assert packed.item() == pytest.approx(weighted / total, rel=1e-5)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_packing_never_predicts_an_examples_first_token_and_restarts_positions(tokenizer: Any) -> None:
    rows = [{"input_ids": ids, "attention_mask": [1] * len(ids), "labels": list(ids)} for ids in ([5, 6, 7], [8, 9], [10, 11, 12, 13])]
    batch = make_collator(tokenizer, packing=True, pad_to_multiple_of=16)(rows)
    assert batch["labels"][0, :9].tolist() == [-100, 6, 7, -100, 9, -100, 11, 12, 13]
    assert batch["labels"][0, 9:].tolist() == [-100] * 7  # padding up to 16 is never a target
    assert batch["position_ids"][0].tolist() == [0, 1, 2, 0, 1, 0, 1, 2, 3, *range(7)]
    allowed = batch["attention_mask"][0, 0] == 0
    assert allowed[4].tolist() == [False] * 3 + [True, True] + [False] * 11  # example 2 sees only itself, causally
    assert allowed.diagonal().all()  # no row is fully masked (that would give NaN)


def test_collator_needs_a_pad_token(source: Any) -> None:
    tokenizer = source.load_tokenizer()
    tokenizer.pad_token = None
    with pytest.raises(ValueError, match="pad_token"):
        make_collator(tokenizer)
