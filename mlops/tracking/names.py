"""The names that join runs, trials and registered versions: run and version tags, trial attributes, artifact paths.

Each is written by one module and read by others (and by later releases: registered models and runs logged earlier
carry these exact strings), so each is spelt here once. The values never change; a new name gets a new constant.
"""

# --- Optuna trial user attributes -------------------------------------------------------------------------------------
TRIAL_RUN_ATTR = "mlflow_run_id"  # the trial's child run
TRIAL_WORKER_RUN_ATTR = "mlflow_worker_run_id"  # the run of the worker that ran the trial
ADAPTER_RUN_ATTR = "mlflow_adapter_run_id"  # the seed run whose adapter stands for the trial (several seeds: the first)
EPOCHS_SAVED_ATTR = "epochs_saved_by_early_stopping"  # trial-epochs (over all seeds) early stopping did not train
GAP_ATTR = "generalization_gap"  # train - validation of the watched metric at the kept evaluation (seeds: their mean)
EPOCHS_REPORTED_ATTR = "mlops_epochs_reported"  # trial-epochs spent, where Optuna keeps no intermediate values (objectives)
CONSTRAINTS_ATTR = "mlops_constraints"  # Optuna's constraint values of `search.constraints` (> 0: that bound is broken)

# --- Run tags ---------------------------------------------------------------------------------------------------------
PARENT_RUN_TAG = "mlflow.parentRunId"  # MLflow's own: what nests a child run under its parent
ENTRY_POINT_TAG = "mlops.entry_point"  # the `mlops` command that made the run: sweep, finetune, main, ...
ROLE_TAG = "mlops.role"  # sweep-worker (a worker's own run), registry-ledger
STAGE_TAG = "mlops.stage"  # a stage run of `main`
STAGE_SKIPPED_TAG = "mlops.stage.skipped"
WORKER_RUN_TAG = "mlops.worker_run_id"  # on a trial's (or confirmation's) run: the worker that ran it
SWEEP_PARENT_RUN_TAG = "mlops.sweep_parent_run_id"  # on a worker's run: the sweep's parent run
RETRY_OF_TAG = "mlops.retry_of_trial"  # on a retry's run: the lost trial it retries
RETRIED_BY_TAG = "mlops.retried_by_trial"  # on a lost trial's run: the trial that retries it
RESUMED_TAG = "mlops.resumed_from_step"  # on a retry that resumed from the lost trial's checkpoint: its step
FROM_SCRATCH_TAG = "mlops.resume_from_scratch"  # on a retry that found no usable checkpoint: why
DUPLICATE_TAG = "mlops.duplicate_of"  # on a duplicate's run: the trial number it reuses
DUPLICATE_RUN_TAG = "mlops.duplicate_of_run_id"  # ... and that trial's run
# A trial's user attribute and its run's tag: its configuration cannot run (not started: the planner's estimate exceeds
# the budget; or out of memory at batch 1 or under `search.on_oom: prune`).
INFEASIBLE_TAG = "mlops.infeasible"
OOM_HALVING_TAG = "mlops.oom_halving"  # .1, .2, ...: one per retry with a smaller batch
SEED_OF_TAG = "mlops.seed_of_run"  # on a seed's nested run: the trial's (or confirmation's) run
CONFIRMATION_TAG = "mlops.confirmation_of"  # on a confirmation run: the trial number it re-trains
CONFIRMATION_RUN_TAG = "mlops.confirmation_of_run"  # ... and that trial's run
SEARCH_WINNER_TAG = "mlops.search_winner"  # on the sweep's parent: the best trial by its search score
CONFIRMED_WINNER_TAG = "mlops.confirmed_winner"  # ... and the best by its confirmed mean
PARETO_FRONT_TAG = "mlops.pareto_front"  # on a trial's run (several objectives): true on the Pareto front, else false
SELECTION_RULE_TAG = "mlops.selection_rule"  # on the sweep's parent: the `search.select` rule that chose the winner
SELECTED_TRIAL_TAG = "mlops.selected_trial"  # ... the trial it chose
SELECTION_REASON_TAG = "mlops.selection_reason"  # ... and why, in words
REGISTERED_VERSION_TAG = "registered_version"  # on the sweep's run: <model>/<version> it registered
PRETRAINED_URI_TAG = "mlops.pretrained_model_uri"  # on a `pretrain` run: runs:/<run_id>/pretrained
BASE_MODEL_RUN_TAG = "mlops.base_model_run_id"  # on a run that starts from a pretrained model: the `pretrain` run
BASE_MODEL_URI_TAG = "mlops.base_model_uri"
AUGMENT_RUN_TAG = "mlops.augment_run_id"  # on a run that trains on an augmented dataset: the `augment` run
DATASET_URI_TAG = "mlops.dataset_uri"
AUGMENTED_URI_TAG = "mlops.augmented_uri"  # on an `augment` run: runs:/<run_id>/augmented
REPRODUCTION_OF_TAG = "mlops.reproduction_of"  # on a `reproduce` run: the run it re-ran
REPRODUCED_MODEL_TAG = "mlops.reproduced_model"  # ... and the version, <model>/<version>
MODEL_URI_TAG = "model_uri"  # on an `evaluate` run: the model it scored

# --- Experiment and registered-model tags -----------------------------------------------------------------------------
LEDGER_RUN_TAG = "mlops.ledger_run_id"  # on the ledger experiment: the run holding the alias-move locks
AUDIT_TAG_PREFIX = "mlops.audit."  # + <seq>: one registered-model tag per alias move

# --- Model-version tags -----------------------------------------------------------------------------------------------
SOURCE_RUN_TAG = "source_run_id"  # the run whose model the version is
SWEEP_RUN_TAG = "sweep_run_id"  # the sweep's parent run
OPTUNA_TRIAL_TAG = "optuna_trial"  # the trial number
POLICY_TAG = "policy"  # the promotion policy file
GATE_TAG_PREFIX = "gate."  # + <alias>, <alias>.report, <alias>.<metric>: a gate decision

# --- Artifact paths ---------------------------------------------------------------------------------------------------
ADAPTER_ARTIFACT = "adapter"  # a trained adapter's directory
PRETRAINED_ARTIFACT = "pretrained"  # a `pretrain` run's model directory: runs:/<run_id>/pretrained
AUGMENTED_ARTIFACT = "augmented"  # an `augment` run's three split CSVs: runs:/<run_id>/augmented
RESOLVED_CONFIG_ARTIFACT = "config/resolved.json"  # the config a run trained with; what `mlops reproduce` re-runs
ENVIRONMENT_ARTIFACT = "environment.json"
PER_EXAMPLE_ARTIFACT = "per_example/test.json"  # the evidence a champion/challenger gate resamples
CONFUSION_MATRIX_ARTIFACT = "confusion_matrix.json"
PREDICTIONS_ARTIFACT = "predictions.json"
DATA_REPORT_ARTIFACT = "data_report.json"
SWEEP_SUMMARY_ARTIFACT = "sweep_summary.json"
SWEEP_REPORT_ARTIFACT = "sweep_report.md"
CONFIRMATION_ARTIFACT = "confirmation.json"
PARETO_FRONT_ARTIFACT = "pareto_front.json"  # on the sweep's parent (several objectives): the trials on the front
PARETO_PLOT_ARTIFACT = "plots/pareto_front.png"
REPRODUCTION_ARTIFACT = "reproduction.json"
