"""The `mlops` command line: thin parsing over the library; heavy imports happen inside each command.

User mistakes (`MlopsError`) print one line and exit 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from mlops.cli._parser import _parser
from mlops.config import HYPERPARAMETERS, STAGES, load_config
from mlops.errors import ConfigError, MlopsError
from mlops.output import configure_output


def _load(args: argparse.Namespace, overrides: dict[str, Any]) -> Any:
    return load_config(args.config, overrides)


def _print_links(run_id: str | None, model_name: str, version: str | None) -> None:
    """Where to look in the MLflow UI (its model-training view): the run, and the registered version if any."""
    from mlops.tracking import print_links

    print_links(run_id, (model_name, version) if version is not None else None)


def _cmd_sweep(args: argparse.Namespace) -> int:
    from mlops.search import SweepOptions, make_console, run_sweep

    overrides = {
        "search.n_trials": args.n_trials,
        "search.sampler": args.sampler,
        "search.pruner": args.pruner,
        "training.seed": args.seed,
        "search.seeds_per_trial": args.seeds_per_trial,
        "search.confirm_top_k": args.confirm_top_k,
    }
    config = _load(args, overrides)
    options = SweepOptions(storage=args.storage, study_name=args.study_name, promote=args.promote, console=make_console(args.verbose))
    result = run_sweep(config, options)
    values = ", ".join(f"{k}={v:.4f}" for k, v in result.best_values.items())
    best = f"best trial {result.best_trial} ({values})"
    print(f"sweep {result.parent_run_id}: {best}, study '{result.study_name}'; this worker ran {result.trials_run} trial(s)")
    if not result.finalized:
        print("the summary and registration were already written by another worker of this study")
    if result.gate_report is not None:
        print(f"{config.registry.model_name} v{result.registered_version}: {result.gate_report.summary()}")
    _print_links(result.parent_run_id, config.registry.model_name, result.registered_version)
    return 0


def _fractions(text: str | None) -> dict[str, float] | None:
    if text is None:
        return None
    parts = text.split(",")
    try:
        values = [float(x) for x in parts]
    except ValueError:
        values = []
    if len(values) != len(STAGES):
        raise ConfigError(f"fractions: give {len(STAGES)} numbers for {','.join(STAGES)}, e.g. 0.7,0.2,0.1; got {text!r}")
    return dict(zip(STAGES, values, strict=True))


def _cmd_main(args: argparse.Namespace) -> int:
    from mlops.search import PipelineOptions, make_console, run_main

    overrides = {
        "pipeline.n_trials": args.n_trials,
        "pipeline.timeout": args.timeout,
        "pipeline.fractions": _fractions(args.fractions),
        "training.seed": args.seed,
    }
    config = _load(args, overrides)
    options = PipelineOptions(storage=args.storage, study_name=args.study_name, promote=args.promote, console=make_console(args.verbose))
    result = run_main(config, options)
    split = ", ".join(f"{stage} {n}" for stage, n in result.budget.items())
    best = result.stages[result.winner]
    print(f"main {result.run_id}: trials per stage: {split}")
    values = ", ".join(f"{k}={v:.4f}" for k, v in best.best_values.items())
    print(f"best: the {result.winner} stage's trial {best.best_trial}, {values}")
    if result.registered_version is not None:
        print(f"{config.registry.model_name} v{result.registered_version} registered")
    _print_links(result.run_id, config.registry.model_name, result.registered_version)
    return 0


def _cmd_pretrain(args: argparse.Namespace) -> int:
    from mlops.train.pretrain import run_pretrain

    keys = ("domain_text", "general_text", "domain_fraction", "mode", "max_steps")
    config = _load(args, {f"pretrain.{k}": getattr(args, k) for k in keys})
    result = run_pretrain(config)
    print(f"start a fine-tune from it with: model.source={result.model_uri}")
    return 0


def _cmd_augment(args: argparse.Namespace) -> int:
    from pathlib import Path

    if args.install_wordnet:
        from mlops.data.augment import install_wordnet
        from mlops.data.augment.wordnet import wordnet

        folder = install_wordnet()
        print(f"WordNet {wordnet().get_version()} installed for nltk in {folder}")
        return 0
    from mlops.data.augment import nothing_added, run_augment

    methods = None if args.methods is None else [m.strip() for m in args.methods.split(",") if m.strip()]
    overrides = {
        "augment.methods": methods,
        "augment.multiplier": args.multiplier,
        "augment.synonym_p": args.synonym_p,
        "augment.seed": args.seed,
    }
    config = _load(args, overrides)
    result = run_augment(config, Path(args.output_dir) if args.output_dir else None)
    counts = result.counts
    print(f"augment {result.run_id}: train rows {counts['rows_in']} -> {counts['rows_out']}; validation and test unchanged")
    if (why := nothing_added(counts)) is not None:
        print(why, file=sys.stderr)
    print(f"use it with: dataset.path={result.dataset_uri}")
    return 0


def _cmd_plan(args: argparse.Namespace) -> int:
    from mlops.search.plan import plan_sweep

    config = _load(args, {})
    quantizations = None if args.quantization is None else [q.strip() for q in args.quantization.split(",") if q.strip()]
    plan = plan_sweep(config, quantizations)
    print(plan.to_json() if args.json else plan.table())
    return 0


def _cmd_finetune(args: argparse.Namespace) -> int:
    from mlops.train.finetune import run_finetune

    config = _load(args, {f"training.{k}": getattr(args, k) for k in HYPERPARAMETERS})
    run_finetune(config)
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import mlflow

    from mlops.registry import run_evaluate

    config = _load(args, {})
    scores = run_evaluate(config, args.model_uri)
    print(", ".join(f"{k}={v:.4f}" for k, v in scores.items()))
    run = mlflow.last_active_run()
    _print_links(run.info.run_id if run else None, config.registry.model_name, None)
    return 0


def _cmd_promote(args: argparse.Namespace) -> int:
    from mlops.registry import run_promote

    config = _load(args, {})
    report = run_promote(config, args.to, args.version, legacy_stage=args.legacy_stage)
    print(report.summary())
    _print_links(None, config.registry.model_name, report.version)
    return 0


def _cmd_approve(args: argparse.Namespace) -> int:
    from mlflow import MlflowClient

    from mlops.registry import approve, pending
    from mlops.tracking import current_links, resolve_model_version

    client = MlflowClient()
    if args.list:
        waiting = pending(client, args.model)
        if not waiting:
            print("nothing awaits approval")
        for w in waiting:
            print(f"{w['model']} v{w['version']} -> {w['alias']}  (since {w.get('requested_at', '?')})  {w.get('gate_report', '')}")
        return 0
    if not args.model or not args.version:
        raise ConfigError("approve: pass --model and --version (or --list)")
    event = approve(client, resolve_model_version(client, f"models:/{args.model}/{args.version}"), args.alias, args.note)
    was = f"v{event['from_version']}" if event["from_version"] else "nobody"
    print(f"{args.model} v{args.version} now holds '{event['alias']}' (was {was}); approval recorded as event {event['seq']}")
    print(current_links().model_version(args.model, args.version))
    return 0


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from mlops.train.reproduce import run_reproduce

    result = run_reproduce(args.model_uri)
    print(f"reproduction run {result.run_id} of run {result.original_run_id}:")
    for metric, (original, reproduced, delta) in result.deltas.items():
        print(f"  {metric:<28} {original:>12.6f} -> {reproduced:>12.6f}  delta {delta:+.3g}")
    print(f"largest absolute delta: {result.max_abs_delta:.3g}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mlops.registry import run_export

    out = run_export(args.model_uri, Path(args.out), args.merge)
    print(f"{args.model_uri}: {'merged weights' if args.merge else 'adapter'} written to {out}")
    return 0


def _cmd_registry(args: argparse.Namespace) -> int:
    from mlflow import MlflowClient

    from mlops.registry import history

    events = history(MlflowClient(), args.model, args.alias)
    if not events:
        print(f"{args.model}: no alias moves recorded")
    for e in events:
        moved = f"v{e['from_version']} -> v{e['to_version']}" if e["from_version"] else f"(none) -> v{e['to_version']}"
        who = f"{e['who']}  run {e['source_run_id']}"
        print(f"{e['seq']:>4}  {e['when']}  {e['action']:<8}  {e['alias']:<12}  {moved:<14}  {who}  {e['why']}")
    return 0


def _cmd_rollback(args: argparse.Namespace) -> int:
    from mlflow import MlflowClient

    from mlops.registry import rollback

    event = rollback(MlflowClient(), args.model, args.alias)
    print(f"{args.model}: '{args.alias}' v{event['from_version']} -> v{event['to_version']} (audit #{event['seq']})")
    return 0


def _cmd_data(args: argparse.Namespace) -> int:
    from mlops.train import prepare

    config = _load(args, {})
    prepared = prepare(config)
    report = prepared.data.report
    print(report.text() if report is not None else "no data report")
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from mlops.models import available_sources

    for name, description in available_sources().items():
        print(f"{name:20s} {description}")
    print(f"{'<path>':20s} a local transformers model directory\n{'<org/name>':20s} a hub id (needs network access)")
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "sweep": _cmd_sweep,
    "main": _cmd_main,
    "pretrain": _cmd_pretrain,
    "augment": _cmd_augment,
    "plan": _cmd_plan,
    "finetune": _cmd_finetune,
    "evaluate": _cmd_evaluate,
    "promote": _cmd_promote,
    "approve": _cmd_approve,
    "registry": _cmd_registry,
    "rollback": _cmd_rollback,
    "reproduce": _cmd_reproduce,
    "export": _cmd_export,
    "data": _cmd_data,
    "models": _cmd_models,
}


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    import signal

    args = _parser().parse_args(argv)
    configure_output(getattr(args, "verbose", False))
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:  # `kill`, a scheduler's stop: end runs KILLED, not RUNNING
        signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        return COMMANDS[args.command](args)
    except MlopsError as exc:
        print(f"mlops {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"mlops {args.command}: stopped; runs in progress were ended KILLED", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
