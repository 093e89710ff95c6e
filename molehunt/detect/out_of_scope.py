"""Out of scope."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date, timedelta
from typing import Any, ClassVar

import ibis

from molehunt.detect.base import DetectContext, Finding, QueryDetector
from molehunt.detect.surprise import MIN_POPULATION, PeerDays, TeamLift


class OutOfScopeDetector(QueryDetector):
    """Out of scope: records read outside one's own portfolio, where the client
    master says who owns which client.

    A day counts when the person read ``out_of_scope_min_clients`` clients of other
    portfolios, or looked up other portfolios' clients in ``out_of_scope_min_reads``
    separate reads (client cards one by one, the low and slow way: an ordinary
    search of one's branch brings up a few dozen at once, a few times a day).
    Severity rises with the days it happened within ``sustained_window_days``; once
    separate look-ups (``out_of_scope_min_reads``) happen on ``sustained_min_days`` of
    them, the finding shows collection, not only access beyond need (the low and slow
    way: its earlier days and this one form a chain).
    A day's counts are judged divided by how far the person's team read above its own
    norms that day (:class:`~molehunt.detect.surprise.TeamLift`): a campaign week makes
    the whole team read more, and more of other portfolios' clients with it; one
    person collecting lifts no teammate.
    Only people who own a portfolio, and whose role is one where most people do, are
    checked (an auditor or a claims handler has
    none, and reads across them by design); it needs the client master's
    ``owner_employee_id`` column and the record-level access table.
    """

    name: ClassVar[str] = "out_of_scope"
    severity: ClassVar[int] = 60
    description: ClassVar[str] = "clients of other people's portfolios read"
    source: ClassVar[str] = "db"
    stage: ClassVar[str] = "access"

    def query(self, ctx: DetectContext) -> Any:
        """Per person and day: the clients of other portfolios read, and the separate
        reads of them (the client master must name owners); the event ids only for the
        days the pass reports (the others judge them)."""
        people = ctx.people().select(p_id="employee_id", p_role="role")
        holders = _owners(ctx).select(h_id="c_owner").distinct()
        # Portfolios belong to a role (sales): someone transferred out of it keeps their
        # old clients in the master for a while, but reads across portfolios by the
        # new role's design (customer service).
        roles = people.left_join(holders, people.p_id == holders.h_id)
        roles = roles.group_by("p_role").aggregate(
            members=roles.p_id.count(), holding=roles.h_id.count()
        )
        portfolio_roles = [
            r["p_role"]
            for r in ctx.collect(roles)
            if r["p_role"] is not None and r["holding"] * 2 >= r["members"]
        ]
        current = people.filter(people.p_role.isin(portfolio_roles or [""]))
        holders = holders.join(current, holders.h_id == current.p_id).select("h_id")
        if ctx.store is None:
            r = _trailing(ctx, ctx.reads())
            r = r.filter(r.actor.notnull()).select("event_id", "time", "day", "actor", "hostname")
            r = r.join(holders, r.actor == holders.h_id).drop("h_id")
            reported = None if ctx.since is None else r.day >= ibis.literal(ctx.since)
            ra = ctx.table("record_access").select(ra_id="event_id", ra_client="client_id")
            return _other_portfolios(ctx, r, ra, reported)
        # Kept in the store for every person and day (counts of a day never change
        # unless its reads, their record-level rows or the master do).
        k = ctx.kept("scope", lambda start: {"kept_scope": _scope_days(ctx, start)})["kept_scope"]
        k = _trailing(ctx, k)
        k = k.join(holders, k.actor == holders.h_id).drop("h_id")
        if ctx.since is None:
            return k
        return k.mutate(
            ids=ibis.cases((k.day >= ibis.literal(ctx.since), k.ids), else_=ibis.null(k.ids.type()))
        )

    def rows(self, ctx: DetectContext) -> list[dict[str, Any]]:
        """The days rare among the role's others (:func:`_surprising_days`), each with
        ``days_before``: the person's such days within ``sustained_window_days`` before."""
        s = ctx.settings
        if "owner_employee_id" not in ctx.table("clients").columns:
            return []
        # One collect of the per-day counts: the peers' days and the candidates both
        # come from it.
        found = ctx.collect(self.query(ctx))
        peers, lift = _peer_days(ctx, found)
        g = []
        for r in found:
            # A lift is at least 1: only days over the floors as counted can be over them
            # once divided by it.
            if r["clients"] < s.out_of_scope_min_clients and r["reads"] < s.out_of_scope_min_reads:
                continue
            r["team_lift"] = lift.of(r["actor"], r["day"])
            clients, reads = r["clients"] / r["team_lift"], r["reads"] / r["team_lift"]
            if clients >= s.out_of_scope_min_clients or reads >= s.out_of_scope_min_reads:
                g.append(r)
        rows = _surprising_days(g, peers, s.scope_min_bits, s.sustained_window_days)
        days: dict[str, list[date]] = defaultdict(list)
        for row in rows:
            days[row["actor"]].append(row["day"])
        span = timedelta(days=s.sustained_window_days)
        for row in rows:
            day = row["day"]
            row["days_before"] = sum(1 for d in days[row["actor"]] if day - span < d < day)
        return rows

    def to_finding(self, ctx: DetectContext, row: dict[str, Any]) -> Finding:
        s = ctx.settings
        n, reads = int(row["clients"]), int(row["reads"])
        before = row["days_before"]
        severity = self.severity + 10 * min(before, 3)
        severity += 20 if n >= 10 * s.out_of_scope_min_clients else 0
        again = f", on {before + 1} days within {s.sustained_window_days}" if before else ""
        return Finding(
            detector=self.name,
            day=row["day"],
            time=ctx.utc(row["last"]),
            severity=min(100, severity),
            person_id=row["actor"],
            title=f"{n} clients of {int(row['portfolios'])} other portfolios read "
            f"in {reads} read(s){again}",
            host=row["host"],
            event_ids=ctx.ids(row["ids"]),
            details={
                "clients": n,
                "reads": reads,
                "portfolios": int(row["portfolios"]),
                "days_before": before,
                # Day after day of separate look-ups of others' clients, or
                # again more of them than any peer ever took in a day, is no
                # longer access beyond need alone: it is collecting them.
                "stage": "collection"
                if (before + 1 >= s.sustained_min_days and reads >= s.out_of_scope_min_reads)
                or (before and row["unmatched"])
                else "access",
                "events_total": len(row["ids"]),
                "bits": round(row["bits"], 1),
                "population": row["population"],
                "team_lift": round(row["team_lift"], 2),
            },
        )


def _owners(ctx: DetectContext) -> Any:
    """The client master's owners: (c_id, c_owner) of clients that name one."""
    clients = ctx.table("clients")
    return clients.select(c_id="client_id", c_owner="owner_employee_id").filter(
        lambda t: t.c_owner.notnull() & (t.c_owner != "")
    )


def _other_portfolios(ctx: DetectContext, r: Any, ra: Any, reported: Any = None) -> Any:
    """Per person and day of the reads ``r`` (event_id, time, day, actor, hostname),
    from the clients each returned (``ra``: ra_id, ra_client): the clients of other
    portfolios read, the separate reads, the portfolios, the event ids (of rows where
    ``reported``, default all), the last read and a host."""
    owners = _owners(ctx)
    j = r.join(ra, r.event_id == ra.ra_id)
    j = j.join(owners, j.ra_client == owners.c_id)
    j = j.filter(j.c_owner != j.actor)
    return j.group_by(["actor", "day"]).aggregate(
        clients=j.ra_client.nunique(),
        reads=j.event_id.nunique(),
        portfolios=j.c_owner.nunique(),
        ids=j.event_id.collect(distinct=True, where=reported),
        last=j.time.max(),
        host=j.hostname.max(),
    )


def _scope_days(ctx: DetectContext, start: date | None) -> Any:
    """The kept relation behind :meth:`OutOfScopeDetector.query`: every person's days
    from ``start`` (None: all), each from that day's reads alone."""
    r = ctx.reads()
    r = r.filter(r.actor.notnull())
    # The record-level rows with their read's day (kept beside the relation's day
    # counts: :func:`molehunt.resolve.stored.count_access_days`): a day's rows are read
    # from its row groups alone, not from every row.
    ra = ctx.table("access_days")
    ra = ra.filter(ra.day <= ibis.literal(ctx.as_of))
    if start is not None:
        r = r.filter(r.day >= ibis.literal(start))
        ra = ra.filter(ra.day >= ibis.literal(start))
    ra = ra.select(ra_id="event_id", ra_client="client_id")
    return _other_portfolios(ctx, r.select("event_id", "time", "day", "actor", "hostname"), ra)


def _trailing(ctx: DetectContext, rel: Any) -> Any:
    """``rel`` cut to what a pass's days are judged with: a day counts the surprising
    days within ``sustained_window_days`` before it, each of which may add up the
    unmatched days within that window before it, each judged against the role's days
    of the ``baseline_days`` before it."""
    s = ctx.settings
    return ctx.trailing(rel, s.baseline_days + 2 * s.sustained_window_days)


def _peer_days(
    ctx: DetectContext, found: list[dict[str, Any]]
) -> tuple[tuple[PeerDays, PeerDays], TeamLift]:
    """Every active person-day's count of other portfolios' clients and of separate
    reads of them (0 on days with none), to judge a day against the role's others,
    and the teams' lifts of those days. A day with reads through someone else's
    account (a departed colleague's, a borrowed login) says nothing of what the role
    reads as itself: it reaches no value (NaN), so a ring's thousands a day do not make
    a leaver's hundreds ordinary; the day itself is still judged."""
    counts = {(r["actor"], r["day"]): r for r in found}
    r = _trailing(ctx, ctx.reads())
    r = r.filter(r.actor.notnull() & r.account_owner.notnull() & (r.actor != r.account_owner))
    borrowed = {(x["actor"], x["day"]) for x in ctx.collect(r.select("actor", "day").distinct())}
    daily = ctx.collect(
        _trailing(ctx, ctx.daily_reads()).select(
            "actor", "role", "department", "team", "day", "reads"
        )
    )
    window = ctx.settings.baseline_days
    teams = [
        (
            r["actor"],
            (r["role"] or "", r["department"] or "", r["team"] or ""),
            r["day"],
            r["reads"],
        )
        for r in daily
    ]

    return (
        PeerDays(peer_values(daily, counts, borrowed, "clients"), window),
        PeerDays(peer_values(daily, counts, borrowed, "reads"), window),
    ), TeamLift(teams, window, ctx.settings.min_history_days)


def peer_values(
    daily: list[dict[str, Any]],
    counts: dict[tuple[str, date], dict[str, Any]],
    borrowed: set[tuple[str, date]],
    name: str,
) -> list[tuple[str, str | None, date, float]]:
    """(actor, role, day, value) of every active person-day: the day's count ``name``
    (0 without one), NaN on a day with reads through someone else's account (it
    reaches no value: :class:`~molehunt.detect.surprise.PeerDays`)."""
    out = []
    for r in daily:
        key = (r["actor"], r["day"])
        found = counts.get(key)
        value = math.nan if key in borrowed else float(found[name] or 0) if found else 0.0
        out.append((r["actor"], r["role"], r["day"], value))
    return out


def _surprising_days(
    rows: list[dict[str, Any]], peers: tuple[PeerDays, PeerDays], min_bits: float, window: int
) -> list[dict[str, Any]]:
    """The person-days whose clients or separate reads of other portfolios are rare
    among the role's other members' days (``scope_min_bits``).

    A young store or a small team has too few peer days for one day to reach
    ``min_bits`` (``n`` days can say at most ``log2(n + 1)`` bits). Days that no peer
    day ever matched are then judged together: their bits add up over the trailing
    ``window`` (independent days, each beyond every peer's), so the low and slow way
    is seen on its second or third day, while a day that any peer matched never adds.
    """
    for row in rows:
        _judge(row, peers)
    unmatched: dict[str, list[tuple[date, float]]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: r["day"]):
        if row["unmatched"]:
            unmatched[row["actor"]].append((row["day"], row["bits"]))
    span = timedelta(days=window)
    out = []
    for row in rows:
        if row["unmatched"] and row["bits"] < min_bits:
            day = row["day"]
            together = [b for d, b in unmatched[row["actor"]] if day - span < d <= day]
            if len(together) > 1 and sum(together) >= min_bits:
                row["bits"] = sum(together)
                row["population"] += f"; {len(together)} such days within {window}"
        if row["bits"] >= min_bits:
            out.append(row)
    return out


def _judge(row: dict[str, Any], peers: tuple[PeerDays, PeerDays]) -> None:
    """Notes in ``row`` the stronger surprise of the day's clients or separate reads of
    other portfolios, divided by the team's lift that day, among the role's other
    members' days."""
    lift = row["team_lift"]
    clients = peers[0].surprise(row["actor"], row["day"], float(row["clients"]) / lift)
    reads = peers[1].surprise(row["actor"], row["day"], float(row["reads"]) / lift)
    top = max(clients, reads, key=lambda x: x.bits)
    row["bits"] = top.bits
    # More than any peer's day, among enough of them to say so.
    row["unmatched"] = top.reach == 0 and top.population >= MIN_POPULATION
    what = "clients" if top is clients else "separate reads"
    row["population"] = f"{what}: {top.words()}"
    if lift > 1:
        row["population"] += f"; counted over the team's lift that day ({lift:.1f}x their norms)"
