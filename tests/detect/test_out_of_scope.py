"""Out of scope: exports of other portfolios fire; one's own list and the auditor do not."""

from __future__ import annotations

from datetime import date

import pytest
from insurer import scenario

from molehunt.detect.out_of_scope import _surprising_days, peer_values
from molehunt.detect.surprise import PeerDays, TeamLift

QUIET = [
    ("E009", "her own short client list, every day"),
    ("E008", "reads a lot, but only his own clients"),
    ("E006", "the auditor reads across portfolios by design (owns none)"),
]


@pytest.mark.parametrize("day", [date(2026, 5, 18), date(2026, 5, 19)])
def test_departing_person_exporting_other_portfolios_is_flagged(day: date) -> None:
    (finding,) = scenario().of("out_of_scope", "E007", day)
    assert finding.details["clients"] == 50
    assert finding.details["portfolios"] == 5


@pytest.mark.parametrize(("person", "case"), QUIET)
def test_reads_within_scope_are_not_flagged(person: str, case: str) -> None:
    assert not scenario().of("out_of_scope", person), case


# -- a small team or a young store: too few peer days for one day to say enough ----------


def _row(actor: str, day: date, clients: int, reads: int, lift: float = 1.0) -> dict[str, object]:
    return {"actor": actor, "day": day, "clients": clients, "reads": reads, "team_lift": lift}


def _small_team() -> tuple[PeerDays, PeerDays]:
    """Eight sales people over six days: at most 42 other people's days, so one day
    says at most log2(43) < 6 bits, below ``scope_min_bits``."""
    values = [
        (f"S{i}", "sales", date(2026, 5, d), float(i % 3)) for i in range(8) for d in range(1, 7)
    ]
    return PeerDays(values, 30), PeerDays(values, 30)


@pytest.mark.parametrize("days", [2, 3])
def test_days_beyond_every_peer_add_their_bits(days: int) -> None:
    rows = [_row("S0", date(2026, 5, d), 40, 40) for d in range(4, 4 + days)]
    found = _surprising_days(rows, _small_team(), 6.0, 10)
    assert [r["day"] for r in found] == [date(2026, 5, d) for d in range(5, 4 + days)]
    assert all(r["bits"] >= 6.0 and "such days" in r["population"] for r in found)


def test_one_day_beyond_every_peer_in_a_small_team_is_not_enough() -> None:
    assert _surprising_days([_row("S0", date(2026, 5, 4), 40, 40)], _small_team(), 6.0, 10) == []


def test_days_a_peer_matched_never_add() -> None:
    rows = [_row("S1", date(2026, 5, d), 2, 2) for d in range(2, 7)]
    assert _surprising_days(rows, _small_team(), 6.0, 10) == []


def test_a_day_the_whole_team_read_more_is_counted_over_the_lift() -> None:
    rows = [_row("S0", date(2026, 5, d), 6, 6, lift=3.0) for d in range(4, 7)]
    assert _surprising_days(rows, _small_team(), 6.0, 10) == []
    alone = [_row("S0", date(2026, 5, d), 6, 6) for d in range(4, 7)]
    assert _surprising_days(alone, _small_team(), 6.0, 10)


def test_days_read_through_someone_elses_account_reach_no_peer_value() -> None:
    """A ring of four sales people reading thousands of other portfolios' clients a
    day through a departed colleague's account must not make a leaver's hundreds
    ordinary among sales days (tuning world 210): those days reach no value, while the
    ring's own days are still judged by their counts."""
    days = [date(2026, 5, d) for d in range(1, 21)]
    daily = [{"actor": f"S{i}", "role": "sales", "day": d} for i in range(40) for d in days]
    ring = {(f"S{i}", d) for i in range(4) for d in days}
    counts = {k: {"clients": 4000, "reads": 20} for k in ring}
    counts[("S9", days[-1])] = {"clients": 400, "reads": 8}
    leaver = _row("S9", days[-1], 400, 8)
    with_ring = PeerDays(peer_values(daily, counts, set(), "clients"), 30)
    without = PeerDays(peer_values(daily, counts, ring, "clients"), 30)
    assert with_ring.surprise("S9", days[-1], 400.0).reach == 80
    assert without.surprise("S9", days[-1], 400.0).reach == 0
    reads = PeerDays(peer_values(daily, counts, ring, "reads"), 30)
    assert _surprising_days([leaver], (without, reads), 6.0, 10)
    reads_with_ring = PeerDays(peer_values(daily, counts, set(), "reads"), 30)
    assert not _surprising_days([dict(leaver)], (with_ring, reads_with_ring), 6.0, 10)
    # The ring's own day is still judged by its count.
    assert _surprising_days([_row("S0", days[-1], 4000, 20)], (without, reads), 6.0, 10)


# -- the team's lift: a campaign week lifts the team; one collector lifts nobody -------

TEAM = ("sales", "Sales", "t1")


def _team_days(lifted: set[str], factor: float) -> TeamLift:
    """Four team mates reading 10 a day for ten days; on the 11th, ``lifted`` read
    ``factor`` times that."""
    rows = [
        (who, TEAM, date(2026, 5, d), 10.0 * (factor if d == 11 and who in lifted else 1.0))
        for who in ("A", "B", "C", "D")
        for d in range(1, 12)
    ]
    rows.append(("X", ("sales", "Sales", "t2"), date(2026, 5, 11), 10.0))
    return TeamLift(rows, 30, 5)


def test_a_campaign_lifts_every_member_by_their_team_mates() -> None:
    lift = _team_days({"A", "B", "C", "D"}, 3.0)
    assert lift.of("A", date(2026, 5, 11)) == pytest.approx(3.0)
    assert lift.of("A", date(2026, 5, 10)) == pytest.approx(1.0)


def test_one_person_reading_more_lifts_no_team_mate_nor_themselves() -> None:
    lift = _team_days({"A"}, 4.0)
    assert lift.of("A", date(2026, 5, 11)) == pytest.approx(1.0)
    assert lift.of("B", date(2026, 5, 11)) == pytest.approx(1.0)
    pair = _team_days({"A", "B"}, 4.0)  # two of four: the others' median stays 1
    assert pair.of("A", date(2026, 5, 11)) == pytest.approx(1.0)


def test_no_lift_without_a_team_mate_with_a_norm() -> None:
    lift = _team_days({"A", "B", "C", "D"}, 3.0)
    assert lift.of("X", date(2026, 5, 11)) == 1.0
    young = TeamLift([(w, TEAM, date(2026, 5, 11), 30.0) for w in "ABC"], 30, 5)
    assert young.of("A", date(2026, 5, 11)) == 1.0


def test_a_team_of_two_lifts_by_the_other() -> None:
    rows = [
        (who, TEAM, date(2026, 5, d), 10.0 * (2.5 if d == 11 else 1.0))
        for who in ("A", "B")
        for d in range(1, 12)
    ]
    assert TeamLift(rows, 30, 5).of("A", date(2026, 5, 11)) == pytest.approx(2.5)
