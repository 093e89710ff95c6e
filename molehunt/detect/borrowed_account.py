"""Account used from another person's host."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any, ClassVar

from molehunt.detect.base import DetectContext, Finding, QueryDetector


class BorrowedAccountDetector(QueryDetector):
    """Account used from another person's host: the source host belongs to (or is
    logged on by) someone other than the account's owner; names both people.

    Accounts of kind ``shared`` (a service desk's) are used by several people by
    design and are left out. The finding is critical when the person was seen logged
    on at the host; when only the host's owner says who it was (hot desks, no logon
    seen), it is a step of a chain (access), not proof on its own.

    Once it happens on a second day within ``sustained_window_days``, the owner, if
    still employed, lends the account (a walk-up to an unlocked desk happens once):
    the owner then gets a finding of their own.
    """

    name: ClassVar[str] = "borrowed_account"
    severity: ClassVar[int] = 80
    description: ClassVar[str] = "an account used from a host owned or used by someone else"
    source: ClassVar[str] = "identity"
    stage: ClassVar[str] = "critical"

    def query(self, ctx: DetectContext) -> Any:
        # A day's finding reads that day and the ``sustained_window_days`` before (rows).
        r = ctx.trailing(ctx.reads(), ctx.settings.sustained_window_days)
        r = r.filter(
            r.account_owner.notnull()
            & r.host_person.notnull()
            & (r.host_person != r.account_owner)
            & (r.account_kind.fill_null("") != "shared")
        )
        g = r.group_by(["account", "account_owner", "host_person", "hostname", "day"]).aggregate(
            ids=r.event_id.collect(),
            rows=r.rows.sum(),
            last=r.time.max(),
            logged_on=r.logon_person.max(),
            systems=r.system.collect(distinct=True),
        )
        people = ctx.people().select(o_id="employee_id", o_term="termination_date")
        return g.left_join(people, g.account_owner == people.o_id).drop("o_id")

    def rows(self, ctx: DetectContext) -> list[dict[str, Any]]:
        """Each use of an account from another's host, preceded by one with ``lends``
        when it is the owner's finding too: the same account, owner and person on an
        earlier day within ``sustained_window_days``, the owner still employed."""
        rows = ctx.collect(self.query(ctx))
        used: dict[tuple[str, str, str], list[date]] = defaultdict(list)
        for row in rows:
            used[(row["account"], row["account_owner"], row["host_person"])].append(row["day"])
        span = timedelta(days=ctx.settings.sustained_window_days)
        out = []
        for row in rows:
            days = used[(row["account"], row["account_owner"], row["host_person"])]
            gone = row["o_term"] is not None and row["o_term"] < row["day"]
            if not gone and any(row["day"] - span < d < row["day"] for d in days):
                out.append({**row, "lends": True})
            out.append({**row, "lends": False})
        return out

    def to_finding(self, ctx: DetectContext, row: dict[str, Any]) -> Finding:
        person, owner = row["host_person"], row["account_owner"]
        how = "logged on at" if row["logged_on"] == person else "owner of"
        stage = "critical" if how == "logged on at" else "access"
        if row["lends"]:
            return Finding(
                detector=self.name,
                day=row["day"],
                time=ctx.utc(row["last"]),
                severity=self.severity,
                person_id=owner,
                title=f"lends account {row['account']}: used again from "
                f"{row['hostname']} by {person}",
                account=row["account"],
                host=row["hostname"],
                event_ids=ctx.ids(row["ids"]),
                related=(person,),
                details={"account_owner": owner, "person_at_host": person, "stage": stage},
                key="lent",
            )
        return Finding(
            detector=self.name,
            day=row["day"],
            time=ctx.utc(row["last"]),
            severity=self.severity,
            person_id=person,
            title=f"account {row['account']} of {owner} used from {row['hostname']} "
            f"({how} it: {person}), {int(row['rows'] or 0)} rows read",
            account=row["account"],
            host=row["hostname"],
            event_ids=ctx.ids(row["ids"]),
            related=(owner,),
            details={
                "account_owner": owner,
                "person_at_host": person,
                # Someone logged on at the host is proof of who acted; the host's
                # owner alone (a hot desk, no logon seen) is a step, not proof.
                "stage": stage,
                "rows": int(row["rows"] or 0),
                "systems": sorted(row["systems"]),
                "events_total": len(row["ids"]),
            },
        )
