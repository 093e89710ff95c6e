"""Masking of the answers the service returns: every free-text string masked in one
scan (:func:`molehunt.pii.mask.mask_texts`), identifiers and times molehunt made kept."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from molehunt.pii.mask import mask_texts

#: Keys whose values are identifiers or times molehunt made, never free text to mask.
KEEP = frozenset(
    {
        "event_id",
        "finding_id",
        "person_id",
        "related",
        "events",
        "time",
        "day",
        "date",
        "first_seen",
        "last_seen",
        "first_read",
        "last_read",
        "detector",
        "table",
        "case_id",
        "kind",
        "ref",
        "added_by",
        "added_at",
        "created_by",
        "created_at",
        "seq",
    }
)


def masked(value: Any, key: str | None = None) -> Any:
    """``value`` (dicts, lists and strings) with every free-text string masked
    (identifier fields kept); the strings are masked in one scan, which a timeline of
    hundreds of summaries needs."""
    texts: list[str] = []
    _collect(value, key, texts)
    return _rebuild(value, key, iter(mask_texts(texts)))


def masked_row(value: dict[str, Any]) -> dict[str, Any]:
    """:func:`masked` of one dict."""
    out = masked(value)
    assert isinstance(out, dict)
    return out


def _collect(value: Any, key: str | None, texts: list[str]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _collect(v, str(k), texts)
    elif isinstance(value, list | tuple):
        for v in value:
            _collect(v, key, texts)
    elif isinstance(value, str) and key not in KEEP:
        texts.append(value)


def _rebuild(value: Any, key: str | None, done: Iterator[str]) -> Any:
    if isinstance(value, dict):
        return {k: _rebuild(v, str(k), done) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rebuild(v, key, done) for v in value]
    if isinstance(value, str) and key not in KEEP:
        return next(done)
    return value
