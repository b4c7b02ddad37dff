"""Peak training memory of one configuration, estimated from the architecture alone (nothing loaded): the base
weights by dtype or quantisation, the adapter, its gradients and AdamW states, the activations kept for the backward
pass, the logits, and a fixed overhead. The formula is written out in the README (`mlops plan`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from mlops.models.architecture import Architecture, LinearShape
from mlops.tasks import spec_for

GIB = 1024**3
# Bytes per quantised weight. 4-bit: two weights a byte, plus bitsandbytes' block constants with double
# quantisation (an 8-bit absmax per 64 weights, and an fp32 constant per 256 of those).
QUANTIZED_BYTES = {"nf4": 0.5 + 1 / 64 + 4 / (64 * 256), "fp4": 0.5 + 1 / 64 + 4 / (64 * 256), "int8": 1.0}
# Trainable parameters are fp32 (PEFT keeps adapters in fp32): the weight, its gradient and AdamW's two moments.
TRAINABLE_BYTES = 4 + 4 + 8
# The CUDA context and the framework's own buffers, which no tensor accounts for.
FIXED_OVERHEAD_BYTES = int(0.5 * GIB)
# Activations kept per token and layer beyond the linear layers' outputs, in hidden-size values: the norms' inputs
# and the attention's softmax statistics; on GPU the two RMSNorms also keep their input upcast to fp32 (twice the
# bytes of a 16-bit value each). Measured on CPU with autograd's saved-tensor hooks (tests/models/test_memory.py).
_HIDDEN_UNITS_PER_LAYER = {"cpu": 2, "cuda": 6}


@dataclass(frozen=True)
class TrainingShape:
    """What a configuration sets that changes memory: one corner of a search space."""

    batch_size: int
    seq_len: int
    quantization: str = "none"
    lora_r: int = 8
    freeze_ratio: float = 0.0
    gradient_checkpointing: bool = False
    adapter: str = "lora"
    target_modules: tuple[str, ...] | str | None = None  # None: the architecture's default targets
    lora_dropout: float = 0.0
    use_dora: bool = False
    num_virtual_tokens: int = 16
    reduction_factor: int = 16
    ffn_gate: bool = False
    task: str = "summarization"
    device: str = "cuda"


@dataclass(frozen=True)
class MemoryEstimate:
    """The estimate's parts, in bytes; `peak_bytes` is their sum."""

    weights: int
    trainable: int  # trainable parameters with their gradients and AdamW states
    activations: int
    logits: int
    overhead: int
    trainable_params: int

    @property
    def peak_bytes(self) -> int:
        return self.weights + self.trainable + self.activations + self.logits + self.overhead

    @property
    def peak_gib(self) -> float:
        return self.peak_bytes / GIB

    def parts_gib(self) -> dict[str, float]:
        parts = {k: v for k, v in asdict(self).items() if k != "trainable_params"}
        return {k: round(v / GIB, 3) for k, v in parts.items()}

    def as_dict(self) -> dict[str, Any]:
        return {"peak_gib": round(self.peak_gib, 3), "trainable_params": self.trainable_params, "parts_gib": self.parts_gib()}


def frozen_layers(arch: Architecture, freeze_ratio: float) -> int:
    """The bottom layers without trainable parameters (as `adapt` freezes them: rounded down)."""
    return int(arch.num_layers * freeze_ratio)


def lora_targets(arch: Architecture, shape: TrainingShape) -> list[LinearShape]:
    """The linear layers LoRA adapts: `target_modules` (names, or all-linear) or the architecture's default, in the
    layers above the frozen ones."""
    frozen = frozen_layers(arch, shape.freeze_ratio)
    in_trained_layers = [lin for lin in arch.linears if lin.layer is None or lin.layer >= frozen]
    if shape.target_modules == "all-linear":
        return in_trained_layers
    names = list(shape.target_modules or arch.default_targets)
    return [lin for lin in in_trained_layers if lin.matches(names)]


def trainable_parameters(arch: Architecture, shape: TrainingShape) -> int:
    """Parameters the optimizer updates: the adapter, FFN adapters or gates, and (classification) the head."""
    trained_layers = arch.num_layers - frozen_layers(arch, shape.freeze_ratio)
    head = arch.head_params if spec_for(shape.task).has_classifier_head else 0
    hidden = arch.hidden_size
    extra = trained_layers * hidden if shape.ffn_gate else 0
    if shape.adapter == "prefix":
        return head + extra + shape.num_virtual_tokens * arch.num_layers * 2 * hidden
    if shape.adapter == "bottleneck":
        width = max(1, hidden // shape.reduction_factor)
        return head + extra + trained_layers * (2 * hidden * width + width + hidden)
    targets = lora_targets(arch, shape)
    lora = sum(shape.lora_r * (lin.in_features + lin.out_features) for lin in targets)
    dora = sum(lin.out_features for lin in targets) if shape.use_dora else 0
    return head + extra + lora + dora


def weight_bytes(arch: Architecture, quantization: str) -> int:
    """The base weights: as stored, or the linear layers quantised and the rest upcast to fp32 (PEFT's
    `prepare_model_for_kbit_training` does that to every weight bitsandbytes leaves unquantised)."""
    linear = sum(lin.numel for lin in arch.linears)
    rest = arch.other_params + arch.head_params
    if quantization == "none":
        return (linear + rest) * arch.stored_dtype_bytes
    return int(linear * QUANTIZED_BYTES[quantization]) + rest * 4


def _layer_activation_bytes(arch: Architecture, layer: int, targets: list[LinearShape], shape: TrainingShape) -> int:
    """Bytes kept per token for one layer's backward pass: the fixed hidden-size values, each linear layer's output,
    the FFN activation (dense: the intermediate width; MoE: per routed expert its gate/up, activation and output,
    plus the router's scores), latent attention's queries and keys once more (rotary and plain parts concatenated),
    and, when LoRA dropout is on, each LoRA target's dropped-out input and its mask."""
    value_bytes = 2 if shape.device == "cuda" else 4  # bf16/fp16 autocast on GPU; fp32 on CPU
    linears = [lin for lin in arch.linears if lin.layer == layer]
    units = _HIDDEN_UNITS_PER_LAYER[shape.device] * arch.hidden_size + sum(lin.out_features for lin in linears)
    if layer in arch.moe_layers:
        m = arch.moe_intermediate_size
        units += arch.num_experts_per_tok * (3 * m + arch.hidden_size) + 2 * arch.n_routed_experts
        units += sum(lin.out_features for lin in linears if "shared" in lin.path and lin.path.endswith("up_proj"))
    else:
        units += arch.intermediate_size
    if any(lin.path.endswith("kv_b_proj") for lin in linears):  # latent attention concatenates rotary and plain parts
        units += 2 * sum(lin.out_features for lin in linears if lin.path.endswith(("q_b_proj", "q_proj")))
    dropped = sum(lin.in_features for lin in targets if lin.layer == layer) if shape.lora_dropout > 0 else 0
    return units * value_bytes + dropped * (value_bytes + 2)


def activation_bytes(arch: Architecture, shape: TrainingShape) -> int:
    """Activations kept for the backward pass. Without gradient checkpointing, every layer from the lowest one with
    trainable parameters keeps all its values (below it nothing needs a gradient). With it, every layer keeps only
    its input, and one layer at a time is recomputed in full."""
    value_bytes = 2 if shape.device == "cuda" else 4
    tokens = shape.batch_size * shape.seq_len
    targets = lora_targets(arch, shape) if shape.adapter == "lora" else []
    per_layer = [_layer_activation_bytes(arch, i, targets, shape) for i in range(arch.num_layers)]
    if shape.gradient_checkpointing:
        per_token = arch.num_layers * arch.hidden_size * value_bytes + max(per_layer)
    else:
        lowest = 0 if shape.adapter == "prefix" else frozen_layers(arch, shape.freeze_ratio)
        per_token = sum(per_layer[lowest:])
    return tokens * per_token


def logits_bytes(arch: Architecture, shape: TrainingShape) -> int:
    """A causal LM's logits over the vocabulary at every position, in the compute dtype, then upcast to fp32 for
    the loss, with the log-softmax the loss keeps. A classifier's logits are negligible."""
    if spec_for(shape.task).has_classifier_head:
        return 0
    value_bytes = 2 if shape.device == "cuda" else 4
    return shape.batch_size * shape.seq_len * arch.vocab_size * (value_bytes + 4 + 4)


def estimate_peak_memory(arch: Architecture, shape: TrainingShape) -> MemoryEstimate:
    """The estimated peak memory of training `arch` as `shape` says (the formula: README, `mlops plan`)."""
    trainable = trainable_parameters(arch, shape)
    return MemoryEstimate(
        weights=weight_bytes(arch, shape.quantization),
        trainable=trainable * TRAINABLE_BYTES,
        activations=activation_bytes(arch, shape),
        logits=logits_bytes(arch, shape),
        overhead=FIXED_OVERHEAD_BYTES,
        trainable_params=trainable,
    )
