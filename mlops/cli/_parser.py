"""The `mlops` command line's arguments: one parser, its commands grouped as the README groups them."""

from __future__ import annotations

import argparse
from typing import Any

from mlops.config import hyperparameter_help


def _optional(value: str) -> str | None:
    """MLproject passes unset optional parameters as empty strings."""
    return value if value.strip() else None


def _bool(value: str) -> bool:
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def _add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default="fraud-detection", help="config path or packaged name (default: %(default)s)")


def _add_verbose(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--verbose",
        type=_bool,
        nargs="?",
        const=True,
        default=False,
        help="also show the libraries' own output: Trainer's per-step logs and progress bars, MLflow's and Optuna's INFO lines",
    )


def _add_search_commands(sub: Any) -> None:
    """`sweep` and `main`: the searches."""
    p = sub.add_parser("sweep", help="nested Optuna search; every trial is an MLflow child run")
    _add_config(p)
    p.add_argument("--n-trials", type=_optional, help="total trials of the study, across all workers (default: the config's)")
    p.add_argument("--sampler", type=_optional, help="tpe, random, grid, cmaes, qmc, gp or nsgaii (default: the config's)")
    p.add_argument("--pruner", type=_optional, help="none, median or hyperband (default: the config's)")
    p.add_argument("--seed", type=_optional, help="seed for the sampler and every trial (default: the config's)")
    p.add_argument("--seeds-per-trial", type=_optional, help="training seeds per trial, their mean told to Optuna (default: the config's)")
    p.add_argument(
        "--confirm-top-k", type=_optional, help="re-train the k best trials with fresh seeds, register the best (default: the config's)"
    )
    p.add_argument("--storage", type=_optional, help="Optuna storage URL (default: optuna.db beside mlflow.db)")
    p.add_argument("--study-name", type=_optional, help="name of the Optuna study; an existing one is continued")
    p.add_argument("--promote", type=_bool, default=True, help="register the best adapter and apply the staging gate")
    _add_verbose(p)

    p = sub.add_parser("main", help="the staged pipeline: data, hyperparameter and structure stages, then evaluate and promote")
    _add_config(p)
    p.add_argument("--n-trials", type=_optional, help="total trial budget of all stages (default: the config's pipeline.n_trials)")
    p.add_argument("--timeout", type=_optional, help="total seconds, split like the trials (default: none)")
    p.add_argument("--fractions", type=_optional, help="budget shares data,hyperparameters,structure (default: 0.7,0.2,0.1)")
    p.add_argument("--seed", type=_optional, help="seed for the samplers and every trial (default: the config's)")
    p.add_argument("--storage", type=_optional, help="Optuna storage URL (default: optuna.db beside mlflow.db)")
    p.add_argument("--study-name", type=_optional, help="prefix of the stage studies; an existing one is continued")
    p.add_argument("--promote", type=_bool, default=True, help="register the best adapter and apply the staging gate")
    _add_verbose(p)


def _add_training_commands(sub: Any) -> None:
    """`pretrain`, `augment`, `plan` and `finetune`: single runs and their preparation."""
    p = sub.add_parser("pretrain", help="continued pre-training on domain text; the result is a model source for finetune/sweep")
    _add_config(p)
    p.add_argument("--domain-text", type=_optional, help="domain text: .txt, JSONL/CSV, or demo:NAME (default: the config's)")
    p.add_argument("--general-text", type=_optional, help="general text mixed in (default: the config's)")
    p.add_argument("--domain-fraction", type=_optional, help="share of domain text in the mix; >= 0.3 recommended")
    p.add_argument("--mode", type=_optional, help="lora (merged into the weights at the end) or full")
    p.add_argument("--max-steps", type=_optional, help="optimizer steps")

    p = sub.add_parser("augment", help="augment the train split; the result is a dataset (runs:/<run id>/augmented) for later configs")
    _add_config(p)
    p.add_argument("--methods", type=_optional, help="comma-separated augmenters, e.g. synonym,swap (default: the config's)")
    p.add_argument("--multiplier", type=_optional, help="augmented copies per training example (default: the config's)")
    p.add_argument("--synonym-p", type=_optional, help="probability that a word is replaced by a WordNet synonym")
    p.add_argument("--seed", type=_optional, help="seed of every method (default: augment.seed, else training.seed)")
    p.add_argument("--output-dir", type=_optional, help="also write the splits to this new folder (usable as dataset.path)")
    p.add_argument("--install-wordnet", action="store_true", help="install Debian's WordNet 3.0 database for nltk into this environment")

    p = sub.add_parser("plan", help="estimate the peak training memory of every corner of the search space; run it first")
    _add_config(p)
    p.add_argument("--json", type=_bool, nargs="?", const=True, default=False, help="one JSON object per corner")
    p.add_argument("--quantization", type=_optional, help="quantisations to compare, e.g. nf4,none (default: model.quantization)")

    p = sub.add_parser("finetune", help="one LoRA fine-tuning run; hyperparameters override the config")
    _add_config(p)
    for name, text in hyperparameter_help().items():
        p.add_argument(f"--{name.replace('_', '-')}", type=_optional, help=f"{text} (overrides training.{name})")


def _add_registry_commands(sub: Any) -> None:
    """`evaluate`, `promote`, `registry`, `rollback`, `reproduce` and `export`: registered models."""
    p = sub.add_parser("evaluate", help="score a logged or registered model on the test split")
    _add_config(p)
    p.add_argument("--model-uri", type=_optional, help="default: models:/<registry.model_name>@staging")

    p = sub.add_parser("promote", help="apply a policy gate and move an alias only if it passes")
    _add_config(p)
    p.add_argument("--to", default="staging", help="alias to move (default: %(default)s)")
    p.add_argument(
        "--version", type=_optional, help="model version (default: the holder of the alias's candidate_from in the policy, else the latest)"
    )
    p.add_argument(
        "--legacy-stage",
        type=_bool,
        nargs="?",
        const=True,
        default=False,
        help="also set the deprecated registry stage (Staging/Production), for servers that read stages; default: aliases only",
    )

    p = sub.add_parser("approve", help="move an alias to a version that passed its gates and awaits approval (policy `approval: required`)")
    p.add_argument("--model", help="registered model name")
    p.add_argument("--version", help="the version to approve")
    p.add_argument("--alias", help="the alias it awaits (default: the one it awaits)")
    p.add_argument("--note", default="", help="why: recorded with the approver's name in the audit trail")
    p.add_argument("--list", action="store_true", help="list the versions awaiting approval (of --model, or of every model)")
    p = sub.add_parser("registry", help="query the model registry")
    registry = p.add_subparsers(dest="registry_command", required=True, metavar="COMMAND")
    h = registry.add_parser("history", help="every alias move recorded for a registered model, oldest first")
    h.add_argument("model", help="registered model name")
    h.add_argument("--alias", type=_optional, help="only this alias")

    p = sub.add_parser("rollback", help="move an alias back to its previous holder (recorded in the audit trail)")
    p.add_argument("model", help="registered model name")
    p.add_argument("--alias", default="production", help="alias to roll back (default: %(default)s)")

    p = sub.add_parser("reproduce", help="re-run a registered version's trial from its lineage; print each metric's delta")
    p.add_argument("model_uri", help="models:/<name>/<version> or models:/<name>@<alias>")

    p = sub.add_parser("export", help="write a registered model's adapter, or merged full weights, to a new directory")
    p.add_argument("model_uri", help="models:/<name>/<version> or models:/<name>@<alias>")
    p.add_argument("--out", required=True, help="new directory to write")
    p.add_argument("--merge", action="store_true", help="merge the adapter into the base weights (for runtimes without adapters)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlops", description="Tune and ship transformer models on MLflow.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_search_commands(sub)
    _add_training_commands(sub)
    _add_registry_commands(sub)

    p = sub.add_parser("data", help="check a dataset against the data contract and print its report, without training")
    data = p.add_subparsers(dest="data_command", required=True, metavar="COMMAND")
    _add_config(data.add_parser("check", help="load, check and describe the config's dataset: drops, balance, lengths, overlaps"))

    sub.add_parser("models", help="list the model sources available offline")
    return parser
