"""LoRA fine-tuning throughput of a randomly initialised ~1B-parameter LLaMA-shaped model in bf16, and its model
FLOPs utilisation (MFU) as the toolkit reports it for every run.

    python benchmarks/gpu_throughput.py [--steps 20] [--batch 8] [--seq 2048] [--out results.json]

Random weights are right here: throughput does not depend on the values, and a GPU machine usually has no network to
fetch real ones. The model is built on the GPU in bf16 and trained under bf16 autocast, as the toolkit's runs are;
the memory peak is reset once it is built. `--tiny` runs a 2-layer shape on CPU to check the script.

MFU is the toolkit's one definition (`mlops.train.telemetry`): `flops_per_token` (2·N + 2·N_path + 2·N_trainable,
about 4·N for LoRA; input embeddings and attention scores not counted) x tokens/s over the card's datasheet dense
bf16 peak (`peak_tflops`: 989 TFLOP/s for H100 SXM and H200). The card's measured bf16 matmul rate (8192³) is
reported beside it as a separate figure, and so is the MFU against that rate.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path


def measure_matmul_tflops(device: str, dtype_name: str, n: int, repeats: int) -> float:
    import torch

    dtype = getattr(torch, dtype_name)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    _sync(device)
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e12


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed optimizer steps (after 3 warm-up steps)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=2048)
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--tiny", action="store_true", help="2-layer shape on CPU: checks the script, not the card")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    return parser.parse_args()


def _shape(args: argparse.Namespace) -> dict[str, int]:
    """The model's shape: 2 layers on CPU (`--tiny`, which also shortens the run), else TinyLlama-1.1B's."""
    if args.tiny:
        args.seq, args.batch, args.steps = min(args.seq, 128), min(args.batch, 2), min(args.steps, 2)
        return {"hidden_size": 64, "intermediate_size": 172, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 4}
    return {"hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 22, "num_attention_heads": 32, "num_key_value_heads": 4}


def main() -> None:
    args = _arguments()

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, LlamaConfig

    from mlops.train import flops_per_token, peak_memory_gib, peak_tflops, release_memory, reset_peak_memory

    device = "cpu" if args.tiny else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_throughput: no CUDA device (use --tiny to check the script on CPU)")
    shape = _shape(args)
    matmul_tflops = measure_matmul_tflops(device, "bfloat16", 8192 if device == "cuda" else 512, 50 if device == "cuda" else 3)

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=32000, max_position_embeddings=args.seq, attn_implementation="sdpa", **shape)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    n_params = sum(p.numel() for p in model.parameters())
    lora = LoraConfig(r=args.lora_r, lora_alpha=2 * args.lora_r, target_modules="all-linear", lora_dropout=0.0)
    model = get_peft_model(model, lora)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-4, fused=device == "cuda")
    ids = torch.randint(0, config.vocab_size, (args.batch, args.seq), device=device)

    def step() -> float:
        with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    release_memory()
    reset_peak_memory(device)  # the peak of training, not of building the model
    for _ in range(3):
        step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    _sync(device)
    seconds = time.perf_counter() - start

    tokens_per_s = args.batch * args.seq * args.steps / seconds
    flops = flops_per_token(model)
    achieved = tokens_per_s * flops / 1e12
    datasheet = peak_tflops(device)
    figures = {
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "params": n_params,
        "trainable_params": sum(p.numel() for p in trainable),
        "batch": args.batch,
        "seq": args.seq,
        "steps": args.steps,
        "seconds": round(seconds, 3),
        "tokens_per_s": round(tokens_per_s, 1),
        "flops_per_token": flops,
        "model_tflops": round(achieved, 2),
        "peak_tflops_datasheet": datasheet,
        "mfu": round(achieved / datasheet, 4) if datasheet else None,
        "bf16_matmul_tflops": round(matmul_tflops, 2),
        "mfu_vs_measured_matmul": round(achieved / matmul_tflops, 4),
        "final_loss": round(loss, 4) if math.isfinite(loss) else str(loss),
        "peak_memory_gib": round(peak_memory_gib(device), 2) if device == "cuda" else None,
    }
    print(json.dumps(figures, indent=2))
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
