"""MkDocs hooks: the reference parts of the manual, generated at build time from their one source, so they cannot drift.

A page asks for a part with a marker line, e.g. `<!-- generated: config-reference -->`:

- `config-reference`: every config key, from the schema's dataclasses in `mlops/config/` (type, default, and the
  `help` of each field's metadata, the text the `finetune` options show too);
- `presets`: the configs shipped in the package (`mlops/config/presets/`);
- `cli-reference`: each `mlops` command's `--help`, and each MLproject entry point's parameters (`MLproject`);
- `layers`: the import-linter contracts in `pyproject.toml`, which `lint-imports` checks.

Nothing here downloads anything; the build imports only `mlops.config` and `mlops.cli` (no torch).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import os
import re
import sys
import types
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: pytest's own dependency
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the checkout's mlops, also where another copy is installed
    sys.path.insert(0, str(ROOT))

MARKER = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.MULTILINE)


class Key(typing.NamedTuple):
    """One config key: its dotted path, type, default and help, read from the schema."""

    path: str
    type: str
    default: str
    help: str


# ---- the config schema ------------------------------------------------------------------------------------------


def _dataclass_in(tp: Any) -> type | None:
    """The dataclass a field holds: itself, inside `X | None`, or as the values of a `dict[str, X]`."""
    if dataclasses.is_dataclass(tp):
        return tp  # type: ignore[return-value]
    args = typing.get_args(tp)
    if typing.get_origin(tp) is dict:
        args = args[1:]
    return next((a for a in args if dataclasses.is_dataclass(a)), None)


def _type_name(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join("none" if a is type(None) else _type_name(a) for a in args)
    if origin is list:
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict:
        value = args[1] if args else Any
        return "mapping: name → search-space entry" if dataclasses.is_dataclass(value) else f"mapping of {_type_name(value)}"
    if tp is Any:
        return "any"
    if dataclasses.is_dataclass(tp):
        return "section"
    return getattr(tp, "__name__", str(tp))


def _default(f: dataclasses.Field[Any]) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
        if dataclasses.is_dataclass(value):
            return "(section)"
    else:
        return "required"
    if value is None:
        return "none"
    return f"`{value}`"


def config_keys(cls: type | None = None, prefix: str = "") -> Iterator[Key]:
    """Every key of the experiment config, depth first in the schema's order; a search-space entry's keys once,
    under `search.space.<name>`."""
    from mlops.config import ExperimentConfig, ParamSpace

    cls = cls or ExperimentConfig
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:  # set by the loader, never written in a YAML
            continue
        tp = hints[f.name]
        path = f"{prefix}{f.name}"
        choices = f.metadata.get("choices")
        type_name = " \\| ".join(f"`{c}`" for c in choices()) if callable(choices) else _type_name(tp)
        yield Key(path, type_name, _default(f), f.metadata.get("help", ""))
        inner = _dataclass_in(tp)
        if inner is ParamSpace and path != "search.space":
            continue
        if inner is not None:
            yield from config_keys(inner, f"{path}.<name>." if typing.get_origin(tp) is dict else f"{path}.")


def _cell(text: str) -> str:
    """Table-safe text: `|` escaped and `<...>` shown, outside code spans (which Markdown escapes itself)."""
    parts = text.split("`")
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")
    return "`".join(parts)


def render_config_reference() -> str:
    keys = list(config_keys())
    top = [k for k in keys if "." not in k.path]
    out = ["### Top level", "", "| key | type | default | what it does |", "|---|---|---|---|"]
    out += [f"| `{k.path}` | {k.type} | {_cell(k.default)} | {_cell(k.help)} |" for k in top]
    for section in (k for k in top if k.type == "section"):
        rows = [k for k in keys if k.path.startswith(section.path + ".")]
        intro = section.help[:1].upper() + section.help[1:]
        out += ["", f"### `{section.path}`", "", _cell(intro) + ".", "", "| key | type | default | what it does |", "|---|---|---|---|"]
        out += [f"| `{k.path}` | {k.type} | {_cell(k.default)} | {_cell(k.help)} |" for k in rows]
    out.append("")
    return "\n".join(out)


def render_presets() -> str:
    from mlops.config import PRESETS, packaged_configs

    folder = ROOT / "mlops" / PRESETS
    out = ["| preset | task | model source | registered model | policy |", "|---|---|---|---|---|"]
    for name in packaged_configs():
        raw = yaml.safe_load((folder / f"{name}.yaml").read_text(encoding="utf-8"))
        registry = raw.get("registry", {})
        out.append(
            f"| `{name}` | {raw.get('task', '')} | `{raw.get('model', {}).get('source', '')}` "
            f"| `{registry.get('model_name', '')}` | `{registry.get('policy', '')}` |"
        )
    return "\n".join(out)


# ---- the command line and the MLproject -------------------------------------------------------------------------


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = (), about: str = "") -> Iterator[tuple[tuple[str, ...], str]]:
    """Every leaf command with its one-line help, e.g. (("sweep",), "nested Optuna search; ...")."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield prefix, about
        return
    helps = {a.dest: a.help or "" for a in subs[0]._choices_actions}
    for name, child in subs[0].choices.items():
        yield from _commands(child, (*prefix, name), helps.get(name, ""))


def _help_text(parse: Callable[[list[str]], Any], argv: list[str]) -> str:
    buffer = io.StringIO()
    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "110"
    try:
        with contextlib.redirect_stdout(buffer), contextlib.suppress(SystemExit):
            parse([*argv, "--help"])
    finally:
        if columns is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = columns
    return buffer.getvalue().rstrip()


def render_cli_reference() -> str:
    from mlops.cli._parser import _parser

    entry_points = yaml.safe_load((ROOT / "MLproject").read_text(encoding="utf-8"))["entry_points"]
    out: list[str] = []
    for command, about in _commands(_parser()):
        name = " ".join(command)
        out += [
            f"### `mlops {name}`",
            "",
            _cell(about[:1].upper() + about[1:]) + ".",
            "",
            "```text",
            _help_text(lambda argv: _parser().parse_args(argv), list(command)),
            "```",
            "",
        ]
        entry = entry_points.get(command[0]) if len(command) == 1 else None
        if entry:
            out += [f"MLproject: `mlflow run . -e {command[0]} --env-manager local -P NAME=VALUE`", ""]
            out += ["| parameter | default |", "|---|---|"]
            for param, spec in entry.get("parameters", {}).items():
                default = spec.get("default", "") if isinstance(spec, dict) else spec
                out.append(f"| `{param}` | {f'`{default}`' if default not in ('', None) else 'unset'} |")
            out.append("")
    missing = sorted(set(entry_points) - {c[0] for c, _ in _commands(_parser())})
    if missing:
        raise ValueError(f"MLproject entry points without an mlops command: {', '.join(missing)}")
    return "\n".join(out)


# ---- the layers ----------------------------------------------------------------------------------------------------


def render_layers() -> str:
    linter = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    out: list[str] = []
    for contract in linter["contracts"]:
        out += [f"**{contract['name']}** ({contract['type']})", ""]
        if contract["type"] == "layers":
            out += ["From the top; a layer may import only the layers below it (`|`: side by side, independent):", ""]
            out += [f"{i}. `{layer}`" for i, layer in enumerate(contract["layers"], 1)]
        elif contract["type"] == "forbidden":
            sources = ", ".join(f"`{m}`" for m in contract["source_modules"])
            forbidden = ", ".join(f"`{m}`" for m in contract["forbidden_modules"])
            indirect = " (directly; indirect imports allowed)" if contract.get("allow_indirect_imports") else ""
            out.append(f"- {sources} never imports {forbidden}{indirect}.")
            out += [f"- Allowed exception: `{rule}`." for rule in contract.get("ignore_imports", [])]
        out.append("")
    return "\n".join(out)


RENDERERS: dict[str, Callable[[], str]] = {
    "config-reference": render_config_reference,
    "presets": render_presets,
    "cli-reference": render_cli_reference,
    "layers": render_layers,
}


def expand(markdown: str) -> str:
    """The page with each marker replaced by its generated part; an unknown marker is an error."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in RENDERERS:
            raise ValueError(f"unknown generated part {name!r}; known: {', '.join(RENDERERS)}")
        return RENDERERS[name]()

    return MARKER.sub(replace, markdown)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """MkDocs hook (registered in mkdocs.yml `hooks:`)."""
    return expand(markdown)
