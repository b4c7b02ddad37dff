"""MLflow "model from code": a causal-LM adapter (LoRA, prefix or bottleneck) plus a reference to its base model source.

Only the adapter directory (with the tokenizer and the generation settings it was judged with)
is stored; the base weights are resolved through `mlops.models` when the model loads.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc.model import PythonModel


class AdapterSummarizer(PythonModel):  # type: ignore[misc]
    def load_context(self, context: Any) -> None:
        from transformers import AutoTokenizer

        from mlops.config import GenerationConfig
        from mlops.models import resolve_source
        from mlops.structure import load_adapted_model
        from mlops.summarizer import decoding_settings
        from mlops.training import MODEL_CARD

        adapter_dir = Path(context.artifacts["adapter"])
        card = json.loads((adapter_dir / MODEL_CARD).read_text(encoding="utf-8"))
        base = resolve_source(card["base_model"]).load_causal_lm()
        self.model: Any = load_adapted_model(base, adapter_dir, card)  # FFN adapters and gates, then the PEFT adapter
        self.tokenizer = AutoTokenizer.from_pretrained(str(adapter_dir))
        self.generation = GenerationConfig(**card["generation"])
        self.settings = decoding_settings(self.generation, int(card.get("seed", 0)))

    # No type hints on predict: MLflow would try to derive a schema from them; the signature comes from the input example.
    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        from mlops.summarization import generate_summaries

        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame({"document": list(model_input)})
        documents = frame["document"].astype(str).tolist()
        gen = self.generation
        summaries = generate_summaries(
            self.model, self.tokenizer, documents, gen.template, gen.max_document_tokens, self.settings, gen.batch_size
        )
        return pd.DataFrame({"summary": summaries})


mlflow.models.set_model(AdapterSummarizer())
