"""Instruction and chat data: a causal LM trained on conversations (or prompt/response pairs) with the loss on
assistant turns only; exact match, token F1 (as SQuAD scores them) and ROUGE-L on the generated last assistant turn."""

from mlops.tasks._cost import COST_METRICS, GENERATION_COST_METRICS
from mlops.tasks._spec import Column, ServedInput, ServingSpec, TaskSpec, bounded, loss

SPEC = TaskSpec(
    name="instruction",
    columns=(
        Column("messages_column", "input", required=False),
        Column("prompt_column", "input", required=False),
        Column("response_column", "target", required=False),
    ),
    stratify=False,
    drop_reasons=("no_assistant_turn", "empty_response", "empty_prompt", "cross_split_overlap"),
    validation=(
        bounded("eval", "token_f1"),
        bounded("eval", "exact_match"),
        bounded("eval", "rougeL"),
        loss("eval"),
    ),
    test=(
        bounded("test", "token_f1", per_example=True),
        bounded("test", "exact_match", per_example=True),
        bounded("test", "rougeL", per_example=True),
    ),
    base="causal_lm",
    peft_task_type="CAUSAL_LM",
    generates=True,
    sequence_fields=("generation.max_document_tokens", "generation.max_summary_tokens"),
    sequence_extra_tokens=1,  # the end-of-turn token after a response
    per_example="values",
    serving=ServingSpec(
        "_pyfunc_instruction.py",
        "AdapterInstructor",
        (ServedInput("messages", "turns"), ServedInput("prompt")),  # a conversation to continue, or one question
        ("response",),
        "Who pays the rent, and by when?",
    ),
    loader="mlops.data.instruction:load_instruction_data",
    baseline="mlops.evaluate.instruction:retrieval_baseline",
    trainer="mlops.train.tasks.instruction:Instruction",
    cost=COST_METRICS + GENERATION_COST_METRICS,
)
