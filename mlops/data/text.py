"""Text normalisation shared by the data contract (cross-split overlaps) and augmentation (near-duplicates): texts
equal after it are treated as the same example."""

from __future__ import annotations

import hashlib
import re


def normalized(text: str) -> str:
    """Lowercase, punctuation stripped, whitespace collapsed: texts equal here count as near-duplicates."""
    return " ".join(re.sub(r"[^\w\s]|_", "", text.lower()).split())


def fingerprint(text: str) -> str:
    """A hash of the normalised text."""
    return hashlib.blake2b(normalized(text).encode("utf-8"), digest_size=16).hexdigest()
