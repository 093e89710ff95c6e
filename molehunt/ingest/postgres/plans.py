"""auto_explain plans: the true row count of an audited statement pgAudit could not count.

The plan joined to such an AUDIT line is the first one after it in the same
session with the same query text (see :mod:`molehunt.ingest.postgres.events`);
:func:`plan_counts` finds it in DuckDB, and says which statements must still wait.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from molehunt.ingest.postgres.audit import Audits
from molehunt.ingest.postgres.kernels import Mask, Offsets, as_mask, connection
from molehunt.ingest.postgres.records import Records
from molehunt.ingest.postgres.tables import ints

#: Bytes after an AUDIT line within which its auto_explain plan must appear.
DEFAULT_PLAN_WINDOW = 16 * 1024 * 1024

#: Seconds of log time after an AUDIT line within which its plan must appear: once
#: the log has moved further on, the statement is stored without a plan's count
#: (a cursor kept open longer than this loses its count, nothing else).
DEFAULT_PLAN_SECONDS = 600


#: Gives the messages of the plan records at these file offsets, in that order.
PlanMessages = Callable[[npt.NDArray[np.int64]], "pa.Array[Any]"]


# -- auto_explain plans -------------------------------------------------------------------


def plan_counts(
    recs: Records,
    audits: Audits,
    needy: Mask,
    *,
    plan_messages: PlanMessages,
    plan_window: int,
    plan_seconds: int,
    data_end: int,
    final: bool,
) -> tuple[pa.Array[Any], list[tuple[int, str]], Offsets]:
    """The plan count of each AUDIT record that needs one (NULL for the others), the
    plans set aside, and the offsets of the records that must wait for more bytes.

    A wait ends (the statement is stored without a plan's count) at the first of:
    the session's end, the server's shutdown, the same text audited again as
    another statement, ``plan_window`` bytes, a record ``plan_seconds`` of log
    time later, and, for a statement that is not a cursor (its plan is logged
    when it ends, before the session's next statement), the session's next
    statement.
    """
    waits = _waits(recs, audits, needy, plan_seconds)
    tables = {
        "waits": waits,
        **_statements(recs, audits, waits),
        **_plans_and_ends(recs, waits, plan_messages),
    }
    con = connection()
    try:
        for name, table in tables.items():
            con.register(name, table)
        con.execute(_PLANS)
        problems = [
            (int(offset), "auto_explain plan is not valid JSON (auto_explain.log_format = json)")
            for (offset,) in con.execute(
                'SELECT "offset" FROM plans WHERE NOT ok AND (NOT open OR $final)',
                {"final": final},
            ).fetchall()
        ]
        matched = con.execute(_MATCH, {"window": plan_window, "data_end": data_end}).fetchnumpy()
        ((stuck,),) = con.execute(
            'SELECT list("offset") FROM plans WHERE open AND NOT ok AND NOT $final',
            {"final": final},
        ).fetchall()
    finally:
        con.execute("DROP TABLE IF EXISTS plans")
        for name in tables:
            con.unregister(name)
    counts, waiting = _matched_counts(audits, matched, stuck, final)
    return counts, problems, waiting


def _waits(recs: Records, audits: Audits, needy: Mask, plan_seconds: int) -> pa.Table:
    """The AUDIT records that wait for a plan, with their session, text and deadline."""
    wait_rows = pa.array(np.flatnonzero(needy), pa.int64())
    cursor = as_mask(pc.equal(audits.fields["command"], pa.scalar("DECLARE CURSOR")))[needy]
    return pa.table(
        {
            "offset": ints(audits.offsets[needy]),
            "session_key": recs.column("session_key").take(
                pa.array(audits.rows[needy], pa.int64())
            ),
            "statement": audits.fields["statement"].combine_chunks().take(wait_rows),
            "statement_id": audits.fields["statement_id"].combine_chunks().take(wait_rows),
            "cursor": pa.array(cursor),
            "late_at": _late_at(recs, audits.rows[needy], plan_seconds),
        }
    )


def _statements(recs: Records, audits: Audits, waits: pa.Table) -> dict[str, pa.Table]:
    """The statements that can bound a wait: every one of a session with a statement
    waiting (``session_statements``), and those with a waiting text (``same``)."""
    statement = audits.fields["statement"].combine_chunks()
    statement_id = audits.fields["statement_id"].combine_chunks()
    # Only sessions with a statement waiting can bound a wait or hold its plan
    # (a superset: SQL decides, NULL keys included).
    session_keys = recs.column("session_key").take(pa.array(audits.rows, pa.int64()))
    in_play = as_mask(pc.is_in(session_keys, value_set=waits["session_key"], skip_nulls=False))
    kept = np.flatnonzero(audits.ok & in_play)
    session_statements = pa.table(
        {
            "offset": ints(audits.offsets[kept]),
            "session_key": session_keys.take(pa.array(kept, pa.int64())),
            "statement_id": statement_id.take(pa.array(kept, pa.int64())),
        }
    )
    statements = statement.take(pa.array(kept, pa.int64()))
    kept = kept[as_mask(pc.is_in(statements, value_set=waits["statement"], skip_nulls=False))]
    picked = pa.array(kept, pa.int64())
    same = pa.table(
        {
            "offset": ints(audits.offsets[kept]),
            "session_key": session_keys.take(picked),
            "statement": statement.take(picked),
            "statement_id": statement_id.take(picked),
        }
    )
    return {"same": same, "session_statements": session_statements}


def _plans_and_ends(
    recs: Records, waits: pa.Table, plan_messages: PlanMessages
) -> dict[str, pa.Table]:
    """The plans of the sessions with a statement waiting (read only now), the
    sessions' ends and the server's shutdowns."""
    keys = recs.column("session_key")
    plan_rows = recs.rows("plan")
    plan_keys = keys.take(pa.array(plan_rows, pa.int64()))
    wanted = as_mask(pc.is_in(plan_keys, value_set=waits["session_key"], skip_nulls=True))
    plan_rows, plan_keys = plan_rows[wanted], plan_keys.filter(pa.array(wanted))
    plan_offsets = recs.offsets[plan_rows]
    texts = plan_messages(plan_offsets) if len(plan_offsets) else pa.array([], pa.string())
    plan_text = pa.table(
        {
            "offset": ints(plan_offsets),
            "session_key": plan_keys,
            "open": pa.array(recs.open[plan_rows]),
            "message": texts,
        }
    )
    ends_rows = recs.rows("disconnect")
    ends = pa.table(
        {
            "end_at": ints(recs.offsets[ends_rows]),
            "session_key": keys.take(pa.array(ends_rows, pa.int64())),
        }
    )
    shutdowns = pa.table({"shutdown_at": ints(recs.offsets[recs.rows("shutdown")])})
    return {"plan_text": plan_text, "ends": ends, "shutdowns": shutdowns}


def _matched_counts(
    audits: Audits, matched: dict[str, Any], stuck: list[int] | None, final: bool
) -> tuple[pa.Array[Any], Offsets]:
    """The plan count of each AUDIT record (NULL where none matched), and the
    offsets of the records that must wait for more bytes."""
    matched_offsets = np.asarray(matched["offset"], dtype=np.int64)
    found_column: Any = matched["found"]
    bound_column: Any = matched["bound"]
    found = np.ma.getdata(found_column).astype(bool) & ~np.ma.getmaskarray(found_column)
    bound_missing = np.ma.getmaskarray(bound_column)
    late = matched_offsets[~found & bound_missing] if not final else matched_offsets[:0]
    waiting = np.concatenate([late, np.asarray(stuck or [], dtype=np.int64)])
    counts: Any = matched["plan_rows"]
    values = np.zeros(len(audits.offsets), dtype=np.int64)
    missing = np.ones(len(audits.offsets), dtype=bool)
    at = np.searchsorted(audits.offsets, matched_offsets)
    values[at] = np.ma.getdata(counts)
    missing[at] = np.ma.getmaskarray(counts)
    return pa.array(values, pa.int64(), mask=missing), waiting


def _late_at(recs: Records, rows: Offsets, plan_seconds: int) -> pa.Array[Any]:
    """For the records ``rows``, the offset of the first record logged more than
    ``plan_seconds`` after them (NULL: none in the batch yet)."""
    if len(recs.micros) == 0:
        return pa.nulls(len(rows), pa.int64())
    # Log times are in file order but for a few ms of jitter between processes:
    # the running maximum is what "the log has moved on" means.
    clock = np.maximum.accumulate(recs.micros)
    deadline = recs.micros[rows] + plan_seconds * 1_000_000
    at = np.searchsorted(clock, deadline, side="right")
    found = at < len(clock)
    offsets = recs.offsets[np.minimum(at, len(clock) - 1)]
    return pa.array(offsets, pa.int64(), mask=~found)


def wait_reasons(
    recs: Records, audits: Audits, waiting: Offsets, plan_seconds: int
) -> dict[int, str]:
    """What the first of the records ``waiting`` waits for, in words for ``status``."""
    if len(waiting) == 0:
        return {}
    first = int(waiting.min())
    i = int(np.searchsorted(audits.offsets, first))
    if i >= len(audits.offsets) or audits.offsets[i] != first:
        return {first: "an auto_explain plan that is not whole yet"}
    command = audits.fields["command"][i].as_py()
    key = recs.column("session_key")[int(audits.rows[i])].as_py()
    what = "a cursor's rows (DECLARE CURSOR: FETCHes are not audited)"
    if command != "DECLARE CURSOR":
        what = f"the row count of a {command} (pgaudit.log_rows is off)"
    return {
        first: f"waiting for the auto_explain plan with {what} in session {key}: until it "
        f"appears, the session or statement ends, or {plan_seconds} s of log time pass"
    }


_PLANS = r"""
CREATE TEMP TABLE plans AS
WITH t AS (
  SELECT "offset", session_key, open,
    regexp_matches(left(message, 64), '^duration: [0-9.]+ ms  plan:\n') AS is_plan,
    substr(message, strpos(message, chr(10)) + 1) AS plan
  FROM plan_text
), v AS (
  SELECT *, json_valid(plan) AS ok FROM t WHERE is_plan
), x AS (
  SELECT "offset", session_key, open, ok,
    CASE WHEN ok THEN json_extract(plan, ['$."Query Text"', '$.Plan."Node Type"',
                        '$.Plan."Actual Rows"', '$.Plan.Plans[0]."Actual Rows"']) END AS j
  FROM v
)
SELECT "offset", session_key, open, ok, j[1] ->> '$' AS query_text,
  round(try_cast((CASE WHEN j[2] ->> '$' = 'ModifyTable' THEN j[4] ELSE j[3] END) ->> '$'
        AS DOUBLE))::BIGINT AS plan_rows
FROM x
"""

_MATCH = """
WITH changes AS (
  -- substatements share the statement id; a new id with the same text is a rerun
  -- (only the texts a statement waits on: the others cannot bound a wait)
  SELECT "offset", session_key, statement,
    statement_id IS DISTINCT FROM lag(statement_id) OVER same_text AS new_run
  FROM same SEMI JOIN (SELECT DISTINCT session_key, statement FROM waits)
    USING (session_key, statement)
  WINDOW same_text AS (PARTITION BY session_key, statement ORDER BY "offset")
), runs AS (
  SELECT *, sum(new_run::INTEGER) OVER (
    PARTITION BY session_key, statement ORDER BY "offset") AS run
  FROM changes
), firsts AS (
  SELECT session_key, statement, run, min("offset") AS rerun_at FROM runs GROUP BY ALL
), again AS (
  SELECT r."offset", f.rerun_at FROM runs r JOIN firsts f
    ON f.session_key = r.session_key AND f.statement = r.statement AND f.run = r.run + 1
), statement_starts AS (
  -- where each statement of a session with a wait starts (its first AUDIT line)
  SELECT "offset" AS next_at, session_key FROM (
    SELECT *, statement_id IS DISTINCT FROM lag(statement_id) OVER (
      PARTITION BY session_key ORDER BY "offset") AS starts
    FROM session_statements
  ) WHERE starts
), bounds AS (
  SELECT n.*, least(
      e.end_at, s.shutdown_at, a.rerun_at, n.late_at,
      CASE WHEN NOT n.cursor THEN st.next_at END,
      CASE WHEN n."offset" + $window <= $data_end THEN n."offset" + $window END
    ) AS bound
  FROM waits n
  LEFT JOIN again a USING ("offset")
  ASOF LEFT JOIN ends e ON e.session_key = n.session_key AND e.end_at > n."offset"
  ASOF LEFT JOIN shutdowns s ON s.shutdown_at > n."offset"
  ASOF LEFT JOIN statement_starts st
    ON st.session_key = n.session_key AND st.next_at > n."offset"
), good_plans AS (
  SELECT * FROM plans WHERE ok
)
SELECT b."offset", b.bound,
  CASE WHEN p."offset" < coalesce(b.bound, $data_end + 1) THEN p.plan_rows END AS plan_rows,
  p."offset" < coalesce(b.bound, $data_end + 1) AS found
FROM bounds b ASOF LEFT JOIN good_plans p
  ON p.session_key = b.session_key AND p.query_text = b.statement
 AND p."offset" > b."offset"
ORDER BY b."offset"
"""
