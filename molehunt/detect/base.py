"""What every detector shares: the finding, the detector contract, and the context.

A detector is one class with a docstring whose first line is what users see,
``ClassVar`` severity and description, and one method ``find(ctx)`` that builds an
Ibis expression over the store and turns its (small) answer into findings citing
the events that prove them. :class:`QueryDetector` owns that loop: a detector
writes only its query and how one row becomes a finding. The context holds the
relations every detector needs, already joined to who is who: client-data reads
with the account's owner and the person at the source host, web requests with
their category, file creations.

Each finding belongs to one local day and is computed from data up to the end of
that day only, so the findings of days up to D are what a run "as of D" would have
produced; ``molehunt risk --as-of D`` reads them back without recomputing.

Portability (one expression for DuckDB and Spark): row_number always has a
tie-breaker, trailing windows are ``rows=(-N, -1)``, no asof joins (an inequality
join + row_number instead), null-safe comparisons through ``fill_null``, no string
``split`` (a regex on Spark), no array index without a length guard (Spark's ANSI
mode raises). ``tests/detect/test_spark.py`` holds the two engines to the same findings.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, ClassVar, Protocol

import ibis

from molehunt.detect.settings import DetectionSettings
from molehunt.detect.surprise import PeerDays
from molehunt.resolve.relations import Resolver, _null_string, plain_user, short_host
from molehunt.resolve.stored import day_start
from molehunt.store import Store
from molehunt.times import DEFAULT_TIMEZONE

#: Web categories of the company's own sites (the intranet, the OA portal): an upload
#: there stays inside the company, so it is no upload out (:meth:`DetectContext.uploads`).
OWN_CATEGORIES = ("internal", "intranet", "company", "corporate")
#: Where a finding's evidence comes from, for corroboration across independent sources.
SOURCE_FAMILIES = ("identity", "db", "file", "web")


@dataclass(frozen=True, slots=True)
class Finding:
    """One detection: who, when, how bad, and the events that prove it."""

    detector: str
    day: date  # local day the finding belongs to
    time: datetime  # UTC time of the latest evidence
    severity: int  # 0-100
    person_id: str | None  # the person behind the action
    title: str
    account: str | None = None
    host: str | None = None
    event_ids: tuple[str, ...] = ()
    related: tuple[str, ...] = ()  # other people it names (e.g. the account's owner)
    details: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    key: str = ""  # tells apart findings of one detector, person and day (e.g. an endpoint)

    @property
    def finding_id(self) -> str:
        """Deterministic: the same evidence gives the same id, so re-runs replace."""
        parts = (self.detector, self.day.isoformat(), self.person_id or "")
        raw = "\x1f".join((*parts, self.account or "", self.host or "", self.key))
        return hashlib.sha256(raw.encode()).hexdigest()[:24]


class Detector(Protocol):
    """A detector: ``find`` returns findings that cite real event ids."""

    name: ClassVar[str]
    severity: ClassVar[int]
    description: ClassVar[str]
    source: ClassVar[str]  # one of SOURCE_FAMILIES

    def find(self, ctx: DetectContext) -> list[Finding]: ...


class QueryDetector:
    """A detector written as its query and what one row of the answer means; the
    base owns the loop (the pattern of pySigma's transformations: the base walks,
    the subclass handles one item).

    ``find`` takes :meth:`rows`, skips those of days this pass does not report
    (:meth:`DetectContext.reported`) and turns each other one into a finding with
    :meth:`to_finding` (None: the row is no finding). :meth:`rows` collects
    :meth:`query`; a detector that needs every row, of every day, before it can
    judge one overrides it: out_of_scope and borrowed_account count a person's
    earlier days (borrowed_account adds a row for an owner who lends the account),
    shared_endpoint and allowed_channel_upload judge a row against everyone's
    (allowed_channel_upload makes one row of a person-day's sites), unusual_client
    runs two queries (accounts, hosts) and client_file needs facts of the whole
    client master. What a :meth:`rows` works out for the whole pass is kept on the
    instance for :meth:`to_finding`: the runner makes one instance per pass, and
    each call of :meth:`rows` works it out again.

    Every registered detector is one: none of them needs a ``find`` of its own.
    """

    name: ClassVar[str]
    severity: ClassVar[int]
    description: ClassVar[str]
    source: ClassVar[str]  # one of SOURCE_FAMILIES

    def query(self, ctx: DetectContext) -> Any:
        """The Ibis expression whose rows (each with its local ``day``) become findings."""
        raise NotImplementedError

    def rows(self, ctx: DetectContext) -> list[dict[str, Any]]:
        """The rows to turn into findings, of every day (``find`` keeps this pass's)."""
        return ctx.collect(self.query(ctx))

    def to_finding(self, ctx: DetectContext, row: dict[str, Any]) -> Finding | None:
        """The finding of one row of a reported day, or None when it is none."""
        raise NotImplementedError

    def find(self, ctx: DetectContext) -> list[Finding]:
        out = []
        for row in self.rows(ctx):
            if not ctx.reported(row["day"]):
                continue
            found = self.to_finding(ctx, row)
            if found is not None:
                out.append(found)
        return out


#: Sysmon event tables whose events resolved to people are kept in the store
#: (:data:`molehunt.resolve.stored.KEPT`), by the kept relation's name.
ENDPOINT_KEPT = {"events_file": "file", "events_process": "process"}


class DetectContext(Resolver):
    """The store as of the end of one local day, with who-is-who already joined
    (:class:`molehunt.resolve.Resolver`) and the relations detectors read."""

    def __init__(
        self,
        backend: Any,
        settings: DetectionSettings,
        as_of: date,
        *,
        since: date | None = None,
        timezone: str = DEFAULT_TIMEZONE,
        store: Store | None = None,
    ) -> None:
        super().__init__(backend, settings, as_of, since=since, timezone=timezone, store=store)
        self._read_peers: PeerDays | None = None
        self._reads_begin: date | None = None

    # -- small helpers ------------------------------------------------------------

    def off_hours(self, ts: Any) -> Any:
        """True outside working hours or on a day off (local time)."""
        s = self.settings
        local = self.local(ts)
        hour = local.hour()
        return (
            ~local.day_of_week.index().isin(list(s.work_days))
            | (hour < s.work_start_hour)
            | (hour >= s.work_end_hour)
        )

    def reported(self, day: date) -> bool:
        """Whether findings of ``day`` belong to this pass."""
        return day <= self.as_of and (self.since is None or day >= self.since)

    def of_pass(self, rel: Any) -> Any:
        """``rel`` (with a local ``day``) cut to the days this pass reports: for a
        detector whose finding of a day reads only that day's events, so a one-day
        round reads one day."""
        if self.since is None:
            return rel
        return rel.filter(rel.day >= ibis.literal(self.since))

    def trailing(self, rel: Any, days: int | None = None) -> Any:
        """``rel`` (with a local ``day``) cut to the pass's days and the ``days``
        (default ``baseline_days``) calendar days before them: for a detector that
        judges a day against a trailing calendar window, so a one-day round reads one
        window."""
        if self.since is None:
            return rel
        back = self.settings.baseline_days if days is None else days
        return rel.filter(rel.day >= ibis.literal(self.since - timedelta(days=back)))

    def bulk_reads(self) -> Any:
        """Reads that take client data in bulk: many rows, a COPY of unknown size, or
        enough rows outside working hours."""
        if "bulk" in self._cache:
            return self._cache["bulk"]
        r = self.reads()
        s = self.settings
        # Every bulk read is unknown-size or has at least ``least`` rows: two filters
        # the scan applies itself (an OR across columns it would not), so the wide
        # rows of the many small reads are never read.
        least = min(s.bulk_rows, s.offhours_rows)
        r = r.filter(r.rows >= least).union(r.filter(r.bulk_unknown & (r.rows < least)))
        # Few reads are bulk: kept once for the detectors that follow them up.
        self._cache["bulk"] = r.filter(
            r.bulk_unknown
            | (r.rows >= s.bulk_rows)
            # The row count first: working out the local hour of every read is slow.
            | ((r.rows >= s.offhours_rows) & self.off_hours(r.time))
        ).cache()
        return self._cache["bulk"]

    def daily_reads(self) -> Any:
        """Per person and local day: rows and reads (statements, application look-ups),
        with the peer group (role, department and team) and its median rows that day
        (the event ids: :meth:`with_daily_ids`)."""
        if self.store is not None:
            return self.kept("daily", lambda start: {"kept_daily": self._daily(start)})[
                "kept_daily"
            ]
        if "daily" not in self._cache:
            self._cache["daily"] = self._daily(None).cache()
        return self._cache["daily"]

    def _daily(self, start: date | None) -> Any:
        """The expression behind :meth:`daily_reads`, for local days from ``start``
        (default: all): each day's rows come from that day's reads alone."""
        r = self.reads()
        r = r.filter(r.actor.notnull())
        if start is not None:
            r = r.filter(r.day >= ibis.literal(start))
        d = r.group_by(["actor", "day"]).aggregate(
            rows=r.rows.sum(),
            reads=r.event_id.count(),
            last=r.time.max(),
            role=r.actor_role.max(),
            department=r.actor_department.max(),
            team=r.actor_team.max(),
        )
        # Peers are the team: a team's campaign week lifts its members together, and a
        # department-wide median would not move with it.
        peers = d.group_by(["role", "department", "team", "day"]).aggregate(
            peer_median=d.rows.median(), peers=d.actor.count()
        )
        peers = peers.rename(p_role="role", p_dept="department", p_team="team", p_day="day")
        return d.left_join(
            peers,
            [
                d.role.fill_null("") == peers.p_role.fill_null(""),
                d.department.fill_null("") == peers.p_dept.fill_null(""),
                d.team.fill_null("") == peers.p_team.fill_null(""),
                d.day == peers.p_day,
            ],
        ).drop("p_role", "p_dept", "p_team", "p_day")

    def read_peers(self) -> PeerDays:
        """Every person's rows read per day with their role, to judge a day's reading
        against the role's other members (see :mod:`molehunt.detect.surprise`)."""
        if self._read_peers is None:
            d = self.daily_reads()
            if self.since is not None:
                # Findings of the pass's days judge that day or the day before against
                # the trailing window: older days are never looked at.
                oldest = self.since - timedelta(days=self.settings.baseline_days + 1)
                d = d.filter(d.day >= ibis.literal(oldest))
            rows = self.collect(d.select("actor", "role", "day", "rows"))
            whole = self.daily_reads()
            self._reads_begin = self.collect(whole.aggregate(first=whole.day.min()))[0]["first"]
            self._read_peers = PeerDays(
                [(r["actor"], r["role"], r["day"], r["rows"] or 0) for r in rows],
                self.settings.baseline_days,
            )
        return self._read_peers

    def reading_surprise(self, actor: str, days: Iterable[date]) -> dict[str, Any]:
        """Details for a collection finding: how surprising the person's reading of
        ``days`` (the strongest of them) is among their role's days, and ``stage``
        "context" when it is routine there (an analyst's month-end extract): a step
        that the peers take as their ordinary work does not make a chain. A day judged
        against all staff (the role has too few days to say what its work is) is
        context within ``min_history_days`` of the store's first day of reads (a young
        store), and when the person's own days before it reach it routinely (an
        analytics team of two: the analyst's extracts are their own ordinary work;
        a day beyond all of them is not)."""
        peers = self.read_peers()
        judged = [(d, x) for d in days if (x := peers.of_day(actor, d))]
        if not judged:
            return {}
        day, top = max(judged, key=lambda x: x[1].bits)
        out: dict[str, Any] = {"bits": round(top.bits, 1), "population": top.words()}
        begin = self._reads_begin
        if top.routine(self.settings.collection_min_bits):
            out["stage"] = "context"
        elif top.group == "all staff":
            # A role with too few days to say what its work is (the store's first
            # days, an analytics team of two): judged against everyone's, an
            # analyst's ordinary extract is not. Their own days say it instead.
            if begin is not None and (day - begin).days < self.settings.min_history_days:
                out["stage"] = "context"
                out["population"] += f"; reads begin on {begin}: too few days of the role to judge"
            elif (
                (own := peers.own_days(actor, day)) is not None
                and own.population >= self.settings.min_history_days
                and own.routine(self.settings.collection_min_bits)
            ):
                out["stage"] = "context"
                out["population"] += (
                    f"; too few days of the role to judge: {own.reach} of this person's "
                    f"{own.population} days before reach it"
                )
        return out

    def with_daily_ids(self, daily: Any) -> Any:
        """``daily`` (some rows of :meth:`daily_reads`) plus ``ids``: the event ids of
        each person's reads that day. Gathered for the few rows a detector reports,
        not for every person and day: rows of the pass's days (others get none)."""
        r = self.of_pass(self.reads())
        r = r.filter(r.actor.notnull())
        keys = daily.select(i_actor="actor", i_day="day").distinct()
        j = r.join(keys, [r.actor == keys.i_actor, r.day == keys.i_day])
        ids = j.group_by(["actor", "day"]).aggregate(ids=j.event_id.collect())
        ids = ids.rename(i_actor="actor", i_day="day")
        return daily.left_join(ids, [daily.actor == ids.i_actor, daily.day == ids.i_day]).drop(
            "i_actor", "i_day"
        )

    def web_category(self, hosts: Any) -> Any:
        """(w_host) -> (w_host, category, allowed): longest suffix match, policy applied;
        an unknown category is not allowed."""
        cats = self.ref("web_categories").select(
            c_domain=lambda t: t.domain.lower(), c_cat="category"
        )
        j = hosts.join(
            cats, (hosts.w_host == cats.c_domain) | hosts.w_host.endswith("." + cats.c_domain)
        )
        w = ibis.window(group_by=j.w_host, order_by=[ibis.desc(j.c_domain.length()), j.c_domain])
        j = j.mutate(_n=ibis.row_number().over(w)).filter(lambda x: x._n == 0)
        j = j.select(m_host="w_host", category="c_cat")
        out = hosts.left_join(j, hosts.w_host == j.m_host).drop("m_host")
        pol = self.ref("web_policy").select(pc="category", allowed="allowed")
        out = out.left_join(pol, out.category == pol.pc).drop("pc")
        return out.mutate(allowed=out.allowed.fill_null(False))

    def http(self) -> Any:
        """Proxy requests with category, policy, and the person behind them (the proxy
        user, else the person at the source host)."""
        if self.store is not None:
            return self.kept("http", lambda start: {"kept_http": self.resolve_http(start)})[
                "kept_http"
            ]
        if "http" not in self._cache:
            self._cache["http"] = self.resolve_http().cache()
        return self._cache["http"]

    def resolve_http(self, start: date | None = None) -> Any:
        """The expression behind :meth:`http`, for the requests of local days from
        ``start`` (default: all) to the end of the pass's day."""
        t = self.table("events_http")
        t = t.filter(t.time < self.end_literal())
        if start is not None:
            begin = ibis.literal(day_start(self, start), type="timestamp('UTC')")
            t = t.filter(t.time >= begin)
        t = t.select(
            "event_id",
            "time",
            "src_ip",
            "method",
            "path",
            "status",
            "request_content_type",
            web_host=t.host.lower(),
            proxy_user=ibis.cases(
                (t.user_name.fill_null("-") == "-", _null_string()), else_=plain_user(t.user_name)
            ),
            bytes_out=t.bytes_out.fill_null(0),
        )
        cats = self.web_category(t.select(w_host="web_host").distinct())
        t = t.left_join(cats, t.web_host == cats.w_host).drop("w_host")
        ad = self.accounts("ad")
        t = t.left_join(ad, t.proxy_user == ad.acct).drop("acct", "acct_kind", "acct_disabled")
        t = t.mutate(day=self.day_of(t.time))
        t = self.resolve_source(t, "src_ip", "acct_owner", "day")
        t = t.mutate(actor=t.acct_owner.coalesce(t.host_person)).relocate("day", after="actor")
        return t.drop("acct_owner")

    def uploads(self) -> Any:
        """Requests that carry data out: POST/PUT with a body, CONNECT tunnels; not to
        the company's own sites (:data:`OWN_CATEGORIES`: the data stays inside)."""
        t = self.http()
        return t.filter(
            t.method.isin(["POST", "PUT", "CONNECT"])
            & (t.bytes_out >= self.settings.upload_request_bytes)
            & t.actor.notnull()
            & ~t.category.fill_null("").lower().isin(list(OWN_CATEGORIES))
        )

    def endpoint_events(self, table: str) -> Any:
        """Sysmon file or process events with the host, its owner and the person
        (the event's user, else the person logged on, else the owner)."""
        if self.store is not None:
            name = ENDPOINT_KEPT[table]
            return self.kept(
                name, lambda start: {f"kept_{name}": self.resolve_endpoint(table, start)}
            )[f"kept_{name}"]
        key = f"endpoint:{table}"
        if key not in self._cache:
            self._cache[key] = self.resolve_endpoint(table).cache()
        return self._cache[key]

    def resolve_endpoint(self, table: str, start: date | None = None) -> Any:
        """The expression behind :meth:`endpoint_events`, for the events of local days
        from ``start`` (default: all) to the end of the pass's day."""
        t = self.table(table)
        t = t.filter(t.time < self.end_literal())
        if start is not None:
            begin = ibis.literal(day_start(self, start), type="timestamp('UTC')")
            t = t.filter(t.time >= begin)
        cols = ["event_id", "time", "image"]
        if table == "events_file":
            t = t.filter(t.activity == "create")
            cols.append("path")
        t = t.select(*cols, hostname=short_host(t.host), user=plain_user(t.user_name))
        ad = self.accounts("ad")
        t = t.left_join(ad, t.user == ad.acct).drop("acct", "acct_kind", "acct_disabled")
        ho = self.host_owners()
        t = t.left_join(ho, t.hostname == ho.ho_host).drop("ho_host")
        t = t.rename(host_kind="ho_kind", host_owner="ho_owner")
        t = self._with_person_at(t, "acct_owner")
        t = t.mutate(actor=t.acct_owner.coalesce(t.host_person), day=self.day_of(t.time))
        return t.drop("acct_owner")


def is_tool(col: Any, tools: Iterable[str]) -> Any:
    """Whether an app name or process image names one of the desktop tools."""
    low = col.fill_null("").lower()
    out = ibis.literal(False)
    for tool in tools:
        out = out | low.contains(tool)
    return out
