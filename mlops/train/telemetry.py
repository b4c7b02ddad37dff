"""What a training run cost, logged as run metrics: its peak memory, its throughput and its model FLOPs utilisation
(`TrainingTelemetry`, which `run_trainer` attaches to every run); and `release_memory`, which hands the memory of a
finished run back so that the next one starts from the baseline."""

from __future__ import annotations

import gc
import logging
import re
import resource
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

from mlops.models import logical_numel
from mlops.models.memory import GIB
from mlops.tasks import MEASURED_COST_METRICS
from mlops.tracking import is_main_process

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

# What the machine measured rather than what training computed: they differ from run to run of the same trial (as do
# wall-clock figures and MLflow's `system/` metrics).
MEASURED_METRICS = ("peak_memory_gib", "mfu", *MEASURED_COST_METRICS)
# Trainer's wall-clock figures among its `eval_*` metrics (`eval_runtime`, `eval_samples_per_second`): no curves of these.
TIMING_SUFFIXES = ("_runtime", "_per_second")
# Dense bf16/fp16 tensor-core peaks in TFLOP/s (datasheet figures without sparsity), matched against the CUDA device
# name in this order. A card not listed has no known peak, and its runs log no `mfu`; nor does a CPU.
PEAK_TFLOPS: tuple[tuple[str, float], ...] = (
    (r"\bH200\b", 989.0),
    (r"\bH100\b.*\bPCIe\b", 756.0),
    (r"\bH100\b", 989.0),
    (r"\bA100\b", 312.0),
    (r"\bL40S\b", 362.0),
    (r"\bL4\b", 121.0),
    (r"\bA10\b", 125.0),
    (r"\bV100\b", 125.0),
    (r"\bT4\b", 65.0),
)
Throughput = Literal["tokens", "samples"]


_CLEAR_REFS = "/proc/self/clear_refs"
_STATUS = "/proc/self/status"


def _status_kib(field: str) -> int | None:
    """A `Vm*` field of /proc/self/status in KiB, or None where the file or the field is missing."""
    try:
        with open(_STATUS) as status:
            for line in status:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def _resident_bytes() -> int | None:
    kib = _status_kib("VmRSS")
    if kib is not None:
        return kib * 1024
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except Exception:
        return None


class _RssSampler:
    """The resident set's peak since `restart`, sampled every few milliseconds by a daemon thread: what stands in for
    the kernel's high-water mark where it cannot be reset (no /proc/self/clear_refs, as in some sandboxes)."""

    def __init__(self, interval_s: float = 0.005) -> None:
        self.interval_s = interval_s
        self.peak = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def restart(self) -> None:
        with self._lock:
            self.peak = _resident_bytes() or 0
        if self._thread is None:
            self._thread = threading.Thread(target=self._sample, name="mlops-rss-peak", daemon=True)
            self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None

    def read(self) -> int:
        self._note(_resident_bytes() or 0)
        return self.peak

    def _note(self, rss: int) -> None:
        with self._lock:
            self.peak = max(self.peak, rss)

    def _sample(self) -> None:
        while True:
            self._note(_resident_bytes() or 0)
            time.sleep(self.interval_s)


_SAMPLER = _RssSampler()


def reset_peak_memory(device: str) -> None:
    """Start measuring the peak afresh: CUDA's allocator statistics, or on CPU the address space's high-water mark
    (`VmHWM`, which Linux resets through /proc/self/clear_refs). Where the kernel cannot reset it, a sampler of the
    resident set takes over from then on."""
    if device == "cuda":
        import torch

        torch.cuda.reset_peak_memory_stats()
        return
    if not _SAMPLER.running:
        try:
            with open(_CLEAR_REFS, "w") as refs:
                refs.write("5")
        except OSError:
            pass
        high, resident = _status_kib("VmHWM"), _status_kib("VmRSS")
        if high is not None and resident is not None and high - resident < 8 * 1024:  # reset to the current set
            return
    _SAMPLER.restart()


def peak_memory_gib(device: str) -> float:
    """The peak since `reset_peak_memory`: tensors allocated on the CUDA device, or the process's resident set on CPU.

    On Linux the CPU figure is the address space's high-water mark (`VmHWM`), not `getrusage`'s `ru_maxrss`: the
    latter also keeps the mark of the moment a thread or a child of the process was reaped, so it may not come down
    after a reset."""
    if device == "cuda":
        import torch

        return torch.cuda.max_memory_allocated() / GIB
    if _SAMPLER.running:
        return _SAMPLER.read() / GIB
    high = _status_kib("VmHWM")
    if high is not None:
        return high * 1024 / GIB
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / GIB if sys.platform == "darwin" else peak * 1024 / GIB  # bytes on macOS, KiB on Linux


def release_memory() -> None:
    """Collect what nothing refers to any more (a trainer, model and optimizer live in reference cycles) and return
    CUDA's cached blocks to the device, cuBLAS's workspaces included: on Hopper cards each cuBLAS handle keeps one
    (32 MiB) that `memory_allocated` counts and `empty_cache` does not free."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        clear_workspaces = getattr(torch._C, "_cuda_clearCublasWorkspaces", None)
        if clear_workspaces is not None:
            clear_workspaces()
        torch.cuda.empty_cache()


def peak_tflops(device: str) -> float | None:
    """The device's dense bf16/fp16 peak from `PEAK_TFLOPS`, or None (a CPU, or a card not listed)."""
    if device != "cuda":
        return None
    import torch

    name = torch.cuda.get_device_name()
    return next((peak for pattern, peak in PEAK_TFLOPS if re.search(pattern, name)), None)


def flops_per_token(model: torch.nn.Module) -> float:
    """Model FLOPs per trained token: 2·N + 2·N_path + 2·N_trainable.

    N counts the parameters that multiply each token (every weight but the input embedding lookups; a tied output
    head counts once more), N_path those from the first trainable one on, in registration order, through which the
    backward pass carries activation gradients (all of them for prompt learning, whose virtual tokens enter at the
    bottom), N_trainable those that get weight gradients. Full fine-tuning gives the usual 6·N, LoRA about 4·N.
    Attention scores are not counted, so MFU reads low at long sequence lengths.
    """
    import torch

    embeddings = {id(p) for m in model.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters(recurse=False)}
    counts = [(logical_numel(p), p.requires_grad) for p in model.parameters() if id(p) not in embeddings]
    getter: Any = getattr(model, "get_output_embeddings", None)
    head: Any = getter() if callable(getter) else None
    if head is not None and id(head.weight) in embeddings:  # tied to the input embeddings: still a matmul per token
        counts.append((logical_numel(head.weight), head.weight.requires_grad))
    config = getattr(model, "active_peft_config", None)
    first = 0 if getattr(config, "is_prompt_learning", False) else next((i for i, (_, grad) in enumerate(counts) if grad), len(counts))
    total = sum(n for n, _ in counts)
    path = sum(n for n, _ in counts[first:])
    trainable = sum(n for n, grad in counts if grad)
    return float(2 * total + 2 * path + 2 * trainable)


class TrainingTelemetry:
    """Measures one `Trainer.train()`: peak memory, the samples and non-padding tokens the model trained on (counted
    at its forward in training mode, so evaluation and generation are left out), and evaluation time inside training,
    which the throughput leaves out too."""

    def __init__(self, model: torch.nn.Module, device: str, throughput: Throughput) -> None:
        self.model, self.device, self.throughput = model, device, throughput
        self.samples = 0
        self.tokens: Any = 0  # a device tensor once counted: no synchronisation per step
        self.eval_seconds = 0.0
        self.callback = _eval_time_callback(self)

    def _count(self, module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if not module.training:
            return
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is None:
            return
        mask = kwargs.get("attention_mask")
        self.samples += int(ids.shape[0])
        self.tokens = self.tokens + (mask.sum() if mask is not None and mask.dim() == 2 else ids.numel())

    @contextmanager
    def measuring(self) -> Iterator[None]:
        """Count what the model trains on and reset the memory peak; the hook is removed however training ends."""
        reset_peak_memory(self.device)
        hook = self.model.register_forward_pre_hook(self._count, with_kwargs=True)
        try:
            yield
        finally:
            hook.remove()

    def metrics(self, train_seconds: float) -> dict[str, float]:
        """`peak_memory_gib`, `train_tokens_per_second` or `train_samples_per_second`, `flops_per_token`, and `mfu`
        where the device's peak is known."""
        seconds = max(train_seconds - self.eval_seconds, 1e-9)
        tokens = float(self.tokens)
        out = {"peak_memory_gib": peak_memory_gib(self.device), "flops_per_token": flops_per_token(self.model)}
        if self.throughput == "tokens":
            out["train_tokens_per_second"] = tokens / seconds
        else:
            out["train_samples_per_second"] = self.samples / seconds
        peak = peak_tflops(self.device)
        if peak is not None:
            out["mfu"] = tokens / seconds * out["flops_per_token"] / (peak * 1e12)
        return out

    def log(self, train_seconds: float) -> dict[str, float]:
        """The metrics, logged to the active MLflow run (rank 0 only; nothing without an active run)."""
        import mlflow

        metrics = self.metrics(train_seconds)
        if is_main_process() and mlflow.active_run() is not None:
            mlflow.log_metrics(metrics, synchronous=False)
        return metrics


def _eval_time_callback(telemetry: TrainingTelemetry) -> Any:
    from transformers import TrainerCallback

    class EvaluationTime(TrainerCallback):  # type: ignore[misc]
        """Adds up the evaluations run inside `train()` (per epoch), so that throughput counts training alone."""

        def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, float] | None = None, **kw: Any) -> None:
            telemetry.eval_seconds += float((metrics or {}).get("eval_runtime", 0.0))

    return EvaluationTime()
