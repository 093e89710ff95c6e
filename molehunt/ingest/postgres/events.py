"""PostgreSQL log records to events, shared by ``pg-csvlog``, ``pg-stderr`` and ``pg-syslog``.

Each parser cuts its bytes into records and hands the interesting ones (by the
start of their message) to :func:`build_events` as an Arrow table of
:data:`RECORD_SCHEMA`, the AUDIT payloads beside it. From there both formats
are read the same way: the common case in numpy over the bytes and in Arrow
(log times as fixed-width digits, payloads split at their commas, the event
tables built column by column), and in one in-memory DuckDB only what is
unusual (an odd time zone, a payload the numpy split cannot vouch for) and the
few statements waiting for a plan:

* ``AUDIT: ...`` lines (pgAudit) -> ``events_db``. The payload is itself CSV:
  ``SESSION,<statement_id>,<substatement_id>,<class>,<command>,<object_type>,
  <object_name>,<statement>,<parameter>[,<rows>]`` (rows only with
  ``pgaudit.log_rows = on``).
* ``connection authorized`` / ``disconnection`` -> ``events_auth``.
* ``duration: ... plan:`` (auto_explain, JSON format) are not events: they give
  the true row count of an audited statement that pgAudit could not count
  (a ``DECLARE CURSOR``, whose ``FETCH``\\es are not logged, shows 0 rows; without
  ``log_rows`` nothing is counted). The plan joined to such an AUDIT line is the
  first one after it in the same session with the same query text, before the
  session ends, before the same text is audited again as another statement, and
  within ``plan_window`` bytes of the file. Its count is the ``Actual Rows`` of
  the top node, or of the node feeding a ``ModifyTable`` (whose own count is 0
  without ``RETURNING``).
* ``COPY ... TO`` (pgAudit class READ, command COPY) is a bulk read of unknown
  size: pgAudit 1.7 logs it with 0 rows, so ``rows`` is NULL and
  ``bulk_unknown`` true.

Only statements that need a plan's count wait for it (a cursor, or a READ/WRITE
without ``pgaudit.log_rows``); a complete record never does. A waiting AUDIT line
holds the chunk back: the batch is consumed only up to it, unless the data
already shows that no plan can come (the session ended, the server shut down,
the byte window or ``plan_seconds`` of log time are past, or, for a statement
that is not a cursor, its session's next statement began); ``Built.pending``
says what it waits for. So event rows never depend on where a file was cut into
chunks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from molehunt.ingest.postgres.audit import SplitPayloads, keep_payloads, read_audits
from molehunt.ingest.postgres.kernels import as_mask
from molehunt.ingest.postgres.plans import (
    DEFAULT_PLAN_SECONDS,
    PlanMessages,
    plan_counts,
    wait_reasons,
)
from molehunt.ingest.postgres.records import Records
from molehunt.ingest.postgres.tables import auth_table, db_table
from molehunt.ingest.postgres.times import record_times


@dataclass(slots=True)
class Built:
    """Event tables, records set aside, and where the batch must stop (if anywhere)."""

    tables: dict[str, pa.Table] = field(default_factory=dict)
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (offset, reason)
    cutoff: int | None = None  # file offset of the first record that must wait
    #: Why the batch stops at ``cutoff`` (what the first waiting record waits for).
    pending: str | None = None


def build_events(
    records: pa.Table,
    *,
    payloads: pa.Array[Any] | SplitPayloads,
    plan_messages: PlanMessages,
    kind: str,
    source_id: str,
    data_end: int,
    final: bool,
    zones: Mapping[str, str],
    plan_window: int,
    plan_seconds: int = DEFAULT_PLAN_SECONDS,
) -> Built:
    """Events from ``records`` (interesting records of one batch, in file order).

    AUDIT records come without their message (NULL): ``payloads`` holds them,
    in the same order (one array, as the format parser cut them, or already
    split: :class:`SplitPayloads`). Plan records come without their message
    too: plans are most of a log's bytes and only
    those of sessions with a statement waiting for a count are read, through
    ``plan_messages``. ``data_end`` is the file offset just past
    the last whole record of the batch; ``final`` says the file will not grow,
    so nothing needs to wait for more bytes.

    The common records are read in numpy and Arrow; DuckDB sees only what is
    unusual (an odd time zone, a payload the numpy split does not vouch for)
    and the few statements waiting for a plan.
    """
    out = Built()
    recs, payloads = _timed_records(records, payloads, zones, out)

    audits = read_audits(recs, payloads)
    is_open = recs.open[audits.rows]
    broken = audits.bad if final else audits.bad & ~is_open
    waiting = [audits.offsets[audits.bad & is_open & ~np.bool_(final)]]
    reasons: dict[int, str] = {
        int(o): "the last AUDIT line may not be whole yet (the server may still be writing it)"
        for o in waiting[0][:1]
    }
    out.rejected.extend((int(o), "unparseable AUDIT payload") for o in audits.offsets[broken])

    plan_rows: pa.Array[Any] = pa.nulls(len(audits.offsets), pa.int64())
    needy = audits.ok & audits.needs_plan
    if needy.any():
        plan_rows, plan_problems, plan_waiting = plan_counts(
            recs,
            audits,
            needy,
            plan_messages=plan_messages,
            plan_window=plan_window,
            plan_seconds=plan_seconds,
            data_end=data_end,
            final=final,
        )
        out.rejected.extend(plan_problems)
        waiting.append(plan_waiting)
        reasons.update(wait_reasons(recs, audits, plan_waiting, plan_seconds))
    pending = np.concatenate(waiting)
    out.cutoff = int(pending.min()) if len(pending) else None
    if out.cutoff is not None:
        out.pending = reasons.get(out.cutoff, "an auto_explain plan that is not whole yet")
    limit = out.cutoff if out.cutoff is not None else data_end + 1
    out.tables["events_db"] = db_table(
        recs, audits, plan_rows, kind=kind, source_id=source_id, limit=limit
    )
    out.tables["events_auth"] = auth_table(recs, kind=kind, source_id=source_id, limit=limit)
    out.rejected.sort()
    if out.cutoff is not None:
        out.rejected = [(o, r) for o, r in out.rejected if o < out.cutoff]
    return out


def _timed_records(
    records: pa.Table,
    payloads: pa.Array[Any] | SplitPayloads,
    zones: Mapping[str, str],
    out: Built,
) -> tuple[Records, pa.Array[Any] | SplitPayloads]:
    """The records whose log time is known (the others go to ``out.rejected``),
    without the shutdown-like lines that are not the server's last words."""
    what = records["what"].combine_chunks()
    shutdown = as_mask(pc.equal(what, pa.scalar("shutdown")))
    if shutdown.any():
        # Only the server's last words end every session; other lines merely start so.
        said = as_mask(pc.equal(records["message"], pa.scalar("database system is shut down")))
        records = records.filter(pa.array(~shutdown | said))
        what = records["what"].combine_chunks()
    offsets = np.asarray(records["offset"].to_numpy(), dtype=np.int64)
    micros, time_problems = record_times(records, zones)
    if time_problems:
        out.rejected.extend((int(offsets[i]), reason) for i, reason in time_problems)
        timed = np.ones(len(offsets), dtype=bool)
        timed[[i for i, _ in time_problems]] = False
        audit_rows = as_mask(pc.equal(what, pa.scalar("audit")))
        payloads = keep_payloads(payloads, timed[audit_rows])
        records = records.filter(pa.array(timed))
        what, offsets, micros = what.filter(pa.array(timed)), offsets[timed], micros[timed]
    return Records(records, what, offsets, micros), payloads
