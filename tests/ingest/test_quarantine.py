"""Nothing lost when a log does not match: refused files, quarantine replay."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC
from pathlib import Path
from typing import ClassVar

import pytest

from molehunt.config import Settings
from molehunt.ingest import LOG_PARSERS
from molehunt.ingest.app_access import AppAccessParser
from molehunt.ingest.base import FormatMismatchError, ParseResult
from molehunt.ingest.runner import ingest_paths
from molehunt.quarantine import list_quarantine, replay
from molehunt.store import Store

OLD_PREFIX = "%m [%p] %q%u@%d %h app=%a "
NEW_PREFIX = "%t [%p]: user=%u,db=%d "


def app_line(n: int) -> str:
    record = {
        "ts": f"2026-05-03T09:00:{n % 60:02d}.000+08:00",
        "app": "crm",
        "user": "li_na",
        "action": "view",
        "client_ids": [f"C{n:08d}"],
        "rows": 1,
        "detail": f"n{n}",
    }
    return json.dumps(record) + "\n"


class PickyParser:
    """app-access that refuses a file while ``fits`` is False (a setting not yet fixed)."""

    kind: ClassVar[str] = "picky"
    description: ClassVar[str] = "app-access that may refuse"
    fits: ClassVar[bool] = False
    #: Refuse only data holding this (a layout change inside the file), or all data.
    marker: ClassVar[bytes] = b""

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        return False

    def parse(self, data: bytes, *, base_offset: int, source_id: str, path: str) -> ParseResult:
        if not self.fits and self.marker in data:
            raise FormatMismatchError("records do not fit: set picky_setting")
        return AppAccessParser().parse(
            data, base_offset=base_offset, source_id=source_id, path=path
        )


@pytest.fixture
def picky(monkeypatch: pytest.MonkeyPatch) -> type[PickyParser]:
    monkeypatch.setitem(LOG_PARSERS, "picky", PickyParser)
    monkeypatch.setattr(PickyParser, "fits", False)
    monkeypatch.setattr(PickyParser, "marker", b"")
    return PickyParser


def details(store: Store) -> list[str]:
    return [r["detail"] for r in store.query("SELECT detail FROM events_app ORDER BY detail")]


def test_a_refused_file_stores_nothing_and_is_read_whole_once_it_fits(
    store: Store, settings: Settings, tmp_path: Path, picky: type[PickyParser]
) -> None:
    log = tmp_path / "crm.log"
    log.write_text("".join(app_line(n) for n in range(20)), encoding="utf-8")
    report = ingest_paths(store, settings, [log], kind="picky")
    (file,) = report.files
    assert file.refused
    assert file.error is not None
    assert "set picky_setting" in file.error
    assert report.as_dict()["files"][0]["refused"] is True
    assert (report.stored, report.rejected) == (0, 0)
    assert store.query("SELECT * FROM sources") == []
    assert store.table_counts()["quarantine"] == 0
    picky.fits = True
    assert ingest_paths(store, settings, [log], kind="picky").stored == 20
    assert ingest_paths(store, settings, [log], kind="picky").stored == 0
    assert details(store) == sorted(f"n{n}" for n in range(20))


def test_a_file_refused_midway_keeps_its_checkpoint_before_the_change(
    store: Store, settings: Settings, tmp_path: Path, picky: type[PickyParser]
) -> None:
    small = settings.model_copy(update={"batch_bytes": 4096})
    picky.marker = b"MARK"
    log = tmp_path / "crm.log"
    lines = [app_line(n) for n in range(100)]
    lines[80] = lines[80].replace("n80", "n80MARK")
    log.write_text("".join(lines), encoding="utf-8")
    report = ingest_paths(store, small, [log], kind="picky")
    assert report.files[0].refused
    assert report.files[0].error is not None
    assert "fitted and are stored" in report.files[0].error
    (source,) = store.query('SELECT "offset" FROM sources')
    done = len(details(store))
    assert 0 < done < 80
    assert source["offset"] == sum(len(x.encode()) for x in lines[:done])
    picky.fits = True
    ingest_paths(store, small, [log], kind="picky")
    assert len(details(store)) == 100 == len(set(details(store)))


def pg_ddl(n: int, prefix: str) -> str:
    second = n % 60
    if prefix == OLD_PREFIX:
        head = f"2026-11-26 12:30:{second:02d}.021 UTC [5725] alice@crm 10.20.3.17 app=psql "
    else:
        head = f"2026-11-26 12:30:{second:02d} UTC [5725]: user=alice,db=crm "
    audit = f"AUDIT: SESSION,{n},1,DDL,CREATE TABLE,,,CREATE TABLE t{n}(x int),<not logged>"
    return f"{head}LOG:  {audit}\n"


def test_a_stderr_log_with_another_prefix_is_read_with_the_prefix_its_lines_show(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    log = tmp_path / "postgresql.log"
    log.write_text("".join(pg_ddl(n, NEW_PREFIX) for n in range(1, 31)), encoding="utf-8")
    assert ingest_paths(store, settings, [log], kind="pg-stderr").stored == 30
    assert ingest_paths(store, settings, [log], kind="pg-stderr").stored == 0
    assert store.table_counts()["events_db"] == 30


def test_a_stderr_log_whose_prefix_cannot_be_read_off_is_refused_whole(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    # No date in the prefix: nothing to infer a time from, so the file is refused whole.
    log = tmp_path / "postgresql.log"
    audit = "AUDIT: SESSION,{n},1,DDL,CREATE TABLE,,,CREATE TABLE t{n}(x int),<not logged>"
    log.write_text(
        "".join(f"[5725] 12:30:{n:02d} alice LOG:  {audit.format(n=n)}\n" for n in range(1, 31)),
        encoding="utf-8",
    )
    report = ingest_paths(store, settings, [log], kind="pg-stderr")
    assert report.files[0].refused
    assert report.files[0].error is not None
    assert "pg_log_line_prefix" in report.files[0].error
    assert store.query("SELECT * FROM sources") == []
    assert store.table_counts()["quarantine"] == 0


def pg_zoned(n: int, zone: str) -> str:
    head = f"2026-11-26 12:30:{n % 60:02d}.021 {zone} [5725] alice@crm 10.20.3.17 app=psql "
    audit = f"AUDIT: SESSION,{n},1,DDL,CREATE TABLE,,,CREATE TABLE t{n}(x int),<not logged>"
    return f"{head}LOG:  {audit}\n"


def test_replay_stores_what_a_fixed_setting_parses_exactly_once(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    # The first record was written while the server logged in India Standard Time:
    # "IST" names three zones, so it waits in quarantine for pg_log_timezone.
    log = tmp_path / "postgresql.log"
    first_line = pg_zoned(1, "IST").encode()
    log.write_bytes(first_line + "".join(pg_zoned(n, "UTC") for n in range(2, 21)).encode())
    first = ingest_paths(store, settings, [log], kind="pg-stderr")
    assert (first.stored, first.rejected) == (19, 1)
    (row,) = store.query('SELECT "offset", length, sha256, reason FROM quarantine')
    assert (row["offset"], row["length"]) == (0, len(first_line))
    assert row["sha256"] == hashlib.sha256(first_line).hexdigest()
    assert "pg_log_timezone" in row["reason"]

    unfixed = replay(store, settings)
    assert (unfixed.stored, unfixed.count("rejected")) == (0, 1)
    assert store.table_counts()["quarantine"] == 1

    fixed = settings.model_copy(update={"pg_log_timezone": "Asia/Kolkata"})
    done = replay(store, fixed)
    assert (done.stored, done.count("stored")) == (1, 1)
    assert store.table_counts()["quarantine"] == 0
    assert replay(store, fixed).stored == 0
    ids = [r["event_id"] for r in store.query("SELECT event_id FROM events_db")]
    assert len(ids) == len(set(ids)) == 20
    (source,) = store.query("SELECT events, rejected FROM sources")
    assert (source["events"], source["rejected"]) == (20, 0)
    (at,) = store.query("SELECT time FROM events_db ORDER BY time LIMIT 1")
    assert at["time"].utcoffset() is not None
    assert at["time"].astimezone(UTC).strftime("%H:%M") == "07:00"  # 12:30 IST


def test_replay_says_when_a_file_is_gone_or_changed_and_keeps_the_record(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    log = tmp_path / "crm.log"
    log.write_text(app_line(1) + "not json at all\n" + app_line(2), encoding="utf-8")
    report = ingest_paths(store, settings, [log], kind="app-access")
    assert (report.stored, report.rejected) == (2, 1)
    (row,) = list_quarantine(store)
    assert (row["offset"], row["length"]) == (len(app_line(1)), len("not json at all\n"))
    assert list_quarantine(store, reason="no such reason") == []

    still = replay(store, settings)
    assert still.count("rejected") == 1
    data = log.read_bytes()
    log.write_bytes(data.replace(b"not json", b"NOT JSON"))
    changed = replay(store, settings)
    assert changed.count("changed") == 1
    log.unlink()
    gone = replay(store, settings)
    assert gone.count("gone") == 1
    assert gone.records[0].reason is not None
    assert str(log) in gone.records[0].reason
    assert store.table_counts()["quarantine"] == 1
    assert details(store) == ["n1", "n2"]


def test_a_renamed_log_is_replayed_from_where_its_source_was_last_seen(
    store: Store, settings: Settings, tmp_path: Path, picky: type[PickyParser]
) -> None:
    log = tmp_path / "crm.log"
    log.write_text(app_line(1) + "{broken\n" + app_line(2), encoding="utf-8")
    picky.fits = True
    ingest_paths(store, settings, [log], kind="picky")
    renamed = tmp_path / "crm.log.1"
    log.rename(renamed)
    with renamed.open("a", encoding="utf-8") as f:
        f.write(app_line(3))
    ingest_paths(store, settings, [renamed], kind="picky")
    again = replay(store, settings)
    assert again.count("rejected") == 1
    assert again.records[0].path == str(renamed)


def test_status_says_why_bytes_are_pending(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    from molehunt.status import status

    log = tmp_path / "crm.log"
    unfinished = app_line(2).rstrip("\n")
    log.write_text(app_line(1) + unfinished, encoding="utf-8")
    report = ingest_paths(store, settings, [log], kind="app-access")
    assert report.files[0].pending == len(unfinished)
    (source,) = status(store)["sources"]
    assert source["pending_bytes"] == len(unfinished)
    assert source["pending_reason"].startswith("unfinished last record")
    with log.open("a", encoding="utf-8") as f:
        f.write("\n")
    ingest_paths(store, settings, [log], kind="app-access")
    (source,) = status(store)["sources"]
    assert (source["pending_bytes"], source["pending_reason"]) == (0, None)


class CountingParser(PickyParser):
    """app-access that also reports the blank lines it skips, as pg parsers do."""

    kind: ClassVar[str] = "counting"

    def parse(self, data: bytes, *, base_offset: int, source_id: str, path: str) -> ParseResult:
        result = AppAccessParser().parse(
            data, base_offset=base_offset, source_id=source_id, path=path
        )
        blank = data[: result.consumed].count(b"\n\n")
        if blank:
            result.skipped = {"blank": blank}
        return result


def test_skipped_lines_are_counted_by_reason_over_every_batch(
    store: Store, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(LOG_PARSERS, "counting", CountingParser)
    small = settings.model_copy(update={"batch_bytes": 4096})
    log = tmp_path / "crm.log"
    log.write_text("".join(app_line(n) + "\n" for n in range(100)), encoding="utf-8")
    report = ingest_paths(store, small, [log], kind="counting")
    assert report.stored == 100
    assert report.files[0].skipped_lines == {"blank": 100}
    assert report.as_dict()["skipped_lines"] == {"blank": 100}


def test_a_line_set_aside_as_longer_than_a_batch_is_stored_by_replay_with_larger_batches(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    log = tmp_path / "crm.log"
    long_record = app_line(2).replace('"detail": "n2"', '"detail": "n2' + "y" * 20_000 + '"')
    log.write_text(app_line(1) + long_record + app_line(3), encoding="utf-8")
    small = settings.model_copy(update={"batch_bytes": 4096})
    report = ingest_paths(store, small, [log], kind="app-access")
    assert (report.stored, report.rejected) == (2, 1)
    assert replay(store, small).count("rejected") == 1  # still longer than a batch
    done = replay(store, settings)
    assert (done.stored, done.count("stored")) == (1, 1)
    assert [d[:3] for d in details(store)] == ["n1", "n2y", "n3"]
    assert store.table_counts()["quarantine"] == 0
