"""How a reader's (or a group's) overlap with a leaked file is scored and explained:
the surprise and likelihood bits, the cost of naming suspects, and the :class:`Suspect`
and :class:`Group` results (the reasoning is in :mod:`molehunt.attribute.overlap`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Share of a leaked file assumed to come from elsewhere (noise, other sources).
NOISE = 0.05
#: Bits of surprise an overlap needs beyond the cost of naming the suspects among
#: the readers before it counts as evidence: the best of many readers' overlaps
#: passes ``log2 M`` by ``t`` bits with chance about ``2**-t`` (10 bits: 1 in 1,000).
SIGNIFICANCE = 10.0


@dataclass(slots=True)
class Suspect:
    """One person (or an account nobody could be tied to) and the leaked records they read."""

    rank: int
    person_id: str | None
    name: str | None
    accounts: list[dict[str, Any]]
    hosts: list[dict[str, Any]]
    covered: int
    coverage: float
    first_read: str | None
    last_read: str | None
    score: float
    evidence: list[dict[str, Any]] = field(default_factory=list)
    group: Group | None = None
    bits: float = 0.0  # surprise of the overlap the score rests on (own or group's)
    explanation: str = ""

    @property
    def explained(self) -> int:
        """Leaked records covered by the explanation the score belongs to."""
        return self.group.covered if self.group is not None else self.covered

    def as_json(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "person_id": self.person_id,
            "name": self.name,
            "accounts": self.accounts,
            "hosts": self.hosts,
            "covered": self.covered,
            "coverage": self.coverage,
            "first_read": self.first_read,
            "last_read": self.last_read,
            "score": self.score,
            "evidence": self.evidence,
            "group": None if self.group is None else self.group.as_json(),
            "bits": self.bits,
            "explanation": self.explanation,
        }


@dataclass(frozen=True, slots=True)
class Group:
    """People linked by a shared account or host whose reads together explain the leak."""

    people: tuple[str, ...]
    links: tuple[str, ...]  # the accounts ("system:account") and hosts they share
    read: int
    covered: int
    coverage: float
    likelihood: float  # bits: the leaked set drawn from their reads, not the base
    bits: float = 0.0  # surprise of their overlap (:func:`surprise_bits`)
    score: float = 0.0  # those bits less the cost of naming every member

    def as_json(self) -> dict[str, Any]:
        return {
            "people": list(self.people),
            "links": list(self.links),
            "read": self.read,
            "covered": self.covered,
            "coverage": self.coverage,
            "bits": self.bits,
            "score": self.score,
        }


def likelihood_score(covered: int, leaked: int, read: int, clients: int) -> float:
    """Bits of evidence that the leaked set came from what a reader read (overlap module doc)."""
    if leaked == 0 or clients == 0:
        return 0.0
    read = max(read, covered, 1)
    hit = math.log2((1 - NOISE) * clients / read + NOISE)
    return covered * hit + (leaked - covered) * math.log2(NOISE)


def surprise_bits(covered: int, leaked: int, read: int, clients: int) -> float:
    """``-log2 P(X >= covered)``, ``X`` hypergeometric: how many of ``leaked`` records
    drawn from ``clients`` fall among the ``read`` ones by chance (overlap module
    doc)."""
    n, k = leaked, covered
    big_n = max(clients, read, n)
    r = max(read, k)
    low, high = max(0, n - (big_n - r)), min(n, r)
    if n <= 0 or k <= low:
        return 0.0
    if k > high:
        k = high
    mean = n * r / big_n
    spread = math.sqrt(max(mean * (1 - r / big_n) * (big_n - n) / max(big_n - 1, 1), 0.0))
    width = int(12 * spread) + 40

    def log_pmf(j: int) -> float:
        return (
            _log_choose(r, j) + _log_choose(big_n - r, n - j) - _log_choose(big_n, n)
        ) / math.log(2)

    if k > mean:
        # Terms fall from k upwards: sum a window of them (the rest is negligible).
        j = np.arange(k, min(high, k + width) + 1, dtype=np.float64)
        ratios = (r - j[:-1]) * (n - j[:-1]) / ((j[:-1] + 1) * (big_n - r - n + j[:-1] + 1))
        logs = log_pmf(k) + np.concatenate(([0.0], np.cumsum(np.log2(ratios))))
        top = float(logs.max())
        return max(0.0, -(top + math.log2(float(np.exp2(logs - top).sum()))))
    # P(X >= k) = 1 - P(X <= k - 1); terms fall from k - 1 downwards.
    j = np.arange(k - 1, max(low, k - 1 - width) - 1, -1, dtype=np.float64)
    ratios = j[:-1] * (big_n - r - n + j[:-1]) / ((r - j[:-1] + 1) * (n - j[:-1] + 1))
    logs = log_pmf(k - 1) + np.concatenate(([0.0], np.cumsum(np.log2(ratios))))
    below = min(float(np.exp2(logs).sum()), 1.0)
    return max(0.0, -math.log2(max(1.0 - below, 1e-300)))


def _log_choose(a: int, b: int) -> float:
    return math.lgamma(a + 1) - math.lgamma(b + 1) - math.lgamma(a - b + 1)


def naming_cost(readers: int, people: int) -> float:
    """Bits an overlap must exceed to name ``people`` among ``readers`` (overlap module doc)."""
    return people * math.log2(max(readers, 2)) + SIGNIFICANCE


def explanation(
    covered: int, leaked: int, read: int, clients: int, bits: float, readers: int, people: int
) -> str:
    """What a suspect's score rests on, as investigators read it."""
    share = read / clients if clients else 0.0
    text = (
        f"read {covered:,} of the {leaked:,} leaked records; "
        f"reads {_percent(share)} of the client base ({read:,} of {clients:,}): "
        f"{bits:,.0f} bits"
    )
    if bits <= 0:
        if read >= clients:
            return text + " (reading every client covers any file: no evidence)"
        return text + " (no more overlap than chance gives: no evidence)"
    cost = naming_cost(readers, people)
    named = "one" if people == 1 else str(people)
    score = max(0.0, bits - cost)
    text += (
        f", less {cost:,.1f} bits for picking {named} of the {readers:,} readers "
        f"of these records with a margin against luck"
    )
    if score == 0:
        return text + ": not evidence"
    return text + f": {score:,.0f} bits"


def _percent(share: float) -> str:
    if share >= 0.1 or share == 0:
        return f"{share:.0%}"
    return f"{share:.1%}" if share >= 0.001 else f"{share:.2%}"
