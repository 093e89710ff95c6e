"""What every detector shares: the finding, the detector contract, and the context.

A detector is one class with a docstring whose first line is what users see,
``ClassVar`` severity and description, and one method ``find(ctx)`` that builds an
Ibis expression over the store and turns its (small) answer into findings citing
the events that prove them. The context holds the relations every detector needs,
already joined to who is who: client-data reads with the account's owner and the
person at the source host, web requests with their category, file creations.

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
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, ClassVar, Protocol
from zoneinfo import ZoneInfo

import ibis

from molehunt.detect.settings import DetectionSettings
from molehunt.identity import INTERACTIVE_LOGON_TYPES, LOGON_HORIZON

#: Where a finding's evidence comes from, for corroboration across independent sources.
SOURCE_FAMILIES = ("identity", "db", "file", "web")

_EPOCH = datetime(1900, 1, 1, tzinfo=UTC)


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


def _null_string() -> Any:
    return ibis.literal(None, type="string")


def short_host(col: Any) -> Any:
    """``WS-0317.corp.example.cn`` -> ``ws-0317``: logs name hosts either way."""
    # Not ``split(".")``: Spark's split takes a regex, where "." matches every character.
    return col.lower().re_replace(r"\..*$", "")


def plain_user(col: Any) -> Any:
    """``CORP\\liu.wei`` -> ``liu.wei`` (lower case): Windows prefixes the domain."""
    return col.lower().re_replace(r"^.*\\", "")


class DetectContext:
    """The store as of the end of one local day, with who-is-who already joined."""

    def __init__(
        self,
        backend: Any,
        settings: DetectionSettings,
        as_of: date,
        *,
        since: date | None = None,
        timezone: str = "Asia/Shanghai",
    ) -> None:
        self.backend = backend
        self.settings = settings
        self.as_of = as_of
        self.since = since
        self.zone = ZoneInfo(timezone)
        self.end = datetime.combine(as_of + timedelta(days=1), time(), self.zone).astimezone(UTC)
        # One offset for the whole pass: exact for zones without daylight saving
        # (Asia/Shanghai), off by an hour around the switch elsewhere.
        offset = self.zone.utcoffset(self.end.replace(tzinfo=None))
        self.offset = int(offset.total_seconds()) if offset is not None else 0
        # Relations several detectors read are materialised once per pass
        # (``Table.cache()``: a temporary table on DuckDB, a cached DataFrame on Spark).
        self._cache: dict[str, Any] = {}

    def release(self) -> None:
        """Drop the relations cached for this pass (before the store closes: Ibis
        would otherwise drop them later from a finaliser, on a closed connection)."""
        for cached in self._cache.values():
            cached.release()
        self._cache.clear()

    def __enter__(self) -> DetectContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    # -- small helpers ------------------------------------------------------------

    def table(self, name: str) -> Any:
        return self.backend.table(name)

    def end_literal(self) -> Any:
        return ibis.literal(self.end, type="timestamp('UTC')")

    def local(self, ts: Any) -> Any:
        return ts + ibis.interval(seconds=self.offset)

    def day_of(self, ts: Any) -> Any:
        return self.local(ts).date()

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

    def collect(self, expr: Any) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.backend.to_pyarrow(expr).to_pylist()
        return rows

    def ids(self, *groups: Iterable[str | None] | None) -> tuple[str, ...]:
        """Sorted distinct event ids, at most ``max_event_ids`` (earliest first)."""
        found = sorted({i for g in groups if g for i in g if i})
        return tuple(found[: self.settings.max_event_ids])

    def utc(self, value: datetime) -> datetime:
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)

    # -- reference data as it stood at the end of the day -------------------------

    def ref(self, name: str) -> Any:
        t = self.table(f"ref_{name}")
        end = self.end_literal()
        return t.filter(
            (t.valid_from.isnull() | (t.valid_from <= end))
            & (t.valid_to.isnull() | (t.valid_to > end))
        )

    def people(self) -> Any:
        """Every person known by the end of the day, with role and employment dates."""
        if "people" not in self._cache:
            t = self.table("ref_hr")
            t = t.filter(t.valid_from.isnull() | (t.valid_from <= self.end_literal()))
            order = [
                ibis.desc(t.valid_from.fill_null(ibis.literal(_EPOCH, type="timestamp('UTC')"))),
                ibis.desc(t.source_id),
            ]
            w = ibis.window(group_by=t.employee_id, order_by=order)
            t = t.mutate(_n=ibis.row_number().over(w)).filter(lambda x: x._n == 0)
            # A team is the people under one manager; a manager's own team is the one
            # they lead (a team lead is compared with the members, not with the other leads).
            leads = t.filter(t.manager_id.fill_null("") != "").select(lead="manager_id").distinct()
            t = t.left_join(leads, t.employee_id == leads.lead)
            team = ibis.cases(
                (t.lead.notnull(), t.employee_id),
                (t.manager_id.fill_null("") != "", t.manager_id),
                else_=_null_string(),
            )
            self._cache["people"] = t.select(
                "employee_id",
                "name",
                "department",
                "title",
                "role",
                "hire_date",
                "notice_date",
                "termination_date",
                team=team,
            ).cache()
        return self._cache["people"]

    def accounts(self, system: str) -> Any:
        """Accounts of one system: lower-case name -> owner, kind, disabled."""
        t = self.ref("accounts")
        t = t.filter(t.system == system)
        w = ibis.window(group_by=t.account.lower(), order_by=[t.account, t.owner_employee_id])
        t = t.mutate(_n=ibis.row_number().over(w)).filter(lambda x: x._n == 0)
        return t.select(
            acct=t.account.lower(),
            acct_owner=t.owner_employee_id,
            acct_kind=t.kind,
            acct_disabled=t.disabled,
        )

    def hosts(self) -> Any:
        """IP -> host (short, lower case), its kind and owner."""
        t = self.ref("assets")
        w = ibis.window(group_by=t.ip, order_by=[t.hostname])
        t = t.mutate(_n=ibis.row_number().over(w)).filter(lambda x: x._n == 0)
        return t.select(
            h_ip=t.ip,
            hostname=short_host(t.hostname),
            host_kind=t.kind,
            host_owner=t.owner_employee_id,
        )

    def host_owners(self) -> Any:
        t = self.ref("assets")
        w = ibis.window(group_by=short_host(t.hostname), order_by=[t.ip])
        t = t.mutate(_n=ibis.row_number().over(w)).filter(lambda x: x._n == 0)
        return t.select(
            ho_host=short_host(t.hostname), ho_kind=t.kind, ho_owner=t.owner_employee_id
        )

    def person_at_host(self, ev: Any, owner: str | None = None) -> Any:
        """``ev`` (event_id, time, hostname) -> (event_id, logon_person): the latest
        interactive Windows logon at that host before the event, not logged off.

        With ``owner`` (a column of ``ev``: the account's owner), that person wins when
        logged on there too: on a shared server (the DBAs' jump host) several people
        are logged on at once, and the latest logon need not be the one acting.
        """
        a = self.table("events_auth")
        a = a.filter(a.time < self.end_literal())
        logons = a.filter(
            (a.activity == "logon") & a.logon_type.isin(list(INTERACTIVE_LOGON_TYPES))
        ).select(
            l_host=short_host(a.dst_host),
            l_user=plain_user(a.user_name),
            l_time=a.time,
            l_id=a.event_id,
        )
        offs = a.filter(a.activity == "logoff").select(
            o_host=short_host(a.dst_host), o_user=plain_user(a.user_name), o_time=a.time
        )
        keys = ev.select(
            k_id=ev.event_id,
            k_time=ev.time,
            k_host=ev.hostname,
            k_owner=ev[owner] if owner else _null_string(),
        )
        horizon = ibis.interval(seconds=int(LOGON_HORIZON.total_seconds()))
        j = keys.join(
            logons,
            [
                keys.k_host == logons.l_host,
                logons.l_time <= keys.k_time,
                logons.l_time > keys.k_time - horizon,
            ],
        )
        j = j.anti_join(
            offs,
            [
                j.l_host == offs.o_host,
                j.l_user == offs.o_user,
                offs.o_time > j.l_time,
                offs.o_time <= j.k_time,
            ],
        )
        ad = self.accounts("ad")
        j = j.left_join(ad, j.l_user == ad.acct)
        mine = (j.acct_owner.fill_null("") == j.k_owner.fill_null("-")).cast("int32")
        order = [ibis.desc(mine), ibis.desc(j.l_time), ibis.desc(j.l_id)]
        w = ibis.window(group_by=j.k_id, order_by=order)
        j = j.mutate(_n=ibis.row_number().over(w)).filter(lambda x: x._n == 0)
        return j.select(lp_id=j.k_id, logon_account=j.l_user, logon_person=j.acct_owner)

    def resolve_source(self, ev: Any, ip: str, owner: str | None = None) -> Any:
        """Add hostname, host_kind, host_owner, logon_person and host_person (the
        person at the source host: the one logged on, else a workstation's owner);
        ``owner`` names the column of the account's owner (see :meth:`person_at_host`)."""
        h = self.hosts()
        ev = ev.left_join(h, ev[ip] == h.h_ip).drop("h_ip")
        return self._with_person_at(ev, owner)

    def _with_person_at(self, ev: Any, owner: str | None = None) -> Any:
        lp = self.person_at_host(ev.filter(ev.hostname.notnull()), owner)
        ev = ev.left_join(lp, ev.event_id == lp.lp_id).drop("lp_id")
        own = ibis.cases(
            (ev.host_kind.fill_null("") == "workstation", ev.host_owner), else_=_null_string()
        )
        return ev.mutate(host_person=ev.logon_person.coalesce(own))

    # -- the relations detectors read ----------------------------------------------

    def reads(self) -> Any:
        """Reads of client data (database statements and application accesses) with
        the account's owner, the source host and person, and the acting person.

        Service accounts working from servers (the nightly ETL) are left out: they are
        not people and do what they always do.
        """
        if "reads" in self._cache:
            return self._cache["reads"]
        end = self.end_literal()
        db = self.table("events_db")
        db = db.filter(
            (db.time < end)
            & (
                (db.audit_class.fill_null("") == "READ")
                | db.bulk_unknown
                | db.command.fill_null("").isin(["SELECT", "COPY", "DECLARE CURSOR", "FETCH"])
            )
        )
        # The server's own catalogs (a DBA's pg_stat_activity) hold no client data.
        # Guarded: Spark (ANSI mode) raises on an index past the end, DuckDB gives null.
        db = db.mutate(
            _first=ibis.cases((db.objects.length() > 0, db.objects[0]), else_=_null_string())
        )
        first = db._first.fill_null("").lower()
        db = db.filter(~(first.startswith("pg_catalog.") | first.startswith("information_schema.")))
        db = db.select(
            event_id=db.event_id,
            time=db.time,
            system=ibis.literal("crm-db"),
            account=db.db_user.lower(),
            src_ip=db.src_ip,
            app_name=db.app_name,
            command=db.command,
            statement=db.statement,
            resource=db._first,
            rows=db.rows.fill_null(0).cast("int64"),
            bulk_unknown=db.bulk_unknown.cast("boolean"),
        )
        app = self.table("events_app")
        app = app.filter(app.time < end)
        app = app.select(
            event_id=app.event_id,
            time=app.time,
            system=ibis.literal("crm-app"),
            account=app.user_name.lower(),
            src_ip=app.src_ip,
            app_name=_null_string(),
            command=app.action,
            statement=app.detail,
            resource=ibis.literal("clients"),
            rows=app.rows.coalesce(app.n_client_ids.cast("int64"), ibis.literal(1)).cast("int64"),
            bulk_unknown=ibis.literal(False).cast("boolean"),
        )
        ev = db.union(app)
        accounts = (
            self.accounts("crm-db")
            .mutate(acct_system=ibis.literal("crm-db"))
            .union(self.accounts("crm-app").mutate(acct_system=ibis.literal("crm-app")))
        )
        ev = ev.left_join(
            accounts, [ev.account == accounts.acct, ev.system == accounts.acct_system]
        ).drop("acct", "acct_system")
        ev = ev.rename(
            account_owner="acct_owner", account_kind="acct_kind", account_disabled="acct_disabled"
        )
        ev = self.resolve_source(ev, "src_ip", "account_owner")
        ev = ev.filter(
            ~(
                (ev.account_kind.fill_null("") == "service")
                & (ev.host_kind.fill_null("") == "server")
            )
        )
        ev = ev.mutate(actor=ev.host_person.coalesce(ev.account_owner), day=self.day_of(ev.time))
        p = self.people().select(
            p_id="employee_id", actor_role="role", actor_department="department", actor_team="team"
        )
        ev = ev.left_join(p, ev.actor == p.p_id).drop("p_id")
        self._cache["reads"] = ev.cache()
        return self._cache["reads"]

    def bulk_reads(self) -> Any:
        """Reads that take client data in bulk: many rows, a COPY of unknown size, or
        enough rows outside working hours."""
        r = self.reads()
        s = self.settings
        return r.filter(
            r.bulk_unknown
            | (r.rows >= s.bulk_rows)
            | (self.off_hours(r.time) & (r.rows >= s.offhours_rows))
        )

    def daily_reads(self) -> Any:
        """Per person and local day: rows and reads (statements, application look-ups),
        with the peer group (role, department and team) and its median rows that day."""
        if "daily" in self._cache:
            return self._cache["daily"]
        r = self.reads()
        r = r.filter(r.actor.notnull())
        d = r.group_by(["actor", "day"]).aggregate(
            rows=r.rows.sum(),
            reads=r.event_id.count(),
            ids=r.event_id.collect(),
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
        d = d.left_join(
            peers,
            [
                d.role.fill_null("") == peers.p_role.fill_null(""),
                d.department.fill_null("") == peers.p_dept.fill_null(""),
                d.team.fill_null("") == peers.p_team.fill_null(""),
                d.day == peers.p_day,
            ],
        ).drop("p_role", "p_dept", "p_team", "p_day")
        self._cache["daily"] = d.cache()
        return self._cache["daily"]

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
        if "http" in self._cache:
            return self._cache["http"]
        t = self.table("events_http")
        t = t.filter(t.time < self.end_literal())
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
        t = self.resolve_source(t, "src_ip", "acct_owner")
        t = t.mutate(actor=t.acct_owner.coalesce(t.host_person), day=self.day_of(t.time))
        self._cache["http"] = t.drop("acct_owner").cache()
        return self._cache["http"]

    def uploads(self) -> Any:
        """Requests that carry data out: POST/PUT with a body, CONNECT tunnels."""
        t = self.http()
        return t.filter(
            t.method.isin(["POST", "PUT", "CONNECT"])
            & (t.bytes_out >= self.settings.upload_request_bytes)
            & t.actor.notnull()
        )

    def endpoint_events(self, table: str) -> Any:
        """Sysmon file or process events with the host, its owner and the person
        (the event's user, else the person logged on, else the owner)."""
        key = f"endpoint:{table}"
        if key in self._cache:
            return self._cache[key]
        t = self.table(table)
        t = t.filter(t.time < self.end_literal())
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
        self._cache[key] = t.drop("acct_owner").cache()
        return self._cache[key]


def is_tool(col: Any, tools: Iterable[str]) -> Any:
    """Whether an app name or process image names one of the desktop tools."""
    low = col.fill_null("").lower()
    out = ibis.literal(False)
    for tool in tools:
        out = out | low.contains(tool)
    return out
