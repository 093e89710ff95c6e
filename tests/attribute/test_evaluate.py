"""How attribution is scored against the simulator's truth."""

from __future__ import annotations

import pytest

from molehunt.attribute.evaluate import true_rank
from molehunt.attribute.overlap import Suspect


def _suspects(ranks: list[tuple[str, int]]) -> list[Suspect]:
    return [Suspect(rank, person, None, [], [], 1, 1.0, None, None, 0.0) for person, rank in ranks]


CASES = [
    # suspects (person, rank), true people -> (worst true rank, others as high)
    ([("a", 1), ("b", 2)], ["a"], (1, 0)),
    ([("dba", 1), ("a", 1), ("b", 1), ("c", 4)], ["a", "b"], (1, 1)),
    ([("x", 1), ("a", 2), ("b", 3)], ["a", "b"], (3, 1)),
    ([("x", 1), ("a", 2)], ["a", "b"], (None, 0)),  # b read none of it
]


@pytest.mark.parametrize(("ranks", "people", "expected"), CASES)
def test_the_worst_true_rank_and_who_else_ranks_as_high(
    ranks: list[tuple[str, int]], people: list[str], expected: tuple[int | None, int]
) -> None:
    assert true_rank(_suspects(ranks), people) == expected
