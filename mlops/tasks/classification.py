"""Text classification: a sequence classifier with a new head; macro F1, precision and recall."""

from mlops.tasks._cost import COST_METRICS
from mlops.tasks._spec import Column, ServedInput, ServingSpec, TaskSpec, bounded, loss

SPEC = TaskSpec(
    name="classification",
    columns=(Column("text_column", "input"), Column("label_column", "target")),
    stratify=True,
    drop_reasons=("missing_label", "empty_text", "cross_split_overlap"),
    validation=(bounded("eval", "f1"), bounded("eval", "precision"), bounded("eval", "recall"), loss("eval")),
    test=(
        bounded("test", "f1", per_example=True),
        bounded("test", "precision", per_example=True),
        bounded("test", "recall", per_example=True),
        loss("test"),
    ),
    base="classifier",
    peft_task_type="SEQ_CLS",
    generates=False,
    sequence_fields=("model.max_length",),
    per_example="predictions",
    serving=ServingSpec(
        "_pyfunc_classifier.py",
        "AdapterClassifier",
        (ServedInput("text"),),
        ("label", "probability"),
        "Your transfer of $20 to Anna was completed",
    ),
    loader="mlops.data:load_classification_data",
    baseline="mlops.evaluate.baselines:tfidf_baseline",
    trainer="mlops.train.tasks.classification:Classification",
    cost=COST_METRICS,
)
