"""`mlops export`: a registered model for targets outside MLflow, as its adapter directory or, with `merge`,
as full transformers weights (the adapter merged into the base) for runtimes that cannot load adapters."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from mlops.errors import ConfigError, RegistryError
from mlops.models import MODEL_CARD, peft_wrapping, resolve_source
from mlops.models.structure import keep_trained_layers
from mlops.tasks import spec_for
from mlops.tracking import resolve_model_version


def _adapter_dir(model_dir: Path) -> Path:
    """The adapter inside a downloaded pyfunc model: stored as the `adapter` artifact of the model."""

    found = sorted(p.parent for p in model_dir.rglob(MODEL_CARD))
    if not found:
        raise RegistryError(f"{model_dir.name}: no adapter ({MODEL_CARD}) in this model; it was not logged by mlops")
    return found[0]


def _peft_type(adapter_dir: Path) -> str | None:
    config = adapter_dir / "adapter_config.json"
    return json.loads(config.read_text(encoding="utf-8")).get("peft_type") if config.is_file() else None


def merge_adapter(adapter_dir: Path) -> Any:
    """The base model with the adapter's weights merged in (and any trained head), as a plain transformers model."""
    from peft import PeftModel

    card = json.loads((adapter_dir / MODEL_CARD).read_text(encoding="utf-8"))
    structure = card.get("structure") or {}
    unmergeable = [
        what
        for what, present in (
            ("pruned attention heads", structure.get("pruned_heads")),
            ("FFN bottleneck adapters or gates", structure.get("ffn_adapters")),
            ("a prefix-tuning adapter", _peft_type(adapter_dir) == "PREFIX_TUNING"),
            ("no PEFT adapter", structure and not structure.get("peft", True)),
        )
        if present
    ]
    if unmergeable:
        raise ConfigError(
            f"merge: this model has {' and '.join(unmergeable)}, which plain transformers weights cannot hold; export it without --merge"
        )
    source = resolve_source(card["base_model"])
    if spec_for(card["task"]).has_classifier_head:
        labels = card["label_names"]
        base = source.load_classifier(len(labels))
        base.config.id2label = dict(enumerate(labels))
        base.config.label2id = {name: i for i, name in enumerate(labels)}
    else:
        base = source.load_causal_lm()
    keep_trained_layers(base, card, adapter_dir)  # dropped top layers: the exported model has only the trained ones
    with peft_wrapping():
        return PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload().eval()


def run_export(model_uri: str, out: Path, merge: bool) -> Path:
    """Write `model_uri` (models:/<name>/<version> or models:/<name>@<alias>) to the new directory `out`."""
    import tempfile

    import mlflow
    from transformers import AutoTokenizer

    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"out: {out} exists and is not empty; choose a new directory (nothing is overwritten)")
    resolve_model_version(mlflow.MlflowClient(), model_uri)  # named errors for an unknown model, version or alias
    with tempfile.TemporaryDirectory(prefix="mlops-export-") as tmp:
        adapter = _adapter_dir(Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp)))
        if not merge:
            shutil.copytree(adapter, out, dirs_exist_ok=True)
            return out
        merged = merge_adapter(adapter)
        out.mkdir(parents=True, exist_ok=True)
        merged.save_pretrained(str(out))
        AutoTokenizer.from_pretrained(str(adapter)).save_pretrained(str(out))
        card = json.loads((adapter / MODEL_CARD).read_text(encoding="utf-8"))
        (out / MODEL_CARD).write_text(json.dumps({**card, "merged": True, "exported_from": model_uri}, indent=2), encoding="utf-8")
    return out
