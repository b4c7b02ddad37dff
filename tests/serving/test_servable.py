"""What a served model holds: its parameters and bytes, counted the same whether its linear layers are plain or
dynamically quantised (PyTorch keeps those weights packed, outside `parameters()` and `buffers()`)."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from mlops.models import quantize_linear_dynamic
from mlops.serving import served_size
from mlops.tasks import MODEL_PARAMS_ACTIVE, SERVING_BYTES


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Embedding(10, 64), torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 64))


def test_int8_linear_layers_count_their_packed_weights_at_a_byte_each() -> None:
    plain = served_size(SimpleNamespace(model=_model()))
    quantized = served_size(SimpleNamespace(model=quantize_linear_dynamic(_model())))
    linear_weights = 64 * 256 * 2
    assert plain[MODEL_PARAMS_ACTIVE] == 10 * 64 + linear_weights + 256 + 64
    assert quantized[MODEL_PARAMS_ACTIVE] == plain[MODEL_PARAMS_ACTIVE], "quantising changes the bytes, not the parameters"
    # fp32: 4 bytes a weight; int8: 1 byte a weight (embedding and biases stay fp32)
    assert plain[SERVING_BYTES] == 4 * plain[MODEL_PARAMS_ACTIVE]
    assert quantized[SERVING_BYTES] == 4 * (10 * 64 + 256 + 64) + linear_weights
