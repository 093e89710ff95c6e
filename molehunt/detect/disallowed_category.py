"""Disallowed category."""

from __future__ import annotations

from typing import Any, ClassVar

from molehunt.detect.base import DetectContext, Finding, QueryDetector


class DisallowedCategoryDetector(QueryDetector):
    """Disallowed category: uploads to, or visits of, sites whose category the web
    policy does not allow (an unknown category counts as not allowed).

    Visits alone are weak (nearly everyone reads a blocked news site now and then)
    and corroborate nothing: only an upload is evidence that data left.
    """

    name: ClassVar[str] = "disallowed_category"
    severity: ClassVar[int] = 10
    description: ClassVar[str] = "visits or uploads to categories the policy does not allow"
    source: ClassVar[str] = "web"
    stage: ClassVar[str] = "context"

    def query(self, ctx: DetectContext) -> Any:
        h = ctx.of_pass(ctx.http())  # a day's finding reads that day's requests
        h = h.filter(~h.allowed & h.actor.notnull())
        return h.group_by(["actor", "day"]).aggregate(
            ids=h.event_id.collect(),
            bytes=h.bytes_out.sum(),
            biggest=h.bytes_out.max(),
            last=h.time.max(),
            host=h.hostname.max(),
            sites=h.web_host.collect(distinct=True),
            categories=h.category.collect(distinct=True),
        )

    def to_finding(self, ctx: DetectContext, row: dict[str, Any]) -> Finding:
        s = ctx.settings
        upload = int(row["biggest"] or 0) >= s.upload_request_bytes
        cats = sorted(c for c in row["categories"] if c) or ["unknown"]
        return Finding(
            detector=self.name,
            day=row["day"],
            time=ctx.utc(row["last"]),
            severity=self.severity + (55 if upload else 0),
            person_id=row["actor"],
            title=f"{len(row['ids'])} request(s) to {', '.join(cats)} sites "
            f"{', '.join(sorted(row['sites'])[:5])}"
            + (f" with {int(row['bytes']) / 1_048_576:.1f} MB uploaded" if upload else ""),
            host=row["host"],
            event_ids=ctx.ids(row["ids"]),
            details={
                "categories": cats,
                "sites": sorted(row["sites"]),
                "bytes_out": int(row["bytes"] or 0),
                "events_total": len(row["ids"]),
                "corroborates": upload,
                "stage": "exfiltration" if upload else "context",
            },
        )
