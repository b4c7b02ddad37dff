"""Activation checkpointing under either transformers name (5.17 on the GPU machine, the current 5.x here), and the
memory release that hands cuBLAS's workspaces back."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, TrainingArguments, training_args

from mlops.train import enable_checkpointing, is_checkpointing, release_memory
from mlops.train._compat import checkpointing_argument


def _tiny_llama() -> Any:
    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4)
    return LlamaForCausalLM(config)


def test_the_argument_turns_checkpointing_on_in_this_transformers(tmp_path: Any) -> None:
    (name, value), *rest = checkpointing_argument(True).items()
    assert not rest and value is True
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none", **checkpointing_argument(True))
    assert getattr(args, name) is True
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none", **checkpointing_argument(False))
    assert getattr(args, name) is False


def test_the_argument_falls_back_to_the_old_name(monkeypatch: pytest.MonkeyPatch) -> None:
    @dataclasses.dataclass
    class OldTrainingArguments:  # transformers 5.17: no `activation_checkpointing` field
        output_dir: str = ""
        gradient_checkpointing: bool = False

    monkeypatch.setattr(training_args, "TrainingArguments", OldTrainingArguments)
    assert checkpointing_argument(True) == {"gradient_checkpointing": True}


def test_enable_checkpointing_on_a_model() -> None:
    model = _tiny_llama()
    assert not is_checkpointing(model)
    enable_checkpointing(model)
    assert is_checkpointing(model)


def test_enable_checkpointing_uses_the_old_method_where_only_it_exists() -> None:
    calls: list[dict[str, Any]] = []

    class OldModel:  # transformers 5.17's names only
        is_gradient_checkpointing = False

        def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: dict[str, Any]) -> None:
            calls.append(gradient_checkpointing_kwargs)
            self.is_gradient_checkpointing = True

    model = OldModel()
    enable_checkpointing(model, use_reentrant=False)
    assert calls == [{"use_reentrant": False}]
    assert is_checkpointing(model)


def test_release_memory_clears_cublas_workspaces_before_emptying_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: calls.append("empty_cache"))
    monkeypatch.setattr(torch._C, "_cuda_clearCublasWorkspaces", lambda: calls.append("clear_workspaces"), raising=False)
    release_memory()
    assert calls == ["clear_workspaces", "empty_cache"]


def test_release_memory_without_the_workspace_call(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: calls.append("empty_cache"))
    monkeypatch.delattr(torch._C, "_cuda_clearCublasWorkspaces", raising=False)
    release_memory()
    assert calls == ["empty_cache"]
