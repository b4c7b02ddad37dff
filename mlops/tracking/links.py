"""Links into the MLflow UI that open where a person expects: the model-training view, not the GenAI one.

MLflow 3's UI opens an experiment on its traces overview unless the URL asks for the model-training workflow
(`workflowType=machine_learning`). Every link the toolkit prints or writes into a report is built here, against the
tracking server's address, or, for a local store, against the address `mlflow ui` serves by default (with the
command that starts it).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

MLFLOW_UI_DEFAULT = "http://127.0.0.1:5000"  # where `mlflow ui` listens unless told otherwise
WORKFLOW = "workflowType=machine_learning"  # the UI's model-training view (runs table, model registry)
NOTE_TAG = "mlflow.note.content"  # the description the UI shows on an experiment, a run or a model version
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"

RUNS_EXPERIMENT_NOTE = (
    "Runs of the mlops toolkit. A sweep is a parent run (`sweep-<config>`, or a stage of `main-<config>`) whose child "
    "runs are its Optuna trials, one per trial and seed; the parent holds the sweep report, the trial table and the "
    "search plots, and names the registered version. `finetune`, `evaluate`, `augment` and `pretrain` runs sit beside it."
)


def _is_server(tracking_uri: str) -> bool:
    return tracking_uri.startswith(("http://", "https://"))


def redact_url(url: str) -> str:
    """A storage URL with any password replaced, safe to log as a param."""
    if "@" not in url:
        return url
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a SQLAlchemy URL: drop the credentials part entirely
        scheme, _, rest = url.partition("://")
        return f"{scheme}://***@{rest.rpartition('@')[2]}"


@dataclass(frozen=True)
class UiLinks:
    """Builds links for one tracking URI."""

    tracking_uri: str

    @property
    def base(self) -> str:
        """The UI's address: the tracking server's, or `mlflow ui`'s default over a local store."""
        return redact_url(self.tracking_uri).rstrip("/") if _is_server(self.tracking_uri) else MLFLOW_UI_DEFAULT

    @property
    def start_command(self) -> str | None:
        """The command that serves the UI at `base`, when no tracking server does."""
        if _is_server(self.tracking_uri):
            return None
        return f"mlflow ui --backend-store-uri {redact_url(self.tracking_uri)}"

    def experiment(self, experiment_id: str) -> str:
        return f"{self.base}/#/experiments/{experiment_id}/runs?{WORKFLOW}"

    def run(self, experiment_id: str, run_id: str) -> str:
        return f"{self.base}/#/experiments/{experiment_id}/runs/{run_id}?{WORKFLOW}"

    def model_version(self, name: str, version: str | int) -> str:
        return f"{self.base}/#/models/{quote(name, safe='')}/versions/{version}?{WORKFLOW}"

    def lines(self, run: tuple[str, str] | None = None, version: tuple[str, str | int] | None = None) -> list[str]:
        """What to print: the (experiment id, run id)'s runs page and run page, the registered (name, version), and how
        to start the UI."""
        out = []
        if run is not None:
            out += [f"runs:    {self.experiment(run[0])}", f"run:     {self.run(*run)}"]
        if version is not None:
            out.append(f"model:   {self.model_version(*version)}")
        if self.start_command:
            out.append(f"(start the UI first: {self.start_command})")
        return out


def current_links() -> UiLinks:
    """Links for the tracking URI MLflow uses now."""
    import mlflow

    return UiLinks(mlflow.get_tracking_uri())


def describe_experiment(experiment_id: str, note: str = RUNS_EXPERIMENT_NOTE) -> None:
    """Give an experiment the toolkit logs to a description and the model-development kind, unless it has its own."""
    import mlflow

    client = mlflow.MlflowClient()
    tags = client.get_experiment(experiment_id).tags
    if NOTE_TAG not in tags:
        client.set_experiment_tag(experiment_id, NOTE_TAG, note)
    if EXPERIMENT_KIND_TAG not in tags:
        client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)


def print_links(run_id: str | None = None, version: tuple[str, str | int] | None = None) -> None:
    """Print the UI links of a run (by id) and a registered version, for the tracking URI MLflow uses now."""
    import mlflow

    run = (mlflow.MlflowClient().get_run(run_id).info.experiment_id, run_id) if run_id else None
    for line in current_links().lines(run, version):
        print(line)
