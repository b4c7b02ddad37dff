"""Structure options checked against the rest of the config at load time, before any run starts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlops.config._schema import ExperimentConfig, ParamSpace

# Settings that only mean something for a LoRA adapter.
LORA_PARAMETERS = ("lora_r", "lora_alpha", "lora_dropout", "loraplus_lr_ratio")


def searched_values(config: ExperimentConfig, name: str) -> list[tuple[str, Any]]:
    """Every value of training setting `name` a run of this config may use (the config's, the search bounds,
    choices and grid values), with where it is set."""
    values: list[tuple[str, Any]] = [(f"training.{name}", getattr(config.training, name))]
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
    if config.task == "classification":
        errors += [f"{where}: {PREFIX_CLASSIFIER_REFUSAL}" for where, value in searched_values(config, "adapter") if value == "prefix"]
    elif any(value for _, value in searched_values(config, "prune_heads")):
        errors.append(
            f"training.prune_heads: head pruning is not supported for the causal LM that summarization trains "
            f"(model.source '{config.model.source}'); it needs a BERT-style encoder classifier"
        )
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


PREFIX_CLASSIFIER_REFUSAL = (
    "PEFT refuses prefix tuning for sequence classifiers here (their forward takes no past_key_values in transformers 5); "
    "use lora or bottleneck"
)
