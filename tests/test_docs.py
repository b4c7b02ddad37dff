"""The manual (docs/, mkdocs.yml) and the README as its front page: the reference parts are generated from their
sources, every page is built strictly, and the README stays short with links that resolve."""

from __future__ import annotations

import dataclasses
import html
import importlib.util
import re
import subprocess
import sys
import types
import typing
import unicodedata
from pathlib import Path

import pytest
import yaml

from mlops.config import ExperimentConfig

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
SETUP_COMMAND = "scripts/setup && . .venv/bin/activate && mlflow run . -e sweep --env-manager local"
TEST_COMMAND = ". .venv/bin/activate && pytest"


@pytest.fixture(scope="module")
def hooks() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("mlops_docs_hooks", DOCS / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _schema_fields(cls: type, seen: set[type] | None = None) -> list[tuple[type, dataclasses.Field[typing.Any]]]:
    """Every (dataclass, field) pair of the config schema, read here without the hook's walker."""
    seen = seen if seen is not None else set()
    if cls in seen:
        return []
    seen.add(cls)
    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        out.append((cls, f))
        tp = hints[f.name]
        for inner in (tp, *typing.get_args(tp)):
            if dataclasses.is_dataclass(inner):
                out += _schema_fields(inner, seen)  # type: ignore[arg-type]
    return out


def _plain(markdown: str) -> str:
    """Generated table text as a reader sees it: escapes undone."""
    return html.unescape(markdown.replace("\\|", "|"))


def test_every_config_field_has_help_text() -> None:
    missing = [f"{cls.__name__}.{f.name}" for cls, f in _schema_fields(ExperimentConfig) if not f.metadata.get("help")]
    assert not missing, f"config fields without metadata help (the config reference would say nothing): {missing}"


def test_config_reference_shows_every_field_with_its_help(hooks: types.ModuleType) -> None:
    page = (DOCS / "configs.md").read_text(encoding="utf-8")
    assert "<!-- generated: config-reference -->" in page
    built = hooks.on_page_markdown(page)
    assert "<!-- generated:" not in built
    rows = [line for line in _plain(built).splitlines() if line.startswith("| `")]
    assert len(rows) >= len(_schema_fields(ExperimentConfig))
    for cls, f in _schema_fields(ExperimentConfig):
        ending = re.compile(rf"^\| `(?:[\w.<>]+\.)?{f.name}` \|")
        matching = [row for row in rows if ending.match(row)]
        assert matching, f"{cls.__name__}.{f.name} is not in the config reference"
        assert any(f.metadata["help"] in row for row in matching), f"{cls.__name__}.{f.name}: its help text is not shown"
    learning_rate = next(row for row in rows if row.startswith("| `training.learning_rate` |"))
    assert "`3e-05`" in learning_rate and "float" in learning_rate


def test_presets_table_lists_every_packaged_config(hooks: types.ModuleType) -> None:
    table = hooks.expand("<!-- generated: presets -->")
    for preset in (ROOT / "mlops" / "config" / "presets").glob("*.yaml"):
        raw = yaml.safe_load(preset.read_text(encoding="utf-8"))
        assert f"| `{preset.stem}` | {raw['task']} |" in table


def test_cli_reference_covers_every_command_and_mlproject_parameter(hooks: types.ModuleType) -> None:
    page = hooks.on_page_markdown((DOCS / "entry-points.md").read_text(encoding="utf-8"))
    entry_points = yaml.safe_load((ROOT / "MLproject").read_text(encoding="utf-8"))["entry_points"]
    for name, entry in entry_points.items():
        section = page.split(f"### `mlops {name}`", 1)
        assert len(section) == 2, f"entry point {name} has no section"
        body = section[1].split("\n### ", 1)[0]
        assert f"usage: mlops {name}" in body
        for param in entry.get("parameters", {}):
            assert f"| `{param}` |" in body, f"{name}: parameter {param} missing"
            assert f"--{param.replace('_', '-')}" in body, f"{name}: option --{param} missing from its help"
    for command in ("registry history", "data check", "approve", "rollback", "export", "models"):
        assert f"### `mlops {command}`" in page


def test_layers_come_from_the_import_contracts(hooks: types.ModuleType) -> None:
    page = hooks.on_page_markdown((DOCS / "architecture.md").read_text(encoding="utf-8"))
    contracts = hooks.tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]["contracts"]
    for contract in contracts:
        assert contract["name"] in page
        for layer in contract.get("layers", []):
            assert f"`{layer}`" in page


def test_unknown_marker_is_an_error(hooks: types.ModuleType) -> None:
    with pytest.raises(ValueError, match="unknown generated part 'config-refrence'"):
        hooks.expand("<!-- generated: config-refrence -->")


def _slug(heading: str) -> str:
    """Python-Markdown's toc slug (MkDocs), which GitHub's agrees with for these headings."""
    text = unicodedata.normalize("NFKD", re.sub(r"[`*]", "", heading)).encode("ascii", "ignore").decode()
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    return {_slug(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", text, flags=re.M)}


def test_readme_is_a_front_page_with_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines; the manual is docs/"
    assert f"```bash\n{SETUP_COMMAND}\n```" in text
    assert f"```bash\n{TEST_COMMAND}\n```" in text
    assert "**missed**" in text and "**not met**" in text  # the headline figures keep their misses


def test_readme_links_into_docs_resolve() -> None:
    links = re.findall(r"\]\((docs/[^)#\s]+)(?:#([^)\s]+))?\)", README.read_text(encoding="utf-8"))
    pages = {target for target, _ in links}
    assert len(pages) >= 12, f"README links to only {sorted(pages)}"
    for target, anchor in links:
        path = ROOT / target
        assert path.is_file(), f"README links to {target}, which does not exist"
        if anchor:
            assert anchor in _anchors(path), f"README links to {target}#{anchor}; no such heading"


def test_every_page_is_in_the_nav() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    nav = {page for item in config["nav"] for page in item.values()}
    assert nav == {p.name for p in DOCS.glob("*.md")}


def test_mkdocs_builds_strictly_with_the_generated_reference(tmp_path: Path) -> None:
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "NO_MKDOCS_2_WARNING": "1", "HOME": str(tmp_path)},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    built = html.unescape((site / "configs" / "index.html").read_text(encoding="utf-8"))
    keys = ("training.learning_rate", "search.space.<name>.when", "dataset.on_invalid.missing_target", "augment.back_translation.forward")
    for key in keys:
        assert f"<code>{key}</code>" in built, key
    assert (site / "images" / "mlflow-ui-runs.png").is_file()
