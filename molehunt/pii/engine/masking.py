"""A finding as users see it, and the masking of the value it found."""

from __future__ import annotations

from dataclasses import dataclass

from molehunt.pii.engine.common import Confidence


@dataclass(frozen=True, slots=True)
class PiiFinding:
    """One piece of personal data found. ``value`` is the clear value: keep it in
    memory, print it only through :func:`mask`."""

    type: str
    confidence: Confidence
    start: int  # byte offset in the scanned (UTF-8, folded) text
    end: int
    value: str
    validated: bool
    context: bool

    def __repr__(self) -> str:
        return (
            f"PiiFinding({self.type}, {self.confidence}, {self.start}:{self.end}, "
            f"{mask(self.value, self.type)!r})"
        )


def mask(value: str, kind: str = "") -> str:
    """``310***********123X``: enough to tell values apart, never the value."""
    n = len(value)
    if kind == "chinese_name":
        return value[:1] + "*" * (n - 1)
    if kind == "china_address":
        return value[:6] + "*" * max(n - 6, 0)
    if kind == "email" and "@" in value:
        local, domain = value.split("@", 1)
        keep = 1 if len(local) > 1 else 0  # a one-letter name is hidden whole
        return local[:keep] + "*" * (len(local) - keep) + "@" + domain
    if n >= 8:
        return value[:3] + "*" * (n - 7) + value[-4:]
    if n >= 3:
        return value[0] + "*" * (n - 2) + value[-1]
    return value[:1] + "*" * (n - 1)
