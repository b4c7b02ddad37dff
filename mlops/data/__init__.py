"""Datasets: loading (CSV, JSONL, Parquet, `datasets`, demo sets, an `augment` run's output), column mapping, seeded
splits, their MLflow lineage (dataset inputs, digests), the tokenisation text metrics and reports count in
(`mlops.data.text`), and training-data augmentation (`mlops.data.augment`)."""

from mlops.data._lineage import dataset_lineage, log_dataset_inputs, split_digest
from mlops.data._load import key_terms, load_classification_data, load_summarization_data, load_task_data
from mlops.data._read import read_frame
from mlops.data._task_data import SPLITS, ClassificationData, PairSplit, Split, SummarizationData, TaskData
from mlops.data._write import write_task_data
from mlops.data.language import no_space_share_of, text_tokenizer_of, training_texts
from mlops.data.memo import once_per_split
from mlops.data.report import DataReport, add_token_lengths, log_data_report
from mlops.data.text import TEXT_TOKENIZERS, TextTokenizer, resolve_text_tokenizer, tokenize
from mlops.tracking import RUN_ARTIFACT_SCHEME

__all__ = [
    "RUN_ARTIFACT_SCHEME",
    "SPLITS",
    "TEXT_TOKENIZERS",
    "ClassificationData",
    "DataReport",
    "PairSplit",
    "Split",
    "SummarizationData",
    "TaskData",
    "TextTokenizer",
    "add_token_lengths",
    "dataset_lineage",
    "key_terms",
    "load_classification_data",
    "load_summarization_data",
    "load_task_data",
    "log_data_report",
    "log_dataset_inputs",
    "no_space_share_of",
    "once_per_split",
    "read_frame",
    "resolve_text_tokenizer",
    "split_digest",
    "text_tokenizer_of",
    "tokenize",
    "training_texts",
    "write_task_data",
]
