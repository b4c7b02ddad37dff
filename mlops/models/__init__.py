"""Base models, resolved offline: one module per model source, the adapter card, loading a base with its adapter,
and a source that loads a base once for many runs (`reuse`).

Importing this package registers every named source; none of them loads weights until asked.
"""

from mlops.models import minilm, smollm2, tiny_bert, tiny_deepseek, tiny_llama, tiny_marian
from mlops.models._base import ModelSource, PretrainedDirSource, available_sources, model_cache_dir, register_source
from mlops.models._peft import peft_wrapping
from mlops.models._resolve import resolve_source
from mlops.models.card import MODEL_CARD, read_card, write_card
from mlops.models.hub import HubSource
from mlops.models.minilm import MiniLMSource
from mlops.models.quantization import (
    SERVE_16BIT_ENV,
    half_precision_dtype,
    is_quantized,
    load_causal_lm,
    load_classifier,
    logical_numel,
    packed_weights,
    serve_in_16bit,
    serving_base,
)
from mlops.models.reuse import ReusedBaseSource
from mlops.models.run_artifact import RunArtifactSource
from mlops.models.served import base_quantization, finish_for_serving, quantize_linear_dynamic, serving_settings
from mlops.models.smollm2 import SmolLM2Source
from mlops.models.structure._saved import load_adapted_model
from mlops.models.targets import CLASSIFIER_HEADS, default_causal_lm_targets, default_head_modules, default_lora_targets
from mlops.models.tiny_bert import TinyRandomBertSource
from mlops.models.tiny_deepseek import TinyRandomDeepseekV3Source
from mlops.models.tiny_llama import TinyRandomLlamaSource
from mlops.models.tiny_marian import TinyRandomMarianSource

__all__ = [
    "CLASSIFIER_HEADS",
    "MODEL_CARD",
    "SERVE_16BIT_ENV",
    "HubSource",
    "MiniLMSource",
    "ModelSource",
    "PretrainedDirSource",
    "ReusedBaseSource",
    "RunArtifactSource",
    "SmolLM2Source",
    "TinyRandomBertSource",
    "TinyRandomDeepseekV3Source",
    "TinyRandomLlamaSource",
    "TinyRandomMarianSource",
    "available_sources",
    "base_quantization",
    "default_causal_lm_targets",
    "default_head_modules",
    "default_lora_targets",
    "finish_for_serving",
    "half_precision_dtype",
    "is_quantized",
    "load_adapted_model",
    "load_causal_lm",
    "load_classifier",
    "logical_numel",
    "minilm",
    "model_cache_dir",
    "packed_weights",
    "peft_wrapping",
    "quantize_linear_dynamic",
    "read_card",
    "register_source",
    "resolve_source",
    "serve_in_16bit",
    "serving_base",
    "serving_settings",
    "smollm2",
    "tiny_bert",
    "tiny_deepseek",
    "tiny_llama",
    "tiny_marian",
    "write_card",
]
