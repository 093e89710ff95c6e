"""Personal data written to files: a spreadsheet after a bulk read on the same host."""

from __future__ import annotations

from datetime import date

from insurer import scenario


def test_spreadsheet_after_bulk_read_is_flagged_and_cites_both() -> None:
    s = scenario()
    (finding,) = s.of("file_write", "E001", date(2026, 5, 6))
    assert finding.details["files"] == ["C:\\Users\\zhang.wei\\Desktop\\clients_0506.xlsx"]
    tables = {
        r["tbl"]
        for r in s.store.query(
            "SELECT 'file' AS tbl FROM events_file WHERE event_id IN (SELECT unnest($ids)) "
            "UNION ALL SELECT 'db' FROM events_db WHERE event_id IN (SELECT unnest($ids))",
            {"ids": list(finding.event_ids)},
        )
    }
    assert tables == {"file", "db"}


def test_only_hosts_with_a_bulk_read_before() -> None:
    assert {f.host for f in scenario().of("file_write")} == {"ws-001", "ws-002"}
