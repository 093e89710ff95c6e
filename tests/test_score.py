"""Person risk: weights, decay, repeats, corroboration, departing, the ranking's shape."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime

import pytest
from insurer import END, START, scenario

from molehunt.detect import DetectionSettings
from molehunt.score import RiskRanker, StoredFinding, score_people
from molehunt.score.kept import _chain

S = DetectionSettings()
DAY = date(2026, 5, 6)


def finding(
    detector: str,
    person: str = "P1",
    *,
    day: date = DAY,
    severity: int = 100,
    host: str | None = "ws-1",
    related: tuple[str, ...] = (),
) -> StoredFinding:
    return StoredFinding(
        finding_id=f"{detector}-{person}-{day}",
        detector=detector,
        time=datetime(day.year, day.month, day.day, 6, tzinfo=UTC),
        day=day,
        severity=severity,
        person_id=person,
        related=related,
        account=None,
        host=host,
        title=detector,
        event_ids=(f"e-{detector}-{day}",),
        details={},
    )


def only(
    findings: list[StoredFinding], as_of: date = DAY, departing: set[str] | None = None
) -> float:
    (person,) = score_people(findings, as_of, S, departing)
    return person.score


def test_score_is_weight_times_severity() -> None:
    assert only([finding("bulk_read", severity=50)]) == pytest.approx(S.weights["bulk_read"] * 0.5)


def test_a_finding_counts_half_after_the_half_life() -> None:
    fresh = only([finding("bulk_read")])
    later = only([finding("bulk_read")], as_of=date(2026, 5, 20))
    assert later == pytest.approx(fresh / 2)


def test_repeats_of_one_detector_count_only_in_part() -> None:
    single = only([finding("disallowed_category")])
    twice = only([finding("disallowed_category", day=date(2026, 5, d)) for d in (5, 6)])
    daily = only([finding("disallowed_category", day=date(2026, 5, d)) for d in range(1, 7)])
    assert single < twice < daily
    assert daily == pytest.approx(single * (1 + 2 * S.repeat_share))  # the cap


def test_db_file_and_web_on_one_host_within_a_day_corroborate() -> None:
    apart = [
        finding("bulk_read", host="ws-1"),
        finding("file_write", host="ws-2"),
        finding("allowed_channel_upload", host="ws-3"),
    ]
    together = [
        finding("bulk_read", host="ws-1"),
        finding("file_write", host="ws-1"),
        finding("allowed_channel_upload", host="ws-1", day=date(2026, 5, 7)),
    ]
    as_of = date(2026, 5, 7)
    (person,) = score_people(together, as_of, S)
    assert person.corroborated == ("db", "file", "web")
    assert only(together, as_of) > only(apart, as_of) * (1 + S.corroboration_bonus)


# -- chains, not single signals --------------------------------------------------------


def test_a_lone_signal_stays_below_the_threshold_however_often_it_repeats() -> None:
    daily = [finding("allowed_channel_upload", day=date(2026, 5, d)) for d in range(1, 7)]
    (person,) = score_people(daily, DAY, S)
    assert person.chain == ()
    assert person.score == pytest.approx(S.lone_cap * S.alert_threshold)
    assert person.score < S.alert_threshold


def test_two_stages_within_the_window_form_a_chain() -> None:
    found = [
        finding("out_of_scope", day=date(2026, 5, 2)),
        finding("sustained_excess", day=date(2026, 5, 6)),
    ]
    (person,) = score_people(found, DAY, S)
    assert person.chain == ("access: out_of_scope", "collection: sustained_excess")
    assert person.score >= S.alert_threshold


def test_a_recent_chain_of_weak_steps_reaches_the_threshold_and_an_old_one_fades() -> None:
    weak = [
        finding("out_of_scope", day=date(2026, 5, 4), severity=20),
        finding("file_write", day=date(2026, 5, 5), severity=20),
    ]
    (recent,) = score_people(weak, DAY, S)
    assert recent.chain
    assert recent.score == pytest.approx(S.alert_threshold)
    later = date.fromordinal(DAY.toordinal() + S.chain_days + 3)
    (old,) = score_people(weak, later, S)
    assert old.chain
    assert old.score < S.alert_threshold


def test_a_chain_lifts_the_cap_until_its_last_step_is_out_of_memory() -> None:
    """Routine findings after an old chain (an analyst's daily extracts after one
    chat upload) stay under the threshold once the chain's last step is older than
    ``chain_memory_days``; a new step keeps it."""
    steps = [
        finding("out_of_scope", day=date(2026, 5, 2)),
        finding("sustained_excess", day=date(2026, 5, 6)),
    ]
    routine = [
        dataclasses.replace(
            finding("bulk_read", day=date.fromordinal(DAY.toordinal() + i)),
            finding_id=f"routine-{i}",
            details={"stage": "context"},
        )
        for i in range(1, 40)
    ]
    last_step = DAY.toordinal()
    remembered = date.fromordinal(last_step + S.chain_memory_days)
    forgotten = date.fromordinal(last_step + S.chain_memory_days + 1)
    (kept,) = score_people(steps + routine, remembered, S)
    assert kept.chain
    assert kept.score > S.lone_cap * S.alert_threshold
    (capped,) = score_people(steps + routine, forgotten, S)
    assert capped.chain == ()
    assert capped.score == pytest.approx(S.lone_cap * S.alert_threshold)
    again = finding("file_write", day=forgotten)
    (renewed,) = score_people([*steps, *routine, again], forgotten, S)
    assert renewed.chain


def test_steps_of_one_heavy_day_count_only_what_they_score() -> None:
    one_day = [
        finding("out_of_scope", day=date(2026, 5, 5), severity=20),
        finding("file_write", day=date(2026, 5, 5), severity=20),
    ]
    (person,) = score_people(one_day, DAY, S)
    assert person.chain
    assert person.score < S.alert_threshold


def test_one_days_reading_seen_by_two_database_detectors_is_no_chain() -> None:
    """Other portfolios' clients and a volume spike of one day are the same reads (a
    new joiner reading through an inherited portfolio): no chain; the same steps on
    two days, or with a step from another source the same day, are one."""
    day = date(2026, 5, 5)
    reads = [finding("out_of_scope", day=day), finding("volume_spike", day=day)]
    (alone,) = score_people(reads, DAY, S)
    assert alone.chain == ()
    assert alone.score <= S.lone_cap * S.alert_threshold
    later = [reads[0], finding("volume_spike", day=date(2026, 5, 6))]
    (course,) = score_people(later, DAY, S)
    assert course.chain == ("access: out_of_scope", "collection: volume_spike")
    (written,) = score_people([*reads, finding("file_write", day=day)], DAY, S)
    assert written.chain


def test_an_upload_is_a_step_only_soon_after_something_was_taken() -> None:
    """An upload before anything was taken cannot have sent it; one within
    ``send_days`` after a taking step can; one days later is another matter (an
    auditor's expense receipts days after a review), unless send_days says so."""
    before = [
        finding("allowed_channel_upload", day=date(2026, 5, 1)),
        finding("sustained_excess", day=date(2026, 5, 6)),
    ]
    assert score_people(before, DAY, S)[0].chain == ()
    chain = ("collection: sustained_excess", "exfiltration: allowed_channel_upload")
    for gap, linked in ((0, True), (S.send_days, True), (S.send_days + 1, False), (5, False)):
        found = [
            finding("sustained_excess", day=date(2026, 5, 1)),
            finding("allowed_channel_upload", day=date(2026, 5, 1 + gap)),
        ]
        (person,) = score_people(found, DAY, S)
        assert person.chain == (chain if linked else ()), gap
        assert _chain(found, S.chain_days, S.send_days) == person.chain
    patient = DetectionSettings(send_days=5)
    assert score_people(found, DAY, patient)[0].chain == chain


def test_stages_too_far_apart_are_no_chain() -> None:
    far = DetectionSettings(chain_days=3)
    found = [
        finding("out_of_scope", day=date(2026, 5, 1)),
        finding("allowed_channel_upload", day=date(2026, 5, 6)),
    ]
    (person,) = score_people(found, DAY, far)
    assert person.chain == ()
    assert person.score < far.alert_threshold


def test_two_findings_of_one_stage_are_no_chain() -> None:
    found = [finding("bulk_read"), finding("file_write"), finding("volume_spike")]
    (person,) = score_people(found, DAY, S)
    assert person.chain == ()


def test_a_motive_chains_with_taking_data_not_with_an_upload_alone() -> None:
    leaving = finding("departing_person", day=date(2026, 5, 5))
    upload = finding("allowed_channel_upload", day=date(2026, 5, 6))
    read = finding("out_of_scope", day=date(2026, 5, 6))
    assert score_people([leaving, upload], DAY, S)[0].chain == ()
    (person,) = score_people([leaving, read], DAY, S)
    assert person.chain == ("motive: departing_person", "access: out_of_scope")


def test_a_leavers_one_day_of_others_clients_counts_what_it_scores() -> None:
    """A notice is found every day the leaver works, but it is a motive, not an act:
    one day of reading others' clients during notice is a chain that scores what it
    scores; reading them on a second day is a course of action, at the threshold."""
    notice = [finding("departing_person", day=date(2026, 5, d), severity=20) for d in range(1, 8)]
    once = [*notice, finding("out_of_scope", day=date(2026, 5, 5), severity=20)]
    (person,) = score_people(once, DAY, S, {"P1"})
    assert person.chain == ("motive: departing_person", "access: out_of_scope")
    assert person.score < S.alert_threshold
    twice = [*once, finding("out_of_scope", day=date(2026, 5, 6), severity=20)]
    (person,) = score_people(twice, DAY, S, {"P1"})
    assert person.score >= S.alert_threshold


def test_a_critical_finding_needs_no_chain() -> None:
    (person,) = score_people([finding("departed_account")], DAY, S)
    assert person.chain == ("critical: departed_account",)
    assert person.score >= S.alert_threshold


def test_a_finding_may_name_its_own_stage() -> None:
    visit = finding("disallowed_category")
    upload = dataclasses.replace(visit, details={"stage": "exfiltration"})
    read = finding("out_of_scope")
    assert score_people([visit, read], DAY, S)[0].chain == ()
    assert score_people([upload, read], DAY, S)[0].chain == (
        "access: out_of_scope",
        "exfiltration: disallowed_category",
    )


def test_departing_people_weigh_more() -> None:
    f = [finding("bulk_read", severity=50)]
    assert only(f, departing={"P1"}) == pytest.approx(only(f) * S.departing_multiplier)


def test_the_other_person_named_gets_a_share() -> None:
    people = score_people([finding("borrowed_account", "P1", related=("P2",))], DAY, S)
    scores = {p.person_id: p.score for p in people}
    assert scores["P2"] == pytest.approx(scores["P1"] * S.related_share)


def test_future_findings_do_not_count() -> None:
    assert score_people([finding("bulk_read", day=date(2026, 5, 7))], DAY, S) == []


# -- the ranking over the scenario ---------------------------------------------------


@pytest.fixture(scope="module")
def ranker() -> RiskRanker:
    return RiskRanker(scenario().store, DetectionSettings())


def test_ranking_has_the_issue_json_shape(ranker: RiskRanker) -> None:
    ranking = ranker.ranking(END)
    assert [r["rank"] for r in ranking] == list(range(1, len(ranking) + 1))
    assert [r["score"] for r in ranking] == sorted((r["score"] for r in ranking), reverse=True)
    top = ranking[0]
    assert set(top) == {
        "rank",
        "person_id",
        "name",
        "department",
        "role",
        "score",
        "flagged",
        "chain",
        "reasons",
    }
    assert top["flagged"] is True
    assert top["chain"]
    assert (top["person_id"], top["name"], top["role"]) == ("E001", "Zhang Wei", "sales")
    reason = top["reasons"][0]
    assert set(reason) == {"detector", "summary", "first_seen", "last_seen", "events"}
    assert reason["first_seen"].endswith("+08:00")
    assert reason["events"]


def test_insiders_are_flagged_and_benign_look_alikes_are_not(ranker: RiskRanker) -> None:
    history = ranker.history(END)
    flagged = {r["person_id"] for day in history for r in day["ranking"]}
    assert {"E001", "E002", "E003", "E005", "E007"} <= flagged
    assert not flagged & {"E006", "E009"}  # the auditor; the sales person with her own list


def test_the_dump_is_flagged_the_night_it_happens_through_its_chain(ranker: RiskRanker) -> None:
    (dba,) = [r for r in ranker.ranking(date(2026, 5, 20)) if r["person_id"] == "E005"]
    assert dba["chain"] == ["collection: bulk_read", "exfiltration: disallowed_category"]


def test_reading_more_of_ones_own_clients_alone_is_a_lone_signal(ranker: RiskRanker) -> None:
    # E008 reads three times his norm, but only his own clients, with no other step:
    # a lone signal stays below the threshold however long it lasts.
    (reader,) = [r for r in ranker.ranking(END, include_all=True) if r["person_id"] == "E008"]
    assert reader["chain"] == []
    assert reader["flagged"] is False
    assert reader["score"] < S.alert_threshold


def test_a_quiet_day_flags_nobody(ranker: RiskRanker) -> None:
    assert ranker.ranking(date(2026, 5, 5)) == []
    assert ranker.ranking(date(2026, 5, 5), include_all=True) == []


def test_borrowed_account_flagged_on_its_first_day(ranker: RiskRanker) -> None:
    assert ranker.ranking(date(2026, 5, 6), top=1)[0]["person_id"] == "E001"


def test_credential_sharing_flagged_the_day_it_happens(ranker: RiskRanker) -> None:
    assert "E003" in {r["person_id"] for r in ranker.ranking(date(2026, 5, 21))}


def test_all_lists_people_below_the_threshold(ranker: RiskRanker) -> None:
    everyone = ranker.ranking(END, include_all=True)
    flagged = ranker.ranking(END)
    assert len(everyone) > len(flagged)
    assert min(r["score"] for r in everyone) < S.alert_threshold


def test_top_limits_the_list(ranker: RiskRanker) -> None:
    assert len(ranker.ranking(END, top=2)) == 2


def test_history_gives_every_day_as_it_stood(ranker: RiskRanker) -> None:
    history = ranker.history(END)
    assert history[0]["date"] == START.isoformat()
    assert history[-1]["date"] == END.isoformat()
    assert len(history) == (END - START).days + 1
    by_day = {h["date"]: h["ranking"] for h in history}
    assert by_day["2026-05-05"] == []
    assert by_day["2026-05-29"] == ranker.ranking(END)


def test_an_alert_budget_raises_the_threshold_to_fit_the_trailing_days() -> None:
    store = scenario().store
    fixed = RiskRanker(store, DetectionSettings())
    assert fixed.threshold(END).value == S.alert_threshold
    assert fixed.threshold(END).how.startswith("fixed")
    tight = RiskRanker(store, DetectionSettings(alert_budget=0.001))
    threshold = tight.threshold(END)
    assert threshold.value > S.alert_threshold
    assert "raised from" in threshold.how
    # the budget allows no flagged person-day over the trailing days: nobody of them is
    # at or above the day's threshold any more
    assert all(
        p.score < threshold.value
        for d in range(1, S.budget_days + 1)
        if (day := date.fromordinal(END.toordinal() - d)) >= START
        for p in tight.scores(day)
    )
    loose = RiskRanker(store, DetectionSettings(alert_budget=900))
    assert loose.threshold(END).value == S.alert_threshold
    assert len(loose.ranking(END)) == len(fixed.ranking(END))


def test_watch_list_holds_the_departing(ranker: RiskRanker) -> None:
    assert [p["person_id"] for p in ranker.watch_list(date(2026, 5, 20))] == ["E007"]
    assert [p["person_id"] for p in ranker.watch_list(date(2026, 4, 20))] == ["E004"]
    assert ranker.watch_list(date(2026, 3, 1)) == []
