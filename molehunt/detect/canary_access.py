"""Reads of canary records."""

from __future__ import annotations

from typing import Any, ClassVar

from molehunt.detect.base import DetectContext, Finding, QueryDetector


class CanaryAccessDetector(QueryDetector):
    """Canary read: a planted client that no work needs was read; names the account
    and the host it was read from."""

    name: ClassVar[str] = "canary_access"
    severity: ClassVar[int] = 95
    description: ClassVar[str] = "a canary client record was read"
    source: ClassVar[str] = "db"
    stage: ClassVar[str] = "critical"

    def query(self, ctx: DetectContext) -> Any:
        canaries = ctx.table("canaries").select(c_id="client_id")
        r = ctx.of_pass(ctx.reads())
        access = ctx.table("record_access")
        hits = access.join(canaries, access.client_id == canaries.c_id).select(
            h_event="event_id", h_client="client_id"
        )
        j = r.join(hits, r.event_id == hits.h_event)
        return j.group_by(["actor", "day", "account", "hostname"]).aggregate(
            ids=j.event_id.collect(distinct=True),
            canaries=j.h_client.nunique(),
            owner=j.account_owner.max(),
            last=j.time.max(),
        )

    def to_finding(self, ctx: DetectContext, row: dict[str, Any]) -> Finding:
        n = int(row["canaries"])
        owner = row["owner"]
        related = (owner,) if owner and owner != row["actor"] else ()
        return Finding(
            detector=self.name,
            day=row["day"],
            time=ctx.utc(row["last"]),
            severity=self.severity,
            person_id=row["actor"],
            title=f"read {n} canary record{'s' if n != 1 else ''} "
            f"as {row['account']} from {row['hostname'] or 'an unknown host'}",
            account=row["account"],
            host=row["hostname"],
            event_ids=ctx.ids(row["ids"]),
            related=related,
            details={"canaries": n, "account_owner": owner},
            key=f"{row['account']}@{row['hostname'] or ''}",
        )
