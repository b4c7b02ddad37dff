"""MLflow "model from code": an adapter (LoRA or bottleneck, with any pruned heads and gates) plus a reference to its base model source.

Only the adapter directory is stored with the model; the base weights are resolved
through `mlops.models` when the model loads, so the logged model stays small.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc.model import PythonModel


class AdapterClassifier(PythonModel):  # type: ignore[misc]
    def load_context(self, context: Any) -> None:
        import torch
        from transformers import AutoTokenizer

        from mlops.models import resolve_source
        from mlops.structure import load_adapted_model
        from mlops.training import MODEL_CARD

        adapter_dir = Path(context.artifacts["adapter"])
        self.card = json.loads((adapter_dir / MODEL_CARD).read_text(encoding="utf-8"))
        base = resolve_source(self.card["base_model"]).load_classifier(len(self.card["label_names"]))
        self.model = load_adapted_model(base, adapter_dir, self.card)  # re-pruned heads, FFN adapters, then the PEFT adapter
        self.tokenizer = AutoTokenizer.from_pretrained(str(adapter_dir))
        self.torch = torch

    # No type hints on predict: MLflow would try to derive a schema from them; the signature comes from the input example.
    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        texts = model_input["text"].astype(str).tolist() if isinstance(model_input, pd.DataFrame) else [str(t) for t in model_input]
        labels = self.card["label_names"]
        rows = []
        with self.torch.no_grad():
            for start in range(0, len(texts), 64):
                enc = self.tokenizer(
                    texts[start : start + 64], truncation=True, max_length=self.card["max_length"], padding=True, return_tensors="pt"
                )
                probs = self.torch.softmax(self.model(**enc).logits, dim=-1)
                for row in probs.tolist():
                    best = max(range(len(row)), key=row.__getitem__)
                    rows.append(
                        {"label": labels[best], "probability": row[best], **{f"p_{name}": p for name, p in zip(labels, row, strict=True)}}
                    )
        return pd.DataFrame(rows)


mlflow.models.set_model(AdapterClassifier())
