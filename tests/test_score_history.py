"""Risk history from the day-run scorer and the stored daily scores: exactly what
ranking each day on its own gives (people, order, scores, reasons, chains,
thresholds), kept up to date by detection passes and never served stale."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from insurer import END, scenario

from molehunt.detect import DETECTORS, DetectionSettings, Finding
from molehunt.detect.runner import DetectReport, write_findings
from molehunt.score import STAGES, RiskRanker, load_findings
from molehunt.store import Store

ZONE = "Asia/Shanghai"
BASE = date(2026, 3, 2)
PEOPLE = ("E1", "E2", "E3", "E4", "E5")


def reference(
    store: Store, s: DetectionSettings, until: date, *, top: int | None = None, all: bool = True
) -> list[dict[str, Any]]:
    """The history as it was computed before stored scores: every day ranked on its
    own by ``score_people`` (through ``rank_rows`` given the findings)."""
    ranker = RiskRanker(store, s, ZONE)
    found = load_findings(store, until)
    first = ranker.first_day()
    assert first is not None
    out = []
    day = first
    while day <= until:
        ranking = ranker.ranking(day, top=top, include_all=all, findings=found)
        out.append({"date": day.isoformat(), "ranking": ranking})
        day += timedelta(days=1)
    return out


def thresholds(store: Store, s: DetectionSettings, first: date, until: date) -> list[Any]:
    ranker = RiskRanker(store, s, ZONE)
    found = load_findings(store, until)
    days = [first + timedelta(days=i) for i in range((until - first).days + 1)]
    return [ranker.threshold(d, found) for d in days]


def stored_thresholds(store: Store, s: DetectionSettings, first: date, until: date) -> list[Any]:
    ranker = RiskRanker(store, s, ZONE)
    ranker.history(until)
    days = [first + timedelta(days=i) for i in range((until - first).days + 1)]
    return [ranker.threshold(d) for d in days]


def stored_rows(store: Store) -> int:
    return int(store.query("SELECT count(*) AS n FROM risk_days")[0]["n"])


# -- the scenario store -------------------------------------------------------------


@pytest.mark.parametrize(
    "s",
    [
        DetectionSettings(),
        DetectionSettings(alert_budget=0.5),
        DetectionSettings(alert_budget=20),
        DetectionSettings(chain_memory_days=1),
    ],
    ids=["fixed", "tight-budget", "loose-budget", "short-memory"],
)
def test_history_on_the_scenario_is_the_day_by_day_ranking(s: DetectionSettings) -> None:
    store = scenario().store
    zone_ranker = RiskRanker(store, s, ZONE)
    first = zone_ranker.first_day()
    assert first is not None
    assert RiskRanker(store, s, ZONE).history(END, include_all=True) == reference(store, s, END)
    assert stored_rows(store) > 0
    assert RiskRanker(store, s, ZONE).history(END) == reference(store, s, END, all=False)
    assert RiskRanker(store, s, ZONE).history(END, top=2) == reference(
        store, s, END, top=2, all=False
    )
    assert stored_thresholds(store, s, first, END) == thresholds(store, s, first, END)
    # The one-day ranking reads the stored day, the same as ranking it alone (its rows
    # too: times in UTC).
    found = load_findings(store, END)
    day = END - timedelta(days=9)
    assert RiskRanker(store, s, ZONE).rank_rows(day, include_all=True) == RiskRanker(
        store, s, ZONE
    ).rank_rows(day, include_all=True, findings=found)
    assert RiskRanker(store, s, ZONE).ranking(day, include_all=True) == RiskRanker(
        store, s, ZONE
    ).ranking(day, include_all=True, findings=found)


def test_history_scored_in_memory_is_the_stored_one() -> None:
    store = scenario().store
    s = DetectionSettings(alert_budget=1)
    ranker = RiskRanker(store, s, ZONE)
    first = ranker.first_day()
    assert first is not None
    stored = ranker.history(END, top=3, include_all=True)
    computed = ranker.computed_history(first, END, 3, True)
    assert [
        [ranker.row_json(r) for r in computed.get(first + timedelta(days=i), [])]
        for i in range((END - first).days + 1)
    ] == [d["ranking"] for d in stored]


# -- a small store written through the real detection path ----------------------------


def new_store(hr: dict[str, tuple[int | None, int | None]] | None = None) -> Store:
    """An in-memory store with one event on ``BASE`` (the first day with data) and the
    HR rows ``hr``: person -> (notice, termination) as day offsets from ``BASE``."""
    store = Store.open(":memory:")
    store.con.execute(
        "INSERT INTO events_auth (event_id, time, source_id, kind, activity) "
        "VALUES ('ev-0', ?, 'src', 'winlog', 'logon')",
        [datetime(BASE.year, BASE.month, BASE.day, 2, tzinfo=UTC)],
    )
    for pid, (notice, leave) in (hr or {}).items():
        store.con.execute(
            "INSERT INTO ref_hr (employee_id, name, department, role, hire_date, notice_date, "
            "termination_date, source_id) VALUES (?, ?, 'sales', 'sales', ?, ?, ?, 'hr.csv')",
            [
                pid,
                f"Name {pid}",
                BASE - timedelta(days=400),
                None if notice is None else BASE + timedelta(days=notice),
                None if leave is None else BASE + timedelta(days=leave),
            ],
        )
    return store


def detect(store: Store, found: list[Finding], as_of: date, since: date | None = None) -> None:
    """Store ``found`` as a detection pass over ``since`` to ``as_of`` would."""
    report = DetectReport(as_of, since, sorted(found, key=lambda f: (f.day, f.finding_id)))
    report.ran = list(DETECTORS)
    write_findings(store, report)


def found_on(
    offset: int,
    detector: str,
    person: str,
    *,
    severity: int = 80,
    related: tuple[str, ...] = (),
    host: str | None = "ws-1",
    details: dict[str, Any] | None = None,
    hour: int = 3,
    key: str = "",
) -> Finding:
    day = BASE + timedelta(days=offset)
    return Finding(
        detector=detector,
        day=day,
        time=datetime(day.year, day.month, day.day, hour, tzinfo=UTC),
        severity=severity,
        person_id=person,
        title=f"{detector} by {person}",
        host=host,
        event_ids=(f"ev-{offset}-{detector}-{person}-{key}",),
        related=related,
        details=details or {},
        key=key,
    )


WORLD = [
    found_on(0, "out_of_scope", "E1"),
    found_on(1, "bulk_read", "E1", host="ws-1"),
    found_on(1, "file_write", "E1", host="ws-1"),
    found_on(2, "disallowed_category", "E2", related=("E3",)),
    found_on(3, "sustained_excess", "E2"),
    found_on(3, "volume_spike", "E2", severity=50),
    found_on(4, "allowed_channel_upload", "E4", details={"stage": "exfiltration"}),
    found_on(6, "bulk_read", "E4", related=("E1",), details={"corroborates": False}),
]


def test_a_detection_pass_rescores_its_days_and_keeps_the_earlier_ones() -> None:
    s = DetectionSettings()
    store = new_store({"E1": (2, 5), "E4": (None, 8)})
    last = BASE + timedelta(days=9)
    detect(store, WORLD, last)
    assert RiskRanker(store, s, ZONE).history(last, include_all=True) == reference(store, s, last)
    # Mark the stored days before the next pass's ``since``: a pass over later days
    # must keep them (not rescored) and rescore every day from ``since`` on.
    since = BASE + timedelta(days=5)
    store.con.execute("UPDATE risk_days SET score = -1 WHERE day < ?", [since])
    marked = store.query("SELECT count(*) AS n FROM risk_days WHERE score = -1")[0]["n"]
    assert marked > 0
    detect(store, [found_on(7, "out_of_scope", "E2"), found_on(8, "bulk_read", "E5")], last, since)
    fresh = RiskRanker(store, s, ZONE).history(last, include_all=True)
    expected = reference(store, s, last)
    assert fresh[5:] == expected[5:]
    assert "E5" in {r["person_id"] for r in fresh[-1]["ranking"]}
    kept = store.query("SELECT count(*) AS n FROM risk_days WHERE score = -1")[0]["n"]
    assert kept == marked
    # The pass dropped E4's bulk read of day 6 (not found again): gone from her reasons.
    (e4,) = [r for r in fresh[7]["ranking"] if r["person_id"] == "E4"]
    assert [r["detector"] for r in e4["reasons"]] == ["allowed_channel_upload"]


def test_stored_scores_are_never_served_stale() -> None:
    s = DetectionSettings()
    store = new_store({"E1": (None, None), "E2": (None, None)})
    last = BASE + timedelta(days=9)
    detect(store, WORLD[:4], last)
    before = RiskRanker(store, s, ZONE).history(last, include_all=True)
    assert before == reference(store, s, last)
    # Other settings: everything scored again under them.
    heavy = DetectionSettings(half_life_days=3)
    assert RiskRanker(store, heavy, ZONE).history(last, include_all=True) == reference(
        store, heavy, last
    )
    # Findings added behind the store's back (no pass recorded): seen by their hash.
    extra = found_on(2, "canary_access", "E2")
    store.con.execute(
        "INSERT INTO findings VALUES (?, ?, ?, ?, ?, ?, NULL, NULL, ?, '{}', [])",
        [extra.finding_id, extra.detector, extra.time, extra.day, 90, "E2", extra.title],
    )
    after = RiskRanker(store, s, ZONE).history(last, include_all=True)
    assert after == reference(store, s, last)
    assert after != before
    # HR changes (E2 leaves on day 3): her shares and departing weight follow.
    store.con.execute(
        "UPDATE ref_hr SET notice_date = ?, termination_date = ? WHERE employee_id = 'E2'",
        [BASE, BASE + timedelta(days=3)],
    )
    assert RiskRanker(store, s, ZONE).history(last, include_all=True) == reference(store, s, last)
    # A new day of data: the table grows to it.
    store.con.execute(
        "INSERT INTO events_auth (event_id, time, source_id, kind, activity) "
        "VALUES ('ev-1', ?, 'src', 'winlog', 'logon')",
        [datetime(last.year, last.month, last.day, 20, tzinfo=UTC) + timedelta(days=2)],
    )
    later = last + timedelta(days=2)
    assert RiskRanker(store, s, ZONE).history(later, include_all=True) == reference(store, s, later)


def test_a_read_only_store_is_scored_in_memory(tmp_path: Any) -> None:
    s = DetectionSettings()
    path = tmp_path / "ro.duckdb"
    with Store.open(path) as store:
        store.con.execute(
            "INSERT INTO events_auth (event_id, time, source_id, kind, activity) "
            "VALUES ('ev-0', ?, 'src', 'winlog', 'logon')",
            [datetime(BASE.year, BASE.month, BASE.day, 2, tzinfo=UTC)],
        )
        detect(store, WORLD, BASE + timedelta(days=9))
        expected = reference(store, s, BASE + timedelta(days=9))
    with Store.open(path, read_only=True) as store:
        got = RiskRanker(store, s, ZONE).history(BASE + timedelta(days=9), include_all=True)
        assert got == expected
        assert stored_rows(store) == 0


# -- random findings -------------------------------------------------------------------


@st.composite
def findings(draw: st.DrawFn) -> list[Finding]:
    out = []
    for i in range(draw(st.integers(1, 25))):
        details: dict[str, Any] = {}
        if draw(st.booleans()):
            details["stage"] = draw(st.sampled_from([*STAGES, "bogus"]))
        if draw(st.integers(0, 3)) == 0:
            details["corroborates"] = False
        out.append(
            found_on(
                draw(st.integers(0, 14)),
                draw(st.sampled_from(sorted(DETECTORS))),
                draw(st.sampled_from(PEOPLE)),
                severity=draw(st.integers(1, 100)),
                related=tuple(draw(st.lists(st.sampled_from(PEOPLE), max_size=2))),
                host=draw(st.sampled_from([None, "ws-1", "ws-2"])),
                details=details,
                hour=draw(st.integers(0, 23)),
                key=str(i),
            )
        )
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    found=findings(),
    hr=st.dictionaries(
        st.sampled_from(PEOPLE),
        st.tuples(st.none() | st.integers(0, 12), st.none() | st.integers(0, 14)),
    ),
    budget=st.none() | st.sampled_from([0.5, 5.0, 100.0]),
    related_share=st.sampled_from([0.5, 1.0]),
)
def test_random_findings_score_the_same_as_day_by_day(
    found: list[Finding],
    hr: dict[str, tuple[int | None, int | None]],
    budget: float | None,
    related_share: float,
) -> None:
    s = DetectionSettings(alert_budget=budget, budget_days=4, related_share=related_share)
    store = new_store(hr)
    last = BASE + timedelta(days=16)
    detect(store, found, last)
    first = BASE
    assert RiskRanker(store, s, ZONE).history(last, include_all=True) == reference(store, s, last)
    assert stored_thresholds(store, s, first, last) == thresholds(store, s, first, last)


@settings(max_examples=200, deadline=None)
@given(found=findings(), chain_days=st.integers(0, 6))
def test_the_linear_chain_and_corroboration_are_the_reference_ones(
    found: list[Finding], chain_days: int
) -> None:
    from molehunt.score import StoredFinding, _corroborated, chain_of
    from molehunt.score.days import _chain, _families

    stored = [
        StoredFinding(
            f.finding_id,
            f.detector,
            f.time,
            f.day,
            f.severity,
            f.person_id,
            f.related,
            f.account,
            f.host,
            f.title,
            f.event_ids,
            f.details,
        )
        for f in sorted(found, key=lambda f: (f.time, f.finding_id))
    ]
    assert _chain(stored, chain_days, 1) == chain_of(stored, chain_days, 1)
    assert _families(stored) == _corroborated(stored)
