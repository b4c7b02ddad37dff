"""Search efficiency (P4) as a tabular benchmark: Optuna's samplers and pruners replayed against a recorded grid.

The table (benchmarks/data/search_table.json, built by benchmarks/search_table.py) holds the validation
eval_f1 after every epoch of every grid point, for 3 training seeds. A replay draws one training seed
per point (the run a real search would have seen), then drives a real Optuna study, with the sampler
and pruner built exactly as `mlops sweep` builds them (`mlops.search.space.make_sampler/make_pruner`):
`study.ask()`, the point's curve reported epoch by epoch (`trial.report`, `trial.should_prune`), then
pruned or told its last value. A point already completed is not re-trained (as the sweep reuses a
duplicate's result) and costs nothing. Nothing trains, so a replay takes milliseconds to seconds.

Each grid dimension is searched as its index (an int from 0 to n-1): the values are log-spaced or
ordered, and every sampler (CMA-ES, GP and QMC included) can then model it, rather than falling back
to random sampling on categoricals.

Compute is counted in trial-epochs (as `mlops.search.report` counts it); the grid's full compute is
points x epochs. For each method and replay seed:
- compute to first reach the grid's best (the best final value the full grid sees in the same draw),
  and to reach within 0.5 F1 points of it, divided by the grid's compute (runs stop at 2x the grid's
  compute; a target never reached counts as infinite);
- simple regret (grid best - best found) at 10 %, 25 % and 50 % of the grid's compute.
Reported: the median over replay seeds with a 95 % percentile-bootstrap confidence interval.

Also: the seed's claim "Bayesian search converges 12 % faster than random" as random / TPE compute
to reach the best (pruner none for both, paired by replay seed), and the winner's curse on the full
grid: how often picking the best single observed run picks a point whose true (3-seed) mean is below
the best point's, against confirming the top 3 with the seeds not used for selection.

    python benchmarks/search_efficiency.py                        # 30 replay seeds, every method (GP: 10 seeds)
    python benchmarks/search_efficiency.py --seeds 5 --samplers random tpe --pruners none hyperband
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SAMPLERS = ["grid", "random", "tpe", "gp", "cmaes", "qmc"]
PRUNERS = ["none", "median", "hyperband"]
WITHIN = 0.005  # 0.5 F1 points
BUDGETS = (0.10, 0.25, 0.50)
MAX_COMPUTE = 2.0  # a replay stops after twice the grid's compute
TOLERANCE = 1e-9
CLAIM = 0.12  # the seed's "12 % faster convergence than random"


def load_table(path: Path) -> dict[str, Any]:
    table = json.loads(path.read_text())
    names = list(table["grid"])
    seeds = [str(s) for s in table["seeds"]]
    curves = {}  # index tuple -> array (seeds x epochs)
    for point in table["points"]:
        key = tuple(table["grid"][n].index(point["params"][n]) for n in names)
        curves[key] = np.array([point["curves"][s] for s in seeds], dtype=float)
    table["names"], table["curves"] = names, curves
    return table


def draw(table: dict[str, Any], rng: np.random.Generator) -> dict[tuple[int, ...], np.ndarray]:
    """One realisation: each point's curve from one training seed drawn at random."""
    return {key: c[rng.integers(len(c))] for key, c in table["curves"].items()}


def search_config(table: dict[str, Any], sampler: str, pruner: str) -> Any:
    from mlops.config import ParamSpace, SearchConfig

    space = {n: ParamSpace(type="int", low=0, high=len(v) - 1) for n, v in table["grid"].items()}
    return SearchConfig(n_trials=len(table["curves"]), sampler=sampler, pruner=pruner, space=space)  # type: ignore[arg-type]


def replay(
    table: dict[str, Any], observed: dict[tuple[int, ...], np.ndarray], sampler: str, pruner: str, seed: int, target: float
) -> list[tuple[int, float | None]]:
    """Run one study against `observed`: (trial-epochs, final value or None) per trial.

    It stops once `target` is reached and half the grid's compute is spent (all that is measured), when every point
    has completed, after MAX_COMPUTE x the grid's compute, or after 2 x the grid's points in trials (as if `n_trials` were
    that: a sampler that keeps redrawing completed points runs out of trials)."""
    import optuna

    from mlops.search.space import make_pruner, make_sampler

    epochs = table["epochs"]
    budget = MAX_COMPUTE * len(observed) * epochs
    search = search_config(table, sampler, pruner)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = optuna.create_study(direction="maximize", sampler=make_sampler(sampler, search, seed), pruner=make_pruner(pruner, epochs))
    done: dict[tuple[int, ...], float] = {}
    trials: list[tuple[int, float | None]] = []
    spent = 0
    while spent < budget and len(trials) < 2 * len(observed) and len(done) < len(observed):
        if max(done.values(), default=-math.inf) >= target - TOLERANCE and spent >= max(BUDGETS) * len(observed) * epochs:
            break
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trial = study.ask()
            key = tuple(trial.suggest_int(n, 0, len(table["grid"][n]) - 1) for n in table["names"])
        if key in done:  # the sweep reuses a completed configuration's result: no training
            study.tell(trial, done[key])
            trials.append((0, done[key]))
            continue
        curve = observed[key]
        for epoch, value in enumerate(curve, start=1):
            trial.report(float(value), epoch)
            if epoch < epochs and trial.should_prune():
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                trials.append((epoch, None))
                break
        else:
            study.tell(trial, float(curve[-1]))
            done[key] = float(curve[-1])
            trials.append((epochs, float(curve[-1])))
        spent += trials[-1][0]
        if sampler == "grid" and len(trials) == len(observed):  # the sweep runs a grid's points once (`trial_budget`)
            break
    return trials


def compute_to_reach(trials: list[tuple[int, float | None]], target: float) -> float:
    spent = 0
    for cost, value in trials:
        spent += cost
        if value is not None and value >= target - TOLERANCE:
            return float(spent)
    return math.inf


def best_within(trials: list[tuple[int, float | None]], budget: float) -> float:
    spent, best = 0, -math.inf
    for cost, value in trials:
        spent += cost
        if spent > budget + TOLERANCE:
            break
        if value is not None:
            best = max(best, value)
    return best


def bootstrap(values: np.ndarray, rng: np.random.Generator, statistic: Any = np.median, n: int = 2000) -> tuple[float, float, float]:
    """The statistic and its 95 % percentile-bootstrap interval."""
    picks = rng.integers(len(values), size=(n, len(values)))
    stats = np.array([statistic(values[p]) for p in picks])
    # no interpolation between order statistics: an interval reaching a never-reached (infinite) cost stays infinite
    return float(statistic(values)), float(np.quantile(stats, 0.025, method="lower")), float(np.quantile(stats, 0.975, method="higher"))


def fmt(triple: tuple[float, float, float], digits: int = 2) -> str:
    def one(x: float) -> str:
        return "inf" if math.isinf(x) else f"{x:.{digits}f}"

    return f"{one(triple[0])} [{one(triple[1])}, {one(triple[2])}]"


def winners_curse(table: dict[str, Any], rng: np.random.Generator, draws: int, top: int) -> dict[str, Any]:
    """Top-1 by one observed run against top-`top` confirmed with the other seeds; true metric = the 3-seed mean."""
    keys = list(table["curves"])
    finals = np.array([table["curves"][k][:, -1] for k in keys])  # points x seeds
    true = finals.mean(axis=1)
    best_true = true.max()
    plain_gap, confirmed_gap = [], []
    for _ in range(draws):
        picked = rng.integers(finals.shape[1], size=len(keys))
        observed = finals[np.arange(len(keys)), picked]
        order = np.argsort(-observed, kind="stable")
        plain_gap.append(best_true - true[order[0]])
        candidates = order[:top]
        fresh = [np.delete(finals[c], picked[c]).mean() for c in candidates]  # seeds not used to select
        confirmed_gap.append(best_true - true[candidates[int(np.argmax(fresh))]])
    plain, confirmed = np.array(plain_gap), np.array(confirmed_gap)
    return {
        "draws": draws,
        "top": top,
        "plain_below_best": float((plain > TOLERANCE).mean()),
        "confirmed_below_best": float((confirmed > TOLERANCE).mean()),
        "plain_gap": bootstrap(plain, rng, np.mean),
        "confirmed_gap": bootstrap(confirmed, rng, np.mean),
    }


def print_results(args: argparse.Namespace, table: dict[str, Any], results: dict[str, dict[str, Any]], wall: float) -> None:
    """The replays' settings, then one Markdown row per method."""
    grid_compute = len(table["curves"]) * table["epochs"]
    print(f"table: {args.table.name}, {len(table['curves'])} points x {table['epochs']} epochs x {len(table['seeds'])} seeds, ", end="")
    print(f"grid compute {grid_compute} trial-epochs; {args.seeds} replay seeds (gp: {min(args.seeds, args.gp_seeds)}); {wall:.0f} s")
    print()
    header = "| method | seeds | reached best | compute to best / grid | to within 0.5 pt / grid | "
    print(header + " | ".join(f"regret @{b:.0%}" for b in BUDGETS) + " | s/replay |")
    print("|---|---|---|---|---|" + "---|" * len(BUDGETS) + "---|")
    for method, r in results.items():
        cells = [method, str(r["seeds"]), f"{r['reached']:.0%}", fmt(r["to_best"]), fmt(r["to_near"])]
        cells += [fmt(r["regret"][str(b)], 3) for b in BUDGETS]
        print("| " + " | ".join(cells) + f" | {r['seconds_per_replay']:.2f} |")
    print()


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=Path, default=ROOT / "benchmarks" / "data" / "search_table.json")
    parser.add_argument("--seeds", type=int, default=30, help="replay seeds per method")
    parser.add_argument("--gp-seeds", type=int, default=10, help="replay seeds for the gp sampler (each GP replay takes seconds)")
    parser.add_argument("--samplers", nargs="+", default=SAMPLERS, choices=SAMPLERS)
    parser.add_argument("--pruners", nargs="+", default=PRUNERS, choices=PRUNERS)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "search_efficiency.json")
    return parser.parse_args()


def main() -> None:
    args = arguments()

    import optuna
    import torch

    torch.set_num_threads(1)  # GPSampler fits with torch: one thread is faster than two contending ones on a small box
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    table = load_table(args.table)
    grid_compute = len(table["curves"]) * table["epochs"]
    rng = np.random.default_rng(0)
    draws = [draw(table, np.random.default_rng(1000 + s)) for s in range(args.seeds)]
    started = time.perf_counter()
    results: dict[str, dict[str, Any]] = {}
    for sampler in args.samplers:
        for pruner in args.pruners:
            n = min(args.seeds, args.gp_seeds) if sampler == "gp" else args.seeds
            t0 = time.perf_counter()
            to_best, to_near, regret = [], [], {b: [] for b in BUDGETS}
            for s in range(n):
                observed = draws[s]
                target = max(float(c[-1]) for c in observed.values())
                trials = replay(table, observed, sampler, pruner, s, target)
                to_best.append(compute_to_reach(trials, target) / grid_compute)
                to_near.append(compute_to_reach(trials, target - WITHIN) / grid_compute)
                for b in BUDGETS:
                    regret[b].append(target - best_within(trials, b * grid_compute))
            best_arr = np.array(to_best)
            results[f"{sampler}+{pruner}"] = {
                "seeds": n,
                "reached": float(np.isfinite(best_arr).mean()),
                "to_best": bootstrap(best_arr, rng),
                "to_near": bootstrap(np.array(to_near), rng),
                "regret": {str(b): bootstrap(np.array(regret[b]), rng) for b in BUDGETS},
                "to_best_per_seed": to_best,
                "seconds_per_replay": (time.perf_counter() - t0) / n,
            }
            print(f"{sampler}+{pruner}: {n} replays, {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    wall = time.perf_counter() - started
    print_results(args, table, results, wall)
    payload: dict[str, Any] = {"table": str(args.table), "grid_compute": grid_compute, "wall_s": wall, "results": results}
    if "random+none" in results and "tpe+none" in results:
        n = min(results["random+none"]["seeds"], results["tpe+none"]["seeds"])
        rnd = np.array(results["random+none"]["to_best_per_seed"][:n])
        tpe = np.array(results["tpe+none"]["to_best_per_seed"][:n])
        both = np.stack([rnd, tpe], axis=1)

        def speedup(rows: np.ndarray) -> float:
            return float(np.median(rows[:, 0]) / np.median(rows[:, 1]))

        claim = bootstrap(both, rng, speedup)
        payload["random_over_tpe"] = claim
        print(f"seed claim (Bayesian 12 % faster than random): random / TPE compute to best, pruner none: {fmt(claim)} ", end="")
        print(f"(1.14 would be 12 % less compute); TPE saves {1 - 1 / claim[0]:+.0%}" if math.isfinite(claim[0]) else "")
    curse = winners_curse(table, rng, draws=2000, top=3)
    payload["winners_curse"] = curse
    print(
        f"winner's curse (full grid): top-1 picks a point below the best true mean {curse['plain_below_best']:.0%} of the time, "
        f"expected true-{table['metric']} gap {fmt(curse['plain_gap'], 4)}; confirming the top {curse['top']} with fresh seeds: "
        f"{curse['confirmed_below_best']:.0%}, gap {fmt(curse['confirmed_gap'], 4)}"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload["machine"] = {"python": platform.python_version(), "optuna": optuna.__version__}
    args.out.write_text(json.dumps(payload, indent=1, default=str) + "\n")
    if "tpe+hyperband" in results:
        print(f"P4 tpe+hyperband compute-to-best / grid: {fmt(results['tpe+hyperband']['to_best'])}")


if __name__ == "__main__":
    main()
