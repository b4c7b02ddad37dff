"""Instruction and chat data: conversations (`dataset.messages_column`, a list of {role, content} turns) or
prompt/response pairs (`dataset.prompt_column`, `dataset.response_column`, an optional `dataset.system_prompt`),
checked against the data contract and split.

The contract: `messages` that is not a list of turns, an unknown role, a system turn after the first and a missing
column are errors naming the rows. A conversation without an assistant turn and an empty response follow
`dataset.on_invalid.missing_target`, an empty prompt `dataset.on_invalid.empty_input` (drop: counted as
`rows_dropped_<reason>`). Turns after the last assistant turn teach nothing and are left out.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.data._load import _check_columns, _seeded_split, resolve_units
from mlops.data._task_data import SPLITS, PairSplit, SummarizationData
from mlops.data.contract import ROW, _rows, check_evidence, check_split_sizes, cross_split_overlap, number_rows
from mlops.data.report import BEFORE_SPLIT, DataReport, LengthStats
from mlops.data.sources import read_frames
from mlops.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    from mlops.config import DatasetConfig

ROLES = ("system", "user", "assistant")
_CONTEXT, _RESPONSE, _MESSAGES = "__context__", "__response__", "__messages__"


@dataclass
class ConversationSplit(PairSplit):
    """Conversations, each ending in the assistant turn a model is judged on. As a `PairSplit`: `documents` is the
    text of the turns before that one (what retrieval and the overlap check compare), `summaries` is its content."""

    conversations: list[list[dict[str, str]]] = field(default_factory=list)

    def contexts(self) -> list[list[dict[str, str]]]:
        """Each conversation without its last (judged) assistant turn."""
        return [turns[:-1] for turns in self.conversations]

    def first(self, limit: int | None) -> ConversationSplit:
        if limit is None:
            return self
        return ConversationSplit(
            self.documents[:limit], self.summaries[:limit], self.key_terms[:limit], self.source, self.conversations[:limit]
        )


@dataclass
class InstructionData(SummarizationData):
    train: ConversationSplit
    validation: ConversationSplit
    test: ConversationSplit

    def split(self, name: str) -> ConversationSplit:
        return {"train": self.train, "validation": self.validation, "test": self.test}[name]

    def frame(self, name: str) -> tuple[pd.DataFrame, str]:
        import pandas as pd

        split = self.split(name)
        return pd.DataFrame({"messages": [json.dumps(c) for c in split.conversations], "response": split.summaries}), "response"

    def serving_frame(self, name: str, limit: int) -> pd.DataFrame:
        """Each conversation up to its judged assistant turn, as the served model takes it (a `messages` column)."""
        import pandas as pd

        return pd.DataFrame({"messages": [json.dumps(c) for c in self.split(name).contexts()[:limit]]})


class _Problems:
    """Rows of one source file that break a rule, by rule, reported as one line each."""

    def __init__(self) -> None:
        self.rows: dict[str, list[int]] = {}

    def add(self, reason: str, row: int) -> None:
        self.rows.setdefault(reason, []).append(row)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def turn_list(value: Any) -> list[Any] | None:
    """A cell of a messages column as a list (JSON text in CSV, arrays in Parquet or a served request), or None if it
    is not one."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return None
    if hasattr(value, "tolist") and not isinstance(value, dict):
        value = value.tolist()
    return list(value) if isinstance(value, (list, tuple)) else None


def _conversation(value: Any, problems: _Problems, row: int) -> list[dict[str, str]] | None:
    """The turns of one row, up to its last assistant turn; None (with the problem noted) if it breaks the contract."""
    turns = turn_list(value)
    if turns is None or not turns or not all(isinstance(t, Mapping) and isinstance(t.get("content"), str) for t in turns):
        problems.add("not_turns", row)
        return None
    roles = [str(t.get("role")) for t in turns]
    if any(role not in ROLES for role in roles):
        problems.add("unknown_role", row)
        return None
    if "system" in roles[1:]:
        problems.add("late_system", row)
        return None
    if "assistant" not in roles:
        problems.add("no_assistant_turn", row)
        return None
    last = len(roles) - 1 - roles[::-1].index("assistant")
    kept = [{"role": str(t["role"]), "content": str(t["content"])} for t in turns[: last + 1]]
    if any(t["role"] == "assistant" and not t["content"].strip() for t in kept):
        problems.add("empty_response", row)
        return None
    if any(t["role"] == "user" and not t["content"].strip() for t in kept) or kept[0]["role"] == "assistant":
        problems.add("empty_prompt", row)
        return None
    return kept


def _pair(prompt: Any, response: Any, system: str | None, problems: _Problems, row: int) -> list[dict[str, str]] | None:
    if not (prompt is None or isinstance(prompt, str)) or not (response is None or isinstance(response, str)):
        problems.add("not_text", row)
        return None
    if response is None or not response.strip():
        problems.add("empty_response", row)
        return None
    if prompt is None or not prompt.strip():
        problems.add("empty_prompt", row)
        return None
    head = [{"role": "system", "content": system}] if system else []
    return [*head, {"role": "user", "content": prompt}, {"role": "assistant", "content": response}]


# rule -> (config field it concerns, what the rows have, the `on_invalid` setting that may drop them, if any)
_RULES = {
    "not_turns": ("messages_column", "no list of {role, content} turns", None),
    "unknown_role": ("messages_column", f"a role other than {', '.join(ROLES)}", None),
    "late_system": ("messages_column", "a system turn after the first turn", None),
    "not_text": ("prompt_column", "a prompt or response that is not text", None),
    "no_assistant_turn": ("messages_column", "no assistant turn", "missing_target"),
    "empty_response": ("response_column", "an empty response", "missing_target"),
    "empty_prompt": ("prompt_column", "an empty prompt (or a conversation opening with the assistant)", "empty_input"),
}


def _apply_rules(frame: pd.DataFrame, problems: _Problems, cfg: DatasetConfig, where: str, source: str, report: DataReport) -> None:
    for reason, rows in problems.rows.items():
        field_name, what, setting = _RULES[reason]
        if field_name == "response_column" and cfg.messages_column is not None:
            field_name = "messages_column"
        if setting is not None and getattr(cfg.on_invalid, setting) == "drop":
            report.drop(where, reason, len(rows))
            continue
        bad = frame[frame[ROW].isin(rows)]
        hint = f"; fix them, or set dataset.on_invalid.{setting}: drop" if setting else ""
        many = len(rows) > 1
        raise DataError(
            f"dataset.{field_name}: {len(rows)} row{'s' if many else ''} of {source} ({where}) {'have' if many else 'has'} {what}: "
            f"{_rows(bad)}{hint}"
        )


def _conversations(frame: pd.DataFrame, cfg: DatasetConfig, where: str, source: str, report: DataReport) -> pd.DataFrame:
    """The frame's rows as conversations (column `_MESSAGES`), with their context text and judged response."""
    fields = ("messages_column",) if cfg.messages_column is not None else ("prompt_column", "response_column")
    _check_columns(frame, cfg, source, fields)
    frame = number_rows(frame)
    problems = _Problems()
    if cfg.messages_column is not None:
        turns = [_conversation(v, problems, row) for v, row in zip(frame[cfg.messages_column], frame[ROW], strict=True)]
    else:
        prompts, responses = ([None if _missing(v) else v for v in frame[c]] for c in (cfg.prompt_column, cfg.response_column))
        turns = [_pair(p, r, cfg.system_prompt, problems, row) for p, r, row in zip(prompts, responses, frame[ROW], strict=True)]
    _apply_rules(frame, problems, cfg, where, source, report)
    kept = [t is not None for t in turns]
    out = frame.loc[kept, [ROW]].copy()
    conversations = [t for t in turns if t is not None]
    out[_MESSAGES] = conversations
    out[_CONTEXT] = ["\n".join(turn["content"] for turn in c[:-1]) for c in conversations]
    out[_RESPONSE] = [c[-1]["content"] for c in conversations]
    return out


def _named_splits(
    cfg: DatasetConfig, seed: int, report: DataReport, frames: Mapping[str, tuple[pd.DataFrame, str]]
) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    named: dict[str, pd.DataFrame] = {}
    sources = {k: v[1] for k, v in frames.items()}
    for name, (frame, source) in frames.items():
        if frame.empty:
            raise DataError(f"{source}: dataset is empty")
        report.rows_read += len(frame)
        named[name] = _conversations(frame, cfg, name if name in SPLITS else BEFORE_SPLIT, source, report)
    if all(s in named for s in SPLITS):
        if cfg.max_samples:
            named["train"] = named["train"].head(cfg.max_samples)
        return {s: named[s] for s in SPLITS}, sources
    import pandas as pd

    whole = pd.concat(list(named.values()), ignore_index=True)
    origin = ", ".join(sources.values())
    if whole.empty:
        raise DataError(f"{origin}: no rows left after the data contract")
    if cfg.max_samples:
        whole = whole.sample(n=min(cfg.max_samples, len(whole)), random_state=seed)
    check_split_sizes(len(whole), cfg, origin)
    return _seeded_split(whole, cfg, seed, None), {s: f"{origin} ({s}, seed {seed})" for s in SPLITS}


def load_instruction_data(cfg: DatasetConfig, base_dir: Path, seed: int) -> InstructionData:
    """Read conversations or prompt/response pairs into train/validation/test (given splits, else a seeded split)."""
    report = DataReport("instruction")
    named, sources = _named_splits(cfg, seed, report, read_frames(cfg, base_dir))
    for name, frame in named.items():
        report.split(name).rows_read = len(frame) + sum(report.split(name).dropped.values())
    named = cross_split_overlap(named, _CONTEXT, cfg, report)
    check_evidence(named, cfg, sources, None)
    units = resolve_units(cfg, report, [*named["train"][_CONTEXT], *named["train"][_RESPONSE]])
    splits: dict[str, ConversationSplit] = {}
    for name in SPLITS:
        frame = named[name]
        report.split(name).rows_kept = len(frame)
        responses: Sequence[str] = frame[_RESPONSE].tolist()
        report.split(name).reference_words = LengthStats.of([units.length(r) for r in responses])
        splits[name] = ConversationSplit(
            frame[_CONTEXT].tolist(), list(responses), [[] for _ in responses], sources[name], list(frame[_MESSAGES])
        )
    return InstructionData(**splits, name=cfg.path, report=report)
