"""The sweep planner: the estimated peak training memory of every corner of a search space, against the memory
budget, before any GPU time is spent (`mlops plan`); and the same estimate for one trial, which is not started when
it cannot fit (`mlops.infeasible`)."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field, replace
from typing import Any

from mlops.config import QUANTIZATIONS, ExperimentConfig, ParamSpace
from mlops.errors import ConfigError
from mlops.models.architecture import Architecture, architecture_of
from mlops.models.memory import GIB, MemoryEstimate, TrainingShape, estimate_peak_memory
from mlops.output import text_table
from mlops.tracking import INFEASIBLE_TAG

# The settings a search space may vary that change memory; sequence length and quantisation come from the config.
MEMORY_SETTINGS = ("batch_size", "lora_r", "freeze_ratio", "gradient_checkpointing")
# Training throughput measured with the toolkit, by (device: "cpu" or the CUDA device's name, model.source): tokens/s
# over the whole training step.
# CPU: the legal-summarization preset on 2 cores (its comment in the config).
MEASURED_TOKENS_PER_SECOND: dict[tuple[str, str], float] = {("cpu", "smollm2-135m"): 125.0}


@dataclass(frozen=True)
class Budget:
    """The memory a trial may use: `training.memory_budget_gib`, else the detected GPU's memory, else none (CPU)."""

    gib: float | None
    source: str
    device: str  # what the estimate assumes: cuda (16-bit activations) or cpu (fp32)


@dataclass
class Corner:
    params: dict[str, Any]
    estimate: MemoryEstimate
    fits: bool | None
    tokens_per_second: float | None

    def as_dict(self) -> dict[str, Any]:
        return {"params": self.params, **self.estimate.as_dict(), "fits": self.fits, "tokens_per_second": self.tokens_per_second}


@dataclass
class Plan:
    config: str
    architecture: Architecture
    budget: Budget
    corners: list[Corner] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps([c.as_dict() for c in self.corners], indent=2)

    def table(self) -> str:
        budget = f"{self.budget.gib:g} GiB ({self.budget.source})" if self.budget.gib is not None else self.budget.source
        lines = [self.architecture.summary(), f"budget: {budget}; estimates assume {self.budget.device}", ""]
        names = list(self.corners[0].params) if self.corners else []
        header = [*names, "peak GiB", "fits", "tokens/s"]
        rows = [
            [
                *(str(c.params[n]) for n in names),
                f"{c.estimate.peak_gib:.2f}",
                {True: "yes", False: "NO", None: "unknown"}[c.fits],
                f"{c.tokens_per_second:g}" if c.tokens_per_second is not None else "unknown",
            ]
            for c in self.corners
        ]
        lines += text_table(header, rows, align="right")
        fitting = sum(c.fits is True for c in self.corners)
        if self.budget.gib is not None:
            lines.append(f"\n{fitting} of {len(self.corners)} corners fit; trials beyond the budget are pruned before they start")
        return "\n".join(lines)


@dataclass(frozen=True)
class Infeasible:
    estimate_gib: float
    budget_gib: float

    @property
    def reason(self) -> str:
        return f"estimated peak {self.estimate_gib:.2f} GiB exceeds training.memory_budget_gib {self.budget_gib:g} GiB"


def sequence_length(config: ExperimentConfig) -> int:
    """Tokens per training example at most: the sum of the config fields the task's spec names (summarisation: the
    document and summary budgets) plus its extra tokens (the end token), or `model.max_length`."""
    spec = config.spec
    fields = [getattr(getattr(config, section), name) for section, name in (f.split(".") for f in spec.sequence_fields)]
    return int(sum(fields)) + spec.sequence_extra_tokens


def training_shape(config: ExperimentConfig, device: str) -> TrainingShape:
    """What `config` (a trial's, with its sampled values) sets that changes memory, trained on `device`."""
    hp = config.training
    targets = config.model.target_modules
    return TrainingShape(
        batch_size=hp.batch_size,
        seq_len=sequence_length(config),
        quantization=config.model.quantization,
        lora_r=hp.lora_r,
        freeze_ratio=hp.freeze_ratio,
        gradient_checkpointing=hp.gradient_checkpointing,
        adapter=hp.adapter,
        target_modules=tuple(targets) if isinstance(targets, list) else targets,
        lora_dropout=hp.lora_dropout,
        use_dora=hp.use_dora,
        num_virtual_tokens=hp.num_virtual_tokens,
        reduction_factor=hp.reduction_factor,
        ffn_gate=hp.ffn_gate,
        task=config.task,
        device=device,
    )


def detect_budget(config: ExperimentConfig) -> Budget:
    """A set budget is a GPU's (unless training.device is cpu); unset, the GPU training would use, else none."""
    import torch

    device = "cpu" if config.training.device == "cpu" else "cuda"
    if config.training.memory_budget_gib is not None:
        return Budget(config.training.memory_budget_gib, "training.memory_budget_gib", device)
    if device == "cuda" and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return Budget(round(props.total_memory / GIB, 2), f"cuda:0 {props.name}", "cuda")
    return Budget(None, "none: no training.memory_budget_gib, and training runs on the CPU; fits not judged", "cpu")


def setting_values(space: dict[str, ParamSpace], name: str, default: Any) -> list[Any]:
    """The values a corner takes for `name`: a categorical's choices, a numeric range's two ends, else the config's."""
    p = space.get(name)
    if p is None:
        return [default]
    if p.type == "categorical":
        return list(dict.fromkeys(p.choices or []))
    ends = [p.low, p.high]
    return list(dict.fromkeys(int(v) if p.type == "int" else float(v) for v in ends if v is not None))


def plan_sweep(config: ExperimentConfig, quantizations: list[str] | None = None) -> Plan:
    """Estimate every corner of `config`'s search space that changes memory (see `MEMORY_SETTINGS`), with
    `quantizations` compared (default: the config's `model.quantization`)."""
    unknown = [q for q in quantizations or [] if q not in QUANTIZATIONS]
    if unknown:
        raise ConfigError(f"quantization: must be one of {', '.join(QUANTIZATIONS)}, got {', '.join(unknown)}")
    budget = detect_budget(config)
    arch = architecture_of(config.model.source, config.task)
    values = {name: setting_values(config.search.space, name, getattr(config.training, name)) for name in MEMORY_SETTINGS}
    rate = _measured_rate(config.model.source, budget.device)
    plan = Plan(config.name, arch, budget)
    for quantization in quantizations or [config.model.quantization]:
        for combo in itertools.product(*values.values()):
            chosen = dict(zip(values, combo, strict=True))
            model = replace(config.model, quantization=quantization)  # type: ignore[arg-type]  # checked above
            corner = replace(config.with_params(chosen), model=model)
            shape = training_shape(corner, budget.device)
            estimate = estimate_peak_memory(arch, shape)
            fits = None if budget.gib is None else estimate.peak_bytes <= budget.gib * GIB
            params = {"batch_size": shape.batch_size, "seq_len": shape.seq_len, "quantization": quantization}
            params |= {k: chosen[k] for k in ("lora_r", "freeze_ratio", "gradient_checkpointing")}
            plan.corners.append(Corner(params, estimate, fits, rate))
    return plan


def _measured_rate(model_source: str, device: str) -> float | None:
    """The measured rate for `model_source` on the device planned for: this machine's GPU by name, or its CPU."""
    import torch

    if device == "cpu":
        return MEASURED_TOKENS_PER_SECOND.get(("cpu", model_source))
    if not torch.cuda.is_available():  # planning here for a GPU elsewhere: its rate is not known
        return None
    return MEASURED_TOKENS_PER_SECOND.get((torch.cuda.get_device_name(0), model_source))


def infeasible_before_launch(config: ExperimentConfig) -> Infeasible | None:
    """Whether a trial with `config` (its sampled values applied) cannot fit `training.memory_budget_gib`; with no
    budget set, nothing is infeasible before launch."""
    budget = config.training.memory_budget_gib
    if budget is None:
        return None
    shape = training_shape(config, detect_budget(config).device)
    estimate = estimate_peak_memory(architecture_of(config.model.source, config.task), shape)
    return Infeasible(estimate.peak_gib, budget) if estimate.peak_bytes > budget * GIB else None


def refuse_if_nothing_fits(config: ExperimentConfig) -> None:
    """A `ConfigError` when no corner of the search space fits `training.memory_budget_gib`: memory only grows with
    batch size and rank and shrinks with freezing and checkpointing, so then every trial would be pruned unstarted."""
    budget = config.training.memory_budget_gib
    if budget is None:
        return
    smallest = min(corner.estimate.peak_gib for corner in plan_sweep(config).corners)
    if smallest > budget:
        raise ConfigError(
            f"training.memory_budget_gib: no configuration of the search space fits {budget:g} GiB (the smallest estimate "
            f"is {smallest:.2f} GiB); see `mlops plan --config {config.source_file or config.name}`"
        )


def end_infeasible(run_id: str, infeasible: Infeasible, params: dict[str, Any]) -> None:
    """End a trial's run that was never started: its sampled params, the estimate and the budget, KILLED."""
    import time

    import mlflow
    from mlflow.entities import Metric, Param, RunTag

    client = mlflow.MlflowClient()
    client.log_batch(
        run_id,
        metrics=[Metric("estimated_peak_gib", infeasible.estimate_gib, int(time.time() * 1000), 0)],
        params=[Param(name, str(value)) for name, value in params.items()],
        tags=[RunTag(INFEASIBLE_TAG, infeasible.reason)],
    )
    client.set_terminated(run_id, "KILLED")
