"""Structure options checked against the rest of the config at load time, before any run starts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops.config._search import tunable_field
from mlops.config._serving import CUDA_ONLY_PRECISIONS
from mlops.config._training import ALL_LINEAR
from mlops.tasks import task_names

if TYPE_CHECKING:
    from mlops.config._experiment import ExperimentConfig
    from mlops.config._search import ParamSpace

# Settings that only mean something for a LoRA adapter.
LORA_PARAMETERS = ("lora_r", "lora_alpha", "lora_dropout", "loraplus_lr_ratio", "use_dora", "use_rslora", "lora_init")


def searched_values(config: ExperimentConfig, name: str) -> list[tuple[str, Any]]:
    """Every value of tunable setting `name` (e.g. `prune_heads`, `serving.precision`) a run of this config may use (the
    config's, the search bounds, choices and grid values), with where it is set."""
    section, key = tunable_field(name)
    values: list[tuple[str, Any]] = [(f"{section}.{key}", getattr(getattr(config, section), key))]
    spaces: dict[str, dict[str, ParamSpace]] = {
        "search.space": config.search.space,
        "pipeline.structure_space": config.pipeline.structure_space,
    }
    for path, space in spaces.items():
        if name in space:
            p = space[name]
            values += [(f"{path}.{name}.{bound}", getattr(p, bound)) for bound in ("low", "high") if getattr(p, bound) is not None]
            values += [(f"{path}.{name}.choices[{i}]", v) for i, v in enumerate(p.choices or [])]
            values += [(f"{path}.{name}.values[{i}]", v) for i, v in enumerate(p.values or [])]
    return values


def structure_errors(config: ExperimentConfig) -> list[str]:
    """Adapter choices PEFT refuses for this task, head pruning where it cannot apply, and a structure search
    over LoRA settings while the adapter is fixed to another kind (every trial would train the same model).

    LoRA settings in `search.space` are not refused: `finetune --adapter ...` on a config made for LoRA sweeps
    is legitimate, and a sweep ignores them for other adapters.
    """
    errors = []
    known = config.task in task_names()  # an unknown task is refused once, as the config is built
    if known and config.spec.has_classifier_head:
        errors += [f"{where}: {PREFIX_CLASSIFIER_REFUSAL}" for where, value in searched_values(config, "adapter") if value == "prefix"]
    elif known and any(value for _, value in searched_values(config, "prune_heads")):
        errors.append(
            f"training.prune_heads: head pruning is not supported for the causal LM that {config.task} trains "
            f"(model.source '{config.model.source}'); it needs a BERT-style encoder classifier"
        )
    errors += _variant_errors(config)
    errors += _serving_errors(config)
    structure = config.pipeline.structure_space
    adapter = config.training.adapter
    if adapter != "lora" and "adapter" not in structure and "adapter" not in config.search.space:
        errors += [
            f"pipeline.structure_space.{name}: a LoRA setting, but training.adapter is {adapter} (nothing to tune); "
            f"search adapter too, or drop {name}"
            for name in structure
            if name in LORA_PARAMETERS
        ]
    return errors


def _variant_errors(config: ExperimentConfig) -> list[str]:
    """Quantisation and LoRA variants against the rest of the config, by PEFT's and bitsandbytes' rules."""
    errors = []
    quantization = config.model.quantization
    training = config.training
    if quantization != "none":
        errors += [
            f"{where}: head pruning rewrites the attention weights, which model.quantization {quantization} stores packed; "
            "use prune_heads 0 or quantization none"
            for where, value in searched_values(config, "prune_heads")
            if value
        ]
        errors += [
            f"{where}: PiSSA initialises from the SVD of full-precision base weights, and PEFT refuses it on a "
            f"model.quantization {quantization} base; use lora_init olora or gaussian, or quantization none"
            for where, value in searched_values(config, "lora_init")
            if value == "pissa"
        ]
        errors += [
            f"{where}: the {value} adapter is not trained on a quantised base here (model.quantization {quantization}); use adapter lora"
            for where, value in searched_values(config, "adapter")
            if value != "lora"
        ]
    if config.model.target_modules == ALL_LINEAR:
        errors += [
            f"{where}: PEFT cannot restrict model.target_modules {ALL_LINEAR} to the top layers (layers_to_transform needs a "
            "list of module names); list the modules, or use freeze_ratio 0"
            for where, value in searched_values(config, "freeze_ratio")
            if value
        ]
    dora = [where for where, value in searched_values(config, "use_dora") if value]
    mutating = [(where, value) for where, value in searched_values(config, "lora_init") if value in ("pissa", "olora")]
    if dora and mutating:
        errors.append(
            f"{mutating[0][0]}: {mutating[0][1]} moves the base weights, so PEFT saves the trained adapter converted to a plain "
            f"LoRA on the unchanged base, which DoRA's magnitudes do not survive ({dora[0]} is true); "
            "use lora_init default or gaussian with DoRA"
        )
    if training.adapter != "lora":
        variants = {"use_dora": training.use_dora, "use_rslora": training.use_rslora, "lora_init": training.lora_init != "default"}
        errors += [
            f"training.{name}: a LoRA variant, but training.adapter is {training.adapter}; use adapter lora, or drop {name}"
            for name, used in variants.items()
            if used
        ]
    return errors


def _serving_errors(config: ExperimentConfig) -> list[str]:
    """Serving choices against the trained model: a precision on a base trained quantised, bitsandbytes' packed
    weights under head pruning, a merge with an adapter that has nothing to merge."""
    errors = []
    quantization = config.model.quantization
    precisions = searched_values(config, "serving.precision")
    if quantization != "none":
        errors += [
            f"{where}: the base is trained quantised (model.quantization {quantization}) and served as trained; "
            "use serving.precision fp32, or model.quantization none"
            for where, value in precisions
            if value != "fp32"
        ]
    if any(value in CUDA_ONLY_PRECISIONS for _, value in precisions):
        errors += [
            f"{where}: head pruning rewrites the attention weights, which a bitsandbytes serving.precision stores packed; "
            "use prune_heads 0, or serving.precision fp32 or dynamic_int8"
            for where, value in searched_values(config, "prune_heads")
            if value
        ]
    adapter_searched = "adapter" in config.search.space or "adapter" in config.pipeline.structure_space
    if config.serving.merge_adapter and config.training.adapter != "lora" and not adapter_searched:
        errors.append(
            f"serving.merge_adapter: only a LoRA adapter merges into the base, but training.adapter is {config.training.adapter}; "
            "use merge_adapter false, or adapter lora"
        )
    return errors


PREFIX_CLASSIFIER_REFUSAL = (
    "PEFT refuses prefix tuning for sequence classifiers here (their forward takes no past_key_values in transformers 5); "
    "use lora or bottleneck"
)
