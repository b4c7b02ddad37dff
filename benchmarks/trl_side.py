"""TRL's side of the benchmarks that measure the toolkit's training against `SFTTrainer`: the toolkit's LoRA as
TRL gets it, and TRL's arguments for a timed CPU run of a few steps. Imported by those scripts, run from the root."""

from __future__ import annotations

import time
from typing import Any


def sft_trainer(source: Any, hp: Any, out: str, steps: int, dataset: Any, tokenizer: Any, **mode: Any) -> Any:
    """An `SFTTrainer` on `source`'s causal LM (seeded as the toolkit seeds it) with the toolkit's LoRA (rank, alpha,
    dropout, its default target modules), `hp`'s batch size and learning rate, `steps` steps on the CPU, nothing
    saved or reported; `mode`: the loss and padding options of the side measured (`completion_only_loss`, ...)."""
    from peft import LoraConfig, TaskType
    from transformers import set_seed
    from trl import SFTConfig, SFTTrainer

    from mlops.models import default_causal_lm_targets

    set_seed(hp.seed)
    base = source.load_causal_lm()
    lora = LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=hp.lora_r,
        lora_alpha=hp.lora_alpha,
        lora_dropout=hp.lora_dropout,
        target_modules=default_causal_lm_targets(base),
    )
    args = SFTConfig(
        output_dir=out,
        per_device_train_batch_size=hp.batch_size,
        learning_rate=hp.learning_rate,
        max_steps=steps,
        report_to="none",
        use_cpu=True,
        save_strategy="no",
        logging_steps=steps,
        max_length=None,  # the rows are cut (or not) as the toolkit's side cuts them
        disable_tqdm=True,
        dataset_num_proc=None,
        **mode,
    )
    return SFTTrainer(model=base, args=args, train_dataset=dataset, processing_class=tokenizer, peft_config=lora)


def samples_per_second(trainer: Any, batch_size: int) -> float:
    """Train, timing `trainer.train()` alone: samples (steps x batch size) per second."""
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    return float(trainer.state.global_step * batch_size / seconds)
