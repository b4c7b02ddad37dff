"""Tracking overhead: the same trials through `mlops sweep` and through a hand-written Optuna + Trainer + PEFT loop.

Both sides sample the same hyperparameters (same seeded sampler), train the same model on the
same data with the same Trainer settings, evaluate per epoch and on the test split, and save the
adapter. Only the toolkit side logs to MLflow (params, curves, inputs, environment, artifacts,
baseline, summary). The sides alternate, and the ratio of the medians is printed.

    python benchmarks/overhead.py                     # MiniLM, 4 trials of 40 steps, 2 rounds
    python benchmarks/overhead.py --model tiny-random-bert --steps 12

`--fixed-cost` measures instead what a sweep spends per trial besides training and evaluating: the time of the
worker's trial loop (claim, child run, logging, adapter, tell, clean-up) minus the time inside `Trainer.train`,
`evaluate` and `predict`, divided by the trials, with tiny trials so that the fixed part shows:

    python benchmarks/overhead.py --fixed-cost --model tiny-random-bert --trials 8 --steps 4
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def hand_written(config, n_trials: int, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    """What a team writes without the toolkit: no tracking at all."""
    import optuna
    import torch
    from peft import LoraConfig, TaskType, get_peft_model
    from sklearn.metrics import f1_score
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments, set_seed

    from mlops.data import load_classification_data
    from mlops.models import resolve_source

    source = resolve_source(config.model.source)
    tokenizer = source.load_tokenizer()
    data = load_classification_data(config.dataset, Path(config.source_file).parent, config.training.seed)

    def encode(split):  # type: ignore[no-untyped-def]
        enc = tokenizer(split.texts, truncation=True, max_length=config.model.max_length)
        return [{**{k: enc[k][i] for k in enc.keys()}, "labels": split.labels[i]} for i in range(len(split))]  # noqa: SIM118

    def metrics(p):  # type: ignore[no-untyped-def]
        return {"f1": f1_score(p.label_ids, p.predictions.argmax(-1), average="macro")}

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("learning_rate", 1e-5, 5e-5, log=True)
        bs = trial.suggest_categorical("batch_size", [8, 16, 32])
        r = trial.suggest_categorical("lora_r", [4, 8, 16])
        epochs = trial.suggest_int("epochs", 2, 3)
        set_seed(config.training.seed)
        model = source.load_classifier(len(data.label_names))
        lora = LoraConfig(
            task_type=TaskType.SEQ_CLS,
            r=r,
            lora_alpha=16,
            lora_dropout=0.1,
            modules_to_save=["pooler"],
            target_modules=["query", "key", "value", "output.dense", "intermediate.dense"],
        )
        model = get_peft_model(model, lora)
        fast = [p for n, p in model.named_parameters() if p.requires_grad and ("lora_B" in n or "modules_to_save" in n)]
        slow = [p for n, p in model.named_parameters() if p.requires_grad and not ("lora_B" in n or "modules_to_save" in n)]
        opt = torch.optim.AdamW([{"params": slow, "lr": lr}, {"params": fast, "lr": lr * 16}], weight_decay=0.01)
        args = TrainingArguments(
            output_dir=str(workdir / "scratch"),
            learning_rate=lr,
            per_device_train_batch_size=bs,
            per_device_eval_batch_size=64,
            num_train_epochs=epochs,
            max_steps=config.training.max_steps or -1,
            warmup_steps=0.06,
            weight_decay=0.01,
            eval_strategy="epoch",
            save_strategy="no",
            logging_steps=10,
            report_to="none",
            seed=config.training.seed,
            use_cpu=True,
        )
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=encode(data.train),
            eval_dataset=encode(data.validation),
            data_collator=DataCollatorWithPadding(tokenizer),
            compute_metrics=metrics,
            optimizers=(opt, None),
        )
        trainer.train()
        if trainer.state.log_history and "eval_f1" not in trainer.state.log_history[-1]:
            trainer.evaluate()
        f1 = [h["eval_f1"] for h in trainer.state.log_history if "eval_f1" in h][-1]
        trainer.predict(encode(data.test))
        model.save_pretrained(str(workdir / f"trial-{trial.number}"))
        return float(f1)

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=config.training.seed))
    study.optimize(objective, n_trials=n_trials)


def toolkit(config, workdir: Path) -> list[str]:  # type: ignore[no-untyped-def]
    """Run the sweep; returns its trials' states (DUPLICATE: a repeated configuration, which trained nothing)."""
    import mlflow
    import optuna

    from mlops.search import SweepOptions, run_sweep

    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlflow.db'}")
    storage = f"sqlite:///{workdir / 'optuna.db'}"
    result = run_sweep(config, SweepOptions(storage=storage, promote=False))
    trials = optuna.load_study(study_name=result.study_name, storage=storage).trials
    return ["DUPLICATE" if "mlops_duplicate_of" in t.user_attrs else t.state.name for t in trials]


class _Stopwatch:
    """Seconds spent inside the wrapped callables; a call inside another wrapped one is not counted twice."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._depth = 0
        self._wrapped: list[tuple[object, str, object]] = []

    def wrap(self, owner: object, name: str) -> None:
        inner = getattr(owner, name)
        self._wrapped.append((owner, name, inner))

        def timed(*args, **kwargs):  # type: ignore[no-untyped-def]
            self._depth += 1
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self.seconds += time.perf_counter() - start

        setattr(owner, name, timed)

    def restore(self) -> None:
        for owner, name, inner in reversed(self._wrapped):
            setattr(owner, name, inner)


def fixed_cost(config, workdir: Path) -> tuple[float, float, float, list[str]]:  # type: ignore[no-untyped-def]
    """(seconds in the worker's trial loop, of which in Trainer train/evaluate/predict, of which saving checkpoints,
    the trials' states) for one toolkit sweep."""
    from transformers import Trainer

    import mlops.search.sweep as sweep

    training, loop, saving = _Stopwatch(), _Stopwatch(), _Stopwatch()
    for name in ("train", "evaluate", "predict"):
        training.wrap(Trainer, name)
    loop.wrap(sweep, "_work")
    saving.wrap(Trainer, "_save_checkpoint")
    try:
        states = toolkit(config, workdir)
    finally:
        training.restore()
        loop.restore()
        saving.restore()
    return loop.seconds, training.seconds, saving.seconds, states


def main_fixed_cost(config, rounds: int) -> None:  # type: ignore[no-untyped-def]
    per_trial = []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as tmp:
            total, training, saving, states = fixed_cost(config, Path(tmp))
        trials = len(states)
        if states.count("COMPLETE") != trials:  # a failed or duplicate trial trains less and would flatter the figure
            raise SystemExit(f"not every trial completed: {states}")
        per_trial.append((total - training) / trials)
        print(
            f"trial loop {total:6.2f} s, in Trainer train/evaluate/predict {training:6.2f} s "
            f"(of which saving checkpoints {saving:5.2f} s), {trials} trials, all COMPLETE"
        )
    median = statistics.median(per_trial)
    verdict = "met" if median <= 0.5 else "MISSED"
    print(f"fixed cost per trial: {median:.3f} s (rounds: {', '.join(f'{c:.3f}' for c in per_trial)})  goal <= 0.5 s: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm-l6")
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--steps", type=int, default=40, help="optimizer steps per trial")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--fixed-cost", action="store_true", help="measure the per-trial fixed cost of a sweep instead")
    args = parser.parse_args()

    import optuna

    from mlops.config import load_config

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    config = load_config(
        "fraud-detection",
        {"model.source": args.model, "search.n_trials": args.trials, "search.sampler": "random", "training.max_steps": args.steps},
    )
    if args.fixed_cost:
        main_fixed_cost(config, args.rounds)
        return
    times: dict[str, list[float]] = {"hand-written": [], "mlops": []}
    for _ in range(args.rounds):
        for name in times:  # alternate, so drift on a noisy machine hits both sides
            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                hand_written(config, args.trials, Path(tmp)) if name == "hand-written" else toolkit(config, Path(tmp))
                times[name].append(time.perf_counter() - start)
    hand, ours = statistics.median(times["hand-written"]), statistics.median(times["mlops"])
    print(f"model={args.model} trials={args.trials} steps/trial={args.steps} rounds={args.rounds}")
    print(f"hand-written Optuna+Trainer+PEFT, no MLflow: {hand:7.2f} s  (runs: {', '.join(f'{t:.2f}' for t in times['hand-written'])})")
    print(f"mlops sweep with full MLflow tracking:       {ours:7.2f} s  (runs: {', '.join(f'{t:.2f}' for t in times['mlops'])})")
    print(f"wall-time ratio mlops / hand-written: {ours / hand:.3f}  (goal <= 1.03)")


if __name__ == "__main__":
    main()
