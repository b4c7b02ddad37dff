"""The data contract and the data report: every rule on small files built here, one training run read back through
MlflowClient (drops counted as metrics, the report and its picture logged), and `mlops data check`."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

from mlops.cli import main
from mlops.config import DatasetConfig, OnInvalid
from mlops.data import load_classification_data, load_summarization_data
from mlops.errors import DataError
from tests.helpers import TINY_CONFIG, write


def _frame(n: int = 200, label: str = "label") -> pd.DataFrame:
    return pd.DataFrame(
        {"text": [f"message number {i} about an account" for i in range(n)], label: ["fraud" if i % 2 else "ok" for i in range(n)]}
    )


def _cfg(path: Path, **kw: object) -> DatasetConfig:
    return DatasetConfig(path=str(path), **kw)  # type: ignore[arg-type]


def test_missing_labels_are_refused_by_default_and_dropped_on_request(tmp_path: Path) -> None:
    frame = _frame().astype(object)
    frame.loc[[4, 9, 30], "label"] = None
    frame.loc[50, "label"] = "   "
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"dataset.label_column: 4 rows of .*d.csv \(before splitting\) have no label .*rows 5, 10, 31, 51"):
        load_classification_data(_cfg(path), tmp_path, seed=0)
    data = load_classification_data(_cfg(path, on_invalid=OnInvalid(missing_target="drop")), tmp_path, seed=0)
    assert data.report is not None and data.report.dropped()["missing_label"] == 4
    assert len(data.train) + len(data.validation) + len(data.test) == 196


def test_empty_texts_are_dropped_and_counted_or_refused(tmp_path: Path) -> None:
    frame = _frame()
    frame.loc[::10, "text"] = ""  # 10 % empty
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    data = load_classification_data(_cfg(path), tmp_path, seed=0)
    assert data.report is not None and data.report.dropped()["empty_text"] == 20
    assert all(t.strip() for split in (data.train, data.validation, data.test) for t in split.texts)
    assert data.report.metrics()["rows_dropped_empty_text"] == 20
    with pytest.raises(DataError, match=r"dataset.text_column: 20 rows .* have an empty text in column 'text': rows 1, 11, 21"):
        load_classification_data(_cfg(path, on_invalid=OnInvalid(empty_input="error")), tmp_path, seed=0)


def test_labels_may_be_strings_integers_or_booleans_and_are_trimmed(tmp_path: Path) -> None:
    spaced = _frame()
    spaced["label"] = [" yes" if i % 4 == 0 else ("yes" if i % 2 == 0 else "no ") for i in range(200)]
    spaced.to_csv(tmp_path / "s.csv", index=False)
    data = load_classification_data(_cfg(tmp_path / "s.csv"), tmp_path, seed=0)
    assert data.label_names == ["no", "yes"] and data.report is not None
    assert data.report.labels_trimmed == 150 and data.report.label_ids == {"no": 0, "yes": 1}

    numbers = _frame().astype(object)
    numbers["label"] = [i % 2 for i in range(200)]
    numbers.loc[7, "text"] = None  # a dropped row must not turn the integer labels into "0.0" and "1.0"
    numbers.to_csv(tmp_path / "n.csv", index=False)
    assert load_classification_data(_cfg(tmp_path / "n.csv"), tmp_path, seed=0).label_names == ["0", "1"]

    (tmp_path / "b.jsonl").write_text(
        "".join(json.dumps({"text": f"note {i} on the card", "label": i % 3 == 0}) + "\n" for i in range(200))
    )
    assert load_classification_data(_cfg(tmp_path / "b.jsonl"), tmp_path, seed=0).label_names == ["False", "True"]


def test_booleans_beside_0_and_1_are_those_classes(tmp_path: Path) -> None:
    raw = {f"note {i} on the card": [True, 1, False, 0][i % 4] for i in range(200)}  # JSON `true` next to `1`
    write(tmp_path / "mixed.jsonl", "".join(json.dumps({"text": text, "label": label}) + "\n" for text, label in raw.items()))
    data = load_classification_data(_cfg(tmp_path / "mixed.jsonl"), tmp_path, seed=0)
    assert data.label_names == ["0", "1"] and data.report is not None and data.report.label_ids == {"0": 0, "1": 1}
    for split in (data.train, data.validation, data.test):
        assert [data.label_names[label] for label in split.labels] == [str(int(raw[text])) for text in split.texts]


@pytest.mark.parametrize(("others", "shown"), [(["yes", "no"], "'yes', 'no'"), ([2, 0], "2, 0"), (["1", "0"], "'1', '0'")])
def test_booleans_beside_other_labels_are_refused(tmp_path: Path, others: list[object], shown: str) -> None:
    labels = [True, others[0], False, others[1]]
    write(tmp_path / "mixed.jsonl", "".join(json.dumps({"text": f"note {i}", "label": labels[i % 4]}) + "\n" for i in range(200)))
    with pytest.raises(DataError) as refused:
        load_classification_data(_cfg(tmp_path / "mixed.jsonl"), tmp_path, seed=0)
    assert str(refused.value) == (
        f"dataset.label_column: column 'label' of {tmp_path / 'mixed.jsonl'} mixes booleans (True, False) with labels other than "
        f"0 and 1 ({shown}); write every label the same way"
    )


def test_a_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(b"\xef\xbb\xbf" + _frame().to_csv(index=False).encode())
    assert load_classification_data(_cfg(path), tmp_path, seed=0).label_names == ["fraud", "ok"]


def test_duplicates_are_counted_and_texts_shared_with_test_leave_train(tmp_path: Path) -> None:
    train, validation, test = _frame(100), _frame(40), _frame(40)
    validation["text"] = [f"validation text {i}" for i in range(40)]
    test["text"] = [f"Test text {i}." for i in range(40)]
    train.loc[[0, 1, 2], "text"] = "the same message"  # two exact repeats
    train.loc[10, "text"] = "TEST  text 3"  # test_text 3 after case, whitespace and punctuation are folded
    train.loc[11, "text"] = "validation text 7"
    splits = {}
    for name, frame in (("train", train), ("validation", validation), ("test", test)):
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
        splits[name] = str(tmp_path / f"{name}.csv")
    data = load_classification_data(DatasetConfig(path="", splits=splits), tmp_path, seed=0)
    assert data.report is not None
    assert data.report.split("train").duplicates == 2
    assert data.report.overlaps == {"train_validation": 1, "train_test": 1, "validation_test": 0}
    assert len(data.train) == 98 and "validation text 7" not in data.train.texts
    kept = load_classification_data(DatasetConfig(path="", splits=splits, on_invalid=OnInvalid(cross_split_overlap="keep")), tmp_path, 0)
    assert len(kept.train) == 100 and kept.report is not None and kept.report.overlaps["train_test"] == 1


def test_minimum_evidence_per_split_and_per_class(tmp_path: Path) -> None:
    splits = {}
    for name, n in (("train", 100), ("validation", 40), ("test", 40)):
        frame = _frame(n)
        if name == "test":
            frame["label"] = ["fraud" if i < 3 else "ok" for i in range(n)]
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
        splits[name] = str(tmp_path / f"{name}.csv")
    with pytest.raises(DataError, match=r"dataset.min_examples_per_class: class 'fraud' has 3 examples in the test split of .*test.csv"):
        load_classification_data(DatasetConfig(path="", splits=splits), tmp_path, seed=0)
    assert load_classification_data(DatasetConfig(path="", splits=splits, min_examples_per_class=3), tmp_path, seed=0)
    _frame(6).to_csv(tmp_path / "six.csv", index=False)
    with pytest.raises(DataError, match=r"dataset.min_split_examples: .*six.csv has 6 usable rows"):
        load_classification_data(_cfg(tmp_path / "six.csv"), tmp_path, seed=0)


def test_summaries_missing_are_refused_and_reference_lengths_reported(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"document": [f"Clause {i}: the tenant pays rent on day {i}." for i in range(160)], "summary": ["Rent is due."] * 160}
    )
    frame.loc[[3, 60], "summary"] = None
    frame.to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(DataError, match=r"dataset.summary_column: 2 rows .* have no summary in column 'summary': rows 4, 61"):
        load_summarization_data(_cfg(tmp_path / "d.csv"), tmp_path, seed=0)
    data = load_summarization_data(_cfg(tmp_path / "d.csv", on_invalid=OnInvalid(missing_target="drop")), tmp_path, seed=0)
    assert data.report is not None and data.report.dropped()["missing_summary"] == 2
    words = data.report.split("test").reference_words
    assert words is not None and words.mean == 3.0


def test_a_training_run_logs_its_drops_and_the_report(tracking: str, tmp_path: Path) -> None:
    frame = _frame(400)
    frame.loc[::10, "text"] = "  "
    frame.to_csv(tmp_path / "d.csv", index=False)
    config = yaml.safe_load(TINY_CONFIG.read_text())
    config["dataset"] = {"path": str(tmp_path / "d.csv")}
    config["training"]["max_steps"] = 2
    path = write(tmp_path / "c.yaml", yaml.safe_dump(config))
    assert main(["finetune", "--config", str(path)]) == 0
    client = MlflowClient()
    (run,) = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    assert run.info.status == "FINISHED"
    assert run.data.metrics["rows_dropped_empty_text"] == 40 and run.data.metrics["rows_dropped_missing_label"] == 0
    assert run.data.metrics["rows_train"] + run.data.metrics["rows_validation"] + run.data.metrics["rows_test"] == 360
    assert {"data_report.json", "data_report.png"} <= {a.path for a in client.list_artifacts(run.info.run_id)}
    report = json.loads(Path(client.download_artifacts(run.info.run_id, "data_report.json", str(tmp_path))).read_text())
    assert report["dropped_before_split"] == {"empty_text": 40} and report["label_ids"] == {"fraud": 0, "ok": 1}
    assert report["splits"]["train"]["input_tokens"]["budget"] == 32  # the tiny config's max_length


def test_data_check_prints_the_report_without_a_run(tracking: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "check", "--config", str(TINY_CONFIG)]) == 0
    out = capsys.readouterr().out
    assert "classification data: 2000 rows read" in out and "train         1400   1399  cross_split_overlap 1" in out
    assert "train input tokens: mean" in out and "label ids: fraud -> 0, legitimate -> 1" in out
    assert not MlflowClient().search_runs([e.experiment_id for e in MlflowClient().search_experiments()])
