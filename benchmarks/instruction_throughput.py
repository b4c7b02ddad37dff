"""Instruction training throughput on conversational data with the loss on assistant turns only: the toolkit's
training (its assistant-only labels, dynamic padding and length grouping; and with `packing`) divided by TRL's
`SFTTrainer` with `assistant_only_loss=True` (once with TRL's dynamic padding, once `padding_free`).

Both sides learn the packaged `demo:instruction-qa` conversations (system, user, assistant) through one chat
template: ChatML with `{% generation %}` markers around each assistant turn and its end-of-turn token, set on the
tokenizer of either side. TRL needs those markers for `assistant_only_loss` (SmolLM2's own template has none and
TRL cannot patch it); the toolkit renders through the same template. Token budgets are wide enough that neither
side cuts anything, and the benchmark checks that both train on the same number of tokens per conversation, then
compares trained tokens per second (samples per second are printed too). Same model, LoRA (rank, alpha, dropout,
target modules), batch size, learning rate and steps; the sides alternate for `--rounds` rounds after one warm-up
step each, and each side's best mode (median over rounds) is compared. Goal >= 1.0.

    python benchmarks/instruction_throughput.py                                   # SmolLM2-135M
    python benchmarks/instruction_throughput.py --model tiny-random-llama --steps 2 --batch-size 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

GOAL = 1.0
# ChatML (SmolLM2's format) without a default system turn, the assistant's content and end-of-turn in the loss.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\\n' }}{% generation %}{{ message['content'] + '<|im_end|>\\n' }}{% endgeneration %}"
    "{%- else %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}"
)


def _config(model: str, batch_size: int) -> Any:
    from mlops.config import load_config

    wide = {"generation.max_document_tokens": 4096, "generation.max_summary_tokens": 4096}
    return load_config("instruction-qa", {"model.source": model, "training.batch_size": batch_size, **wide})


def _tokenizer(source: Any) -> Any:
    tokenizer = source.load_tokenizer()
    tokenizer.chat_template = CHAT_TEMPLATE
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def toolkit_rate(config: Any, source: Any, conversations: list[Any], steps: int, packing: bool) -> tuple[float, float]:
    """The toolkit's training of `steps` steps: (samples/s, trained tokens/s), tokens as the batches held them."""
    import mlflow

    from mlops.train.loop import run_trainer
    from mlops.train.tasks import TrainingSets, build_causal_lm, make_collator
    from mlops.train.tasks.instruction import encode_conversations
    from mlops.train.tasks.summarization import _Rows

    tokenizer = _tokenizer(source)
    rows, stats = encode_conversations(tokenizer, conversations, config.generation)
    assert stats.prompts_truncated == stats.responses_truncated == 0, "the budgets must cut nothing"
    hp = config.training
    model, _ = build_causal_lm(source, hp, None)
    with tempfile.TemporaryDirectory() as tracking:
        mlflow.set_tracking_uri(f"sqlite:///{tracking}/mlflow.db")
        sets = TrainingSets(_Rows(rows), _Rows(rows[:1]), make_collator(tokenizer, packing=packing), group_by_length=not packing)
        with mlflow.start_run(), run_trainer(model, replace(hp, max_steps=steps), sets) as (trainer, _, seconds):
            samples = trainer.state.global_step * hp.batch_size
    tokens = samples * statistics.fmean(len(r["input_ids"]) for r in rows)
    return samples / seconds, tokens / seconds


def trl_rate(config: Any, source: Any, conversations: list[Any], steps: int, padding_free: bool) -> tuple[float, float]:
    """TRL's SFTTrainer on the same conversations, `assistant_only_loss=True`, the toolkit's LoRA."""
    from datasets import Dataset
    from trl_side import samples_per_second, sft_trainer

    hp = config.training
    dataset = Dataset.from_list([{"messages": c} for c in conversations])
    with tempfile.TemporaryDirectory() as out:
        mode = {"assistant_only_loss": True, "padding_free": padding_free}
        trainer = sft_trainer(source, hp, out, steps, dataset, _tokenizer(source), **mode)
        lengths = [len(ids) for ids in trainer.train_dataset["input_ids"]]
        samples = samples_per_second(trainer, hp.batch_size)
    return samples, samples * statistics.fmean(lengths)


def same_tokens(config: Any, source: Any, conversations: list[Any]) -> dict[str, int]:
    """Tokens per side over the conversations (all, and learned): TRL's preparation against the toolkit's encoding."""
    from datasets import Dataset
    from trl_side import sft_trainer

    from mlops.train.tasks.instruction import encode_conversations

    rows, _ = encode_conversations(_tokenizer(source), conversations, config.generation)
    dataset = Dataset.from_list([{"messages": c} for c in conversations])
    with tempfile.TemporaryDirectory() as out:
        prepared = sft_trainer(source, config.training, out, 1, dataset, _tokenizer(source), assistant_only_loss=True).train_dataset
    return {
        "toolkit_tokens": sum(len(r["input_ids"]) for r in rows),
        "trl_tokens": sum(len(ids) for ids in prepared["input_ids"]),
        "toolkit_learned": sum(sum(1 for label in r["labels"] if label != -100) for r in rows),
        "trl_learned": sum(sum(1 for label in labels if label != -100) for labels in prepared["labels"]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--steps", type=int, default=8, help="training steps per measurement")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "instruction_throughput.json"))
    args = parser.parse_args()

    from mlops.data import load_task_data
    from mlops.models import resolve_source

    config = _config(args.model, args.batch_size)
    data = load_task_data(config.task, config.dataset, Path("."), config.training.seed)
    source = resolve_source(args.model)
    conversations = data.train.conversations
    tokens = same_tokens(config, source, conversations)
    if tokens["toolkit_tokens"] != tokens["trl_tokens"]:
        print(f"warning: the sides tokenise differently ({tokens}); the ratio is per trained token", file=sys.stderr)
    sides = {
        "toolkit": lambda n: toolkit_rate(config, source, conversations, n, packing=False),
        "toolkit_packing": lambda n: toolkit_rate(config, source, conversations, n, packing=True),
        "trl": lambda n: trl_rate(config, source, conversations, n, padding_free=False),
        "trl_padding_free": lambda n: trl_rate(config, source, conversations, n, padding_free=True),
    }
    for measure in sides.values():
        measure(1)  # warm-up: first-call costs on no side
    rates: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
    for _ in range(args.rounds):
        for name, measure in sides.items():
            rates[name].append(measure(args.steps))
    samples = {name: statistics.median(r[0] for r in values) for name, values in rates.items()}
    per_token = {name: statistics.median(r[1] for r in values) for name, values in rates.items()}
    # the same tokens per conversation on both sides: samples per second compare like with like; else per token
    compared = samples if tokens["toolkit_tokens"] == tokens["trl_tokens"] else per_token
    ratio = max(compared["toolkit"], compared["toolkit_packing"]) / max(compared["trl"], compared["trl_padding_free"])
    results = {"model": args.model, "conversations": len(conversations), "tokens": tokens, "rates": rates}
    results |= {"samples_per_second": samples, "tokens_per_second": per_token, "ratio": ratio, "args": vars(args)}
    results["ratio_by"] = "samples" if compared is samples else "tokens"
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"{args.model}, {len(conversations)} conversations, batch {args.batch_size}, {args.steps} steps x {args.rounds} rounds; {tokens}")
    print(f"{'side':18}{'samples/s':>12}{'tokens/s':>12}")
    for name in sides:
        print(f"{name:18}{samples[name]:>12.2f}{per_token[name]:>12.1f}")
    print(f"instruction throughput ratio {ratio:.2f} (goal >= {GOAL})")  # best mode each side, by {results['ratio_by']}
    return 0


if __name__ == "__main__":
    sys.exit(main())
