"""Training: one loop (`loop.run_trainer`, and `loop.fit` for any task), the tasks behind one interface (`tasks`),
structural tuning (`structure`), one logged fine-tuning run (`finetune`), continued pre-training (`pretrain`),
`reproduce`, what each run cost (`telemetry`: peak memory, throughput, MFU), and training checkpoints (`checkpoints`)."""

from mlops.train._compat import enable_checkpointing, is_checkpointing
from mlops.train.checkpoints import TRAINER_STATE, CheckpointPlan, checkpoint_state, checkpoint_step, last_checkpoint
from mlops.train.device import pick_device
from mlops.train.finetune import Prepared, log_data_checks, prepare, run_finetune, run_params, train_and_log
from mlops.train.loop import FinetuneResult, Reporter, count_parameters, fit, run_trainer, save_adapter
from mlops.train.pretrain import PretrainResult, run_pretrain
from mlops.train.reproduce import Reproduction, run_reproduce
from mlops.train.telemetry import TrainingTelemetry, flops_per_token, peak_memory_gib, peak_tflops, release_memory, reset_peak_memory

__all__ = [
    "TRAINER_STATE",
    "CheckpointPlan",
    "FinetuneResult",
    "Prepared",
    "PretrainResult",
    "Reporter",
    "Reproduction",
    "TrainingTelemetry",
    "checkpoint_state",
    "checkpoint_step",
    "count_parameters",
    "enable_checkpointing",
    "fit",
    "flops_per_token",
    "is_checkpointing",
    "last_checkpoint",
    "log_data_checks",
    "peak_memory_gib",
    "peak_tflops",
    "pick_device",
    "prepare",
    "release_memory",
    "reset_peak_memory",
    "run_finetune",
    "run_params",
    "run_pretrain",
    "run_reproduce",
    "run_trainer",
    "save_adapter",
    "train_and_log",
]
