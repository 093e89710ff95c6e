"""Bulk and enumerating reads."""

from __future__ import annotations

from typing import Any, ClassVar

import ibis

from molehunt.detect.base import DetectContext, Finding, QueryDetector

# A statement that walks the table by id (RE2 and Java regex alike: no lookaround).
_ID_RANGE = r"\bid\s*(<=|<|>=|>|between)"


class BulkReadDetector(QueryDetector):
    """Bulk and enumerating reads: many rows at once, COPY of client tables, cursors,
    statements with no selective predicate or walking id ranges, off-hours bulk reads."""

    name: ClassVar[str] = "bulk_read"
    severity: ClassVar[int] = 55
    description: ClassVar[str] = "client data read in bulk or enumerated"
    source: ClassVar[str] = "db"
    stage: ClassVar[str] = "collection"

    def query(self, ctx: DetectContext) -> Any:
        s = ctx.settings
        r = ctx.of_pass(ctx.reads())
        # Every flag below needs one of these; testing them first spares the regexes
        # on the (many) small reads.
        r = r.filter(
            r.bulk_unknown
            | (r.command.fill_null("") == "COPY")
            | (r.rows >= s.offhours_rows)
            | (r.rows >= s.bulk_rows)
        )
        stmt = r.statement.fill_null("").lower()
        no_where = stmt.re_search(r"^\s*select\b") & ~stmt.re_search(r"\bwhere\b")
        sized = r.rows >= s.offhours_rows
        copy = r.bulk_unknown | (r.command.fill_null("") == "COPY")
        r = r.mutate(
            copy=copy,
            cursor=r.command.fill_null("").isin(["DECLARE CURSOR", "FETCH"]) & sized,
            # A case, not an AND: the statement's regexes run on the sized reads only.
            enumerating=ibis.cases(
                ((r.system == "crm-db") & sized, stmt.re_search(_ID_RANGE) | no_where),
                else_=False,
            ),
            big=r.rows >= s.bulk_rows,
            night=(sized | copy) & ctx.off_hours(r.time),
        )
        r = r.filter(r.copy | r.cursor | r.enumerating | r.big | r.night)
        r = r.filter(r.actor.notnull())
        flag = {
            name: r[name].cast("int32").max()
            for name in ("copy", "cursor", "enumerating", "big", "night")
        }
        return r.group_by(["actor", "day"]).aggregate(
            ids=r.event_id.collect(),
            rows=r.rows.sum(),
            last=r.time.max(),
            host=r.hostname.max(),
            accounts=r.account.collect(distinct=True),
            **flag,
        )

    def to_finding(self, ctx: DetectContext, row: dict[str, Any]) -> Finding:
        s = ctx.settings
        how = [name for name in ("copy", "cursor", "enumerating", "big", "night") if row[name]]
        rows = int(row["rows"] or 0)
        severity = self.severity + (15 if row["night"] else 0)
        severity += 15 if row["copy"] or rows >= 10 * s.bulk_rows else 0
        words = {
            "copy": "COPY of unknown size",
            "cursor": "cursor reads",
            "enumerating": "no selective predicate / id ranges",
            "big": "large result",
            "night": "outside working hours",
        }
        return Finding(
            detector=self.name,
            day=row["day"],
            time=ctx.utc(row["last"]),
            severity=min(100, severity),
            person_id=row["actor"],
            title=f"bulk read of {rows} rows ({'; '.join(words[h] for h in how)})",
            account=",".join(sorted(row["accounts"])),
            host=row["host"],
            event_ids=ctx.ids(row["ids"]),
            details={
                "rows": rows,
                "how": how,
                "events_total": len(row["ids"]),
                # A COPY of unknown size says nothing of its rows: never routine.
                **({} if row["copy"] else ctx.reading_surprise(row["actor"], [row["day"]])),
            },
        )
