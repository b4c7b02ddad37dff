"""The augmenter interface, and the registry that maps a method name (`augment.methods`) to its builder."""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from mlops.errors import ConfigError

if TYPE_CHECKING:
    from mlops.config import AugmentConfig
    from mlops.data.text import TextLanguage


class Augmenter(ABC):
    """One augmentation method: new wordings of texts that keep their meaning, hence their label or summary."""

    name: str

    @abstractmethod
    def augment(self, texts: Sequence[str], protected: Sequence[frozenset[str]], rng: random.Random) -> list[str]:
        """One new text per input, in order, drawing all randomness from `rng`.

        `protected[i]` holds lowercase words of `texts[i]` that must survive unchanged (the configured
        protected words, a summary's key terms), on top of the entity-like tokens every method keeps.
        A text returned unchanged means the method found nothing to change; the caller drops it.
        """

    def ready_for(self, language: TextLanguage) -> None:
        """Load what the method needs for texts in `language` (the training texts'), or raise `ConfigError` with one
        line naming the method and the language share when it cannot handle them. The default handles any text."""
        del language


_BUILDERS: dict[str, Callable[[AugmentConfig], Augmenter]] = {}


def register_augmenter(name: str, build: Callable[[AugmentConfig], Augmenter]) -> None:
    """Make `name` usable in `augment.methods`; `build` makes the augmenter from the config's settings."""
    _BUILDERS[name] = build


def augmenter_names() -> list[str]:
    """Every method `augment.methods` may name: the registry is the one list of them."""
    return sorted(_BUILDERS)


def check_methods(methods: Sequence[str]) -> None:
    """Every unknown method name at once, naming its position in `augment.methods`."""
    errors = [
        f"augment.methods[{i}]: unknown method {name!r}; use one of {', '.join(augmenter_names())}"
        for i, name in enumerate(methods)
        if name not in _BUILDERS
    ]
    if errors:
        raise ConfigError(errors)


def build_augmenter(name: str, config: AugmentConfig) -> Augmenter:
    """The augmenter for method `name`; loading what it needs (WordNet, models) fails here, with the fix."""
    check_methods([name])
    return _BUILDERS[name](config)
