"""Activation checkpointing under either of its names: transformers up to 5.17 calls it `gradient_checkpointing`
(the `TrainingArguments` field, `gradient_checkpointing_enable`), later 5.x `activation_checkpointing` and keeps the
old names only as deprecated aliases. The GPU machine's stack is older than this project's, so both must work."""

from __future__ import annotations

import dataclasses
from typing import Any


def checkpointing_argument(enabled: bool) -> dict[str, Any]:
    """The `TrainingArguments` keyword that turns activation checkpointing on or off, under the name this
    transformers knows (the new one where both exist, so that no deprecation warning is raised)."""
    from transformers import training_args

    names = {f.name for f in dataclasses.fields(training_args.TrainingArguments)}
    return {"activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing": enabled}


def enable_checkpointing(model: Any, *, use_reentrant: bool = False) -> None:
    """Recompute each layer's activations in the backward pass of `model` (a transformers model)."""
    kwargs = {"use_reentrant": use_reentrant}
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def is_checkpointing(model: Any) -> bool:
    """Whether activation checkpointing is on for `model` (a transformers model), without a deprecation warning."""
    name = "is_activation_checkpointing" if hasattr(type(model), "is_activation_checkpointing") else "is_gradient_checkpointing"
    return bool(getattr(model, name))
