"""Bilingual labels: a label is a string or a locale map such as ``{"en": ..., "zh-CN": ...}``."""
from __future__ import annotations

LOCALES = ("en", "zh-CN")


def text_of(label: str | dict | None, locale: str = "en") -> str:
    """The label in ``locale``, falling back to English, then to any language given."""
    if label is None:
        return ""
    if isinstance(label, str):
        return label
    return label.get(locale) or label.get("en") or next(iter(label.values()), "")
