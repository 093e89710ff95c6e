"""Events counted per local day (``event_days``), from the rows appended since the
last count, and whole again when rows were deleted."""

from __future__ import annotations

from pathlib import Path

from molehunt.resolve.stored import count_days
from molehunt.store import Store

RECOUNT = "SELECT CAST(time AS DATE) AS day, count(*) FROM t GROUP BY ALL ORDER BY day"


def _counted(store: Store) -> list[tuple[object, ...]]:
    return store.con.execute(
        "SELECT day, events FROM event_days WHERE tbl = 't' AND utc_offset = 0 ORDER BY day"
    ).fetchall()


def _add(store: Store, first: int, days: int) -> None:
    store.con.execute(
        f"""INSERT INTO t SELECT TIMESTAMP '2026-03-01 10:00' + INTERVAL (d) DAY
            FROM range({first}, {first + days}) r(d), range(3) k(i)"""
    )


def test_days_are_counted_from_appended_rows_and_again_after_a_delete(tmp_path: Path) -> None:
    with Store.open(tmp_path / "m.duckdb") as store:
        store.con.execute("CREATE TABLE t (time TIMESTAMP)")
        _add(store, 0, 4)
        assert count_days(store, "t", 0)
        assert not count_days(store, "t", 0)
        _add(store, 4, 2)
        assert count_days(store, "t", 0)
        assert _counted(store) == store.con.execute(RECOUNT).fetchall()
        # Rows deleted and others written: rowids now run past the row count.
        store.con.execute("DELETE FROM t WHERE time < TIMESTAMP '2026-03-03'")
        _add(store, 6, 3)
        assert count_days(store, "t", 0)
        assert _counted(store) == store.con.execute(RECOUNT).fetchall()
