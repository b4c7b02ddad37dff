"""PEFT's model wrapping, without a deprecation warning the user cannot act on."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def peft_wrapping() -> Iterator[None]:
    """Wrap a model with PEFT (`get_peft_model`, `PeftModel.from_pretrained`) inside this block.

    PEFT 0.21's `PeftModel.__init__` reads the base model's `is_gradient_checkpointing`, which transformers 5 keeps only
    as a deprecated alias: it warns, then returns `is_activation_checkpointing`, so PEFT gets the right answer. The read
    is PEFT's, not ours (the toolkit asks for `activation_checkpointing` itself), so exactly that warning is hidden here,
    and only while PEFT wraps the model.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        yield
