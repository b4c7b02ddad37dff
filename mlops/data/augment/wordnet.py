"""WordNet 3.0 for nltk, offline: install it from Debian's packages and look up synonyms (`synonym` and `insert`
replace and insert them: `mlops.data.augment.synonym`, `mlops.data.augment.eda`).

Debian's `wordnet-base` and `wordnet-sense-index` hold the Princeton database; nltk wants it under
`<nltk data dir>/corpora/wordnet/` (it refuses paths outside its data dirs) plus a `lexnames` file
Debian does not ship. `install_wordnet` does both, into `<venv>/nltk_data`, which nltk searches by default.
"""

from __future__ import annotations

import functools
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from mlops.errors import WordNetMissing
from mlops.progress import step

DEBIAN_DIR = Path("/usr/share/wordnet")
DEBIAN_COPYRIGHT = Path("/usr/share/doc/wordnet-base/copyright")
APT_COMMAND = "apt-get install -y wordnet-base wordnet-sense-index"
INSTALL_COMMAND = f"sudo {APT_COMMAND} && mlops augment --install-wordnet"
# nltk's WordNetCorpusReader reads these, plus `lexnames`.
DATABASE_FILES = (
    "cntlist.rev",
    "index.sense",
    "index.adj",
    "index.adv",
    "index.noun",
    "index.verb",
    "data.adj",
    "data.adv",
    "data.noun",
    "data.verb",
    "adj.exc",
    "adv.exc",
    "noun.exc",
    "verb.exc",
)
# The lexicographer files of WordNet 3.0 in number order (lexnames(5WN)); line N is `N<TAB>name<TAB>pos`.
LEXNAMES = (
    *("adj.all", "adj.pert", "adv.all"),
    *("noun.Tops", "noun.act", "noun.animal", "noun.artifact", "noun.attribute", "noun.body", "noun.cognition"),
    *("noun.communication", "noun.event", "noun.feeling", "noun.food", "noun.group", "noun.location", "noun.motive"),
    *("noun.object", "noun.person", "noun.phenomenon", "noun.plant", "noun.possession", "noun.process", "noun.quantity"),
    *("noun.relation", "noun.shape", "noun.state", "noun.substance", "noun.time"),
    *("verb.body", "verb.change", "verb.cognition", "verb.communication", "verb.competition", "verb.consumption"),
    *("verb.contact", "verb.creation", "verb.emotion", "verb.motion", "verb.perception", "verb.possession"),
    *("verb.social", "verb.stative", "verb.weather", "adj.ppl"),
)
_POS_NUMBER = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}


def default_data_dir() -> Path:
    """`<sys.prefix>/nltk_data`: the virtual environment's own nltk data dir, on nltk's default search path."""
    return Path(sys.prefix) / "nltk_data"


def install_wordnet(source: Path = DEBIAN_DIR, data_dir: Path | None = None) -> Path:
    """Copy the WordNet 3.0 database from `source` into `<data_dir>/corpora/wordnet`, write `lexnames`, and
    check that nltk reads it. Replaces an earlier copy whole; returns the installed folder."""
    missing = [name for name in DATABASE_FILES if not (source / name).is_file()]
    if missing:
        raise WordNetMissing(f"no WordNet 3.0 database in {source} (missing {', '.join(missing)}): run `sudo {APT_COMMAND}`")
    target = (data_dir or default_data_dir()) / "corpora" / "wordnet"
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".wordnet.", dir=target.parent))
    try:
        for name in DATABASE_FILES:
            shutil.copyfile(source / name, staging / name)
        lines = (f"{i:02d}\t{name}\t{_POS_NUMBER[name.split('.')[0]]}\n" for i, name in enumerate(LEXNAMES))
        (staging / "lexnames").write_text("".join(lines), encoding="ascii")
        if DEBIAN_COPYRIGHT.is_file():  # the WordNet licence asks for its notice on every copy
            shutil.copyfile(DEBIAN_COPYRIGHT, staging / "LICENSE")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    wordnet.cache_clear()
    synonyms.cache_clear()
    return target


@functools.lru_cache(maxsize=1)
def wordnet() -> Any:
    """nltk's WordNet reader, loaded once; `WordNetMissing` with the install command when nltk cannot find the database."""
    import nltk
    from nltk.corpus import wordnet as reader

    try:
        with step("loading WordNet"):  # nltk reads the whole index: seconds
            reader.ensure_loaded()
    except LookupError:
        raise WordNetMissing(
            f"WordNet 3.0 is not installed for nltk (searched {', '.join(nltk.data.path)}): run `{INSTALL_COMMAND}`"
        ) from None
    return reader


@functools.lru_cache(maxsize=100_000)
def synonyms(word: str) -> tuple[str, ...]:
    """Lemmas sharing a WordNet synset with `word` (any part of speech), in WordNet's order: single lowercase
    words only (no phrases or names), and neither `word` nor its base forms (not "payment" for "payments")."""
    reader = wordnet()
    word = word.lower()
    same = {word} | {reader.morphy(word, pos) for pos in ("n", "v", "a", "r")}
    found: dict[str, None] = {}
    for synset in reader.synsets(word):
        for lemma in synset.lemma_names():
            if lemma.isalpha() and lemma.islower() and lemma not in same:
                found[lemma] = None
    return tuple(found)
