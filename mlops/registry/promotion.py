"""Promotion: register a version, gather the evidence a gate needs (metrics, the champion's per-example scores),
record the decision as tags, and move an alias only on a pass (`promote_if_gates_pass`). The `promote` entry point."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlops.config import ExperimentConfig
from mlops.errors import AliasChanged, GateFailed, RegistryError, SplitMismatch
from mlops.evaluate import PerExampleScores
from mlops.registry.aliases import ANY_HOLDER, AliasMove, alias_holder, move_alias
from mlops.registry.approval import request_approval
from mlops.registry.compare import bootstrap_interval, check_same_split, check_same_text_tokenizer, paired_bootstrap
from mlops.registry.gates import Champion, Evidence, GateOutcome, GateReport, decide, gate_tags
from mlops.registry.policy import METRICS, AliasPolicy, Compare, PromotionPolicy, policy_for
from mlops.registry.speed import time_against_champion
from mlops.tracking import PARENT_RUN_TAG, PER_EXAMPLE_ARTIFACT, registered_model

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

_ATTEMPTS = 5  # decisions retried when another move changes the champion in between


def register_version(client: MlflowClient, model_name: str, model_uri: str, run_id: str, tags: dict[str, str]) -> ModelVersion:
    """A new version of `model_name` from `model_uri`, created from `run_id`."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(model_name)
    except MlflowException:
        client.create_registered_model(model_name, description="Registered by mlops; aliases move only through policy gates.")
    ref = model_uri.removeprefix("models:/")
    logged_model = ref if model_uri.startswith("models:/") and "/" not in ref and "@" not in ref else None
    # a tracking server accepts a logged model (models:/<model_id>) as the source only when told its model_id
    return client.create_model_version(model_name, source=model_uri, run_id=run_id, tags=tags, model_id=logged_model)


def version_metrics(client: MlflowClient, version: ModelVersion) -> dict[str, float]:
    if not version.run_id:
        raise RegistryError(f"{version.name} v{version.version} has no source run; cannot read its metrics")
    return dict(client.get_run(version.run_id).data.metrics)


def per_example_scores(client: MlflowClient, version: ModelVersion) -> PerExampleScores | None:
    """The per-example test scores logged on the version's run, or None if it has none."""
    import json
    import tempfile

    from mlflow.exceptions import MlflowException

    if not version.run_id:
        return None
    with tempfile.TemporaryDirectory(prefix="mlops-scores-") as tmp:
        try:
            path = client.download_artifacts(version.run_id, PER_EXAMPLE_ARTIFACT, tmp)
        except (MlflowException, OSError):
            return None
        with open(path, encoding="utf-8") as f:
            return PerExampleScores.from_document(json.load(f))


def _text_tokenizer(client: MlflowClient, version: ModelVersion) -> str | None:
    """The units the version's run scored text in (its `text_tokenizer` param), if it logged them."""
    if not version.run_id:
        return None
    params = client.get_run(version.run_id).data.params
    return params.get("text_tokenizer_effective", params.get("text_tokenizer"))


def record_gate_report(client: MlflowClient, version: ModelVersion, report: GateReport) -> None:
    for key, value in gate_tags(report).items():
        client.set_model_version_tag(version.name, version.version, key, value)


def _baselines(client: MlflowClient, version: ModelVersion) -> dict[str, float]:
    """The `baseline_*` metrics logged next to `version`'s training: on its run, else on the nearest run above it
    (the sweep's parent run, which scores the baselines on the same splits)."""
    run_id, seen = version.run_id, 0
    while run_id and seen < 4:  # trial -> sweep (-> stage of `main` -> main)
        run = client.get_run(run_id)
        found = {k: v for k, v in run.data.metrics.items() if k.startswith("baseline_")}
        if found:
            return found
        run_id, seen = run.data.tags.get(PARENT_RUN_TAG), seen + 1
    return {}


def _evidence(client: MlflowClient, rules: AliasPolicy, version: ModelVersion, scores: PerExampleScores | None) -> Evidence:
    """How many test examples scored `version`, its sweep's baselines, and bootstrap intervals for `on: lower_bound`."""
    c = rules.compare or Compare()
    evidence = Evidence(examples=len(scores.ids) if scores is not None else None, confidence=c.confidence)
    if any(g.beat_baseline for g in rules.gates):
        evidence.baselines = _baselines(client, version)
    for gate in rules.gates:
        if gate.on == "lower_bound" and scores is not None and gate.metric in scores.metrics():
            _, low, high = bootstrap_interval(scores, gate.metric, c.n_bootstrap, c.confidence, c.seed)
            evidence.intervals[gate.metric] = (low, high)
    return evidence


def _champion(
    client: MlflowClient, rules: AliasPolicy, candidate: ModelVersion, holder: ModelVersion | None, mine: PerExampleScores | None
) -> Champion | None:
    """The comparison evidence against the alias's holder; None when there is nothing to compare with."""
    metrics = rules.compared_metrics()
    if rules.compare is None or not metrics or holder is None:
        return None
    champion = Champion(str(holder.version), is_candidate=str(holder.version) == str(candidate.version))
    if champion.is_candidate:
        return champion
    theirs = per_example_scores(client, holder)
    if mine is None or theirs is None:
        lacking = ", ".join(f"v{v.version}" for v, s in ((candidate, mine), (holder, theirs)) if s is None)
        champion.problem = f"no {PER_EXAMPLE_ARTIFACT} on the run of {lacking}"
        return champion
    what = f"{candidate.name} v{candidate.version} vs champion v{holder.version}"
    check_same_text_tokenizer(_text_tokenizer(client, candidate), _text_tokenizer(client, holder), what)
    check_same_split(mine, theirs, what)
    unscored = [m for m in metrics if m not in mine.metrics() or m not in theirs.metrics()]
    if unscored:
        champion.problem = f"no per-example scores for {', '.join(unscored)}"
        return champion
    for metric in metrics:
        champion.results[metric] = paired_bootstrap(mine, theirs, metric, rules.compare, METRICS[metric].higher_is_better)
    return champion


def _decide(client: MlflowClient, policy: PromotionPolicy, version: ModelVersion, alias: str) -> tuple[GateReport, str | None]:
    """The gate report for `version` and the holder it was decided against (ANY_HOLDER if the decision does not depend on it)."""
    rules = policy.for_alias(alias)
    holders: dict[str, dict[str, float] | None] = {}
    for name in {g.not_worse_than for g in rules.gates if g.not_worse_than}:
        holder = alias_holder(client, version.name, name)
        same = holder is not None and str(holder.version) == str(version.version)
        holders[name] = version_metrics(client, holder) if holder is not None and not same else None
    holder = alias_holder(client, version.name, alias)
    mine = per_example_scores(client, version)
    try:
        champion = _champion(client, rules, version, holder, mine)
    except SplitMismatch as mismatch:
        failed = [GateOutcome(m, None, "vs champion: not comparable", False) for m in rules.compared_metrics()]
        record_gate_report(client, version, GateReport(alias, failed, decided_by=f"not decided: {mismatch}"))
        raise
    evidence = _evidence(client, rules, version, mine)
    if rules.no_slower_than is not None and holder is not None and str(holder.version) != str(version.version):
        evidence.speed = time_against_champion(version, holder, rules.timing_repeats)  # both loaded here, side by side
    report = decide(alias, rules, version_metrics(client, version), holders, champion, evidence)
    if rules.compare is None and rules.no_slower_than is None and alias not in holders:  # whoever holds the alias does not matter
        return report, ANY_HOLDER
    return report, str(holder.version) if holder is not None else None


def promote_if_gates_pass(
    client: MlflowClient, policy: PromotionPolicy, version: ModelVersion, alias: str, legacy_stage: bool = False
) -> GateReport:
    """Decide `alias` for `version`, tag the outcome, and move the alias only if every gate passed.

    Raises `GateFailed` (after tagging) when a gate fails; the alias is not touched then. If another process
    moves the alias between the decision and the move, the decision is made again against the new holder.
    `legacy_stage` also sets the deprecated registry stage, for servers that still read stages: in the same locked,
    recorded move as the alias.
    """
    stage = policy.legacy_stage(alias) if legacy_stage else None
    attempt = 0
    while True:
        report, decided_against = _decide(client, policy, version, alias)
        record_gate_report(client, version, report)
        report.version = str(version.version)
        if not report.passed:
            raise GateFailed(f"{version.name} v{version.version}: {report.summary()}; alias '{alias}' not moved")
        if policy.for_alias(alias).approval == "required":
            request_approval(client, version, report, decided_against)
            report.awaiting_approval = True
            return report
        move = AliasMove(
            version.name, alias, str(version.version), "promote", report.summary(), expect_from=decided_against, legacy_stage=stage
        )
        try:
            move_alias(client, move)
        except AliasChanged:
            attempt += 1
            if attempt == _ATTEMPTS:
                raise
            continue
        return report


def _pick_version(client: MlflowClient, policy: PromotionPolicy, alias: str, version: str | None) -> ModelVersion:
    """`version`, else the holder of the alias's `candidate_from` (default: the sweep's alias, staging, for any other
    alias), else the latest version."""
    from mlflow.exceptions import MlflowException

    name = policy.model_name
    registered_model(client, name)
    try:
        if version is not None:
            return client.get_model_version(name, version)
        source = policy.for_alias(alias).candidate_from or (policy.after_sweep if alias != policy.after_sweep else None)
        if source is not None:
            holder = alias_holder(client, name, source)
            if holder is None:
                raise RegistryError(f"{name}: no version holds '{source}' (the candidate for '{alias}'); pass --version")
            return holder
        versions = client.search_model_versions(f"name='{name}'", order_by=["version_number DESC"], max_results=1)
    except MlflowException as exc:
        raise RegistryError(f"{name}: {str(exc).splitlines()[0]}") from None
    if not versions:
        raise RegistryError(f"{name}: no registered versions; run the sweep first")
    return versions[0]


def run_promote(config: ExperimentConfig, alias: str, version: str | None, legacy_stage: bool = False) -> GateReport:
    """Apply `alias`'s gates from the model's policy to one version; raises `GateFailed` without moving anything.

    `legacy_stage` also sets the deprecated registry stage (for servers that read stages, not aliases).
    """
    from mlflow import MlflowClient

    policy = policy_for(config)
    policy.for_alias(alias)  # unknown alias: fail before touching the registry
    if legacy_stage:
        policy.legacy_stage(alias)
    client = MlflowClient()
    candidate = _pick_version(client, policy, alias, version)
    return promote_if_gates_pass(client, policy, candidate, alias, legacy_stage=legacy_stage)
