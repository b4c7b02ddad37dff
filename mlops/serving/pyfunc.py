"""The servable models: MLflow pyfunc classes over an adapter directory, the base model resolved by name at load time.

This is the one module a logged model imports (its model-from-code file is two lines that name a class here), so it
must keep its name and these class names across releases. What the classes do may change; older logged models load
through the current code, and tests/serving/test_legacy_models.py proves it for models logged by an earlier release.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.pyfunc.model import PythonModel

from mlops.config import GenerationConfig
from mlops.data.instruction import ROLES, turn_list
from mlops.evaluate import decoding_settings, generate_summaries
from mlops.evaluate.instruction import generate_responses
from mlops.models import (
    base_quantization,
    finish_for_serving,
    half_precision_dtype,
    load_adapted_model,
    load_causal_lm,
    load_classifier,
    read_card,
    resolve_source,
    serve_in_16bit,
    serving_settings,
)


def base_as_trained(card: dict[str, Any]) -> tuple[Any, str]:
    """The card's base model as it was trained (a classifier when the card has labels, else a causal LM): re-quantised
    as the card says (model.quantization), or in 16-bit where `MLOPS_SERVE_16BIT` asks; a base trained unquantised is
    loaded as its serving precision says (bitsandbytes int8/nf4 on CUDA, refused without a GPU). Also returns which
    precision."""
    import torch

    source = resolve_source(card["base_model"])
    quantization = card.get("quantization", "none")
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    labels = card.get("label_names")
    if quantization != "none" and serve_in_16bit():
        dtype = half_precision_dtype(device)
        plain: Any = source.load_classifier(len(labels)) if labels else source.load_causal_lm()
        return plain.to(device=device, dtype=dtype), str(dtype).removeprefix("torch.")
    if quantization == "none":
        quantization = base_quantization(serving_settings(card), cuda)
    precision = quantization if quantization != "none" else "as stored"
    if labels:
        return load_classifier(source, len(labels), quantization, device), precision
    return load_causal_lm(source, quantization, device), precision


def served_model(base: Any, adapter_dir: Path, card: dict[str, Any]) -> Any:
    """The model a logged adapter serves: `base` rebuilt with the adapter's structure (`load_adapted_model`), then
    merged and quantised as the card's serving settings say (the trial's; defaults for a card without them)."""
    return finish_for_serving(load_adapted_model(base, adapter_dir, card), serving_settings(card))


class AdapterClassifier(PythonModel):  # type: ignore[misc]
    def load_context(self, context: Any) -> None:
        import torch
        from transformers import AutoTokenizer

        adapter_dir = Path(context.artifacts["adapter"])
        self.card = read_card(adapter_dir)
        base, self.base_precision = base_as_trained(self.card)
        # dropped layers, re-pruned heads, FFN adapters, the PEFT adapter; then merged and quantised as the card says
        self.model = served_model(base, adapter_dir, self.card)
        self.tokenizer = AutoTokenizer.from_pretrained(str(adapter_dir))
        self.torch = torch
        self.device = next(self.model.parameters()).device  # a re-quantised base sits on the GPU where there is one

    # `pd.DataFrame`, not `list[...]`: MLflow then keeps the signature it infers from the input example, with the
    # named `text` input and the output columns, and enforces it on every call; a list hint would replace both with
    # one unnamed column.
    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        texts = model_input["text"].astype(str).tolist() if isinstance(model_input, pd.DataFrame) else [str(t) for t in model_input]
        labels = self.card["label_names"]
        rows = []
        with self.torch.no_grad():
            for start in range(0, len(texts), 64):
                enc = self.tokenizer(
                    texts[start : start + 64], truncation=True, max_length=self.card["max_length"], padding=True, return_tensors="pt"
                ).to(self.device)
                probs = self.torch.softmax(self.model(**enc).logits, dim=-1)
                for row in probs.tolist():
                    best = max(range(len(row)), key=row.__getitem__)
                    rows.append(
                        {"label": labels[best], "probability": row[best], **{f"p_{name}": p for name, p in zip(labels, row, strict=True)}}
                    )
        return pd.DataFrame(rows)


class AdapterSummarizer(PythonModel):  # type: ignore[misc]
    def load_context(self, context: Any) -> None:
        from transformers import AutoTokenizer

        adapter_dir = Path(context.artifacts["adapter"])
        card = read_card(adapter_dir)
        base, self.base_precision = base_as_trained(card)
        self.model: Any = served_model(base, adapter_dir, card)
        self.tokenizer = AutoTokenizer.from_pretrained(str(adapter_dir))
        self.generation = GenerationConfig(**card["generation"])
        self.settings = decoding_settings(self.generation, int(card.get("seed", 0)))

    # `pd.DataFrame`: the signature stays the one inferred from the input example (see AdapterClassifier.predict).
    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame({"document": list(model_input)})
        documents = frame["document"].astype(str).tolist()
        gen = self.generation
        summaries = generate_summaries(
            self.model, self.tokenizer, documents, gen.template, gen.max_document_tokens, self.settings, gen.batch_size
        )
        return pd.DataFrame({"summary": summaries})


def _payload_error(message: str) -> Exception:
    """An error `mlflow models serve` answers with HTTP 400 (a bad request), not 500."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

    return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)


def _present(value: Any) -> bool:
    """Whether a request cell holds a value (a column another row uses is None or NaN where this row leaves it out)."""
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _turn_problem(turn: Any, index: int, count: int) -> str | None:
    """What is wrong with one turn of a served conversation (`index` of `count`), or None."""
    if not isinstance(turn, dict):
        return f"turn {index}: expected {{role, content}}, got {type(turn).__name__}"
    for key in ("role", "content"):
        if not isinstance(turn.get(key), str):
            return f"turn {index}: {'no' if turn.get(key) is None else 'a non-text'} '{key}'"
    if turn["role"] not in ROLES:
        return f"turn {index}: unknown role '{turn['role']}'; use {', '.join(ROLES)}"
    if turn["role"] == "system" and index > 0:
        return f"turn {index}: a system turn may only come first"
    if index == count - 1 and turn["role"] != "user":
        return f"turn {index}: the conversation ends on a '{turn['role']}' turn; it must end on the user turn to answer"
    return None


def _payload_turns(value: Any, row: int) -> list[dict[str, str]]:
    """One `messages` cell as turns: a non-empty list (or its JSON text) of {role, content}, known roles, a system
    turn first if any, ending on a user turn (the one the model answers)."""
    turns = turn_list(value)
    if not turns:
        raise _payload_error(f"messages, row {row}: expected a non-empty list of {{role, content}} turns")
    for index, turn in enumerate(turns):
        problem = _turn_problem(turn, index, len(turns))
        if problem:
            raise _payload_error(f"messages, row {row}, {problem}")
    return [{"role": t["role"], "content": t["content"]} for t in turns]


class AdapterInstructor(PythonModel):  # type: ignore[misc]
    """Answers a `messages` column (a list of turns: the next assistant turn is generated) or a `prompt` column."""

    def load_context(self, context: Any) -> None:
        from transformers import AutoTokenizer

        adapter_dir = Path(context.artifacts["adapter"])
        card = read_card(adapter_dir)
        base, self.base_precision = base_as_trained(card)
        self.model: Any = served_model(base, adapter_dir, card)
        self.tokenizer = AutoTokenizer.from_pretrained(str(adapter_dir))
        self.generation = GenerationConfig(**card["generation"])
        self.settings = decoding_settings(self.generation, int(card.get("seed", 0)))
        self.system_prompt: str | None = card.get("system_prompt")

    def conversations(self, model_input: Any) -> list[list[dict[str, str]]]:
        """Each row's conversation: its `messages` where it has them, else its `prompt` as one user turn (after the
        card's system prompt); a row with neither, or with something else in them, is a bad request."""
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame({"prompt": list(model_input)})
        if "messages" not in frame.columns and "prompt" not in frame.columns:
            raise _payload_error(f"expected a 'messages' or a 'prompt' column, got {', '.join(map(str, frame.columns)) or 'none'}")
        head = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        empty = pd.Series([None] * len(frame), index=frame.index, dtype=object)
        messages, prompts = (frame[c] if c in frame.columns else empty for c in ("messages", "prompt"))
        conversations = []
        for row, (turns, prompt) in enumerate(zip(messages, prompts, strict=True)):
            if _present(turns):
                conversations.append(_payload_turns(turns, row))
            elif not _present(prompt):
                raise _payload_error(f"row {row}: neither 'messages' nor 'prompt' has a value")
            elif not isinstance(prompt, str) or not prompt.strip():
                raise _payload_error(f"prompt, row {row}: expected non-empty text, got {prompt!r:.40}")
            else:
                conversations.append([*head, {"role": "user", "content": prompt}])
        return conversations

    # `pd.DataFrame`: the signature stays the one inferred from the input example (see AdapterClassifier.predict).
    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        gen = self.generation
        responses = generate_responses(
            self.model,
            self.tokenizer,
            self.conversations(model_input),
            gen.template,
            gen.max_document_tokens,
            self.settings,
            gen.batch_size,
        )
        return pd.DataFrame({"response": responses})
