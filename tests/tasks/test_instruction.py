"""The instruction task's pieces: SQuAD's exact match and token F1, assistant-only labels (token by token, with and
without a chat template), packing, the retrieval baseline, and the data contract's errors and drops."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops.config import DatasetConfig, GenerationConfig
from mlops.data.instruction import load_instruction_data
from mlops.errors import DataError
from mlops.evaluate.instruction import exact_match, instruction_scores, normalize_answer, retrieval_baseline, token_f1
from mlops.models import resolve_source
from mlops.train.tasks import make_collator
from mlops.train.tasks.instruction import encode_conversations

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CONVERSATION = [
    {"role": "system", "content": "You answer questions about contracts."},
    {"role": "user", "content": "Who pays the rent?"},
    {"role": "assistant", "content": "The Tenant pays."},
    {"role": "user", "content": "By when?"},
    {"role": "assistant", "content": "By the 5th of each month."},
]


def test_exact_match_and_token_f1_as_squad_defines_them() -> None:
    assert normalize_answer("The  Tenant, pays!") == "tenant pays"
    assert exact_match("the Tenant pays.", "Tenant pays") == 1.0 and exact_match("Tenant pays rent", "Tenant pays") == 0.0
    # prediction "tenant pays rent monthly" vs "the tenant pays": common {tenant, pays}: P = 2/4, R = 2/2, F1 = 2/3
    assert token_f1("Tenant pays rent monthly", "the tenant pays") == pytest.approx(2 / 3)
    assert token_f1("x b b", "b b c") == pytest.approx(2 / 3)  # counts, not sets: common = 2 b's; P = R = 2/3
    assert token_f1("a b b", "b b c") == pytest.approx(0.8)  # "a" is an article: dropped, so P = 1, R = 2/3
    assert token_f1("", "") == 1.0 and token_f1("the", "Tenant") == 0.0 and token_f1("x", "y") == 0.0
    means, per = instruction_scores(["The Tenant pays.", "nothing"], ["tenant pays", "USD 900"], "test")
    assert (
        per["exact_match"] == [1.0, 0.0] and per["token_f1"] == [1.0, 0.0] and per["rougeL"][0] == pytest.approx(0.8)
    )  # ROUGE keeps "the"
    assert means["test_exact_match"] == 0.5 and set(means) == {"test_exact_match", "test_token_f1", "test_rougeL"}


def test_answers_in_a_script_without_spaces_count_characters() -> None:
    """With the dataset's `char` text tokenizer, a Chinese answer is compared character by character (CMRC's way),
    where a whitespace split would make each answer one token and any difference a zero."""
    from mlops.data import TextTokenizer

    chars = TextTokenizer("char")
    prediction, reference = "租户支付租金。", "租金由租户支付"  # the tenant pays the rent / the rent is paid by the tenant
    assert token_f1(prediction, reference) == 0.0, "words: two different one-token answers"
    # characters: prediction 6 (punctuation dropped), reference 7, common 6: P = 1, R = 6/7
    assert token_f1(prediction, reference, chars) == pytest.approx(2 * (6 / 7) / (1 + 6 / 7))
    assert normalize_answer("租户, 支付 USD 1,200!", chars) == "租 户 支 付 usd 1200"
    assert exact_match("租户支付。", "租户 支付", chars) == 1.0 and exact_match("租户支付。", "租户 支付") == 0.0
    means, per = instruction_scores([prediction], [reference], "test", chars)
    assert per["token_f1"][0] == pytest.approx(2 * (6 / 7) / (1 + 6 / 7)) and per["rougeL"][0] > 0.5
    assert means["test_token_f1"] == per["token_f1"][0]


@pytest.fixture(scope="module")
def tokenizer():  # type: ignore[no-untyped-def]
    return resolve_source("tiny-random-llama").load_tokenizer()


def _learned_text(tokenizer, row) -> list[str]:  # type: ignore[no-untyped-def]
    """The learned tokens' text, one string per contiguous run of labels."""
    runs: list[list[int]] = []
    previous = False
    for token, label in zip(row["input_ids"], row["labels"], strict=True):
        if label != -100:
            assert label == token
            if not previous:
                runs.append([])
            runs[-1].append(token)
        previous = label != -100
    return [tokenizer.decode(r) for r in runs]


@pytest.mark.parametrize("chat_template", [None, CHATML])
def test_only_assistant_tokens_carry_labels(tokenizer, chat_template: str | None) -> None:  # type: ignore[no-untyped-def]
    tokenizer.chat_template = chat_template
    try:
        rows, stats = encode_conversations(tokenizer, [CONVERSATION], GenerationConfig())
    finally:
        tokenizer.chat_template = None
    row = rows[0]
    learned = _learned_text(tokenizer, row)
    end = "<|im_end|>\n" if chat_template else tokenizer.eos_token
    assert learned == ["The Tenant pays." + end, "By the 5th of each month." + end]
    unlearned = tokenizer.decode([t for t, label in zip(row["input_ids"], row["labels"], strict=True) if label == -100])
    for turn in CONVERSATION:
        if turn["role"] != "assistant":
            assert turn["content"] in unlearned
    assert "Tenant pays" not in unlearned and stats.examples == 1 and stats.responses_truncated == 0
    if chat_template:  # the whole row is exactly the rendered conversation
        assert tokenizer.decode(row["input_ids"]) == tokenizer.apply_chat_template(CONVERSATION, tokenize=False, chat_template=CHATML)


def test_truncation_is_counted_and_packing_keeps_examples_apart(tokenizer) -> None:  # type: ignore[no-untyped-def]
    long = [{"role": "user", "content": "word " * 80}, {"role": "assistant", "content": "answer " * 40}]
    (cut,), stats = encode_conversations(tokenizer, [long], GenerationConfig(max_document_tokens=16, max_summary_tokens=8))
    assert (stats.prompts_truncated, stats.responses_truncated) == (1, 1) and len(cut["input_ids"]) == 16 + 8
    assert sum(label != -100 for label in cut["labels"]) == 8
    (whole,), stats = encode_conversations(tokenizer, [CONVERSATION], GenerationConfig())
    assert (stats.prompts_truncated, stats.responses_truncated) == (0, 0)
    rows = [cut, whole]
    batch = make_collator(tokenizer, packing=True)(rows)
    n = len(rows[0]["input_ids"])
    assert batch["labels"][0, n] == -100  # the first token of the second example is never predicted across the boundary
    assert batch["position_ids"][0, n] == 0 and batch["attention_mask"][0, 0, n, n - 1] < 0


def _jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _pairs(n: int) -> list[dict[str, object]]:
    return [{"prompt": f"What does clause {i} cost?", "response": f"USD {100 + i}"} for i in range(n)]


def test_prompt_response_pairs_load_with_a_system_prompt_and_the_retrieval_baseline(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "qa.jsonl", _pairs(40))
    data = load_instruction_data(DatasetConfig(path=str(path), system_prompt="Be brief.", min_split_examples=3), tmp_path, 0)
    assert len(data.train) + len(data.validation) + len(data.test) == 40
    first = data.train.conversations[0]
    assert [t["role"] for t in first] == ["system", "user", "assistant"] and first[0]["content"] == "Be brief."
    scores = retrieval_baseline(data)
    assert {"baseline_test_exact_match", "baseline_test_token_f1", "baseline_test_rougeL", "baseline_test_frequent_exact_match"} <= set(
        scores
    )
    assert all(0.0 <= v <= 1.0 for v in scores.values())


def test_chinese_answers_are_scored_in_characters_the_loader_resolved(tmp_path: Path) -> None:
    """`dataset.text_tokenizer: auto` reads the training conversations, notes `char` on the report, and the report's
    response lengths and the baseline's exact match and token F1 count characters."""
    rows = [{"prompt": f"第{i}条规定的费用是多少？", "response": f"租户每月支付{100 + i}元租金"} for i in range(40)]
    path = _jsonl(tmp_path / "qa.jsonl", rows)
    data = load_instruction_data(DatasetConfig(path=str(path), min_split_examples=3), tmp_path, 0)
    assert data.report is not None and data.report.text_tokenizer == "char"
    stats = data.report.split("test").reference_words
    assert stats is not None and stats.max == 10, "租 户 每 月 支 付 1xx 元 租 金: ten tokens, the number one"
    scores = retrieval_baseline(data)
    # the nearest prompt's response differs in the number alone: 9 of 10 tokens in common; whole-answer tokens give 0
    assert scores["baseline_test_exact_match"] == 0.0 and scores["baseline_test_token_f1"] == pytest.approx(9 / 10)


BAD_MESSAGES = [
    ({"messages": "not json"}, "dataset.messages_column: 1 row of", "no list of {role, content} turns: row 3"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, "dataset.messages_column", "a role other than system, user, assistant: row 3"),
    ({"messages": [{"role": "user", "content": "hi"}]}, "dataset.messages_column", "no assistant turn: row 3; fix them, or set"),
    (
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": " "}]},
        "dataset.messages_column",
        "an empty response",
    ),
]


@pytest.mark.parametrize(("bad", "field", "message"), BAD_MESSAGES)
def test_each_bad_conversation_is_an_error_naming_its_row(tmp_path: Path, bad: dict[str, object], field: str, message: str) -> None:
    good = [{"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]} for i in range(30)]
    path = _jsonl(tmp_path / "chat.jsonl", [*good[:2], bad, *good[2:]])
    with pytest.raises(DataError) as caught:
        load_instruction_data(DatasetConfig(path=str(path), messages_column="messages", min_split_examples=3), tmp_path, 0)
    assert str(caught.value).startswith(field) and message in str(caught.value) and "\n" not in str(caught.value)


def test_drops_are_counted_where_the_contract_says_drop(tmp_path: Path) -> None:
    rows = [*_pairs(30), {"prompt": "q", "response": ""}, {"prompt": "", "response": "a"}, {"prompt": "q2", "response": None}]
    path = _jsonl(tmp_path / "qa.jsonl", rows)
    cfg = DatasetConfig(path=str(path), min_split_examples=3)
    with pytest.raises(DataError, match=r"^dataset.response_column: 2 rows of .* have an empty response: rows 31, 33; fix them"):
        load_instruction_data(cfg, tmp_path, 0)
    cfg.on_invalid.missing_target = "drop"
    data = load_instruction_data(cfg, tmp_path, 0)
    assert data.report is not None
    dropped = data.report.dropped()
    assert dropped["empty_response"] == 2 and dropped["empty_prompt"] == 1 and dropped["no_assistant_turn"] == 0
    assert data.report.metrics()["rows_dropped_empty_response"] == 2.0


def test_a_missing_column_names_the_field(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "qa.jsonl", _pairs(30))
    with pytest.raises(DataError, match=r"^dataset.messages_column: column 'messages' not in .*qa.jsonl \(columns: prompt, response\)"):
        load_instruction_data(DatasetConfig(path=str(path), messages_column="messages"), tmp_path, 0)
    with pytest.raises(DataError, match=r"^dataset.response_column: column 'answer' not in"):
        load_instruction_data(DatasetConfig(path=str(path), response_column="answer"), tmp_path, 0)
