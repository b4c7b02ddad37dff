"""`models:/<name>/<version>` and `models:/<name>@<alias>`: registry look-ups with named errors, shared by everything
that reads a registered version (promotion, serving, export, reproduce)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from mlops.errors import ConfigError, RegistryError

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion, RegisteredModel

_MODEL_URI = re.compile(r"models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[^/@]+))")


def registered_model(client: MlflowClient, model_name: str) -> RegisteredModel:
    """The registered model, or `RegistryError` naming the unknown model."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_registered_model(model_name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise RegistryError(f"no registered model named '{model_name}'") from None
        raise RegistryError(f"{model_name}: {str(exc).splitlines()[0]}") from None


def resolve_model_version(client: MlflowClient, model_uri: str) -> ModelVersion:
    """`models:/<name>/<version>` or `models:/<name>@<alias>` -> the model version, with named errors."""
    from mlflow.exceptions import MlflowException

    match = _MODEL_URI.fullmatch(model_uri)
    if match is None:
        raise ConfigError(f"model-uri: expected models:/<name>/<version> or models:/<name>@<alias>, got {model_uri!r}")
    name, number, alias = match["name"], match["version"], match["alias"]
    model = registered_model(client, name)
    try:
        return client.get_model_version(name, number) if number else client.get_model_version_by_alias(name, alias)
    except MlflowException:
        what = f"no version {number}" if number else f"no alias '{alias}' (aliases: {', '.join(sorted(model.aliases)) or 'none'})"
        raise RegistryError(f"{name}: {what}") from None
