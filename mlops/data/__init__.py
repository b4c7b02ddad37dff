"""Datasets: loading (CSV, JSONL, Parquet, `datasets`, demo sets, an `augment` run's output), column mapping, seeded
splits, their MLflow lineage (dataset inputs, digests), and training-data augmentation (`mlops.data.augment`)."""

from mlops.data._lineage import dataset_lineage, log_dataset_inputs, split_digest
from mlops.data._load import key_terms, load_classification_data, load_summarization_data, load_task_data
from mlops.data._read import read_frame
from mlops.data._task_data import SPLITS, ClassificationData, PairSplit, Split, SummarizationData, TaskData
from mlops.data._write import write_task_data
from mlops.data.memo import once_per_split
from mlops.data.report import DataReport, add_token_lengths, log_data_report
from mlops.tracking import RUN_ARTIFACT_SCHEME

__all__ = [
    "RUN_ARTIFACT_SCHEME",
    "SPLITS",
    "ClassificationData",
    "DataReport",
    "PairSplit",
    "Split",
    "SummarizationData",
    "TaskData",
    "add_token_lengths",
    "dataset_lineage",
    "key_terms",
    "load_classification_data",
    "load_summarization_data",
    "load_task_data",
    "log_data_report",
    "log_dataset_inputs",
    "once_per_split",
    "read_frame",
    "split_digest",
    "write_task_data",
]
