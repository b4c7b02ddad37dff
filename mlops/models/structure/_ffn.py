"""Modules after each layer's feed-forward block: a bottleneck adapter (Houlsby/Pfeiffer: down-project, ReLU,
up-project, residual) and an element-wise sigmoid gate. Both start as the identity."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

# The child name the adapter gets inside the FFN output module: its weights are saved under that path.
ADAPTER_NAME = "ffn_adapter"


@functools.cache
def ffn_adapter_class() -> type[torch.nn.Module]:
    """The adapter module class (built on first use, so that importing this package does not import torch)."""
    import torch

    class FfnAdapter(torch.nn.Module):
        """h -> h + up(relu(down(h))) with `up` zero-initialised, then h * 2 sigmoid(g) with g = 0: the base function at start."""

        def __init__(self, hidden_size: int, bottleneck_size: int | None, gate: bool) -> None:
            super().__init__()
            self.hidden_size, self.bottleneck_size, self.has_gate = hidden_size, bottleneck_size, gate
            self.down = torch.nn.Linear(hidden_size, bottleneck_size) if bottleneck_size else None
            self.up = torch.nn.Linear(bottleneck_size, hidden_size) if bottleneck_size else None
            if self.up is not None:
                torch.nn.init.zeros_(self.up.weight)
                torch.nn.init.zeros_(self.up.bias)
            self.gate = torch.nn.Parameter(torch.zeros(hidden_size)) if gate else None

        def forward(self, hidden: torch.Tensor) -> torch.Tensor:
            if self.down is not None and self.up is not None:
                hidden = hidden + self.up(torch.relu(self.down(hidden)))
            if self.gate is not None:
                hidden = hidden * (2.0 * torch.sigmoid(self.gate)).to(hidden.dtype)
            return hidden

    return FfnAdapter


def _apply_adapter(module: torch.nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor:
    adapter: torch.nn.Module = getattr(module, ADAPTER_NAME)
    result: torch.Tensor = adapter(output)
    return result


def attach_ffn_adapter(ffn: torch.nn.Module, hidden_size: int, bottleneck_size: int | None, gate: bool) -> torch.nn.Module:
    """Add the adapter as a child of `ffn` (so it is part of the model's state) and apply it to `ffn`'s output."""
    if hasattr(ffn, ADAPTER_NAME):
        raise ValueError(f"{type(ffn).__name__} already has an FFN adapter")
    adapter = ffn_adapter_class()(hidden_size, bottleneck_size, gate)
    param = next(ffn.parameters(), None)
    if param is not None:
        adapter.to(device=param.device)
    ffn.add_module(ADAPTER_NAME, adapter)
    ffn.register_forward_hook(_apply_adapter)
    return adapter


def ffn_adapters(model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    """The adapters in `model`, by the path of the FFN module that holds each."""
    cls = ffn_adapter_class()
    return {name.removesuffix(f".{ADAPTER_NAME}"): m for name, m in model.named_modules() if isinstance(m, cls)}
