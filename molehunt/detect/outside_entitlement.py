"""Outside entitlement."""

from __future__ import annotations

from typing import Any, ClassVar

from molehunt.detect.base import DetectContext, Finding, QueryDetector


class OutsideEntitlementDetector(QueryDetector):
    """Outside entitlement: a person reads a system or resource their role is not
    entitled to (e.g. a sales workstation straight on the client database).

    The person is the one behind the read (at the source host, else the account's
    owner); a read naming no table counts against any entitlement on its system.
    """

    name: ClassVar[str] = "outside_entitlement"
    severity: ClassVar[int] = 70
    description: ClassVar[str] = "reads of a system or resource the person's role may not read"
    source: ClassVar[str] = "db"
    stage: ClassVar[str] = "access"

    def query(self, ctx: DetectContext) -> Any:
        r = ctx.of_pass(ctx.reads())
        r = r.filter(r.actor.notnull() & r.actor_role.notnull())
        ent = ctx.ref("entitlements").select(e_role="role", e_system="system", e_res="resource")
        r = r.anti_join(
            ent,
            [
                r.actor_role == ent.e_role,
                r.system == ent.e_system,
                (ent.e_res == "*") | (ent.e_res == r.resource) | r.resource.isnull(),
            ],
        )
        return r.group_by(["actor", "actor_role", "system", "day"]).aggregate(
            ids=r.event_id.collect(),
            rows=r.rows.sum(),
            last=r.time.max(),
            resources=r.resource.collect(distinct=True),
            accounts=r.account.collect(distinct=True),
            owners=r.account_owner.collect(distinct=True),
            host=r.hostname.max(),
        )

    def to_finding(self, ctx: DetectContext, row: dict[str, Any]) -> Finding:
        person = row["actor"]
        related = tuple(sorted(o for o in row["owners"] if o and o != person))
        resources = sorted(x for x in row["resources"] if x)
        return Finding(
            detector=self.name,
            day=row["day"],
            time=ctx.utc(row["last"]),
            severity=self.severity,
            person_id=person,
            title=f"{person} ({row['actor_role']}) read {row['system']} "
            f"{', '.join(resources) or '(no table named)'} without entitlement",
            account=",".join(sorted(row["accounts"])),
            host=row["host"],
            event_ids=ctx.ids(row["ids"]),
            related=related,
            details={
                "role": row["actor_role"],
                "system": row["system"],
                "resources": resources,
                "rows": int(row["rows"] or 0),
                "events_total": len(row["ids"]),
            },
            key=row["system"],
        )
