"""A model's architecture figures without its weights: the published `config.json` figures of the DeepSeek models
shipped under `architectures/` (by hub id, offline), or the config of a model source, laid out as the parameters
of the model built on PyTorch's meta device (shapes only, no memory)."""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

from mlops.errors import ModelSourceError
from mlops.models._resolve import resolve_source
from mlops.models.targets import default_causal_lm_targets, default_lora_targets
from mlops.tasks import spec_for

if TYPE_CHECKING:
    from transformers import PretrainedConfig

# Files shipped inside the package: one per hub id, `<org>--<name>.json`, holding the published config.json figures.
ARCHITECTURES = "models/architectures"
# Modules a task trains in full with its new head (classification), never quantised; and the output head of an LM.
_HEADS = ("lm_head", "classifier", "score", "pooler")
_LAYER_INDEX = re.compile(r"\.(?:layers|layer|h|blocks)\.(\d+)\.")
_DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8}


@dataclass(frozen=True)
class LinearShape:
    """One `nn.Linear` of the model: what LoRA can target and bitsandbytes can quantise."""

    path: str  # module path, e.g. model.layers.3.self_attn.q_proj
    layer: int | None  # index of the transformer layer it belongs to; None outside the layers
    in_features: int
    out_features: int

    @property
    def numel(self) -> int:
        return self.in_features * self.out_features

    def matches(self, targets: list[str]) -> bool:
        """PEFT's rule for `target_modules` given as names: the module path, or its last components."""
        return any(self.path == t or self.path.endswith(f".{t}") for t in targets)


@dataclass(frozen=True)
class Architecture:
    """The figures memory depends on. `linears` excludes the heads; everything else is in `other_params`
    (embeddings, norms, routers, the fused expert weights of a mixture of experts) or `head_params`."""

    name: str
    model_type: str
    stored_dtype_bytes: int  # bytes per weight as stored (`torch_dtype` of config.json; 4 when it names none)
    num_layers: int
    hidden_size: int
    intermediate_size: int
    num_attention_heads: int
    vocab_size: int
    linears: tuple[LinearShape, ...]
    other_params: int
    head_params: int
    default_targets: tuple[str, ...]  # the toolkit's LoRA targets for this architecture
    moe_layers: tuple[int, ...] = ()
    n_routed_experts: int = 0
    num_experts_per_tok: int = 0
    moe_intermediate_size: int = 0

    @property
    def total_params(self) -> int:
        return sum(linear.numel for linear in self.linears) + self.other_params + self.head_params

    def summary(self) -> str:
        moe = f", MoE {self.n_routed_experts} experts ({self.num_experts_per_tok} per token)" if self.n_routed_experts else ""
        return (
            f"{self.name}: {self.model_type}, {self.total_params / 1e9:.2f} B parameters, {self.num_layers} layers, "
            f"hidden {self.hidden_size}, vocabulary {self.vocab_size}{moe}"
        )


def shipped_architectures() -> dict[str, dict[str, Any]]:
    """The published config.json figures shipped with the package, by hub id."""
    folder = resources.files("mlops") / ARCHITECTURES
    out: dict[str, dict[str, Any]] = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".json"):
            data = json.loads(entry.read_text(encoding="utf-8"))
            out[data["hub_id"]] = data["config"]
    return out


def architecture_of(model_source: str, task: str) -> Architecture:
    """The architecture of `model.source`: shipped figures for a known hub id (no download, no network), else the
    config of the resolved source (a model built in code, a local directory, a cached hub model)."""
    return _architecture_of(model_source, task)


@functools.lru_cache(maxsize=16)
def _architecture_of(model_source: str, task: str) -> Architecture:
    from transformers import AutoConfig

    shipped = shipped_architectures().get(model_source)
    if shipped is not None:
        figures = {k: v for k, v in shipped.items() if k not in ("architectures", "model_type", "torch_dtype")}
        figures["dtype"] = shipped.get("torch_dtype")  # config.json's older name for it
        return from_config(model_source, AutoConfig.for_model(shipped["model_type"], **figures), task)
    return from_config(model_source, _source_config(model_source, task), task)


def _source_config(model_source: str, task: str) -> PretrainedConfig:
    try:
        return resolve_source(model_source).model_config(task)
    except OSError as exc:
        raise ModelSourceError(f"model.source: no config for '{model_source}' ({str(exc).splitlines()[0]})") from None


def from_config(name: str, config: PretrainedConfig, task: str) -> Architecture:
    """Lay `config` out as parameters: the model is built on the meta device, so even 671 B parameters cost no memory."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    with torch.device("meta"):
        if spec_for(task).has_classifier_head:
            config.num_labels = 2
            model = AutoModelForSequenceClassification.from_config(config)
            targets = default_lora_targets(model)
        else:
            model = AutoModelForCausalLM.from_config(config)
            targets = default_causal_lm_targets(model)
    linears = []
    for path, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and not _in_head(path):
            found = _LAYER_INDEX.search(f".{path}.")
            linears.append(LinearShape(path, int(found.group(1)) if found else None, module.in_features, module.out_features))
    linear_weights = {f"{linear.path}.weight" for linear in linears}
    head_params = other_params = 0
    moe_layers = set()
    for path, param in model.named_parameters():
        if _in_head(path):
            head_params += param.numel()
        elif path not in linear_weights:  # embeddings, norms, biases, routers, fused expert weights
            other_params += param.numel()
            found = _LAYER_INDEX.search(f".{path}")
            if param.dim() == 3 and found:  # one weight tensor for all the experts of a layer
                moe_layers.add(int(found.group(1)))
    text = config.get_text_config()
    experts = int(getattr(text, "n_routed_experts", 0) or getattr(text, "num_local_experts", 0) or 0)
    return Architecture(
        name=name,
        model_type=str(config.model_type),
        stored_dtype_bytes=_dtype_bytes(config),
        num_layers=int(text.num_hidden_layers),
        hidden_size=int(text.hidden_size),
        intermediate_size=int(getattr(text, "intermediate_size", 4 * text.hidden_size)),
        num_attention_heads=int(text.num_attention_heads),
        vocab_size=int(text.vocab_size),
        linears=tuple(linears),
        other_params=other_params,
        head_params=head_params,
        default_targets=tuple(targets),
        moe_layers=tuple(sorted(moe_layers)),
        n_routed_experts=experts,
        num_experts_per_tok=int(getattr(text, "num_experts_per_tok", 0) or 0) if experts else 0,
        moe_intermediate_size=int(getattr(text, "moe_intermediate_size", 0) or 0) if experts else 0,
    )


def _in_head(path: str) -> bool:
    return any(part in _HEADS for part in path.split("."))


def _dtype_bytes(config: PretrainedConfig) -> int:
    dtype = getattr(config, "dtype", None)
    return _DTYPE_BYTES.get(str(dtype).removeprefix("torch."), 4)
