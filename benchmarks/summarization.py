"""Summarisation benchmarks, each a side-by-side ratio measured in one process:

- P2 training throughput: the toolkit's training (prompt-masked labels, dynamic padding, length
  grouping; and with `packing`) in samples/s, divided by TRL's `SFTTrainer`, what a team would pick
  instead: the same token ids as a prompt/completion dataset with `completion_only_loss`, once with
  TRL's dynamic padding and once `padding_free`. Same model, LoRA and hyperparameters; the sides
  alternate for `--rounds` rounds, and each side's best mode is compared. Goal >= 1.0.
- P3 evaluation throughput: batched generation (left padding, KV cache) divided by one-by-one
  generation on the same 32 validation documents, greedy. The outputs must be identical. Goal >= 5.
- P6 adapter size: the logged MLflow model's bytes divided by the base model's bytes, LoRA r=8.
  Goal <= 0.02.

    python benchmarks/summarization.py                       # SmolLM2-135M, the legal demo data
    python benchmarks/summarization.py --model tiny-random-llama --steps 4
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _config(model: str, steps: int, batch_size: int):  # type: ignore[no-untyped-def]
    from mlops.config import load_config

    return load_config(
        "legal-summarization",
        {"model.source": model, "training.max_steps": steps, "training.batch_size": batch_size, "training.logging_steps": steps},
    )


def _encoded(config, data, source):  # type: ignore[no-untyped-def]
    """The training rows both sides learn from: the toolkit's own encoding (same truncation, same token ids)."""
    from mlops.train.tasks import encode_pairs

    tokenizer = source.load_tokenizer()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    gen = config.generation
    rows, _ = encode_pairs(
        tokenizer, data.train.documents, data.train.summaries, gen.template, gen.max_document_tokens, gen.max_summary_tokens
    )
    return tokenizer, rows


def trl_samples_per_second(config, source, tokenizer, rows, steps: int, padding_free: bool) -> float:  # type: ignore[no-untyped-def]
    """TRL's SFTTrainer on the same rows: a pre-tokenised prompt/completion dataset (`completion_mask` marks the
    summary), the loss on completions only, the toolkit's LoRA (rank, alpha, dropout, target modules)."""
    from datasets import Dataset
    from trl_side import samples_per_second, sft_trainer

    hp = config.training
    dataset = Dataset.from_list(
        [{"input_ids": r["input_ids"], "completion_mask": [int(label != -100) for label in r["labels"]]} for r in rows]
    )
    with tempfile.TemporaryDirectory() as out:
        trainer = sft_trainer(source, hp, out, steps, dataset, tokenizer, completion_only_loss=True, padding_free=padding_free)
        return samples_per_second(trainer, hp.batch_size)


def toolkit_samples_per_second(config, source, tokenizer, rows, steps: int, packing: bool) -> float:  # type: ignore[no-untyped-def]
    import mlflow

    from mlops.train.loop import run_trainer
    from mlops.train.tasks import TrainingSets, build_causal_lm, make_collator
    from mlops.train.tasks.summarization import _Rows

    model, _ = build_causal_lm(source, config.training, None)
    hp = config.training
    with tempfile.TemporaryDirectory() as tracking:
        mlflow.set_tracking_uri(f"sqlite:///{tracking}/mlflow.db")
        collator = make_collator(tokenizer, packing=packing)
        with (
            mlflow.start_run(),
            run_trainer(model, hp, TrainingSets(_Rows(rows), _Rows(rows[:1]), collator, group_by_length=not packing)) as (
                trainer,
                _,
                seconds,
            ),
        ):
            samples = trainer.state.global_step * hp.batch_size
    return samples / seconds


def generation_ratio(config, data, source, n: int, batch_size: int) -> dict[str, float | bool]:  # type: ignore[no-untyped-def]
    from mlops.evaluate import DecodingSettings, generate_one_by_one, generate_summaries

    tokenizer, model = source.load_tokenizer(), source.load_causal_lm()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    gen = config.generation
    documents = data.validation.documents[:n]
    settings = DecodingSettings(max_new_tokens=gen.max_new_tokens, decoding="greedy")
    start = time.perf_counter()
    batched = generate_summaries(model, tokenizer, documents, gen.template, gen.max_document_tokens, settings, batch_size=batch_size)
    batched_s = time.perf_counter() - start
    start = time.perf_counter()
    single = generate_one_by_one(model, tokenizer, documents, gen.template, gen.max_document_tokens, settings)
    single_s = time.perf_counter() - start
    return {"batched_s": batched_s, "one_by_one_s": single_s, "ratio": single_s / batched_s, "identical": batched == single}


def adapter_size_ratio(config, source) -> dict[str, float]:  # type: ignore[no-untyped-def]
    import mlflow

    from mlops.serving import log_adapter_model
    from mlops.train.loop import save_adapter
    from mlops.train.tasks import build_causal_lm

    base_dir = Path(source.path()) if hasattr(source, "path") else None
    model, _ = build_causal_lm(source, config.training, None)
    base_bytes = sum(p.numel() * p.element_size() for p in model.get_base_model().parameters())
    if base_dir is not None and base_dir.is_dir():
        base_bytes = sum(f.stat().st_size for f in base_dir.rglob("*.safetensors"))
    with tempfile.TemporaryDirectory() as tmp:
        adapter = Path(tmp) / "adapter"
        save_adapter(model, source.load_tokenizer(), adapter, config, {"generation": {}, "seed": 0})
        mlflow.set_tracking_uri(f"sqlite:///{tmp}/mlflow.db")
        with mlflow.start_run():
            info = log_adapter_model(adapter)
            local = Path(mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(Path(tmp) / "logged")))
        logged = sum(f.stat().st_size for f in local.rglob("*") if f.is_file())
        weights = sum(f.stat().st_size for f in local.rglob("adapter_model.safetensors"))
    return {"logged_bytes": logged, "adapter_weights_bytes": weights, "base_bytes": base_bytes, "ratio": logged / base_bytes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--steps", type=int, default=8, help="training steps per P2 measurement")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--examples", type=int, default=32, help="documents generated for P3")
    parser.add_argument("--gen-batch-size", type=int, default=16, help="prompts per batch for P3")
    parser.add_argument("--skip", nargs="*", default=[], choices=["p2", "p3", "p6"])
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "summarization.json"))
    args = parser.parse_args()

    from mlops.data import load_task_data
    from mlops.models import resolve_source

    config = _config(args.model, args.steps, args.batch_size)
    data = load_task_data(config.task, config.dataset, Path("."), config.training.seed)
    source = resolve_source(args.model)
    results: dict[str, object] = {"model": args.model}
    if "p2" not in args.skip:
        tokenizer, rows = _encoded(config, data, source)
        sides = {
            "toolkit": lambda n: toolkit_samples_per_second(config, source, tokenizer, rows, n, packing=False),
            "toolkit_packing": lambda n: toolkit_samples_per_second(config, source, tokenizer, rows, n, packing=True),
            "trl": lambda n: trl_samples_per_second(config, source, tokenizer, rows, n, padding_free=False),
            "trl_padding_free": lambda n: trl_samples_per_second(config, source, tokenizer, rows, n, padding_free=True),
        }
        for measure in sides.values():
            measure(1)  # warm-up: first-call costs on no side
        rates: dict[str, list[float]] = {name: [] for name in sides}
        for _ in range(args.rounds):
            for name, measure in sides.items():
                rates[name].append(measure(args.steps))
        medians = {name: statistics.median(values) for name, values in rates.items()}
        ours = max(medians["toolkit"], medians["toolkit_packing"])
        theirs = max(medians["trl"], medians["trl_padding_free"])
        results["p2"] = {"samples_per_second": rates, "medians": medians, "ratio": ours / theirs}
    if "p3" not in args.skip:
        results["p3"] = generation_ratio(config, data, source, args.examples, args.gen_batch_size)
    if "p6" not in args.skip:
        results["p6"] = adapter_size_ratio(config, source)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print("| benchmark | figure |\n|---|---|")
    if "p2" in results:
        p2 = results["p2"]
        medians = ", ".join(f"{name} {value:.2f}" for name, value in p2["medians"].items())  # type: ignore[index]
        print(f"| P2 training samples/s, toolkit / TRL SFTTrainer (best mode each) | {p2['ratio']:.2f} ({medians}) |")  # type: ignore[index]
    if "p3" in results:
        p3 = results["p3"]
        what = f"P3 batched ({args.gen_batch_size}) / one-by-one generation, {args.examples} docs greedy"
        print(f"| {what} | {p3['ratio']:.2f} (identical: {p3['identical']}) |")  # type: ignore[index]
    if "p6" in results:
        p6 = results["p6"]
        print(f"| P6 logged model / base model bytes | {p6['ratio']:.4f} ({p6['logged_bytes']} / {p6['base_bytes']}) |")  # type: ignore[index]


if __name__ == "__main__":
    main()
