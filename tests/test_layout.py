"""The house rules that import-linter does not state: no import circles inside mlops, in-function imports only in
the CLI (for a fast `--help`), each fact defined once, and old module names still importable for logged models."""

from __future__ import annotations

import ast
import importlib

import yaml

from tests.helpers import ROOT

PACKAGE = ROOT / "mlops"


def _import_graph() -> dict[str, set[str]]:
    import grimp

    graph = grimp.build_graph("mlops", include_external_packages=False)
    return {module: set(graph.find_modules_directly_imported_by(module)) for module in graph.modules}


def test_no_import_circles_inside_mlops() -> None:
    graph = _import_graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, f"import circles: {cycles[:3]}"


def test_in_function_imports_of_mlops_only_in_the_cli() -> None:
    """The library imports its own modules at the top; only the CLI defers them, so that `mlops --help` stays fast."""
    nested = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.parent == PACKAGE / "cli":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                nested += [
                    f"{path.relative_to(ROOT)}:{sub.lineno}"
                    for sub in ast.walk(node)
                    if isinstance(sub, ast.ImportFrom) and (sub.module or "").startswith("mlops")
                ]
    assert not nested, nested


def test_hyperparameters_are_one_table_shared_by_cli_and_mlproject() -> None:
    from mlops.cli import _parser
    from mlops.config import HYPERPARAMETERS, TrainingConfig, hyperparameter_help

    finetune = yaml.safe_load((ROOT / "MLproject").read_text())["entry_points"]["finetune"]["parameters"]
    assert set(finetune) == {"config", *HYPERPARAMETERS}
    assert set(hyperparameter_help()) == set(HYPERPARAMETERS) <= set(TrainingConfig.__dataclass_fields__)
    args = _parser().parse_args(["finetune", *[arg for name in HYPERPARAMETERS for arg in (f"--{name.replace('_', '-')}", "1")]])
    assert all(getattr(args, name) == "1" for name in HYPERPARAMETERS)


def test_augmenter_names_come_from_the_registry() -> None:
    from mlops.config import DEFAULT_AUGMENT_METHODS
    from mlops.data.augment import augmenter_names

    assert set(DEFAULT_AUGMENT_METHODS) < set(augmenter_names())
    assert {"synonym", "swap", "delete", "insert", "back_translation"} == set(augmenter_names())


def test_decoding_ranges_are_checked_in_one_place() -> None:
    from mlops.config import MAX_TEMPERATURE, GenerationConfig
    from mlops.errors import SummarizationConfigError
    from mlops.evaluate import DecodingSettings

    too_hot = MAX_TEMPERATURE * 2
    assert any("temperature" in e for e in GenerationConfig(temperature=too_hot).check("generation"))
    try:
        DecodingSettings(temperature=too_hot)
    except SummarizationConfigError as exc:
        assert "temperature: must be in (0, 5]" in str(exc)
    else:
        raise AssertionError("DecodingSettings accepted a temperature the config refuses")


def test_module_names_of_earlier_releases_still_import() -> None:
    from mlops._legacy import LEGACY_MODULES

    for name, exports in LEGACY_MODULES.items():
        module = importlib.import_module(name)
        for export, home in exports.items():
            assert getattr(module, export) is getattr(importlib.import_module(home), export)


def test_every_task_the_config_knows_has_a_training_task() -> None:
    from mlops.config import SEARCH_METRICS
    from mlops.train.tasks import task_for

    for task in SEARCH_METRICS:
        assert task_for(task).name == task
