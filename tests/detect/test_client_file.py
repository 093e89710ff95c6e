"""Client records in files found on endpoints (stored by the scanner)."""

from __future__ import annotations

from datetime import date

from insurer import scenario

from molehunt.detect import DetectContext, DetectionSettings
from molehunt.detect.client_file import ClientFileDetector


def test_an_export_of_other_portfolios_is_flagged_on_the_day_it_was_written() -> None:
    s = scenario()
    findings = s.of("client_file")
    assert {(f.person_id, f.day) for f in findings} == {
        ("E007", date(2026, 5, 18)),
        ("E007", date(2026, 5, 19)),
    }
    for f in findings:
        assert f.details["others_records"] == 50
        assert f.host == "ws-007"


def test_the_finding_cites_the_scan_and_the_write() -> None:
    s = scenario()
    (finding,) = s.of("client_file", "E007", date(2026, 5, 19))
    rows = s.store.query(
        "SELECT 'scan' AS tbl, host_path AS path FROM events_scan "
        "WHERE event_id IN (SELECT unnest($ids)) "
        "UNION ALL SELECT 'file', path FROM events_file WHERE event_id IN (SELECT unnest($ids))",
        {"ids": list(finding.event_ids)},
    )
    paths = {r["tbl"]: r["path"] for r in rows}
    assert paths == {
        "scan": "C:\\Users\\zhou.min\\Downloads\\export_0519.csv",
        "file": "C:\\Users\\zhou.min\\Downloads\\export_0519.csv",
    }


def test_a_list_of_ones_own_clients_is_not_flagged() -> None:
    s = scenario()
    held = s.store.query("SELECT client_records FROM events_scan WHERE host = 'WS-003'")
    assert held == [{"client_records": 10}]  # found and matched, and her own
    assert not s.of("client_file", "E003")


def test_the_threshold_is_a_setting() -> None:
    s = scenario()
    for needed, expected in ((50, 2), (51, 0)):
        settings = DetectionSettings(file_min_clients=needed)
        with DetectContext(s.store.ibis, settings, date(2026, 5, 29)) as ctx:
            assert len(ClientFileDetector().find(ctx)) == expected
