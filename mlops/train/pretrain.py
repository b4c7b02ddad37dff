"""Continued (domain-adaptive) pre-training: causal-LM training on domain text mixed with general text.

The run logs perplexity on held-out domain text before and after, and the trained weights as a plain
transformers model directory that later runs start from: `model.source: runs:/<run_id>/pretrained`.
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.config import demo_dataset_dir
from mlops.data import read_frame
from mlops.errors import ConfigError, DataError, ModelSourceError
from mlops.models import default_causal_lm_targets, peft_wrapping, resolve_source
from mlops.tracking import (
    ENTRY_POINT_TAG,
    PRETRAINED_ARTIFACT,
    PRETRAINED_URI_TAG,
    entry_run,
    log_environment,
    log_params_effective,
    seed_everything,
)
from mlops.train.device import pick_device
from mlops.train.loop import count_parameters, run_trainer
from mlops.train.tasks import TrainingSets

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from mlops.config import ExperimentConfig, PretrainConfig
    from mlops.models import ModelSource

logger = logging.getLogger(__name__)

PRETRAINED_CARD = "mlops_pretrained.json"
# The tuning guide's floor: below it, continued pre-training tends to drift away from the domain it is for.
RECOMMENDED_MIN_DOMAIN_FRACTION = 0.3
_TEXT_FILES = (".txt",)
_TABLE_FILES = (".csv", ".jsonl", ".json", ".parquet")
_DEMO_TEXT_COLUMNS = ("text", "document")


@dataclass
class PretrainResult:
    """What a `pretrain` run measured, and where its model is."""

    run_id: str
    model_uri: str  # runs:/<run_id>/pretrained, usable as model.source
    perplexity_before: float
    perplexity_after: float
    domain_fraction_used: float  # share of domain tokens in the training mix, as built
    n_blocks: int  # training blocks of block_size tokens
    domain_heldout_tokens: int
    trainable_params: int
    train_seconds: float


@dataclass
class TrainingMix:
    """Training blocks of `block_size` token ids, and how the domain/general budget was met."""

    blocks: list[list[int]]
    domain_fraction: float
    domain_epochs: float  # passes over the training domain passages (above 1: repeated)
    general_epochs: float


@dataclass
class _Prepared:
    """Everything that can fail on bad input, loaded before any MLflow run exists."""

    source: ModelSource
    tokenizer: PreTrainedTokenizerBase
    model: PreTrainedModel
    mix: TrainingMix
    heldout_blocks: list[list[int]]


def read_passages(spec: str, text_column: str, base_dir: Path, field: str) -> list[str]:
    """Passages from `demo:NAME` (its train split's main text column), a .txt file (separated by
    blank lines), or a CSV/JSONL/Parquet file's `text_column`; a `DataError` naming `field` otherwise."""

    if spec.startswith("demo:"):
        try:
            path = demo_dataset_dir(spec[len("demo:") :]) / "train.csv"
        except DataError as exc:
            raise DataError(str(exc).replace("dataset.path", field, 1)) from None
        columns: tuple[str, ...] = (text_column, *_DEMO_TEXT_COLUMNS)
    else:
        path = Path(spec).expanduser()
        if not path.is_absolute() and not path.exists():
            path = base_dir / path
        columns = (text_column,)
    suffix = path.suffix.lower()
    if suffix not in _TEXT_FILES + _TABLE_FILES:
        raise ConfigError(f"{field}: cannot read {path}; give a .txt, .csv, .jsonl or .parquet file, or demo:NAME")
    if suffix in _TEXT_FILES:
        if not path.is_file():
            raise DataError(f"{field}: file not found: {path}")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"{field}: {path} is not valid UTF-8 (byte {exc.start})") from None
        passages = [p.strip() for p in re.split(r"\n\s*\n", text)]
    else:
        try:
            frame = read_frame(path, "auto", field)
        except DataError as exc:
            message = str(exc)
            raise DataError(message if message.startswith(field) else f"{field}: {message}") from None
        column = next((c for c in columns if c in frame.columns), None)
        if column is None:
            raise DataError(f"{field}: column '{text_column}' not in {path} (columns: {', '.join(map(str, frame.columns))})")
        passages = [str(v).strip() for v in frame[column].dropna()]
    passages = [p for p in passages if p]
    if not passages:
        raise DataError(f"{field}: no text in {path}")
    return passages


def split_heldout(passages: list[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """(train, held-out): a seeded `fraction` of the passages, at least one each side."""
    if len(passages) < 2:
        raise DataError(f"pretrain.domain_text: needs at least 2 passages to hold some out for perplexity, got {len(passages)}")
    order = list(range(len(passages)))
    random.Random(seed).shuffle(order)
    n_heldout = min(len(passages) - 1, max(1, round(fraction * len(passages))))
    heldout = set(order[:n_heldout])
    return [p for i, p in enumerate(passages) if i not in heldout], [p for i, p in enumerate(passages) if i in heldout]


def _take(pool: list[list[int]], n_tokens: int, rng: random.Random) -> list[list[int]]:
    """Passages (each ending in eos) in seeded random order until `n_tokens`, reshuffled and repeated when the pool runs out.

    The last one is cut to fit but keeps its closing eos, so no passage runs into the next.
    """
    if n_tokens > 0 and not pool:
        raise ValueError(f"no passages to take {n_tokens} tokens from")
    taken: list[list[int]] = []
    left = n_tokens
    while left > 0:
        order = list(range(len(pool)))
        rng.shuffle(order)
        for i in order:
            taken.append(pool[i] if len(pool[i]) <= left else pool[i][: left - 1] + pool[i][-1:])
            left -= len(taken[-1])
            if left == 0:
                break
    return taken


def build_mix(
    domain: list[list[int]], general: list[list[int]], domain_fraction: float, n_blocks: int, block_size: int, seed: int
) -> TrainingMix:
    """`n_blocks` blocks whose tokens are `domain_fraction` domain text, the rest general text.

    The token budget is what training reads in one pass (max_steps x batch size blocks), so every
    block is seen once; a source smaller than its share is repeated, a larger one sampled.
    """
    rng = random.Random(seed)
    total = n_blocks * block_size
    n_domain = round(domain_fraction * total) if general else total
    segments = [(True, s) for s in _take(domain, n_domain, rng)] + [(False, s) for s in _take(general, total - n_domain, rng)]
    rng.shuffle(segments)
    stream = [t for _, s in segments for t in s]
    blocks = [stream[i : i + block_size] for i in range(0, total, block_size)]
    return TrainingMix(
        blocks=blocks,
        domain_fraction=n_domain / total,
        domain_epochs=n_domain / sum(map(len, domain)),
        general_epochs=(total - n_domain) / sum(map(len, general)) if general else 0.0,
    )


def _encode(tokenizer: PreTrainedTokenizerBase, passages: list[str]) -> list[list[int]]:
    """Token ids per passage, each ended by eos so that concatenated passages stay apart."""
    if not passages:
        return []
    ids: list[list[int]] = tokenizer(passages, add_special_tokens=False, verbose=False)["input_ids"]
    return [[*p, tokenizer.eos_token_id] for p in ids]


def _heldout_blocks(encoded: list[list[int]], block_size: int) -> list[list[int]]:
    stream = [t for p in encoded for t in p]
    blocks = [stream[i : i + block_size] for i in range(0, len(stream), block_size)]
    return [b for b in blocks if len(b) > 1]  # a one-token tail predicts nothing


def perplexity(model: PreTrainedModel, blocks: list[list[int]], device: str, batch_size: int) -> float:
    """exp of the mean next-token loss over every predicted token of `blocks`."""
    import torch

    model.eval()
    total_loss, total_tokens = 0.0, 0
    with torch.no_grad():
        for length in sorted({len(b) for b in blocks}, reverse=True):  # one shape per batch: no padding needed
            same = [b for b in blocks if len(b) == length]
            for i in range(0, len(same), batch_size):
                ids = torch.tensor(same[i : i + batch_size], device=device)
                logits = model(input_ids=ids).logits[:, :-1].float()
                loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), ids[:, 1:].reshape(-1), reduction="sum")
                total_loss += float(loss)
                total_tokens += ids[:, 1:].numel()
    return math.exp(total_loss / total_tokens)


def _prepare(config: ExperimentConfig) -> _Prepared:
    pt = config.pretrain
    general_text = pt.general()
    if pt.domain_fraction < RECOMMENDED_MIN_DOMAIN_FRACTION:
        logger.warning(
            "pretrain.domain_fraction %.2f is below the %.0f%% of domain text the tuning guide recommends",
            pt.domain_fraction,
            100 * RECOMMENDED_MIN_DOMAIN_FRACTION,
        )
    base_dir = Path(config.source_file).parent
    domain = read_passages(pt.domain_text, pt.text_column, base_dir, "pretrain.domain_text")
    general = (
        read_passages(general_text, pt.text_column, base_dir, "pretrain.general_text") if general_text and pt.domain_fraction < 1.0 else []
    )
    domain_train, domain_heldout = split_heldout(domain, pt.heldout_fraction, pt.seed)

    source = resolve_source(config.model.source)
    tokenizer = source.load_tokenizer()
    if tokenizer.eos_token_id is None:
        raise ModelSourceError(f"model.source '{config.model.source}': the tokenizer has no eos token to separate passages")
    model = source.load_causal_lm()
    max_positions = getattr(model.config, "max_position_embeddings", None)
    if max_positions is not None and pt.block_size > max_positions:
        raise ConfigError(f"pretrain.block_size: {pt.block_size} exceeds the model's {max_positions} positions")
    mix = build_mix(
        _encode(tokenizer, domain_train),
        _encode(tokenizer, general),
        pt.domain_fraction,
        pt.max_steps * pt.batch_size,
        pt.block_size,
        pt.seed,
    )
    return _Prepared(source, tokenizer, model, mix, _heldout_blocks(_encode(tokenizer, domain_heldout), pt.block_size))


def _with_lora(model: PreTrainedModel, config: ExperimentConfig) -> PreTrainedModel:
    from peft import LoraConfig, TaskType, get_peft_model

    hp = config.training
    lora = LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=hp.lora_r,
        lora_alpha=hp.lora_alpha,
        lora_dropout=hp.lora_dropout,
        target_modules=config.model.target_modules or default_causal_lm_targets(model),
    )
    with peft_wrapping():
        return get_peft_model(model, lora)  # type: ignore[return-value]


def _train(model: PreTrainedModel, blocks: list[list[int]], pt: PretrainConfig, config: ExperimentConfig) -> float:
    """Train on `blocks` (labels = input ids) through the toolkit's loop, train_loss curves to the active run; return
    seconds. One pass, plain AdamW (no LoRA+ ratio, no weight decay), linear decay without warm-up."""
    from transformers import default_data_collator

    hp = replace(
        config.training,
        learning_rate=pt.learning_rate,
        batch_size=pt.batch_size,
        max_steps=pt.max_steps,
        seed=pt.seed,
        epochs=1,
        warmup_ratio=0.0,
        weight_decay=0.0,
        loraplus_lr_ratio=1.0,
        lr_scheduler="linear",
        gradient_accumulation_steps=1,
        gradient_checkpointing=False,
    )
    rows = [{"input_ids": b, "labels": b} for b in blocks]
    with run_trainer(model, hp, TrainingSets(rows, None, default_data_collator)) as (_, _, seconds):
        return seconds


def _params(config: ExperimentConfig) -> dict[str, Any]:
    pt = config.pretrain
    params: dict[str, Any] = {
        **asdict(pt),
        "general_text": pt.general() or "none",
        "model_source": config.model.source,
        "config": config.name,
    }
    if pt.mode == "lora":
        hp = config.training
        params |= {"lora_r": hp.lora_r, "lora_alpha": hp.lora_alpha, "lora_dropout": hp.lora_dropout}
    return params


def _save(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, out: Path, card: dict[str, Any]) -> None:
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    (out / PRETRAINED_CARD).write_text(json.dumps(card, indent=2), encoding="utf-8")


def run_pretrain(config: ExperimentConfig) -> PretrainResult:
    """The `pretrain` entry point: one run that trains on the domain/general mix and logs the model as `pretrained`."""
    import mlflow

    pt = config.pretrain
    prepared = _prepare(config)
    device, _ = pick_device(config.training.device)
    with entry_run(config.mlflow_experiment, f"pretrain-{config.name}", tags={ENTRY_POINT_TAG: "pretrain"}) as run:
        run_id: str = run.info.run_id
        model_uri = f"runs:/{run_id}/{PRETRAINED_ARTIFACT}"
        mlflow.set_tags({PRETRAINED_URI_TAG: model_uri, **prepared.source.lineage()})
        log_params_effective(_params(config))
        log_environment()
        heldout_tokens = sum(map(len, prepared.heldout_blocks))
        prepared.model.to(device)  # type: ignore[arg-type]  # transformers' decorator on `to` hides its signature from mypy
        before = perplexity(prepared.model, prepared.heldout_blocks, device, pt.batch_size)
        mlflow.log_metrics({"perplexity_before": before, "domain_heldout_tokens": heldout_tokens}, step=0)

        seed_everything(pt.seed)
        model: Any = _with_lora(prepared.model, config) if pt.mode == "lora" else prepared.model  # Any: a PeftModel in lora mode
        trainable, total = count_parameters(model)
        mix = prepared.mix
        mlflow.log_metrics(
            {
                "trainable_params": trainable,
                "total_params": total,
                "domain_fraction_used": mix.domain_fraction,
                "domain_epochs": mix.domain_epochs,
                "general_epochs": mix.general_epochs,
                "n_blocks": len(mix.blocks),
            }
        )
        train_seconds = _train(model, mix.blocks, pt, config)
        if pt.mode == "lora":
            model = model.merge_and_unload()  # a plain transformers model: loads without peft, fine-tunes like any base
        after = perplexity(model, prepared.heldout_blocks, device, pt.batch_size)
        mlflow.log_metrics({"perplexity_after": after, "train_seconds": train_seconds}, step=pt.max_steps)

        card = {"base_model": config.model.source, "mode": pt.mode, "run_id": run_id, "block_size": pt.block_size}
        with tempfile.TemporaryDirectory(prefix="mlops-pretrained-") as tmp:
            _save(model, prepared.tokenizer, Path(tmp), card)
            mlflow.log_artifacts(tmp, PRETRAINED_ARTIFACT)
        mlflow.flush_async_logging()
    print(f"run {run_id}: perplexity {before:.2f} -> {after:.2f} on {heldout_tokens} held-out domain tokens; model {model_uri}")
    return PretrainResult(
        run_id=run_id,
        model_uri=model_uri,
        perplexity_before=before,
        perplexity_after=after,
        domain_fraction_used=mix.domain_fraction,
        n_blocks=len(mix.blocks),
        domain_heldout_tokens=heldout_tokens,
        trainable_params=trainable,
        train_seconds=train_seconds,
    )
