"""A logged instruction model serves both request shapes: `messages` (a conversation whose next assistant turn is
generated) and `prompt`, through the pyfunc and through a live `mlflow models serve`; a malformed request is a 400
whose message names what is wrong. The adapter is a tiny LLaMA's LoRA built in code (untrained: serving is tested)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import mlflow
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from tests.helpers import invoke, isolated_store, served

CHAT = [
    {"role": "system", "content": "Answer briefly."},
    {"role": "user", "content": "Read clause 2."},
    {"role": "assistant", "content": "Done."},
    {"role": "user", "content": "Who pays the rent?"},
]


@pytest.fixture(scope="module")
def model_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The instruction-qa preset on tiny-random-llama: its adapter saved with the card training writes, logged as the
    task's pyfunc model in a module-wide store."""
    from mlops.config import load_config
    from mlops.models import resolve_source
    from mlops.serving import log_adapter_model
    from mlops.train.loop import save_adapter
    from mlops.train.tasks.summarization import build_causal_lm

    folder = tmp_path_factory.mktemp("instructor")
    config = load_config("instruction-qa", {"model.source": "tiny-random-llama", "generation.max_new_tokens": 4})
    source = resolve_source(config.model.source)
    model, _ = build_causal_lm(source, config.training, None)
    card = {"generation": asdict(config.generation), "seed": 0, "system_prompt": "Answer briefly."}
    save_adapter(model, source.load_tokenizer(), folder / "adapter", config, card)
    with isolated_store(folder):
        mlflow.set_experiment("serve-instruction")
        with mlflow.start_run():
            info = log_adapter_model(folder / "adapter")
        yield info.model_uri


def test_signature_accepts_either_column(model_uri: str) -> None:
    inputs = {spec.name: spec for spec in mlflow.models.get_model_info(model_uri).signature.inputs.inputs}
    assert set(inputs) == {"messages", "prompt"}
    assert not inputs["messages"].required and not inputs["prompt"].required
    turn = inputs["messages"].type.dtype  # an Array of Objects with a text role and content
    assert {p.name: p.dtype.name for p in turn.properties} == {"role": "string", "content": "string"}


def test_pyfunc_answers_messages_prompts_and_both(model_uri: str) -> None:
    model = mlflow.pyfunc.load_model(model_uri)
    by_messages = model.predict(pd.DataFrame({"messages": [CHAT, CHAT[1:2]]}))
    by_prompt = model.predict(pd.DataFrame({"prompt": ["Who pays the rent?"]}))
    mixed = model.predict(pd.DataFrame({"messages": [CHAT, None], "prompt": [None, "Who pays the rent?"]}))
    for out, rows in ((by_messages, 2), (by_prompt, 1), (mixed, 2)):
        assert list(out.columns) == ["response"] and len(out) == rows and all(isinstance(r, str) for r in out["response"])
    assert mixed["response"].tolist() == [by_messages["response"][0], by_prompt["response"][0]], "greedy: same input, same answer"
    instructor = model.unwrap_python_model()
    assert instructor.conversations(pd.DataFrame({"prompt": ["Fee?"]})) == [
        [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Fee?"}]
    ], "a prompt follows the card's system prompt"


BAD_MESSAGES: list[tuple[Any, str]] = [
    ([{"role": "robot", "content": "hi"}], "messages, row 0, turn 0: unknown role 'robot'"),
    ([{"role": "user"}], "messages, row 0, turn 0: no 'content'"),
    ([{"content": "hi"}], "messages, row 0, turn 0: no 'role'"),
    ([{"role": "user", "content": 3}], "messages, row 0, turn 0: a non-text 'content'"),
    (CHAT[:3], "messages, row 0, turn 2: the conversation ends on a 'assistant' turn"),
    ([CHAT[1], CHAT[0], CHAT[3]], "messages, row 0, turn 1: a system turn may only come first"),
    ([], "messages, row 0: expected a non-empty list"),
    ("not json", "messages, row 0: expected a non-empty list"),
    (["hi"], "messages, row 0, turn 0: expected {role, content}, got str"),
]


@pytest.mark.parametrize(("messages", "message"), BAD_MESSAGES)
def test_pyfunc_names_what_is_wrong_in_a_conversation(model_uri: str, messages: Any, message: str) -> None:
    instructor = mlflow.pyfunc.load_model(model_uri).unwrap_python_model()
    with pytest.raises(MlflowException, match=message.replace("{", r"\{").replace("}", r"\}")) as raised:
        instructor.predict(None, pd.DataFrame({"messages": [messages]}))
    assert raised.value.get_http_status_code() == 400


def test_pyfunc_rejects_requests_without_an_input(model_uri: str) -> None:
    instructor = mlflow.pyfunc.load_model(model_uri).unwrap_python_model()
    for frame, message in (
        (pd.DataFrame({"text": ["hi"]}), "expected a 'messages' or a 'prompt' column, got text"),
        (pd.DataFrame({"messages": [None], "prompt": [None]}), "row 0: neither 'messages' nor 'prompt' has a value"),
        (pd.DataFrame({"prompt": ["ok", "  "]}), "prompt, row 1: expected non-empty text"),
    ):
        with pytest.raises(MlflowException, match=message):
            instructor.predict(None, frame)


@pytest.mark.slow  # starts `mlflow models serve`
def test_mlflow_models_serve_answers_both_shapes_and_rejects_bad_requests(model_uri: str) -> None:
    local = mlflow.pyfunc.load_model(model_uri)
    with served(model_uri) as url:
        by_messages = invoke(url, {"dataframe_records": [{"messages": CHAT}]})
        by_prompt = invoke(url, {"dataframe_split": {"columns": ["prompt"], "data": [["Who pays the rent?"], ["By when?"]]}})
        bad = {
            "neither column": invoke(url, {"dataframe_records": [{"text": "hi"}]}),
            "unknown role": invoke(url, {"dataframe_records": [{"messages": [{"role": "robot", "content": "hi"}]}]}),
            "ends on assistant": invoke(url, {"dataframe_records": [{"messages": CHAT[:3]}]}),
            "no content": invoke(url, {"dataframe_records": [{"messages": [{"role": "user"}]}]}),
        }
    assert by_messages[0] == 200, by_messages
    assert by_messages[1]["predictions"] == local.predict(pd.DataFrame({"messages": [CHAT]})).to_dict(orient="records")
    assert by_prompt[0] == 200, by_prompt
    expected = local.predict(pd.DataFrame({"prompt": ["Who pays the rent?", "By when?"]})).to_dict(orient="records")
    assert by_prompt[1]["predictions"] == expected
    names = {
        "neither column": "'messages' or a 'prompt'",
        "unknown role": "unknown role 'robot'",
        "ends on assistant": "ends on a 'assistant' turn",
        "no content": "content",
    }
    for case, (status, answer) in bad.items():
        assert status == 400, (case, answer)
        assert names[case] in answer["message"], (case, answer["message"])
