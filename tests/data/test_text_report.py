"""The data report on Chinese data: lengths in the resolved units, class names drawn with a CJK font (or by id with
one notice when none is installed), and the resolved mode logged as a run param."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from mlops.config import load_config
from mlops.data import DataReport, load_task_data, log_data_report
from mlops.data import report as report_module


def _data(name: str, overrides: dict[str, object] | None = None):  # type: ignore[no-untyped-def]
    config = load_config(name, overrides)
    return load_task_data(config.task, config.dataset, Path(config.source_file).parent, config.training.seed)


def test_reference_lengths_count_characters_of_chinese_and_words_of_english() -> None:
    chinese = _data("legal-summarization-zh").report
    assert chinese.text_tokenizer == "char"
    lengths = chinese.split("test").reference_words
    assert lengths is not None and 25 < lengths.mean < 60 and lengths.max > 40  # not "1 word" each
    assert "test reference characters: mean" in chinese.text()
    segmented = _data("legal-summarization-zh", {"dataset.text_tokenizer": "jieba"}).report
    assert segmented.text_tokenizer == "jieba" and 5 < segmented.split("test").reference_words.mean < lengths.mean
    english = _data("legal-summarization").report
    assert english.text_tokenizer == "words" and english.split("test").reference_words.mean == pytest.approx(21.2, abs=0.05)
    assert "test reference words: mean" in english.text()


def test_the_mode_travels_with_the_report_and_is_logged(tracking: str) -> None:
    report = _data("fraud-detection-zh").report
    assert DataReport.from_dict(report.to_dict()).text_tokenizer == "char"
    with mlflow.start_run() as run:
        log_data_report(report)
    assert MlflowClient().get_run(run.info.run_id).data.params["text_tokenizer"] == "char"


def _glyph_warnings(report: DataReport, path: Path) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report.render(path)
    return [str(w.message) for w in caught if "missing from" in str(w.message)]


def test_chinese_class_names_render_with_the_cjk_font(tmp_path: Path) -> None:
    report = _data("fraud-detection-zh").report
    family = report_module.label_font(list(report.label_ids))
    assert family is not None, "no CJK font installed (scripts/setup installs fonts-noto-cjk)"
    assert "CJK" in family
    assert _glyph_warnings(report, tmp_path / "report.png") == []
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_without_a_cjk_font_classes_are_labelled_by_id_and_said_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    report = _data("fraud-detection-zh").report
    default_only = report_module._fonts()[:1]
    monkeypatch.setattr(report_module, "_fonts", lambda: default_only)
    report_module._say_no_font.cache_clear()
    with caplog.at_level(logging.WARNING, logger="mlops.data.report"):
        assert _glyph_warnings(report, tmp_path / "a.png") == []
        assert _glyph_warnings(report, tmp_path / "b.png") == []
    notices = [r.getMessage() for r in caplog.records if "labels classes by id" in r.getMessage()]
    assert len(notices) == 1 and "fonts-noto-cjk" in notices[0]
    assert report_module.label_font(["fraud", "legitimate"]) is not None  # Latin names need no CJK font
