"""Module names that models logged by earlier releases import, kept importable after the library moved on.

A logged model carries its model-from-code file. Those written by release 0.1.0 import `mlops.structure`,
`mlops.training`, `mlops.summarizer` and `mlops.summarization`, which no longer exist; each resolves here to a small
module holding just the names those files use, taken from where they live now. Models logged since import
`mlops.serving.pyfunc` only. tests/serving/test_legacy_models.py loads 0.1.0 models through this.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from types import ModuleType

# old module -> {name its logged models import: the module that holds it now}
LEGACY_MODULES: dict[str, dict[str, str]] = {
    "mlops.structure": {"load_adapted_model": "mlops.models"},
    "mlops.training": {"MODEL_CARD": "mlops.models"},
    "mlops.summarizer": {"decoding_settings": "mlops.evaluate"},
    "mlops.summarization": {"generate_summaries": "mlops.evaluate"},
}


class _LegacyModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Consulted only after the regular finders found nothing under an old name."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        return importlib.machinery.ModuleSpec(fullname, self) if fullname in LEGACY_MODULES else None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None  # the default module object

    def exec_module(self, module: ModuleType) -> None:
        for name, home in LEGACY_MODULES[module.__name__].items():
            setattr(module, name, getattr(importlib.import_module(home), name))


def install() -> None:
    if not any(isinstance(finder, _LegacyModules) for finder in sys.meta_path):
        sys.meta_path.append(_LegacyModules())
