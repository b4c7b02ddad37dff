"""Augmentation of Chinese texts: jieba's words for EDA, Cilin's synonyms, a one-line refusal (exit 2, no run) for a
method that cannot handle the language, and never a silent zero-row augmentation."""

from __future__ import annotations

import logging
import random
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from mlflow import MlflowClient

from mlops.config import AugmentConfig, load_config
from mlops.data import load_task_data
from mlops.data.augment import Augmenter, augment_training_data, back_translation, nothing_added
from mlops.data.augment._text import Words
from mlops.data.text import text_language
from mlops.errors import ConfigError
from tests.helpers import TESTS, write

KEEP = frozenset({"北辰公司", "30日"})
POLICY = TESTS / "registry" / "tiny-detector.yaml"
CLAUSE = "星海公司须在30日内向北辰公司支付货款，逾期每日加付违约金。"


@pytest.fixture(scope="module")
def legal_zh():  # type: ignore[no-untyped-def]
    config = load_config("legal-summarization-zh", {"dataset.max_samples": 40})
    return load_task_data(config.task, config.dataset, Path(config.source_file).parent, 0)


def test_segmented_words_protect_key_terms_numbers_and_punctuation() -> None:
    words = Words.segmented(CLAUSE, KEEP)
    assert words.text() == CLAUSE and "支付" in [t.text for t in words.tokens]
    protected = {t.text for t in words.tokens if t.protected}
    assert {"30", "，", "。"} <= protected and {"北辰", "公司"} & protected
    assert "支付" not in protected and "星海" not in protected
    words.insert(1, "付款")
    assert words.text() == "星海付款" + CLAUSE[2:]  # no space inside Chinese


@pytest.mark.parametrize("method", ["synonym", "swap", "delete", "insert"])
def test_every_word_method_adds_chinese_rows(legal_zh, method: str) -> None:  # type: ignore[no-untyped-def]
    outcome = augment_training_data(legal_zh, AugmentConfig(methods=[method], multiplier=1), seed=0)
    added = outcome.counts[f"added_{method}"]
    assert added >= 10, outcome.counts
    assert len(outcome.data.train) == len(legal_zh.train) + added
    for i, copy in zip(outcome.origins, outcome.data.train.documents[len(legal_zh.train) :], strict=True):
        original = legal_zh.train.documents[i]
        assert copy != original and copy.count(" ") == original.count(" ")  # no space put between Chinese words
        assert all(term in copy for term in legal_zh.train.key_terms[i])  # parties, amounts, deadlines survive


def test_synonyms_of_chinese_come_from_cilin() -> None:
    from mlops.data.augment.cilin import chinese_synonyms

    assert "退回" in chinese_synonyms("退还") and chinese_synonyms("不是一个词") == ()
    language = text_language([CLAUSE])
    assert language.name == "Chinese" and language.code == "zh" and language.describe() == "100 % of the training text is Chinese"


def test_a_translation_pair_from_another_language_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(back_translation, "load_translator", lambda source, field: (None, None))
    english_pair = back_translation.BackTranslation("Helsinki-NLP/opus-mt-en-de", "Helsinki-NLP/opus-mt-de-en")
    refusal = "^back_translation: Helsinki-NLP/opus-mt-en-de translates from en; 100 % of the training text is Chinese$"
    with pytest.raises(ConfigError, match=refusal):
        english_pair.ready_for(text_language([CLAUSE]))
    english_pair.ready_for(text_language(["The Tenant shall pay"]))
    chinese_pair = back_translation.BackTranslation("Helsinki-NLP/opus-mt-zh-en", "Helsinki-NLP/opus-mt-en-zh")
    chinese_pair.ready_for(text_language([CLAUSE]))
    with pytest.raises(ConfigError, match="translates from zh; 0 % of the training text is Chinese"):
        chinese_pair.ready_for(text_language(["The Tenant shall pay"]))


def test_a_language_no_method_covers_stops_before_any_run_with_one_line(tracking: str, tmp_path: Path) -> None:
    rows = "\n".join(f"これは{i}番目の請求書です,{'fraud' if i % 2 else 'legitimate'}" for i in range(60))
    data = write(tmp_path / "ja.csv", f"text,label\n{rows}\n")
    config = write(
        tmp_path / "ja.yaml",
        f"name: ja\ntask: classification\ndataset: {{path: {data}, min_examples_per_class: 2, min_split_examples: 5}}\n"
        f"model: {{source: tiny-random-bert}}\nregistry: {{model_name: tiny-detector, policy: {POLICY}}}\n",
    )
    code = "import sys; from mlops.cli import main; sys.exit(main(sys.argv[1:]))"
    out = subprocess.run(
        [sys.executable, "-c", code, "augment", "--config", str(config), "--methods", "synonym"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert "synonym: WordNet covers English and Cilin Chinese; 100 % of the training text is Japanese" in out.stderr
    client = MlflowClient()
    assert client.search_runs([e.experiment_id for e in client.search_experiments()]) == []


class _Unchanged(Augmenter):
    """Finds nothing to change: every copy repeats its original."""

    name = "swap"

    def augment(self, texts: Sequence[str], protected: Sequence[frozenset[str]], rng: random.Random) -> list[str]:
        return list(texts)


def test_an_augmentation_that_keeps_nothing_says_why(legal_zh, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    config = AugmentConfig(methods=["swap"], multiplier=1)
    with caplog.at_level(logging.WARNING, logger="mlops.data.augment._run"):
        outcome = augment_training_data(legal_zh, config, seed=0, augmenters={"swap": _Unchanged()})
    assert outcome.counts["rows_out"] == outcome.counts["rows_in"] == 40
    expected = "augment: none of 40 candidate copies was kept (rejected: duplicates 40); the train split is unchanged"
    assert [r.getMessage() for r in caplog.records] == [expected]
    assert nothing_added(outcome.counts) == expected
    assert nothing_added({**outcome.counts, "rows_out": 41}) is None
