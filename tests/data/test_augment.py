"""Training-data augmentation: WordNet synonyms, EDA, back-translation, the held-out guard, the `augment` entry
point and its dataset's lineage, and augmentation searched by a sweep."""

from __future__ import annotations

import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

from mlops.config import AugmentConfig, load_config
from mlops.data import ClassificationData, Split, load_task_data, write_task_data
from mlops.data.augment import (
    BackTranslation,
    RandomDeletion,
    RandomInsertion,
    RandomSwap,
    SynonymReplacement,
    augment_training_data,
    install_wordnet,
    normalized,
)
from mlops.data.augment.wordnet import DATABASE_FILES, DEBIAN_DIR, LEXNAMES, wordnet
from mlops.errors import WordNetMissing
from tests.helpers import ROOT, TINY_CONFIG, empty_tracking_db, mlflow_run, write

TEXTS = [
    "Your account payment failed, so verify the transfer with Chen at ivan@mail.com before 24h or lose $88.38",
    "Please confirm the urgent refund and send the secret code to https://bit.ly/x9 today",
    "The bank will never ask for your whatsapp number or your card details by message",
]
KEEP = frozenset({"whatsapp"})
PROTECTED = ["Chen", "ivan@mail.com", "24h", "$88.38", "https://bit.ly/x9", "whatsapp"]

TRAIN_ROWS = 1399  # the fraud demo's 1,400 training texts, less the one the data contract finds in the test split


def _lemmas(word: str) -> set[str]:
    return {lemma for synset in wordnet().synsets(word) for lemma in synset.lemma_names()}


def _core(token: str) -> str:
    return token.strip(".,;:!?()").lower()


def test_synonyms_are_wordnet_lemmas_and_protected_tokens_survive() -> None:
    out = SynonymReplacement(p=1.0, max_replacements=20).augment(TEXTS, [KEEP] * 3, random.Random(0))
    changed = 0
    for before, after in zip(TEXTS, out, strict=True):
        old, new = before.split(), after.split()
        assert len(old) == len(new)  # single-word lemmas only: one token for one token
        for a, b in zip(old, new, strict=True):
            if a != b:
                changed += 1
                assert _core(b) in _lemmas(_core(a)) and _core(b) != _core(a), (a, b)
                assert a not in PROTECTED and _core(a) not in ("your", "the", "with", "or")
        for token in PROTECTED:
            assert (token in before) == (token in after), (token, after)
    assert changed >= 10
    capped = SynonymReplacement(p=1.0, max_replacements=2).augment(TEXTS, [KEEP] * 3, random.Random(0))
    assert all(sum(a != b for a, b in zip(t.split(), c.split(), strict=True)) == 2 for t, c in zip(TEXTS, capped, strict=True))
    untouched = SynonymReplacement(p=0.0, max_replacements=3).augment(TEXTS, [KEEP] * 3, random.Random(0))
    assert untouched == TEXTS


def test_eda_operations_do_what_they_claim_and_are_seeded() -> None:
    protected_positions = [[i for i, t in enumerate(text.split()) if t.strip(",.") in PROTECTED] for text in TEXTS]

    swapped = RandomSwap(0.3).augment(TEXTS, [KEEP] * 3, random.Random(1))
    for before, after, fixed in zip(TEXTS, swapped, protected_positions, strict=True):
        assert after != before and Counter(after.split()) == Counter(before.split())
        assert all(after.split()[i] == before.split()[i] for i in fixed), "protected tokens stay in place"

    deleted = RandomDeletion(0.3).augment(TEXTS, [KEEP] * 3, random.Random(1))
    for before, after in zip(TEXTS, deleted, strict=True):
        old, new = before.split(), after.split()
        assert len(new) < len(old) and not Counter(new) - Counter(old)
        assert all(t in new for t in old if t.strip(",.") in PROTECTED)

    inserted = RandomInsertion(0.2).augment(TEXTS, [KEEP] * 3, random.Random(1))
    for before, after in zip(TEXTS, inserted, strict=True):
        added = Counter(after.split()) - Counter(before.split())
        assert sum(added.values()) == max(1, round(0.2 * len(before.split())))
        synonyms_of_text = set().union(*(_lemmas(_core(w)) for w in before.split()))
        assert set(added) <= synonyms_of_text, added
        assert not Counter(before.split()) - Counter(after.split()), "insertion only adds"

    for op in (RandomSwap(0.3), RandomDeletion(0.3), RandomInsertion(0.2), SynonymReplacement(0.5, 3)):
        first = op.augment(TEXTS, [KEEP] * 3, random.Random(7))
        assert first == op.augment(TEXTS, [KEEP] * 3, random.Random(7))
        assert first != op.augment(TEXTS, [KEEP] * 3, random.Random(8))


def _classification(train: list[str], validation: list[str], test: list[str]) -> ClassificationData:
    def split(texts: list[str], name: str) -> Split:
        return Split(texts, [i % 2 for i in range(len(texts))], name)

    return ClassificationData(split(train, "train"), split(validation, "v"), split(test, "t"), ["legit", "fraud"], "inline")


def test_back_translation_is_batched_and_keeps_labels(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = ["please send the money to my friend", "thank you for the payment", "call me back about the loan", "the refund is done"]
    bt = BackTranslation("tiny-random-marian", "tiny-random-marian", batch_size=3, max_new_tokens=12)
    model = bt.forward[1]
    calls: list[int] = []
    generate = model.generate
    monkeypatch.setattr(model, "generate", lambda **kw: calls.append(len(kw["input_ids"])) or generate(**kw))
    out = bt.augment(texts + texts[:1], [frozenset()] * 5, random.Random(0))
    assert len(out) == 5 and all(isinstance(t, str) and t for t in out)
    assert calls == [3, 2, 3, 2], "two batches per direction (the same model serves both here)"
    assert out[0] == out[4] and len(set(out[:4])) > 1, "deterministic, and the output depends on the input"

    data = _classification(texts, ["a held out text"], ["another one"])
    config = AugmentConfig(methods=["back_translation"], multiplier=1)
    result = augment_training_data(data, config, seed=0, augmenters={"back_translation": bt})
    added = result.data.train.texts[len(texts) :]
    assert added and len(added) == len(result.origins) == result.counts["added_back_translation"]
    assert [result.data.train.labels[len(texts) + j] for j in range(len(added))] == [data.train.labels[i] for i in result.origins]
    assert all(added[j] == out[i] for j, i in enumerate(result.origins))


def test_only_train_is_augmented_and_heldout_near_duplicates_are_dropped(tmp_path: Path) -> None:
    train = ["pay now", "send the code to my friend today", "the refund is late again"]
    data = _classification(train, ["Now, pay!", "a different text"], ["some test text here"])  # swapping "pay now" gives "now pay"
    result = augment_training_data(data, AugmentConfig(methods=["swap"], multiplier=1), seed=3)
    assert result.counts["rejected_near_duplicates"] == 1
    assert all(normalized(t) != "now pay" for t in result.data.train.texts)
    assert result.data.train.texts[:3] == train and result.counts["rows_out"] == len(result.data.train) == 5
    assert result.data.validation is data.validation and result.data.test is data.test
    config = load_config(str(TINY_CONFIG)).dataset
    write_task_data(data, config, tmp_path / "before")
    write_task_data(result.data, config, tmp_path / "after")
    for name in ("validation.csv", "test.csv"):
        assert (tmp_path / "before" / name).read_bytes() == (tmp_path / "after" / name).read_bytes()
    assert (tmp_path / "before" / "train.csv").read_bytes() != (tmp_path / "after" / "train.csv").read_bytes()
    reread = pd.read_csv(tmp_path / "after" / "train.csv")  # written under the config's column names
    assert reread[config.text_column].tolist() == result.data.train.texts


def test_summaries_and_key_terms_follow_their_document() -> None:
    config = load_config(str(TINY_CONFIG.parent / "tiny-summarizer.yaml"))
    data = load_task_data("summarization", config.dataset, TINY_CONFIG.parent, 0)
    settings = AugmentConfig(methods=["synonym", "insert", "swap", "delete"], multiplier=2, synonym_p=0.5)
    result = augment_training_data(data, settings, seed=0)
    n, train = len(data.train), result.data.train
    assert result.origins and len(train) == n + len(result.origins)
    for j, i in enumerate(result.origins):
        assert train.summaries[n + j] == data.train.summaries[i] and train.key_terms[n + j] == data.train.key_terms[i]
        assert train.documents[n + j] != data.train.documents[i]
        assert all(term.lower() in train.documents[n + j].lower() for term in data.train.key_terms[i] if term in data.train.documents[i])


def test_searched_augmentation_settings_reach_the_augment_section(tmp_path: Path) -> None:
    from mlops.errors import ConfigError

    config = load_config(str(TINY_CONFIG))
    assert config.augment.methods == []
    trial = config.with_params({"augment.synonym_p": 0.25, "augment.multiplier": 2, "learning_rate": 1e-3})
    assert (trial.augment.synonym_p, trial.augment.multiplier, trial.training.learning_rate) == (0.25, 2, 1e-3)
    assert trial.augment.methods == ["synonym", "swap", "delete", "insert"], "searching augmentation switches it on"
    bad = {"search": {"space": {"augment.synonym_p": {"type": "float", "low": 0.0, "high": 1.5}}}}
    path = write(tmp_path / "c.yaml", yaml.safe_dump({**yaml.safe_load(TINY_CONFIG.read_text()), **bad}))
    with pytest.raises(ConfigError, match=r"search.space.augment.synonym_p.high: must be in \[0, 1\], got 1.5"):
        load_config(str(path))


def test_install_wordnet_copies_the_database_and_writes_lexnames(tmp_path: Path) -> None:
    folder = install_wordnet(DEBIAN_DIR, tmp_path)
    assert folder == tmp_path / "corpora" / "wordnet"
    assert {p.name for p in folder.iterdir()} >= {*DATABASE_FILES, "lexnames"}
    lines = (folder / "lexnames").read_text().splitlines()
    assert len(lines) == len(LEXNAMES) == 45 and lines[4] == "04\tnoun.act\t1" and lines[-1] == "44\tadj.ppl\t3"
    assert (folder / "data.noun").read_bytes() == (DEBIAN_DIR / "data.noun").read_bytes()
    with pytest.raises(WordNetMissing, match="apt-get install -y wordnet-base wordnet-sense-index"):
        install_wordnet(tmp_path / "nothing-here", tmp_path)


def _cli(*args: str, code: str = "pass") -> subprocess.CompletedProcess[str]:
    run = f"import sys; {code}; from mlops.cli import main; sys.exit(main({list(args)!r}))"
    return subprocess.run([sys.executable, "-c", run], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("args", "code", "expected"),
    [
        (["--synonym-p", "1.5"], "pass", ["augment.synonym_p: must be in [0, 1], got 1.5"]),
        (
            ["--methods", "synonym,back_translation"],
            "pass",
            ["augment.back_translation: the back_translation method needs forward and backward translation model sources"],
        ),
        (
            ["--config", str(TINY_CONFIG)],
            "import nltk; nltk.data.path[:] = ['/nonexistent']",
            ["WordNet 3.0 is not installed", "apt-get install -y wordnet-base wordnet-sense-index"],
        ),
    ],
    ids=["synonym_p_out_of_range", "back_translation_without_sources", "wordnet_missing"],
)
def test_bad_input_is_one_named_line_and_starts_no_run(tracking: str, args: list[str], code: str, expected: list[str]) -> None:
    out = _cli("augment", *args, code=code)
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert all(line in out.stderr for line in expected), out.stderr
    client = MlflowClient()
    assert client.search_runs([e.experiment_id for e in client.search_experiments()]) == []


@pytest.mark.e2e
def test_mlflow_run_augment_then_finetune_on_its_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    from mlops.train.finetune import run_finetune

    uri = f"sqlite:///{empty_tracking_db(tmp_path / 'mlflow.db')}"
    monkeypatch.chdir(tmp_path)  # before any client: the store puts artifacts under ./mlruns
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    out = mlflow_run(tmp_path, "multiplier=1", "seed=3", "synonym_p=0.3", entry_point="augment")
    assert out.returncode == 0, out.stderr[-3000:]
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("e2e").experiment_id])
    assert run.info.status == "FINISHED" and run.data.tags["mlflow.project.entryPoint"] == "augment"
    params, metrics = run.data.params, run.data.metrics
    assert (params["augment.multiplier"], params["augment.seed"], params["augment.synonym_p"]) == ("1", "3", "0.3")
    assert params["augment.methods"] == "synonym,swap,delete,insert"
    assert metrics["augment_rows_in"] == TRAIN_ROWS and metrics["augment_rows_out"] > TRAIN_ROWS
    assert metrics["augment_rows_out"] == TRAIN_ROWS + sum(v for k, v in metrics.items() if k.startswith("augment_added_"))
    assert "augment_rejected_near_duplicates" in metrics
    inputs = {(i.tags[0].value, i.dataset.name): i.dataset.digest for i in run.inputs.dataset_inputs}
    assert set(inputs) == {("augment_source", "demo:fraud:train"), *(((s, f"demo:fraud:{s}")) for s in ("train", "validation", "test"))}
    assert inputs[("augment_source", "demo:fraud:train")] != inputs[("train", "demo:fraud:train")]

    folder = Path(client.download_artifacts(run.info.run_id, "augmented", str(tmp_path / "download")))
    demo = ROOT / "mlops" / "data" / "demo" / "fraud"
    for name in ("validation.csv", "test.csv"):
        assert (folder / name).read_bytes() == (demo / name).read_bytes(), f"{name} must be byte-identical"
    train_lines = (folder / "train.csv").read_text().splitlines()
    assert len(train_lines) > 1401  # header + rows; CSV fields here never span lines
    original = (demo / "train.csv").read_text().splitlines()
    written = set(train_lines)
    kept = [line for line in original if line in written]
    assert train_lines[: len(kept)] == kept and len(kept) == len(original) - 1, "the kept training rows, in order, then the copies"

    # a later config takes the output as its dataset, by run URI, and its run names the augment run
    mlflow.set_tracking_uri(uri)
    config = load_config(str(TINY_CONFIG), {"dataset.path": f"runs:/{run.info.run_id}/augmented", "training.max_steps": 2})
    ft = client.get_run(run_finetune(config))
    assert ft.info.status == "FINISHED" and ft.data.tags["mlops.augment_run_id"] == run.info.run_id
    digests = {i.tags[0].value: i.dataset.digest for i in ft.inputs.dataset_inputs}
    assert digests["train"] == inputs[("train", "demo:fraud:train")], "fine-tuned on exactly the augmented split"
    assert digests["validation"] == inputs[("validation", "demo:fraud:validation")]
    mlflow.set_tracking_uri(None)


@pytest.mark.slow
def test_sweep_searches_augmentation_with_a_hyperparameter_and_a_structural_key(tracking: str, tmp_path: Path) -> None:
    from mlops.search import SweepOptions, run_sweep

    data = yaml.safe_load(TINY_CONFIG.read_text())
    data["registry"]["policy"] = str(TINY_CONFIG.parents[1] / "registry" / "tiny-detector.yaml")
    data["training"]["max_steps"] = 4
    data["augment"] = {"methods": ["synonym", "swap"], "multiplier": 1}
    data["search"] = {
        "n_trials": 2,
        "sampler": "random",
        "space": {
            "augment.synonym_p": {"type": "float", "low": 0.0, "high": 0.3},
            "learning_rate": {"type": "float", "low": 1.0e-4, "high": 1.0e-3, "log": True},
            "lora_r": {"type": "categorical", "choices": [4, 8]},
        },
    }
    config = load_config(str(write(tmp_path / "mixed.yaml", yaml.safe_dump(data))))
    result = run_sweep(config, SweepOptions(promote=False))
    client = MlflowClient()
    experiment = client.get_experiment_by_name("tiny").experiment_id
    children = [r for r in client.search_runs([experiment]) if r.data.tags.get("mlflow.parentRunId") == result.parent_run_id]
    assert len(children) == 2 and all(c.info.status == "FINISHED" for c in children)
    train_digests = set()
    for child in children:
        p = child.data.params
        assert {"augment.synonym_p", "learning_rate", "lora_r"} <= set(p) and p["augment.methods"] == "synonym,swap"
        assert 0.0 <= float(p["augment.synonym_p"]) <= 0.3 and p["lora_r"] in ("4", "8")
        assert child.data.metrics["augment_rows_out"] > child.data.metrics["augment_rows_in"] == TRAIN_ROWS
        assert "eval_f1" in child.data.metrics
        contexts = {i.tags[0].value: i.dataset.digest for i in child.inputs.dataset_inputs}
        assert contexts["augment_source"] != contexts["train"]
        train_digests.add(contexts["train"])
    assert len(train_digests) == 2, "each trial trains on the augmentation made with its own synonym_p"
