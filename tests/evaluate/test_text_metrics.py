"""Text metrics on Chinese: the tokenisation layer behind ROUGE and key-term recall, the baselines that read the
language, and English figures that do not move."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from rouge_score import rouge_scorer

from mlops.config import load_config
from mlops.data import TextTokenizer, load_task_data, resolve_text_tokenizer, text_tokenizer_of, tokenize
from mlops.errors import SplitMismatch
from mlops.evaluate import key_term_recall, lead_baseline, rouge, tfidf_baseline
from mlops.evaluate.baselines import lead
from mlops.registry import check_same_text_tokenizer

REFERENCE = "星海公司须在30日内向北辰公司支付50万元货款，逾期每日加付万分之五违约金。"
WRONG_PARTY = "北辰公司须在30日内向星海公司退还50万元押金"  # the other party pays, and a deposit back
CHAR = TextTokenizer("char")


def _rouge_l(prediction: str, reference: str, tokenizer: TextTokenizer | None) -> float:
    return rouge([prediction], [reference], tokenizer)[1][0]


def _data(name: str):  # type: ignore[no-untyped-def]
    config = load_config(name)
    return load_task_data(config.task, config.dataset, Path(config.source_file).parent, config.training.seed)


def test_rouge_score_alone_scores_only_the_digits_of_chinese() -> None:
    """The defect, kept as a fact about rouge-score: its tokenizer drops every CJK character."""
    assert _rouge_l("30 50", REFERENCE, None) == 1.0
    assert _rouge_l(WRONG_PARTY, REFERENCE, None) == 1.0
    assert _rouge_l(REFERENCE.replace("30", "三十").replace("50", "五十"), REFERENCE, None) == 0.0


@pytest.mark.parametrize("mode", ["char", "jieba"])
def test_chinese_rouge_counts_the_words(mode: str) -> None:
    tokenizer = TextTokenizer(mode)
    correct = _rouge_l(REFERENCE, REFERENCE, tokenizer)
    numbers_only = _rouge_l("30 50", REFERENCE, tokenizer)
    wrong_party = _rouge_l(WRONG_PARTY, REFERENCE, tokenizer)
    assert correct == 1.0
    assert numbers_only < 0.2
    assert wrong_party < 0.7 * correct
    assert _rouge_l(REFERENCE.replace("30", "三十").replace("50", "五十"), REFERENCE, tokenizer) > 0.8


def test_character_rouge_by_hand() -> None:
    # 甲方支付货款 / 乙方支付货款: 6 characters each, LCS 方支付货款 = 5; bigrams shared 4 of 5.
    scores, per_example = rouge(["乙方支付货款"], ["甲方支付货款"], CHAR)
    assert scores["rouge1"] == pytest.approx(5 / 6) and scores["rougeL"] == pytest.approx(5 / 6)
    assert scores["rouge2"] == pytest.approx(4 / 5) and per_example == [pytest.approx(5 / 6)]
    # 北辰公司退还押金 (8) / 押金由北辰公司退还 (9): LCS 北辰公司退还 = 6, F = 2 * 6/9 * 6/8 / (6/9 + 6/8) = 12/17;
    # every reference character occurs: ROUGE-1 F = 2 * 8/9 * 1 / (8/9 + 1) = 16/17.
    scores, _ = rouge(["押金由北辰公司退还"], ["北辰公司退还押金"], CHAR)
    assert scores["rougeL"] == pytest.approx(12 / 17) and scores["rouge1"] == pytest.approx(16 / 17)
    # "30 50" against the 34 tokens of REFERENCE: P = 1, R = 2/34, F = 2 * 2/34 / (1 + 2/34) = 4/36.
    assert _rouge_l("30 50", REFERENCE, CHAR) == pytest.approx(4 / 36)


def test_mixed_text_keeps_latin_words_and_numbers_whole() -> None:
    text = "Tenant须在３０日内支付USD 1,000.50押金（deposit）"
    assert CHAR.tokenize(text) == ["tenant", "须", "在", "30", "日", "内", "支", "付", "usd", "1,000.50", "押", "金", "deposit"]
    assert TextTokenizer("words").tokenize("The Tenant  pays\tUSD 900.") == ["The", "Tenant", "pays", "USD", "900."]
    jieba_tokens = TextTokenizer("jieba").tokenize("星海公司支付货款USD 900")
    assert {"星海", "公司", "支付", "货款", "usd", "900"} <= set(jieba_tokens) and "，" not in jieba_tokens
    assert tokenize("合同", "auto") == ["合", "同"] and tokenize("the lease", "auto") == ["the", "lease"]


def test_auto_reads_the_script_of_the_data() -> None:
    assert resolve_text_tokenizer("auto", ["星海公司须在30日内付款", "USD 900"]).mode == "char"
    assert resolve_text_tokenizer("auto", ["The Tenant shall pay 星海"]).mode == "words"  # a name is not a language
    assert resolve_text_tokenizer("jieba", ["The Tenant"]).mode == "jieba"  # a named mode is taken as named
    with pytest.raises(ValueError, match="must be one of auto, words, char, jieba"):
        resolve_text_tokenizer("chars", [])
    assert text_tokenizer_of(_data("legal-summarization")).mode == "words"
    assert text_tokenizer_of(_data("fraud-detection")).mode == "words"
    assert text_tokenizer_of(_data("legal-summarization-zh")).mode == "char"
    assert text_tokenizer_of(_data("fraud-detection-zh")).mode == "char"


def test_words_mode_is_rouge_scores_own_tokenizer() -> None:
    """English figures do not move: `words` and no tokenizer both score exactly as rouge-score's default does."""
    data = _data("legal-summarization")
    predictions = [lead(d) for d in data.test.documents]
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    expected = [scorer.score(r, p)["rougeL"].fmeasure for p, r in zip(predictions, data.test.summaries, strict=True)]
    assert rouge(predictions, data.test.summaries, TextTokenizer("words"))[1] == expected
    assert rouge(predictions, data.test.summaries)[1] == expected
    old_leads = [re.split(r"(?<=[.!?])\s+", d.strip(), maxsplit=1)[0] for d in data.test.documents]
    assert predictions == old_leads  # the lead baseline of English text is unchanged too
    assert lead_baseline(data)["baseline_test_rougeL"] == pytest.approx(sum(expected) / len(expected))


def test_key_terms_match_as_whole_tokens_in_chinese() -> None:
    terms = [["30日", "北辰公司"]]
    assert key_term_recall(["星海公司须在130日内向北辰公司付款"], terms, CHAR)[0] == 0.5  # 30日 is not in 130日
    assert key_term_recall(["星海公司须在130日内向北辰公司付款"], terms)[0] == 1.0  # a substring match finds it
    assert key_term_recall(["北辰公司须在30日内付款"], terms, CHAR)[0] == 1.0


def test_lead_baseline_on_chinese_clauses_is_the_first_sentence_not_the_document() -> None:
    assert lead("本条款为甲方与乙方所签合同的组成部分。乙方应于30日内付款；逾期加付违约金。") == "本条款为甲方与乙方所签合同的组成部分。"
    assert lead("甲方；乙方") == "甲方；" and lead("Late fee applies. Pay now") == "Late fee applies."
    data = _data("legal-summarization-zh")
    scores = lead_baseline(data)
    assert 0.1 < scores["baseline_test_rougeL"] < 0.6, scores  # the preamble shares the names, not the obligation
    assert 0.1 < scores["baseline_test_key_term_recall"] < 1.0


def test_tfidf_baseline_reads_character_ngrams_of_chinese() -> None:
    data = _data("fraud-detection-zh")
    scores = tfidf_baseline(data, seed=0)
    assert 0.7 < scores["baseline_test_f1"] <= 1.0, scores
    english = tfidf_baseline(_data("fraud-detection"), seed=0)
    assert 0.5 < english["baseline_test_f1"] < 1.0


def test_compare_refuses_scores_counted_in_other_units() -> None:
    with pytest.raises(SplitMismatch, match=r"^m v2 vs champion v1: text_tokenizer differs \(challenger char, champion words\)"):
        check_same_text_tokenizer("char", "words", "m v2 vs champion v1")
    check_same_text_tokenizer("char", "char")
    check_same_text_tokenizer("char", None)  # a champion from before the param is taken at its word
