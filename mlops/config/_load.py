"""Find, parse and validate experiment configs (packaged names or paths), with overrides."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from mlops.config._experiment import ExperimentConfig
from mlops.config._structure import structure_errors
from mlops.config._validate import build
from mlops.errors import ConfigError, DataError

# Files shipped inside the package, relative to it: the packaged configs and the demo datasets.
PRESETS = "config/presets"
DEMO_DATA = "data/demo"


def packaged_configs() -> list[str]:
    """Names of the configs shipped inside the package."""
    folder = resources.files("mlops") / PRESETS
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def demo_dataset_dir(name: str) -> Path:
    """The folder of packaged demo dataset `name` (`dataset.path: demo:NAME`): train/validation/test CSVs."""
    folder = resources.files("mlops") / DEMO_DATA / name
    if not folder.is_dir():
        available = sorted(p.name for p in (resources.files("mlops") / DEMO_DATA).iterdir() if p.is_dir())
        raise DataError(f"dataset.path: no demo dataset '{name}'; available: {', '.join(available)}")
    return Path(str(folder))


def resolve_config_path(name_or_path: str) -> Path:
    """A path to an existing file, or the name of a packaged config."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ConfigError(f"config file not found: {name_or_path}")
        return path
    packaged = resources.files("mlops") / PRESETS / f"{name_or_path}.yaml"
    if not packaged.is_file():
        raise ConfigError(f"config: no file or packaged config named '{name_or_path}'; packaged: {', '.join(packaged_configs())}")
    return Path(str(packaged))


def read_yaml(path: Path) -> Any:
    """Parse a YAML file, turning decoding and syntax problems, and a key given twice in one mapping (which YAML
    readers would otherwise settle silently, the last one winning), into one-line errors naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not valid UTF-8 (byte {exc.start})", source=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", source=str(path)) from None
    try:
        duplicates = _duplicate_keys(yaml.compose(text, Loader=yaml.SafeLoader), "")
        if duplicates:
            raise ConfigError(duplicates, source=str(path))
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"malformed YAML at {where}{problem}", source=str(path)) from None


def _duplicate_keys(node: yaml.Node | None, where: str) -> list[str]:
    """Every key given twice in one mapping under `node`, by its key path and both lines."""
    found: list[str] = []
    if isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            found += _duplicate_keys(item, f"{where}[{i}]")
    elif isinstance(node, yaml.MappingNode):
        first_line: dict[str, int] = {}
        for key, value in node.value:
            name = str(key.value) if isinstance(key, yaml.ScalarNode) else None
            path = f"{where}.{name}" if where else str(name)
            if name is not None and name in first_line:
                found.append(f"{path}: key given twice (lines {first_line[name]} and {key.start_mark.line + 1})")
            elif name is not None:
                first_line[name] = key.start_mark.line + 1
            found += _duplicate_keys(value, path)
    return found


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> None:
    """Set dotted keys (`training.learning_rate`) in place; `None` values are skipped."""
    for dotted, value in overrides.items():
        if value is None:
            continue
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            child = node.get(key)
            if not isinstance(child, dict):
                child = node[key] = {}
            node = child
        node[leaf] = value


def load_config(name_or_path: str, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """Load and validate a config; every problem is reported at once in one `ConfigError`."""
    path = resolve_config_path(name_or_path)
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError("the top level must be a mapping", source=str(path))
    apply_overrides(data, overrides or {})
    return validate(data, str(path), str(path.resolve()))


def validate(data: Any, where: str, source_file: str) -> ExperimentConfig:
    """Build the config from plain data and check it whole (every section, then the checks across sections);
    every problem is reported at once in one `ConfigError` naming `where`."""
    errors: list[str] = []
    config = build(ExperimentConfig, data, "", errors)
    errors += structure_errors(config)
    if errors:
        raise ConfigError(errors, source=where)
    config.source_file = source_file
    return config
