"""Personal data written to files."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

import ibis

from molehunt.detect.base import DetectContext, Finding, QueryDetector


class FileWriteDetector(QueryDetector):
    """Personal data written to files: spreadsheets created on a host within hours
    after a bulk read of client data from that host."""

    name: ClassVar[str] = "file_write"
    severity: ClassVar[int] = 70
    description: ClassVar[str] = "spreadsheets written on a host after a bulk read there"
    source: ClassVar[str] = "file"
    stage: ClassVar[str] = "collection"

    def query(self, ctx: DetectContext) -> Any:
        s = ctx.settings
        f = ctx.endpoint_events("events_file")
        name = f.path.fill_null("").lower()
        sheet = ibis.literal(False)
        for suffix in s.spreadsheet_suffixes:
            sheet = sheet | name.endswith(suffix.lower())
        f = ctx.of_pass(f.filter(sheet & f.actor.notnull()))
        # Bulk reads up to ``follow_hours`` before a reported day's files.
        b = ctx.trailing(ctx.bulk_reads(), 1 + s.follow_hours // 24).select(
            b_id="event_id",
            b_time="time",
            b_host="hostname",
            b_rows="rows",
            b_unknown="bulk_unknown",
        )
        j = f.join(
            b,
            [
                f.hostname == b.b_host,
                b.b_time <= f.time,
                b.b_time > f.time - ibis.interval(hours=s.follow_hours),
            ],
        )
        return j.group_by(["actor", "hostname", "day"]).aggregate(
            file_ids=j.event_id.collect(distinct=True),
            read_ids=j.b_id.collect(distinct=True),
            files=j.path.collect(distinct=True),
            last=j.time.max(),
            unknown=j.b_unknown.cast("int32").max(),
        )

    def to_finding(self, ctx: DetectContext, row: dict[str, Any]) -> Finding:
        files = sorted(row["files"])
        return Finding(
            detector=self.name,
            day=row["day"],
            time=ctx.utc(row["last"]),
            severity=self.severity,
            person_id=row["actor"],
            title=f"{len(files)} spreadsheet(s) written on {row['hostname']} after "
            f"{len(row['read_ids'])} bulk read(s) there",
            host=row["hostname"],
            event_ids=ctx.ids(row["file_ids"], row["read_ids"]),
            details={
                "files": files[:50],
                "bulk_reads": len(row["read_ids"]),
                # The reads it follows: that day's or the day before's.
                # (a COPY of unknown size among them says nothing of rows).
                **(
                    {}
                    if row["unknown"]
                    else ctx.reading_surprise(
                        row["actor"], [row["day"], row["day"] - timedelta(days=1)]
                    )
                ),
            },
        )
