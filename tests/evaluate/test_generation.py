"""Generation on the tiny random LLaMA: batched greedy decoding equals one-by-one, seeded sampling is reproducible, beam
search runs, and decoding settings become explicit `generate` arguments, every bad field named."""

from __future__ import annotations

from typing import Any

import pytest

from mlops.evaluate import DecodingSettings, generate_one_by_one, generate_summaries, prompt_ids
from tests.helpers import legal_rows


@pytest.fixture(scope="module")
def source() -> Any:
    from mlops.models import resolve_source

    return resolve_source("tiny-random-llama")


@pytest.fixture(scope="module")
def tokenizer(source: Any) -> Any:
    return source.load_tokenizer()


@pytest.fixture(scope="module")
def model(source: Any) -> Any:
    return source.load_causal_lm().eval()


def _documents_of_different_lengths() -> list[str]:
    return [row["document"][: 30 + 45 * i] for i, row in enumerate(legal_rows(n=6))]


def test_batched_greedy_equals_one_by_one(tokenizer: Any, model: Any) -> None:
    documents = _documents_of_different_lengths()
    lengths = {len(prompt_ids(tokenizer, d, None, 128)[0]) for d in documents}
    assert len(lengths) == len(documents)  # every batch really has left padding
    settings = DecodingSettings(max_new_tokens=12)
    side = tokenizer.padding_side
    model.train()
    try:
        batched = generate_summaries(model, tokenizer, documents, None, 128, settings, batch_size=4)
        assert model.training  # the caller's mode is restored
    finally:
        model.eval()
    assert tokenizer.padding_side == side
    assert batched == generate_one_by_one(model, tokenizer, documents, None, 128, settings)
    assert all(batched)


def test_seeded_sampling_is_reproducible_and_leaves_the_global_rng_alone(tokenizer: Any, model: Any) -> None:
    import torch

    documents = _documents_of_different_lengths()[:3]
    state = torch.random.get_rng_state()
    first = generate_summaries(model, tokenizer, documents, None, 32, DecodingSettings(max_new_tokens=8, decoding="sample", seed=3))
    again = generate_summaries(model, tokenizer, documents, None, 32, DecodingSettings(max_new_tokens=8, decoding="sample", seed=3))
    other = generate_summaries(model, tokenizer, documents, None, 32, DecodingSettings(max_new_tokens=8, decoding="sample", seed=4))
    assert first == again
    assert first != other
    assert torch.equal(torch.random.get_rng_state(), state)


def test_beam_search_runs(tokenizer: Any, model: Any) -> None:
    settings = DecodingSettings(max_new_tokens=6, decoding="beam", num_beams=2)
    assert len(generate_summaries(model, tokenizer, _documents_of_different_lengths()[:2], None, 32, settings)) == 2


def test_decoding_settings_become_explicit_generate_kwargs() -> None:
    assert DecodingSettings().generate_kwargs() == {"max_new_tokens": 48, "use_cache": True, "do_sample": False, "num_beams": 1}
    sample = DecodingSettings(decoding="sample", temperature=0.7, top_p=0.9).generate_kwargs()
    assert sample["do_sample"] is True
    assert (sample["temperature"], sample["top_p"], sample["top_k"]) == (0.7, 0.9, 0)
    assert DecodingSettings(decoding="beam", num_beams=3).generate_kwargs()["num_beams"] == 3
    beam = DecodingSettings(decoding="beam", num_beams=2, length_penalty=-1.5, max_new_tokens=7).generate_kwargs()
    assert (beam["num_beams"], beam["length_penalty"], beam["max_new_tokens"]) == (2, -1.5, 7)
    assert "length_penalty" not in DecodingSettings(length_penalty=2.0).generate_kwargs(), "greedy decoding has no beams to penalise"


def test_decoding_settings_report_every_bad_field() -> None:
    with pytest.raises(ValueError, match=r"temperature: must be in \(0, 5\], got 0.*top_p: must be in \(0, 1\], got 1.5"):
        DecodingSettings(temperature=0, top_p=1.5)
    with pytest.raises(ValueError, match=r"length_penalty: must be in \[-10, 10\], got 12"):
        DecodingSettings(decoding="beam", length_penalty=12)
