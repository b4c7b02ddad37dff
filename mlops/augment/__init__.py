"""Training-data augmentation: WordNet synonyms, EDA's swap/delete/insert and back-translation, behind one
`Augmenter` interface. A new method is one module with an `Augmenter` subclass and one `register_augmenter` line."""

from mlops.augment import back_translation, eda, wordnet
from mlops.augment._base import Augmenter, build_augmenter, register_augmenter
from mlops.augment._run import (
    ARTIFACT_PATH,
    AugmentOutcome,
    AugmentResult,
    augment_training_data,
    build_augmenters,
    log_augmentation,
    methods_in_use,
    run_augment,
)
from mlops.augment._text import fingerprint, normalized
from mlops.augment.back_translation import BackTranslation
from mlops.augment.eda import RandomDeletion, RandomInsertion, RandomSwap
from mlops.augment.wordnet import SynonymReplacement, WordNetMissing, install_wordnet, synonyms

__all__ = [
    "ARTIFACT_PATH",
    "AugmentOutcome",
    "AugmentResult",
    "Augmenter",
    "BackTranslation",
    "RandomDeletion",
    "RandomInsertion",
    "RandomSwap",
    "SynonymReplacement",
    "WordNetMissing",
    "augment_training_data",
    "back_translation",
    "build_augmenter",
    "build_augmenters",
    "eda",
    "fingerprint",
    "install_wordnet",
    "log_augmentation",
    "methods_in_use",
    "normalized",
    "register_augmenter",
    "run_augment",
    "synonyms",
    "wordnet",
]
