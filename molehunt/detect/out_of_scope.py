"""Out of scope."""

from __future__ import annotations

from typing import ClassVar

from molehunt.detect.base import DetectContext, Finding


class OutOfScopeDetector:
    """Out of scope: records read outside one's own portfolio, where the client
    master says who owns which client.

    Only people who own a portfolio are checked (an auditor or a claims handler has
    none, and reads across them by design); it needs the client master's
    ``owner_employee_id`` column and the record-level access table.
    """

    name: ClassVar[str] = "out_of_scope"
    severity: ClassVar[int] = 60
    description: ClassVar[str] = "clients of other people's portfolios read"
    source: ClassVar[str] = "db"

    def find(self, ctx: DetectContext) -> list[Finding]:
        clients = ctx.table("clients")
        if "owner_employee_id" not in clients.columns:
            return []
        owners = clients.select(c_id="client_id", c_owner="owner_employee_id").filter(
            lambda t: t.c_owner.notnull() & (t.c_owner != "")
        )
        holders = owners.select(h_id="c_owner").distinct()
        r = ctx.reads()
        r = r.filter(r.actor.notnull()).select("event_id", "time", "day", "actor", "hostname")
        r = r.join(holders, r.actor == holders.h_id).drop("h_id")
        ra = ctx.table("record_access").select(ra_id="event_id", ra_client="client_id")
        j = r.join(ra, r.event_id == ra.ra_id)
        j = j.join(owners, j.ra_client == owners.c_id)
        j = j.filter(j.c_owner != j.actor)
        g = j.group_by(["actor", "day"]).aggregate(
            clients=j.ra_client.nunique(),
            portfolios=j.c_owner.nunique(),
            ids=j.event_id.collect(distinct=True),
            last=j.time.max(),
            host=j.hostname.max(),
        )
        g = g.filter(g.clients >= ctx.settings.out_of_scope_min_clients)
        out = []
        for row in ctx.collect(g):
            if not ctx.reported(row["day"]):
                continue
            n = int(row["clients"])
            out.append(
                Finding(
                    detector=self.name,
                    day=row["day"],
                    time=ctx.utc(row["last"]),
                    severity=self.severity
                    + (20 if n >= 10 * ctx.settings.out_of_scope_min_clients else 0),
                    person_id=row["actor"],
                    title=f"{n} clients of {int(row['portfolios'])} other portfolios read",
                    host=row["host"],
                    event_ids=ctx.ids(row["ids"]),
                    details={
                        "clients": n,
                        "portfolios": int(row["portfolios"]),
                        "events_total": len(row["ids"]),
                    },
                )
            )
        return out
