"""Training-data augmentation: WordNet synonyms, EDA's swap/delete/insert and back-translation, behind one
`Augmenter` interface. A new method is one module with an `Augmenter` subclass and one `register_augmenter` line."""

from mlops.data.augment import back_translation, eda
from mlops.data.augment._base import Augmenter, augmenter_names, build_augmenter, check_methods, register_augmenter
from mlops.data.augment._run import (
    AugmentOutcome,
    AugmentResult,
    augment_training_data,
    build_augmenters,
    log_augmentation,
    methods_in_use,
    run_augment,
)
from mlops.data.augment.back_translation import BackTranslation
from mlops.data.augment.eda import RandomDeletion, RandomInsertion, RandomSwap
from mlops.data.augment.wordnet import SynonymReplacement, install_wordnet, synonyms, wordnet
from mlops.data.text import fingerprint, normalized

__all__ = [
    "AugmentOutcome",
    "AugmentResult",
    "Augmenter",
    "BackTranslation",
    "RandomDeletion",
    "RandomInsertion",
    "RandomSwap",
    "SynonymReplacement",
    "augment_training_data",
    "augmenter_names",
    "back_translation",
    "build_augmenter",
    "build_augmenters",
    "check_methods",
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
