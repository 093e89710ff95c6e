"""Departed account in use."""

from __future__ import annotations

from typing import Any, ClassVar

import ibis

from molehunt.detect.base import DetectContext, Finding, QueryDetector
from molehunt.resolve.stored import day_start


class DepartedAccountDetector(QueryDetector):
    """Departed account in use: the account of someone who has left (or a disabled
    account) logs on or reads client data.

    Severity rises with the rows read. The finding names the person at the source
    host when it is not the departed owner (someone is using a handed-over account).
    """

    name: ClassVar[str] = "departed_account"
    severity: ClassVar[int] = 80
    description: ClassVar[str] = "an account of a departed person, or a disabled one, in use"
    source: ClassVar[str] = "identity"
    stage: ClassVar[str] = "critical"

    def query(self, ctx: DetectContext) -> Any:
        people = ctx.people().select(o_id="employee_id", o_term="termination_date")
        r = ctx.of_pass(ctx.reads())
        r = r.select(
            "event_id",
            "time",
            "day",
            "account",
            "account_owner",
            "account_disabled",
            "hostname",
            "actor",
            "rows",
        )
        a = ctx.table("events_auth")
        a = a.filter(
            (a.time < ctx.end_literal())
            & a.activity.isin(["logon", "connect"])
            & a.user_name.notnull()
        )
        if ctx.since is not None:
            # Only the pass's days are reported (``of_pass`` below): their logons alone
            # are resolved, and the scan skips the rest by the time's min/max.
            begin = ibis.literal(day_start(ctx, ctx.since), type="timestamp('UTC')")
            a = a.filter(a.time >= begin)
        a = a.select(
            event_id=a.event_id,
            time=a.time,
            account=a.user_name.lower(),
            system=ibis.cases((a.kind.startswith("pg"), "crm-db"), else_="ad"),
            src_ip=a.src_ip,
        )
        acc = (
            ctx.accounts("crm-db")
            .mutate(s=ibis.literal("crm-db"))
            .union(ctx.accounts("ad").mutate(s=ibis.literal("ad")))
        )
        a = a.join(acc, [a.account == acc.acct, a.system == acc.s]).drop("acct", "s", "system")
        a = ctx.resolve_source(a, "src_ip")
        a = a.select(
            "event_id",
            "time",
            "account",
            "hostname",
            day=ctx.day_of(a.time),
            account_owner=a.acct_owner,
            account_disabled=a.acct_disabled,
            actor=a.host_person.coalesce(a.acct_owner),
            rows=ibis.literal(0, type="int64"),
        )
        ev = r.union(ctx.of_pass(a).select(*r.columns))
        ev = ev.join(people, ev.account_owner == people.o_id, how="left")
        # The last shift may run past midnight (a night team): the owner's own use in
        # the morning after the last day (or of the day the account is disabled) is
        # that shift, not a departed account in use.
        own_morning = (ev.actor.fill_null("") == ev.account_owner.fill_null("-")) & (
            ctx.local(ev.time).hour() < 12
        )
        after_last = ev.day == ev.o_term + ibis.interval(days=1)
        disabled_that_day = ev.day == ev.account_disabled
        gone = (
            ev.o_term.notnull()
            & (ev.day > ev.o_term)
            & ~(own_morning & after_last).fill_null(False)
        ) | (
            ev.account_disabled.notnull()
            & (ev.day >= ev.account_disabled)
            & ~(own_morning & disabled_that_day).fill_null(False)
        )
        ev = ev.filter(gone)
        return ev.group_by(["account", "account_owner", "actor", "day"]).aggregate(
            ids=ev.event_id.collect(),
            rows=ev.rows.sum(),
            last=ev.time.max(),
            host=ev.hostname.max(),
            term=ev.o_term.max(),
        )

    def to_finding(self, ctx: DetectContext, row: dict[str, Any]) -> Finding:
        rows = int(row["rows"] or 0)
        severity = 70 if rows == 0 else 85 if rows < ctx.settings.bulk_rows else 100
        owner, actor = row["account_owner"], row["actor"]
        related = (owner,) if owner and owner != actor else ()
        by = f" by {actor} at {row['host']}" if related else ""
        return Finding(
            detector=self.name,
            day=row["day"],
            time=ctx.utc(row["last"]),
            severity=severity,
            person_id=actor,
            title=f"account {row['account']} of departed {owner} in use{by} ({rows} rows read)",
            account=row["account"],
            host=row["host"],
            event_ids=ctx.ids(row["ids"]),
            related=related,
            details={
                "account_owner": owner,
                "termination_date": str(row["term"]) if row["term"] else None,
                "rows": rows,
                "events_total": len(row["ids"]),
            },
        )
