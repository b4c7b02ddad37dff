"""Fine-tuning tasks behind one interface (`Task`), each found through its spec (`mlops.tasks`, `task_for`)."""

from mlops.train.tasks import classification, summarization
from mlops.train.tasks._base import Scores, Task, TaskInputs, TrainingSets, task_for
from mlops.train.tasks.classification import Classification, build_classifier
from mlops.train.tasks.summarization import EncodeStats, Summarization, build_causal_lm, encode_pairs, make_collator

__all__ = [
    "Classification",
    "EncodeStats",
    "Scores",
    "Summarization",
    "Task",
    "TaskInputs",
    "TrainingSets",
    "build_causal_lm",
    "build_classifier",
    "classification",
    "encode_pairs",
    "make_collator",
    "summarization",
    "task_for",
]
