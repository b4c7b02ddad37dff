"""Promotion policies: which metrics gate which alias, read from reviewable YAML files in `registry/`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mlops.config import build, read_yaml
from mlops.errors import ConfigError

REPO_REGISTRY_DIR = Path(__file__).resolve().parents[2] / "registry"


@dataclass
class Gate:
    metric: str
    min: float | None = None
    max: float | None = None
    not_worse_than: str | None = None  # an alias whose current holder must not score better
    higher_is_better: bool = True

    def check(self, path: str) -> list[str]:
        if self.min is None and self.max is None and self.not_worse_than is None:
            return [f"{path}: a gate needs min, max or not_worse_than"]
        return []


@dataclass
class AliasPolicy:
    gates: list[Gate] = field(default_factory=list)

    def check(self, path: str) -> list[str]:
        return [] if self.gates else [f"{path}.gates: list at least one gate"]


@dataclass
class PromotionPolicy:
    model_name: str
    aliases: dict[str, AliasPolicy]
    source_file: str = field(default="", init=False)

    def check(self, path: str) -> list[str]:
        errors = []
        if not self.aliases:
            errors.append("aliases: define at least one alias (e.g. staging)")
        for alias, rules in (self.aliases or {}).items():
            for i, gate in enumerate(rules.gates):
                if gate.not_worse_than is not None and gate.not_worse_than not in self.aliases:
                    errors.append(f"aliases.{alias}.gates[{i}].not_worse_than: unknown alias '{gate.not_worse_than}'")
        return errors

    def for_alias(self, alias: str) -> AliasPolicy:
        if alias not in self.aliases:
            raise ConfigError(f"no gates for alias '{alias}'; policy defines: {', '.join(self.aliases)}", source=self.source_file)
        return self.aliases[alias]


def resolve_policy_path(name_or_path: str, config_dir: Path | None = None) -> Path:
    """A path, or a name looked up as `registry/NAME.yaml` in the working directory or beside the config's folder,
    then as `NAME.yaml` beside the config, then in this checkout's `registry/`."""
    candidates = [Path(name_or_path)]
    if not name_or_path.endswith((".yaml", ".yml")):
        stem = f"{name_or_path}.yaml"
        candidates = [
            Path("registry") / stem,
            *([config_dir.parent / "registry" / stem, config_dir / stem] if config_dir else []),
            REPO_REGISTRY_DIR / stem,
        ]
    for path in candidates:
        if path.is_file():
            return path
    raise ConfigError(f"registry.policy: policy file not found (looked in {', '.join(map(str, candidates))})")


def load_policy(name_or_path: str, config_dir: Path | None = None) -> PromotionPolicy:
    path = resolve_policy_path(name_or_path, config_dir)
    data = read_yaml(path)
    errors: list[str] = []
    policy = build(PromotionPolicy, data, "", errors)
    if errors:
        raise ConfigError(errors, source=str(path))
    policy.source_file = str(path)
    return policy
