"""QLoRA (NF4 base) against bf16 LoRA on a randomly initialised 7B-shaped LLaMA (hidden 4096, 32 layers, intermediate
11008, vocabulary 32000): peak training memory, tokens/s and MFU of each, and P10 = QLoRA peak ÷ bf16 LoRA peak
(goal <= 0.40).

    python benchmarks/qlora_memory.py [--batch 2] [--seq 1024] [--steps 8] [--out results.json]

Both variants are the same model, built directly on the GPU in bf16 (no download, nothing built on the CPU first)
and trained the same way through the toolkit's own path (`adapt`): LoRA r 16 on every linear layer of the decoder
blocks, bf16 autocast, activation checkpointing, AdamW on the adapter. The QLoRA variant stores those linear layers as
bitsandbytes NF4 `Linear4bit` with the settings `model.quantization: nf4` loads (`bnb_config`), marked as a quantised
load, so PEFT uses its bitsandbytes LoRA layer and `adapt` runs `prepare_model_for_kbit_training` (which keeps the
remaining weights in fp32); embeddings, norms and the output head are not quantised. Peak memory is CUDA's maximum
allocated during training; MFU is the toolkit's: `flops_per_token` x tokens/s over the card's datasheet bf16 peak
(`peak_tflops`).
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
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def quantize_like_from_pretrained(model: Any, quantization: str, device: str) -> None:
    """Every linear layer of the decoder blocks as a bitsandbytes `Linear4bit` with the toolkit's settings for
    `quantization` (`bnb_config`: NF4, double quantisation, bf16 compute), quantised on `device` from the random
    weights, which are freed layer by layer; then the model is marked the way `from_pretrained` marks a model it
    quantised, so that PEFT wraps these layers with its bitsandbytes LoRA layer and the toolkit prepares the base for
    k-bit training. (Loading a saved 7B checkpoint instead would write and read 13 GB.)"""
    import bitsandbytes as bnb
    import torch

    from mlops.models.quantization import bnb_config

    settings = bnb_config(quantization, device)
    for layer in model.model.layers:
        for parent in list(layer.modules()):
            for name, child in list(parent.named_children()):
                if not isinstance(child, torch.nn.Linear):
                    continue
                quantized = bnb.nn.Linear4bit(
                    child.in_features,
                    child.out_features,
                    bias=child.bias is not None,
                    compute_dtype=settings.bnb_4bit_compute_dtype,
                    compress_statistics=settings.bnb_4bit_use_double_quant,
                    quant_type=settings.bnb_4bit_quant_type,
                    device="meta",  # no placeholder weights to allocate and initialise
                )
                weight = bnb.nn.Params4bit(
                    child.weight.data,
                    requires_grad=False,
                    compress_statistics=settings.bnb_4bit_use_double_quant,
                    quant_type=settings.bnb_4bit_quant_type,
                )
                quantized.weight = weight.to(device)  # quantises
                if child.bias is not None:
                    quantized.bias = child.bias
                setattr(parent, name, quantized)
    model.config.quantization_config = settings
    model.is_quantized = True
    model.quantization_method = settings.quant_method
    model.is_loaded_in_4bit = True
    try:
        from transformers.quantizers import AutoHfQuantizer

        model.hf_quantizer = AutoHfQuantizer.from_config(settings, pre_quantized=False)
    except (ImportError, ValueError):  # only `from_pretrained`'s own steps read it; PEFT and the toolkit do not
        pass


def build(variant: str, shape: dict[str, int], seq: int, device: str, dtype: Any) -> Any:
    """The random base built where it trains, in its training dtype (no fp32 copy, nothing on the CPU first),
    quantised for `qlora`, with activation checkpointing on, then adapted by the toolkit's own `adapt`: LoRA r 16 on
    every decoder linear layer, and for a quantised base PEFT's `prepare_model_for_kbit_training` first."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    from mlops.config import TrainingConfig
    from mlops.train import enable_checkpointing
    from mlops.train.structure import adapt

    torch.manual_seed(0)
    config = LlamaConfig(max_position_embeddings=seq, attn_implementation="sdpa", tie_word_embeddings=False, use_cache=False, **shape)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    if variant == "qlora":
        quantize_like_from_pretrained(model, "nf4", device)
    enable_checkpointing(model)
    hp = TrainingConfig(lora_r=16, lora_alpha=32, lora_dropout=0.0, gradient_checkpointing=True)
    adapted, _ = adapt(model, hp, "summarization", TARGETS, None)
    return adapted


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
    import bitsandbytes as bnb
    from peft.tuners.lora import LoraLayer

    figures = {
        "variant": variant,
        "peak_memory_gib": round(peak_memory_gib(device), 3),
        "tokens_per_s": round(tokens_per_s, 1),
        "flops_per_token": flops,
        "peak_tflops_datasheet": peak,
        "mfu": round(tokens_per_s * flops / (peak * 1e12), 4) if peak else None,
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "nf4_layers": sum(isinstance(m, bnb.nn.Linear4bit) for m in model.modules()),
        # PEFT's bitsandbytes layer (peft.tuners.lora.bnb.Linear4bit) on the quantised base, its plain one on bf16
        "lora_layer_types": sorted({f"{type(m).__module__}.{type(m).__name__}" for m in model.modules() if isinstance(m, LoraLayer)}),
        # prepare_model_for_kbit_training casts the 16-bit weights left (embeddings, norms, head) to fp32
        "lm_head_dtype": str(model.get_output_embeddings().weight.dtype),
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
