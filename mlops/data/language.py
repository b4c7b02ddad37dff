"""The script a loaded dataset is written in, and the tokenizer its metrics and report use: resolved once, when the
data is loaded (`dataset.text_tokenizer`), and carried on its report."""

from __future__ import annotations

from mlops.data._task_data import SummarizationData, TaskData
from mlops.data.text import TextTokenizer, no_space_share, resolve_text_tokenizer


def training_texts(data: TaskData) -> list[str]:
    """The texts a language is read from: the training inputs, and for summarisation the reference summaries too."""
    if isinstance(data, SummarizationData):
        return data.train.documents + data.train.summaries
    return list(data.train.texts)


def text_tokenizer_of(data: TaskData) -> TextTokenizer:
    """The tokenizer resolved when `data` was loaded; `auto` from its training texts for data built by hand."""
    if data.report is not None:
        return TextTokenizer(data.report.text_tokenizer)
    return resolve_text_tokenizer("auto", training_texts(data))


def no_space_share_of(data: TaskData) -> float:
    """The share of the training texts' letters in scripts written without spaces (Chinese, Japanese, Thai)."""
    return no_space_share(training_texts(data))
