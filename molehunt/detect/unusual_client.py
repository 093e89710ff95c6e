"""Unusual client."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, ClassVar

import ibis

from molehunt.detect.base import DetectContext, Finding, QueryDetector, is_tool
from molehunt.detect.surprise import tail_bits

#: Tool names that mean a database connection only (Excel ODBC), never a process.
_CONNECTION_ONLY = ("excel", "odbc")

#: The client database's system name in reads and entitlements.
_DATABASE = "crm-db"


class UnusualClientDetector(QueryDetector):
    """Unusual client: a desktop SQL tool (DBeaver, Navicat, psql, Excel ODBC...) where
    the account or host normally uses only the application.

    The application name a database client reports, and a process image Sysmon
    saw, are signals only: they never identify anyone. Roles whose work is such tools
    (``tool_roles``, the DBAs) are left out, and so is an account or host that used a
    tool in its baseline window. Nothing is new in the first ``min_history_days`` of the
    data (there is no baseline yet), and Excel and ODBC count as tools only in the
    application name a database connection reports: as a process, Excel is office work.
    """

    name: ClassVar[str] = "unusual_client"
    severity: ClassVar[int] = 50
    description: ClassVar[str] = "a desktop SQL tool where only the application is normal"
    source: ClassVar[str] = "db"
    stage: ClassVar[str] = "access"

    def rows(self, ctx: DetectContext) -> list[dict[str, Any]]:
        """The new tools of accounts (database reads), then of hosts (processes), each
        row with its ``kind``; the role's use of such tools is worked out for the pass."""
        s = ctx.settings
        r = ctx.reads()
        r = r.filter(r.system == _DATABASE).mutate(
            tool=is_tool(r.app_name, s.desktop_clients), who=r.account, label=r.app_name
        )
        p = ctx.endpoint_events("events_process")
        images = [t for t in s.desktop_clients if t.lower() not in _CONNECTION_ONLY]
        p = p.mutate(tool=is_tool(p.image, images), who=p.hostname, label=p.image)
        roles = ctx.people().select(pr_id="employee_id", pr_role="role")
        p = p.left_join(roles, p.actor == roles.pr_id).rename(actor_role="pr_role")
        self._peers = _ToolPeers(ctx, [r, p])
        out: list[dict[str, Any]] = []
        for kind, ev in (("account", r), ("host", p)):
            out.extend({**row, "kind": kind} for row in ctx.collect(self._new_tool(ctx, ev)))
        return out

    def _new_tool(self, ctx: DetectContext, ev: Any) -> Any:
        """Per account or host (``who``), person and day: a tool it had not used in its
        baseline window."""
        s = ctx.settings
        ev = ev.filter(ev.who.notnull())
        daily = ev.group_by(["who", "day"]).aggregate(used=ev.tool.cast("int32").max())
        w = ibis.window(group_by=daily.who, order_by=daily.day, rows=(-s.baseline_days, -1))
        daily = daily.mutate(before=daily.used.max().over(w).fill_null(0))
        start = ev.day.min() + ibis.interval(days=s.min_history_days)
        daily = daily.filter((daily.used == 1) & (daily.before == 0) & (daily.day >= start))
        daily = daily.rename(d_who="who", d_day="day")
        # The windows above need every earlier day; only the pass's days are reported.
        hits = ctx.of_pass(ev)
        hits = hits.filter(hits.tool & ~hits.actor_role.fill_null("").isin(list(s.tool_roles)))
        hits = hits.join(daily, [hits.who == daily.d_who, hits.day == daily.d_day])
        return hits.group_by(["who", "actor", "day"]).aggregate(
            ids=hits.event_id.collect(),
            last=hits.time.max(),
            tools=hits.label.collect(distinct=True),
            host=hits.hostname.max(),
        )

    def to_finding(self, ctx: DetectContext, row: dict[str, Any]) -> Finding:
        kind = row["kind"]
        tools = sorted(row["tools"])
        used = self._peers.judge(row["actor"], row["day"])
        return Finding(
            detector=self.name,
            day=row["day"],
            time=ctx.utc(row["last"]),
            severity=self.severity,
            person_id=row["actor"],
            title=f"{kind} {row['who']} used {', '.join(tools)} (not seen in its baseline)",
            account=row["who"] if kind == "account" else None,
            host=row["host"],
            event_ids=ctx.ids(row["ids"]),
            details={
                "tools": tools,
                "seen_on": kind,
                "events_total": len(row["ids"]),
                **used.details(ctx.settings.tool_min_bits),
            },
            key=kind,
        )


class _ToolPeers:
    """Who of each role used a desktop SQL tool on which days: a tool that the
    role's other members use (analysts querying the client table) is their work."""

    def __init__(self, ctx: DetectContext, events: list[Any]) -> None:
        self.window = ctx.settings.baseline_days
        self.used: dict[str, list[date]] = defaultdict(list)
        for ev in events:
            # A pass's days are judged against the window before them alone.
            ev = ctx.trailing(ev)
            ev = ev.filter(ev.tool & ev.actor.notnull())
            for row in ctx.collect(ev.select("actor", "day").distinct()):
                self.used[row["actor"]].append(row["day"])
        # Roles entitled to the database itself reach it with such tools by design.
        ent = ctx.ref("entitlements")
        self.entitled = {
            row["role"] for row in ctx.collect(ent.filter(ent.system == _DATABASE).select("role"))
        }
        self.role: dict[str, str] = {}
        self.members: dict[str, int] = defaultdict(int)
        for row in ctx.collect(ctx.people().select("employee_id", "role")):
            role = row["role"] or ""
            self.role[row["employee_id"]] = role
            self.members[role] += 1

    def judge(self, actor: str | None, day: date) -> _ToolUse:
        role = self.role.get(actor or "", "")
        start = day - timedelta(days=self.window)
        users = sum(
            1
            for other, days in self.used.items()
            if other != actor
            and self.role.get(other) == role
            and any(start <= d <= day for d in days)
        )
        others = max(self.members.get(role, 1) - 1, 0)
        return _ToolUse(role, users, others, role in self.entitled)


@dataclass(frozen=True, slots=True)
class _ToolUse:
    """How many of the role's ``others`` used a desktop SQL tool in the window."""

    role: str
    users: int
    others: int
    entitled: bool = False

    def details(self, min_bits: float) -> dict[str, Any]:
        bits = tail_bits(self.users, self.others)
        out: dict[str, Any] = {
            "bits": round(bits, 1),
            "population": f"{self.users} of {self.others} other {self.role or 'staff'}(s) "
            "used such a tool in the window",
        }
        if self.entitled:
            out["population"] += f"; {self.role}s are entitled to the database itself"
        # Used by enough of the role's others, or by a role entitled to the database:
        # their work, context (no chain step).
        if self.entitled or (self.role and self.users and bits < min_bits):
            out["stage"] = "context"
        return out
