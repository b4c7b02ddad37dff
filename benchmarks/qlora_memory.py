"""QLoRA (NF4 base) against bf16 LoRA on a randomly initialised 7B-shaped LLaMA (hidden 4096, 32 layers, intermediate
11008, vocabulary 32000): peak training memory, tokens/s and MFU of each, and P10 = QLoRA peak ÷ bf16 LoRA peak
(goal <= 0.40).

    python benchmarks/qlora_memory.py [--batch 2] [--seq 1024] [--steps 8] [--out results.json]

Both variants are the same model, built directly on the GPU (no download) and trained the same way: LoRA r 16 on every
linear layer of the decoder blocks, bf16 autocast, gradient checkpointing, AdamW on the adapter. The QLoRA variant
stores those linear layers as bitsandbytes NF4 `Linear4bit` with double quantisation and bf16 compute, the layers
`model.quantization: nf4` loads; embeddings, norms and the output head stay bf16 in both. Peak memory is CUDA's
maximum allocated during training, FLOPs per token and MFU come from `mlops.train` (the formula in the README).
`--tiny` runs a 2-layer shape on CPU to check the script, not the card.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

SHAPE_7B = {"hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32, "vocab_size": 32000}
SHAPE_TINY = {"hidden_size": 64, "intermediate_size": 172, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 1000}
P10_GOAL = 0.40


def quantize_decoder_linears(model: Any, compute_dtype: Any, device: str) -> None:
    """Every linear layer of the decoder blocks as an NF4 `Linear4bit` (double quantisation), its weights quantised
    from the random ones; the bf16 originals are freed layer by layer."""
    import bitsandbytes as bnb
    import torch

    for layer in model.model.layers:
        for parent in list(layer.modules()):
            for name, child in list(parent.named_children()):
                if not isinstance(child, torch.nn.Linear):
                    continue
                quantized = bnb.nn.Linear4bit(
                    child.in_features, child.out_features, bias=child.bias is not None, compute_dtype=compute_dtype, quant_type="nf4"
                )
                quantized.weight = bnb.nn.Params4bit(child.weight.data, requires_grad=False, quant_type="nf4", compress_statistics=True)
                setattr(parent, name, quantized.to(device))


def build(variant: str, shape: dict[str, int], seq: int, device: str, dtype: Any) -> Any:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(max_position_embeddings=seq, attn_implementation="sdpa", tie_word_embeddings=False, **shape)
    with torch.device(device):
        model = LlamaForCausalLM(config).to(dtype)
    if variant == "qlora":
        quantize_decoder_linears(model, dtype, device)
    model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    return get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=targets))


def measure(variant: str, args: argparse.Namespace, device: str) -> dict[str, Any]:
    import torch

    from mlops.train import flops_per_token, peak_memory_gib, peak_tflops, release_memory, reset_peak_memory

    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    shape = SHAPE_TINY if args.tiny else SHAPE_7B
    model = build(variant, shape, args.seq, device, dtype)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    ids = torch.randint(0, shape["vocab_size"], (args.batch, args.seq), device=device)

    def step() -> float:
        with torch.autocast(device, dtype=dtype, enabled=device == "cuda"):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    release_memory()  # what building left behind (the bf16 weights a quantised layer replaced)
    reset_peak_memory(device)
    step()
    step()  # warm-up: kernels, the optimizer's states
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    tokens_per_s = args.batch * args.seq * args.steps / seconds
    flops = flops_per_token(model)
    peak = peak_tflops(device)
    figures = {
        "variant": variant,
        "peak_memory_gib": round(peak_memory_gib(device), 3),
        "tokens_per_s": round(tokens_per_s, 1),
        "flops_per_token": flops,
        "mfu": round(tokens_per_s * flops / (peak * 1e12), 4) if peak else None,
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "nf4_layers": sum(type(m).__name__ == "Linear4bit" for m in model.modules()),
        "final_loss": round(loss, 4),
    }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--seq", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=8, help="timed optimizer steps (after 2 warm-up steps)")
    parser.add_argument("--tiny", action="store_true", help="2-layer shape on CPU: checks the script, not the card")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()

    import torch

    device = "cpu" if args.tiny else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("qlora_memory: no CUDA device; this measures a GPU (use --tiny to check the script on CPU)")
    if args.tiny:
        args.batch, args.seq, args.steps = min(args.batch, 2), min(args.seq, 64), min(args.steps, 2)
    from mlops.train import release_memory

    results = {}
    for variant in ("qlora", "lora_bf16"):
        results[variant] = measure(variant, args, device)
        release_memory()  # the variant's model and optimizer, gone with `measure`'s frame
    ratio = results["qlora"]["peak_memory_gib"] / results["lora_bf16"]["peak_memory_gib"]
    figures = {
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "shape": SHAPE_TINY if args.tiny else SHAPE_7B,
        "batch": args.batch,
        "seq": args.seq,
        "steps": args.steps,
        **results,
        "p10_qlora_over_lora_peak": round(ratio, 4),
        "p10_goal": f"<= {P10_GOAL}",
        "p10_met": ratio <= P10_GOAL,
    }
    print(json.dumps(figures, indent=2))
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
