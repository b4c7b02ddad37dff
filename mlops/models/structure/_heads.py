"""Attention-head pruning for BERT-style encoders (Michel et al. 2019, "Are Sixteen Heads Really Better than One?").

A head's importance is |dL/d xi_h|: the gradient of the calibration batch's loss with respect to a mask
xi_h = 1 that scales the head's output. The least important heads are removed from the query, key and
value projections and from the attention output projection (transformers' `prune_linear_layer`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlops.errors import ConfigError
from mlops.models.structure._layers import transformer_layers

if TYPE_CHECKING:
    import torch


@dataclass
class PruningReport:
    pruned_heads: dict[int, list[int]]
    heads_before: int
    params_before: int
    params_after: int
    forward_ms_before: float
    forward_ms_after: float
    importance: list[list[float]] = field(default_factory=list)

    def metrics(self) -> dict[str, float]:
        return {
            "heads_pruned": float(sum(len(h) for h in self.pruned_heads.values())),
            "params_before_pruning": float(self.params_before),
            "params_after_pruning": float(self.params_after),
            "calibration_forward_ms_before_pruning": self.forward_ms_before,
            "calibration_forward_ms_after_pruning": self.forward_ms_after,
        }

    def document(self) -> dict[str, Any]:
        return {
            "pruned_heads": {str(layer): heads for layer, heads in sorted(self.pruned_heads.items())},
            "heads_before": self.heads_before,
            "importance": self.importance,
            "params_before": self.params_before,
            "params_after": self.params_after,
        }


def supports_head_pruning(model: Any) -> bool:
    """BERT-style self-attention: `attention.self.{query,key,value}` and `attention.output.dense` in every layer."""
    try:
        _, layers = transformer_layers(model)
    except ConfigError:
        return False
    needed = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense")
    names = [{n for n, _ in layer.named_modules()} for layer in layers]
    return bool(names) and all(set(needed) <= n for n in names)


def _attention_blocks(model: Any) -> list[Any]:
    """Each layer's BERT-style attention block (`self`: query/key/value; `output.dense`)."""
    return [layer.attention for layer in transformer_layers(model)[1]]


def head_importance(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """|dL/d xi| per (layer, head) on `batch` (with labels), in eval mode (no dropout)."""
    import torch

    blocks = _attention_blocks(model)
    heads: list[int] = [block.self.num_attention_heads for block in blocks]
    masks = torch.ones(len(blocks), max(heads), requires_grad=True)

    def masked(index: int) -> Any:
        def hook(module: torch.nn.Module, args: Any, output: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
            context = output[0]
            n = heads[index]
            scaled = context.view(*context.shape[:-1], n, -1) * masks[index, :n].view(n, 1)
            return (scaled.view(context.shape), *output[1:])

        return hook

    handles = [block.self.register_forward_hook(masked(i)) for i, block in enumerate(blocks)]
    was_training = model.training
    model.eval()
    try:
        loss = model(**batch).loss
        (grad,) = torch.autograd.grad(loss, masks)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return grad.abs()


def heads_to_prune(importance: torch.Tensor, count: int, heads_per_layer: list[int]) -> dict[int, list[int]]:
    """The `count` least important heads overall, keeping at least one head in every layer."""
    ranked = sorted((float(importance[layer, head]), layer, head) for layer, n in enumerate(heads_per_layer) for head in range(n))
    left = list(heads_per_layer)
    chosen: dict[int, list[int]] = {}
    for _, layer, head in ranked:
        if sum(len(h) for h in chosen.values()) == count:
            break
        if left[layer] > 1:
            chosen.setdefault(layer, []).append(head)
            left[layer] -= 1
    return {layer: sorted(heads) for layer, heads in sorted(chosen.items())}


def prune_attention_heads(model: Any, heads: dict[int, list[int]]) -> None:
    """Remove `heads` (per layer, original numbering) and record them in `model.config.pruned_heads`."""
    import torch
    from transformers.pytorch_utils import prune_linear_layer

    if getattr(model.config, "pruned_heads", None):
        raise ConfigError(f"training.prune_heads: {type(model).__name__} was already pruned ({model.config.pruned_heads})")
    blocks = _attention_blocks(model)
    for index, removed in heads.items():
        attention = blocks[index]
        size: int = attention.self.attention_head_size
        kept = [h for h in range(attention.self.num_attention_heads) if h not in set(removed)]
        rows: Any = torch.cat([torch.arange(h * size, (h + 1) * size) for h in kept])  # a LongTensor
        for name in ("query", "key", "value"):
            setattr(attention.self, name, prune_linear_layer(getattr(attention.self, name), rows))
        attention.output.dense = prune_linear_layer(attention.output.dense, rows, dim=1)
        attention.self.num_attention_heads = len(kept)
        attention.self.all_head_size = size * len(kept)
    model.config.pruned_heads = {index: list(removed) for index, removed in sorted(heads.items()) if removed}


def _forward_ms(model: Any, batch: dict[str, torch.Tensor], repeats: int = 3) -> float:
    """Fastest of `repeats` timed forward passes of `batch` (after one warm-up), in milliseconds."""
    import torch

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(**batch)
            best = float("inf")
            for _ in range(repeats):
                start = time.perf_counter()
                model(**batch)
                best = min(best, time.perf_counter() - start)
    finally:
        model.train(was_training)
    return best * 1000.0


def prune_least_important_heads(model: Any, amount: float, batch: dict[str, torch.Tensor]) -> PruningReport:
    """Prune `amount` heads (a share of all heads below 1, else a count) by gradient importance on `batch`."""
    heads_per_layer: list[int] = [block.self.num_attention_heads for block in _attention_blocks(model)]
    total, layers = sum(heads_per_layer), len(heads_per_layer)
    count = round(amount * total) if amount < 1 else int(amount)
    if count > total - layers:
        raise ConfigError(
            f"training.prune_heads: {count} heads requested, but {type(model).__name__} has {total} heads in {layers} layers "
            f"and keeps one per layer: at most {total - layers} can go"
        )
    params_before = sum(p.numel() for p in model.parameters())
    ms_before = _forward_ms(model, batch)
    importance = head_importance(model, batch)
    chosen = heads_to_prune(importance, count, heads_per_layer)
    prune_attention_heads(model, chosen)
    return PruningReport(
        pruned_heads=chosen,
        heads_before=total,
        params_before=params_before,
        params_after=sum(p.numel() for p in model.parameters()),
        forward_ms_before=ms_before,
        forward_ms_after=_forward_ms(model, batch),
        importance=[[round(float(v), 8) for v in row[:n]] for row, n in zip(importance, heads_per_layer, strict=True)],
    )
