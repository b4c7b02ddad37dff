"""Training-data augmentation: synonyms (WordNet; Cilin for Chinese), EDA's swap/delete/insert (on jieba's words for
Chinese) and back-translation, behind one `Augmenter` interface. A new method is one module with an `Augmenter`
subclass and one `register_augmenter` line."""

from mlops.data.augment import back_translation, eda, synonym
from mlops.data.augment._base import Augmenter, augmenter_names, build_augmenter, check_methods, register_augmenter
from mlops.data.augment._run import (
    AugmentOutcome,
    AugmentResult,
    augment_training_data,
    build_augmenters,
    log_augmentation,
    methods_in_use,
    nothing_added,
    ready_for_data,
    run_augment,
)
from mlops.data.augment.back_translation import BackTranslation
from mlops.data.augment.eda import RandomDeletion, RandomInsertion, RandomSwap
from mlops.data.augment.synonym import SynonymReplacement
from mlops.data.augment.wordnet import install_wordnet, synonyms, wordnet
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
    "nothing_added",
    "ready_for_data",
    "register_augmenter",
    "run_augment",
    "synonym",
    "synonyms",
    "wordnet",
]
