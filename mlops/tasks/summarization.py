"""Summarisation: a causal LM trained on prompt + summary; ROUGE-1/2/L and key-term recall on generated summaries
(on test it logs no loss: only generated summaries are scored there)."""

from mlops.tasks._cost import COST_METRICS, GENERATION_COST_METRICS
from mlops.tasks._spec import Column, ServedInput, ServingSpec, TaskSpec, bounded, loss

SPEC = TaskSpec(
    name="summarization",
    columns=(
        Column("document_column", "input"),
        Column("summary_column", "target"),
        Column("key_terms_column", "extra", required=False),
    ),
    stratify=False,
    drop_reasons=("missing_summary", "empty_document", "cross_split_overlap"),
    validation=(
        bounded("eval", "rougeL"),
        bounded("eval", "rouge1"),
        bounded("eval", "rouge2"),
        bounded("eval", "key_term_recall"),
        loss("eval"),
    ),
    test=(
        bounded("test", "rougeL", per_example=True),
        bounded("test", "rouge1"),
        bounded("test", "rouge2"),
        bounded("test", "key_term_recall", per_example=True),
    ),
    base="causal_lm",
    peft_task_type="CAUSAL_LM",
    generates=True,
    sequence_fields=("generation.max_document_tokens", "generation.max_summary_tokens"),
    sequence_extra_tokens=1,  # the end token after the summary
    per_example="values",
    serving=ServingSpec(
        "_pyfunc_summarizer.py",
        "AdapterSummarizer",
        (ServedInput("document"),),
        ("summary",),
        "The Tenant shall pay the Landlord a monthly rent of USD 1,200 no later than the 5th day of each month.",
    ),
    loader="mlops.data:load_summarization_data",
    baseline="mlops.evaluate.baselines:lead_baseline",
    trainer="mlops.train.tasks.summarization:Summarization",
    cost=COST_METRICS + GENERATION_COST_METRICS,
)
