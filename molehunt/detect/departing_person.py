"""Departing person."""

from __future__ import annotations

from typing import Any, ClassVar

import ibis

from molehunt.detect.base import DetectContext, Finding, QueryDetector


class DepartingPersonDetector(QueryDetector):
    """Departing person: client data read or uploads made during notice or in the
    weeks before termination (the watch list; the score also weighs everything else
    such a person does more)."""

    name: ClassVar[str] = "departing_person"
    severity: ClassVar[int] = 30
    description: ClassVar[str] = "reads or uploads by a person on notice or about to leave"
    source: ClassVar[str] = "identity"
    stage: ClassVar[str] = "motive"

    def query(self, ctx: DetectContext) -> Any:
        s = ctx.settings
        r = ctx.of_pass(ctx.reads())
        r = r.filter(r.actor.notnull()).select(
            "event_id", "time", "day", "actor", "rows", up=ibis.literal(0, type="int64")
        )
        u = ctx.of_pass(ctx.uploads())
        u = u.select(
            "event_id",
            "time",
            "day",
            "actor",
            rows=ibis.literal(0, type="int64"),
            up=u.bytes_out.cast("int64"),
        )
        ev = r.union(u)
        p = ctx.people().select(p_id="employee_id", notice="notice_date", term="termination_date")
        ev = ev.join(p, ev.actor == p.p_id)
        departing = (ev.notice.notnull() & (ev.day >= ev.notice)) | (
            ev.term.notnull() & (ev.day >= ev.term - ibis.interval(days=s.departing_days))
        )
        ev = ev.filter(departing & (ev.term.isnull() | (ev.day <= ev.term)))
        return ev.group_by(["actor", "day"]).aggregate(
            ids=ev.event_id.collect(),
            rows=ev.rows.sum(),
            up=ev.up.sum(),
            last=ev.time.max(),
            notice=ev.notice.max(),
            term=ev.term.max(),
        )

    def to_finding(self, ctx: DetectContext, row: dict[str, Any]) -> Finding:
        s = ctx.settings
        rows, up = int(row["rows"] or 0), int(row["up"] or 0)
        severity = self.severity + (20 if up else 0) + (10 if rows >= s.offhours_rows else 0)
        leaves = f", leaves {row['term']}" if row["term"] else ""
        return Finding(
            detector=self.name,
            day=row["day"],
            time=ctx.utc(row["last"]),
            severity=severity,
            person_id=row["actor"],
            title=f"departing (notice {row['notice'] or '-'}{leaves}): {rows} rows "
            f"read, {up / 1_048_576:.1f} MB uploaded",
            event_ids=ctx.ids(row["ids"]),
            details={
                "notice_date": str(row["notice"]) if row["notice"] else None,
                "termination_date": str(row["term"]) if row["term"] else None,
                "rows": rows,
                "bytes_out": up,
                "events_total": len(row["ids"]),
            },
        )
