"""P9: the planner's estimated peak training memory ÷ the measured CUDA peak, for three corners of a random-init
~1.1B LLaMA (TinyLlama's shape): bf16 LoRA without and with gradient checkpointing, and QLoRA (nf4) with it.

    python benchmarks/planner_accuracy.py [--out results.json] [--seq 512] [--steps 3]

Each corner builds the base on the GPU (the nf4 one loads bf16 weights made on the GPU and saved once, quantised by
`from_pretrained` as `model.quantization: nf4` loads them), adapts it with the toolkit (`adapt`: LoRA on the default targets, a
quantised base prepared for k-bit training), trains a few AdamW steps under bf16 autocast on random tokens, and
reads `torch.cuda.max_memory_allocated`, reset once the base is on the GPU, so that building it does not count.
The estimate is compared without its fixed overhead (the CUDA context is not an allocation). Goal: every ratio
within 0.85..1.15. Needs a CUDA device; on CPU it says so and exits 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

# (name, quantization, batch size, gradient checkpointing)
CORNERS = [("bf16-b4", "none", 4, False), ("bf16-b8-gc", "none", 8, True), ("nf4-b8-gc", "nf4", 8, True)]
GOAL = (0.85, 1.15)


def llama_config(seq: int) -> Any:
    from transformers import LlamaConfig

    return LlamaConfig(
        hidden_size=2048,
        intermediate_size=5632,
        num_hidden_layers=22,
        num_attention_heads=32,
        num_key_value_heads=4,
        vocab_size=32000,
        max_position_embeddings=max(seq, 2048),
        tie_word_embeddings=False,
        use_cache=False,
        dtype="bfloat16",
    )


def build_base(config: Any, quantization: str, saved: Path) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    from mlops.models.quantization import bnb_config
    from mlops.train import release_memory

    if quantization == "none":
        with torch.device("cuda"):
            return AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    if not (saved / "config.json").is_file():  # bitsandbytes quantises while loading: save the bf16 weights once
        with torch.device("cuda"):  # random weights made on the GPU, not by one CPU core
            AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16).save_pretrained(saved)
        release_memory()
    return AutoModelForCausalLM.from_pretrained(saved, quantization_config=bnb_config(quantization, "cuda"), device_map="cuda")


def measure(config: Any, corner: tuple[str, str, int, bool], seq: int, steps: int, saved: Path) -> dict[str, Any]:
    import torch

    from mlops.config import TrainingConfig
    from mlops.models.architecture import from_config
    from mlops.models.memory import TrainingShape, estimate_peak_memory
    from mlops.train import enable_checkpointing, peak_memory_gib, release_memory, reset_peak_memory
    from mlops.train.structure import adapt

    name, quantization, batch, checkpointing = corner
    hp = TrainingConfig(lora_r=16, lora_alpha=32, lora_dropout=0.05, gradient_checkpointing=checkpointing)
    arch = from_config("random-llama-1.1b", config, "summarization")
    shape = TrainingShape(batch, seq, quantization, hp.lora_r, 0.0, checkpointing, lora_dropout=hp.lora_dropout, device="cuda")
    estimate = estimate_peak_memory(arch, shape)

    base = build_base(config, quantization, saved)
    if checkpointing:
        enable_checkpointing(base)
    release_memory()
    reset_peak_memory("cuda")  # from here the peak counts the weights held, not how they were built
    model, _ = adapt(base, hp, "summarization", list(arch.default_targets), None)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    tokens = torch.randint(0, config.vocab_size, (batch, seq), device="cuda")
    model.train()
    for _ in range(steps):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(input_ids=tokens, labels=tokens).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    measured = peak_memory_gib("cuda") * 2**30
    del model, base, optimizer, tokens, loss
    release_memory()
    allocated = estimate.peak_bytes - estimate.overhead
    return {
        "corner": name,
        "quantization": quantization,
        "batch_size": batch,
        "seq_len": seq,
        "gradient_checkpointing": checkpointing,
        "estimate_gib": round(allocated / 2**30, 3),
        "estimate_parts_gib": estimate.parts_gib(),
        "measured_peak_gib": round(measured / 2**30, 3),
        "ratio": round(allocated / measured, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seq", type=int, default=512)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("planner_accuracy: needs a CUDA device (it compares with torch.cuda.max_memory_allocated); none here, nothing measured")
        return 1
    config = llama_config(args.seq)
    with tempfile.TemporaryDirectory(prefix="planner-accuracy-") as scratch:
        results = [measure(config, corner, args.seq, args.steps, Path(scratch)) for corner in CORNERS]
    for r in results:
        print(json.dumps(r))
    within = all(GOAL[0] <= r["ratio"] <= GOAL[1] for r in results)
    summary = {
        "device": torch.cuda.get_device_name(0),
        "ratios": {r["corner"]: r["ratio"] for r in results},
        "goal": f"{GOAL[0]}..{GOAL[1]}",
        "within_goal": within,
    }
    print(json.dumps(summary))
    if args.out:
        args.out.write_text(json.dumps({"summary": summary, "corners": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
