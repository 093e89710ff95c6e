"""Exactly-once ingest: re-runs, appends, rotation, copytruncate, crashes."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from molehunt.config import Settings
from molehunt.ingest.runner import ingest_paths
from molehunt.keys import create_key_file
from molehunt.store import Store


def line(n: int) -> str:
    record = {
        "ts": f"2026-05-03T09:{n // 60 % 60:02d}:{n % 60:02d}.000+08:00",
        "app": "crm",
        "user": f"user{n % 7}",
        "src_ip": "10.20.3.17",
        "action": "view",
        "client_ids": [f"C{n:08d}"],
        "rows": 1,
        "detail": f"n{n}",
    }
    return json.dumps(record) + "\n"


def write(path: Path, numbers: range, mode: str = "a") -> None:
    with path.open(mode, encoding="utf-8") as f:
        f.writelines(line(n) for n in numbers)


def stored_details(store: Store) -> list[str]:
    return [r["detail"] for r in store.query("SELECT detail FROM events_app ORDER BY detail")]


def expected(numbers: range | list[int]) -> list[str]:
    return sorted(f"n{n}" for n in numbers)


def test_rerun_stores_nothing_and_append_stores_only_new_lines(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    log = tmp_path / "crm.log"
    write(log, range(100))
    assert ingest_paths(store, settings, [log], kind="app-access").stored == 100
    again = ingest_paths(store, settings, [log], kind="app-access")
    assert again.stored == 0
    assert again.files[0].skipped == "already read to the end"
    write(log, range(100, 130))
    assert ingest_paths(store, settings, [log]).stored == 30
    assert stored_details(store) == expected(range(130))
    assert store.table_counts()["record_access"] == 130


def test_a_rotated_and_renamed_log_is_recognised(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "crm.log"
    write(log, range(50))
    ingest_paths(store, settings, [log], kind="app-access")
    write(log, range(50, 60))  # written after the last run, before rotation
    log.rename(logs / "crm.log.1")
    write(log, range(60, 80), mode="w")
    report = ingest_paths(store, settings, [logs], kind="app-access")
    assert report.stored == 30
    assert stored_details(store) == expected(range(80))
    assert len(store.query("SELECT source_id FROM sources")) == 2


def test_copytruncate_loses_and_repeats_nothing(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "crm.log"
    write(log, range(40))
    ingest_paths(store, settings, [log], kind="app-access")
    write(log, range(40, 45))
    shutil.copy(log, logs / "crm.log.1")
    log.write_text("")
    write(log, range(45, 60))
    ingest_paths(store, settings, [tmp_path], kind="app-access")
    assert store.table_counts()["quarantine"] == 0  # the store and key were not read as logs
    assert stored_details(store) == expected(range(60))


def test_an_unfinished_last_line_waits_for_the_next_run(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    log = tmp_path / "crm.log"
    write(log, range(10))
    half = line(10)[:30]
    with log.open("a", encoding="utf-8") as f:
        f.write(half)
    assert ingest_paths(store, settings, [log], kind="app-access").stored == 10
    (source,) = store.query('SELECT size - "offset" AS pending FROM sources')
    assert source["pending"] == len(half.encode())
    with log.open("a", encoding="utf-8") as f:
        f.write(line(10)[30:])
    assert ingest_paths(store, settings, [log], kind="app-access").stored == 1
    assert stored_details(store) == expected(range(11))


def test_small_batches_give_the_same_events_and_ids(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    log = tmp_path / "crm.log"
    write(log, range(300))
    ingest_paths(store, settings, [log], kind="app-access")
    ids = store.query("SELECT event_id FROM events_app ORDER BY event_id")
    small = Settings.load(
        {"db": tmp_path / "small.duckdb", "key_file": settings.key_file, "batch_bytes": 5000},
        environ={},
    )
    with Store.open(small.db) as other:
        ingest_paths(other, small, [log], kind="app-access")
        assert other.query("SELECT event_id FROM events_app ORDER BY event_id") == ids


CRASHING_INGEST = """
import sys
from pathlib import Path
from molehunt.config import Settings
from molehunt.ingest.runner import ingest_paths
from molehunt.store import Store
settings = Settings.load({"db": sys.argv[1], "key_file": sys.argv[3], "batch_bytes": 20000},
                         environ={})
with Store.open(settings.db) as store:
    ingest_paths(store, settings, [Path(sys.argv[2])], kind="app-access")
"""


def test_kill_9_at_random_points_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    log = tmp_path / "crm.log"
    write(log, range(20000))
    db, key = tmp_path / "crash.duckdb", tmp_path / "k"
    create_key_file(key)
    delays = [0.3, 0.6, 0.9, 1.2, 1.6, 2.0]
    for delay in delays:
        proc = subprocess.Popen(
            [sys.executable, "-c", CRASHING_INGEST, str(db), str(log), str(key)]
        )
        time.sleep(delay)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    subprocess.run([sys.executable, "-c", CRASHING_INGEST, str(db), str(log), str(key)], check=True)
    with Store.open(db) as store:
        (row,) = store.query(
            "SELECT count(*) AS n, count(DISTINCT event_id) AS ids, count(DISTINCT detail) AS d "
            "FROM events_app"
        )
        assert row == {"n": 20000, "ids": 20000, "d": 20000}
        (access,) = store.query("SELECT count(*) AS n FROM record_access")
        assert access["n"] == 20000


class TailerModel(RuleBasedStateMachine):
    """Random appends, rotations, copytruncates, truncations and restarts against a
    real folder; what is stored must equal every complete line the model wrote."""

    @initialize()
    def start(self) -> None:
        import tempfile

        self.dir = Path(tempfile.mkdtemp())
        self.log = self.dir / "crm.log"
        self.log.write_text("")
        key = self.dir / "k"
        create_key_file(key)
        self.settings = Settings.load(
            {"db": self.dir / "db.duckdb", "key_file": key, "batch_bytes": 4096}, environ={}
        )
        self.next = 0
        self.rotations = 0
        self.written: list[int] = []
        self.lost_to_truncate: list[int] = []
        self.unread: list[int] = []  # lines written since the last ingest into the live file

    def teardown(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    @rule(count=st.integers(1, 40))
    def append(self, count: int) -> None:
        numbers = range(self.next, self.next + count)
        write(self.log, numbers)
        self.written.extend(numbers)
        self.unread.extend(numbers)
        self.next += count

    @rule()
    def rotate_by_rename(self) -> None:
        self.rotations += 1
        self.log.rename(self.dir / f"crm.log.{self.rotations}")
        self.log.write_text("")
        self.unread = []

    @rule()
    def copytruncate(self) -> None:
        self.rotations += 1
        shutil.copy(self.log, self.dir / f"crm.log.{self.rotations}")
        self.log.write_text("")
        self.unread = []

    @rule()
    def truncate_without_copy(self) -> None:
        # Lines never ingested are gone for good: the model forgets them too.
        for n in self.unread:
            self.written.remove(n)
        self.unread = []
        self.log.write_text("")

    @rule()
    def ingest(self) -> None:
        with Store.open(self.settings.db) as store:
            ingest_paths(store, self.settings, [self.dir], kind="app-access")
        self.unread = []

    @invariant()
    def stored_is_a_subset_without_duplicates(self) -> None:
        with Store.open(self.settings.db) as store:
            details = stored_details(store)
        assert len(details) == len(set(details))
        assert set(details) <= {f"n{n}" for n in self.written}

    def check_complete(self) -> None:
        self.ingest()
        with Store.open(self.settings.db) as store:
            assert stored_details(store) == expected(self.written)


class TailerModelTest(TailerModel):
    @rule()
    def everything_is_stored_after_a_final_ingest(self) -> None:
        self.check_complete()


TestTailer = TailerModelTest.TestCase
TestTailer.settings = settings(
    max_examples=25,
    stateful_step_count=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.mark.parametrize("name", ["crm.log"])
def test_ingest_of_a_folder_skips_hidden_files(
    name: str, store: Store, settings: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "logs"
    (folder / ".cache").mkdir(parents=True)
    write(folder / name, range(5))
    write(folder / ".cache" / name, range(5, 9))
    assert ingest_paths(store, settings, [folder], kind="app-access").stored == 5


def test_a_folder_inside_a_hidden_folder_is_read(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    # Found by the quality runs: worlds under `.quality/` were ingested as nothing.
    folder = tmp_path / ".quality" / "logs"
    folder.mkdir(parents=True)
    write(folder / "crm.log", range(4))
    assert ingest_paths(store, settings, [folder], kind="app-access").stored == 4


def test_a_line_longer_than_a_batch_is_set_aside_with_its_place_and_hash(
    store: Store, tmp_path: Path
) -> None:
    key = tmp_path / "k"
    create_key_file(key)
    small = Settings.load(
        {"db": tmp_path / "s.duckdb", "key_file": key, "batch_bytes": 4096}, environ={}
    )
    log = tmp_path / "crm.log"
    long_line = b"x" * 40_000 + b"\n"
    log.write_bytes(line(0).encode() + long_line + line(1).encode())
    with Store.open(small.db) as other:
        report = ingest_paths(other, small, [log], kind="app-access")
        assert (report.stored, report.rejected) == (2, 1)
        (row,) = other.query('SELECT "offset", length, sha256, reason, raw FROM quarantine')
        assert (row["offset"], row["length"]) == (len(line(0)), len(long_line))
        assert row["sha256"] == hashlib.sha256(long_line).hexdigest()
        assert row["reason"].startswith("a line of 40001 bytes, longer than a batch")
        assert row["raw"].startswith("xxx")
        assert row["raw"].endswith(" more bytes]")  # a bounded preview
        assert stored_details(other) == ["n0", "n1"]


def test_an_evtx_file_read_twice_stores_its_events_and_damage_once(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    from molehunt_testing import shared_fixtures

    sysmon = shared_fixtures("evtx", "sysmon.evtx")
    copy = tmp_path / "sysmon.evtx"
    shutil.copy(sysmon, copy)
    first = ingest_paths(store, settings, [copy])
    assert first.files[0].kind == "evtx"
    assert first.stored > 0
    assert first.rejected >= 1  # the broken last chunk
    counts = store.table_counts()
    copy.rename(tmp_path / "renamed.evtx")
    with (tmp_path / "renamed.evtx").open("ab") as f:
        f.write(b"\0" * 100)  # the file grew: re-read from the checkpoint
    again = ingest_paths(store, settings, [tmp_path / "renamed.evtx"])
    assert (again.stored, again.rejected) == (0, 0)
    assert store.table_counts() == counts
    assert len(store.query("SELECT * FROM sources")) == 1
    from molehunt.status import status

    (source,) = status(store)["sources"]
    # The checkpoint is a record number: no pending bytes made of size minus it.
    assert (source["checkpoint"], source["pending_bytes"]) == ("record", None)
    assert source["pending_reason"].startswith("checkpoint is record number")


@pytest.mark.parametrize("batch_bytes", [4096, 64 * 1024 * 1024])
def test_a_long_unfinished_last_line_waits_and_the_lines_before_it_are_stored(
    batch_bytes: int, tmp_path: Path
) -> None:
    key = tmp_path / "k"
    create_key_file(key)
    cfg = Settings.load(
        {"db": tmp_path / "s.duckdb", "key_file": key, "batch_bytes": batch_bytes}, environ={}
    )
    log = tmp_path / "crm.log"
    head = "".join(line(n) for n in range(3)).encode()
    log.write_bytes(head + b"x" * 1_200_000)  # still being written
    with Store.open(cfg.db) as other:
        report = ingest_paths(other, cfg, [log], kind="app-access")
        assert (report.stored, report.rejected) == (3, 0)
        assert report.files[0].pending == 1_200_000
        assert report.files[0].pending_reason is not None
        assert report.files[0].pending_reason.startswith("unfinished last record")
        with log.open("ab") as f:
            f.write(b"\n" + line(3).encode())
        again = ingest_paths(other, cfg, [log], kind="app-access")
        assert (again.stored, again.rejected) == (1, 1)
        assert stored_details(other) == expected(range(4))
