from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mlops.errors import ModelSourceError
from mlops.models import available_sources, resolve_source


def test_unknown_model_lists_available_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelSourceError, match=r"unknown model 'deepseek-ai/x'; available offline: minilm-l6 .*tiny-random-bert"):
        resolve_source("deepseek-ai/x")


def test_directory_without_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelSourceError, match="has no config.json"):
        resolve_source(str(tmp_path))


def test_tiny_random_bert_is_deterministic_and_leaves_rng_alone() -> None:
    source = resolve_source("tiny-random-bert")
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = source.load_classifier(2)
    after = torch.rand(1)
    b = source.load_classifier(2)
    assert torch.equal(before, after)
    for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert torch.equal(p, q), name
    assert a.config.num_hidden_layers == 2


def test_minilm_resolves_offline_to_the_wheel() -> None:
    source = resolve_source("minilm-l6")
    tokenizer = source.load_tokenizer()
    assert tokenizer("wire the funds")["input_ids"][0] == tokenizer.cls_token_id
    assert "minilm-l6" in available_sources()


def test_local_directory_source(tmp_path: Path) -> None:
    model = resolve_source("tiny-random-bert").load_classifier(3)
    model.save_pretrained(tmp_path)
    resolve_source("tiny-random-bert").load_tokenizer().save_pretrained(tmp_path)
    loaded = resolve_source(str(tmp_path)).load_classifier(3)
    assert loaded.config.num_labels == 3
