"""The Optuna side of a sweep that many workers share: storage, one exact trial budget, stale trials.

Coordination goes through Optuna's own storage, nothing else:

- RDB storages get Optuna's heartbeats; a trial whose worker died is failed by
  `optuna.storages.fail_stale_trials` and retried once by `RetryHeartbeatStaleTrialCallback`.
- A trial slot is claimed atomically: count and `ask()` happen under a PostgreSQL advisory lock,
  so `n_trials` is the exact total across workers (`MaxTrialsCallback` alone overshoots).
- SQLite serves one worker: a second process on the same file is refused (optuna #820).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import logging
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from mlops.errors import ConfigError
from mlops.tracking import redact_url

if TYPE_CHECKING:
    import optuna
    from sqlalchemy.engine import Engine

logger = logging.getLogger(__name__)

PARENT_ATTR = "mlflow_parent_run_id"
WORKERS_ATTR = "mlops_workers"
FINALIZED_ATTR = "mlops_finalized_trials"
_RDB_DIALECTS = ("sqlite", "postgresql", "mysql", "oracle", "mssql")
REGISTERED_ATTR = "mlops_registered_trial"
WINNER_ATTR = "mlops_winner_trial"  # the sweep's winner as the final summary chose it (after confirmation, if any)


def normalize_url(url: str) -> str:
    """Give a plain `postgresql://` URL the driver that is installed.

    SQLAlchemy maps `postgresql://` to psycopg2 or psycopg 3 depending on its version, and
    fails when that one is missing; we pick whichever is importable.
    """
    if not url.startswith(("postgresql://", "postgres://")):
        return url
    rest = url.split("://", 1)[1]
    for module, dialect in (("psycopg2", "postgresql+psycopg2"), ("psycopg", "postgresql+psycopg")):
        if importlib.util.find_spec(module) is not None:
            return f"{dialect}://{rest}"
    raise ConfigError("storage: a PostgreSQL URL needs a driver: pip install psycopg2-binary")


def _dialect(url: str) -> str:
    return url.split(":", 1)[0].split("+", 1)[0]


@dataclass
class SharedStudy:
    """An opened study plus what is needed to share it safely between workers."""

    study: optuna.Study
    url: str  # normalised; may hold a password, never log it (use `redacted`)
    heartbeats: bool
    _engine: Engine | None = None
    _sqlite_guard: IO[str] | None = None
    _closed_runs: set[int] = field(default_factory=set)

    @property
    def redacted(self) -> str:
        return redact_url(self.url)

    @property
    def exclusive(self) -> bool:
        """True when this process is the only worker (SQLite): every RUNNING trial is orphaned."""
        return self._sqlite_guard is not None

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """A cross-process critical section for this study (PostgreSQL advisory lock)."""
        if self._engine is None:
            yield
            return
        from sqlalchemy import text

        key = int.from_bytes(hashlib.sha256(self.study.study_name.encode()).digest()[:8], "big", signed=True)
        with self._engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
        if self._sqlite_guard is not None:
            self._sqlite_guard.close()  # releases the flock

    # -- the budget ---------------------------------------------------------------------------

    def counted_trials(self) -> list[optuna.trial.FrozenTrial]:
        """Trials that use up the budget: all of them except failed ones that were retried
        (the retry, a WAITING or later trial, takes over the slot)."""
        trials = self.study.get_trials(deepcopy=False)
        retried = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
        return [t for t in trials if t.number not in retried]

    def claim(self, n_trials: int) -> optuna.Trial | None:
        """Atomically start a trial if the study's total budget allows, else None.

        A WAITING trial (a retry or an enqueued one) already holds a slot and is always taken.
        """
        import optuna

        waiting = optuna.trial.TrialState.WAITING
        with self.lock():
            trials = self.counted_trials()
            if len(trials) >= n_trials and not any(t.state == waiting for t in trials):
                return None
            with warnings.catch_warnings():  # we run Optuna's heartbeat thread ourselves (see `heartbeat`)
                warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
                return self.study.ask()

    def unfinished(self) -> list[optuna.trial.FrozenTrial]:
        import optuna

        states = (optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING)
        return self.study.get_trials(deepcopy=False, states=states)

    # -- stale trials ---------------------------------------------------------------------------

    def fail_stale(self) -> list[optuna.trial.FrozenTrial]:
        """Fail trials whose worker is gone, retry them once, and return the newly failed ones.

        With SQLite (one worker) every RUNNING trial is orphaned; otherwise a trial is stale
        when its heartbeat is older than the grace period.
        """
        import optuna

        before = {t.number for t in self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,))}
        with warnings.catch_warnings():  # fail_stale_trials is marked experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            if self.exclusive:
                self._fail_all_running()
            elif self.heartbeats:
                optuna.storages.fail_stale_trials(self.study)
        return [
            t
            for t in self.study.get_trials(deepcopy=True, states=(optuna.trial.TrialState.FAIL,))
            if t.number not in before and t.number not in self._closed_runs
        ]

    def _fail_all_running(self) -> None:
        import copy

        import optuna

        storage: Any = self.study._storage  # the storage API is public; Study exposes no accessor for it
        callback = storage.get_heartbeat_stale_trial_callback() if self.heartbeats else None
        for trial in self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            if storage.set_trial_state_values(trial._trial_id, state=optuna.trial.TrialState.FAIL) and callback is not None:
                callback(self.study, copy.deepcopy(storage.get_trial(trial._trial_id)))

    @contextlib.contextmanager
    def heartbeat(self, trial: optuna.Trial) -> Iterator[None]:
        """Optuna's heartbeat thread for a trial run outside `study.optimize` (no-op without heartbeats)."""
        from optuna.storages._heartbeat import get_heartbeat_thread  # what study.optimize itself uses

        with get_heartbeat_thread(trial._trial_id, self.study._storage):
            yield

    def use_sampler(self, sampler: optuna.samplers.BaseSampler, pruner: optuna.pruners.BasePruner) -> None:
        import optuna

        self.study = optuna.study.Study(self.study.study_name, self.study._storage, sampler=sampler, pruner=pruner)

    def retried_trial(self, number: int) -> int | None:
        """The number of the failed trial that trial `number` retries, if it is a retry."""
        for t in self.study.get_trials(deepcopy=False):
            if t.number == number:
                failed = t.system_attrs.get("failed_trial")
                return int(failed) if failed is not None else None
        return None

    def retry_of(self, number: int) -> int | None:
        """The number of the trial that retries trial `number`, if any."""
        for t in self.study.get_trials(deepcopy=False):
            if t.number != number and number in t.system_attrs.get("retry_history", []):
                return t.number
        return None

    def mark_closed(self, number: int) -> None:
        self._closed_runs.add(number)

    # -- the MLflow link ------------------------------------------------------------------------

    def join(self, run_id: str) -> tuple[str, int]:
        """Register this worker: returns (parent run id, worker index).

        The first worker's run becomes the sweep's parent run; later workers (and resumed
        sweeps) log their trials under that same parent. The worker index offsets the sampler
        seed so two workers never draw the same random points.
        """
        with self.lock():
            attrs = self.study.user_attrs
            parent = attrs.get(PARENT_ATTR)
            if parent is None:
                self.study.set_user_attr(PARENT_ATTR, run_id)
                parent = run_id
            workers: list[str] = list(attrs.get(WORKERS_ATTR, []))
            workers.append(run_id)
            self.study.set_user_attr(WORKERS_ATTR, workers)
        return str(parent), len(workers) - 1


def open_shared_study(
    url: str,
    study_name: str,
    *,
    directions: Sequence[Literal["minimize", "maximize"]],
    heartbeat_interval: int = 60,
) -> SharedStudy:
    """Open (or create) the study at `url`; bad URLs and busy SQLite files are one-line `ConfigError`s.

    Set the sampler and pruner with `use_sampler` once the worker has joined (its seed depends on it).
    """
    import optuna

    url = normalize_url(url)
    dialect = _dialect(url)
    guard = _sqlite_guard(url) if dialect == "sqlite" else None
    try:
        study = _create_or_load(url, dialect, study_name, list(directions), heartbeat_interval)
    except Exception as exc:  # bad URL, missing driver, unreachable server: SQLAlchemy/Optuna errors
        if guard is not None:
            guard.close()
        from sqlalchemy.exc import DBAPIError

        readable = isinstance(exc, ValueError | ImportError | optuna.exceptions.OptunaError)
        reason = str(exc).splitlines()[0] if readable else type(exc).__name__
        if isinstance(exc, DBAPIError) and str(exc.orig).strip():  # the driver's words: refused, unknown host, bad password
            reason = str(exc.orig).strip().splitlines()[0]
        raise ConfigError(f"storage: cannot open Optuna storage {redact_url(url)!r}: {reason}") from None
    existing = [d.name.lower() for d in study.directions]
    if existing != list(directions):
        if guard is not None:
            guard.close()
        word = "direction" if len(existing) == len(directions) == 1 else "directions"
        raise ConfigError(
            f"study_name: study '{study_name}' optimises in {word} {', '.join(existing)}, the config says {', '.join(directions)}"
        )
    engine = None
    if dialect == "postgresql":
        import sqlalchemy

        engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    elif dialect != "sqlite":
        logger.warning("storage %s: the trial budget is exact only on PostgreSQL; parallel workers may overshoot it", redact_url(url))
    heartbeats = dialect in _RDB_DIALECTS
    return SharedStudy(study, url, heartbeats=heartbeats, _engine=engine, _sqlite_guard=guard)


def _create_or_load(
    url: str, dialect: str, study_name: str, directions: list[Literal["minimize", "maximize"]], heartbeat_interval: int
) -> optuna.Study:
    """Create the study, or load it if it exists; workers that start together may race to
    create Optuna's tables or the study row, and the loser simply tries again."""
    import time

    import optuna
    from sqlalchemy.exc import IntegrityError

    for attempt in range(5):
        try:
            storage: optuna.storages.BaseStorage
            if dialect in _RDB_DIALECTS:
                with warnings.catch_warnings():  # heartbeats are marked experimental
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    storage = optuna.storages.RDBStorage(
                        url,
                        heartbeat_interval=heartbeat_interval,
                        grace_period=2 * heartbeat_interval,
                        heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1),
                    )
            else:
                storage = optuna.storages.get_storage(url)
            return optuna.create_study(storage=storage, study_name=study_name, directions=directions, load_if_exists=True)
        except IntegrityError:
            if attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def _sqlite_guard(url: str) -> IO[str] | None:
    """An exclusive lock beside the SQLite file, held while this process uses the study."""
    database = url.split("///", 1)[1] if "///" in url else ""
    if not database or database == ":memory:":
        return None
    lock_path = Path(f"{Path(database).resolve()}.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    handle = lock_path.open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ConfigError(
            f"storage: {database} is in use by another sweep worker; SQLite cannot serve parallel workers (optuna #820). "
            "Use PostgreSQL (storage=postgresql://user@host/db) or JournalStorage for more than one worker"
        ) from None
    return handle
