"""Keys from labels: ``Deal amount`` → ``deal_amount``, ``商机金额`` → ``shang_ji_jin_e``."""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from pypinyin import lazy_pinyin

KEY_MAX = 64
_NON_KEY = re.compile(r"[^a-z0-9]+")


def suggest_key(label: str, taken: Iterable[str] = (), fallback: str = "field") -> str:
    """A snake_case key for ``label`` that is not in ``taken`` (Chinese is spelled in pinyin)."""
    words = " ".join(lazy_pinyin(label or ""))
    ascii_text = unicodedata.normalize("NFKD", words).encode("ascii", "ignore").decode().lower()
    base = _NON_KEY.sub("_", ascii_text).strip("_") or fallback
    if not base[0].isalpha():
        base = f"{fallback}_{base}"
    base = base[:KEY_MAX].rstrip("_")
    used = set(taken)
    key, n = base, 2
    while key in used:
        suffix = f"_{n}"
        key = base[:KEY_MAX - len(suffix)].rstrip("_") + suffix
        n += 1
    return key
