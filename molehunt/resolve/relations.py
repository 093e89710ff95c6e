"""Who is who, once: accounts to owners, IPs to hosts, the person logged on at a host
at a time, and every read of client data resolved to the person behind it.

:class:`Resolver` holds the store as of the end of one local day and builds these
relations with Ibis (one expression for DuckDB and Spark; see
:mod:`molehunt.detect.base` for the portability rules). Detection
(:class:`molehunt.detect.base.DetectContext` extends it) and attribution
(:mod:`molehunt.attribute.overlap`) read the same relations from here.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Self
from zoneinfo import ZoneInfo

import ibis
import pyarrow as pa

from molehunt.config import DetectionSettings
from molehunt.identity import INTERACTIVE_LOGON_TYPES, LOGON_HORIZON
from molehunt.resolve.stored import KEPT, Builder, Refresh, day_start, kept
from molehunt.store import Store
from molehunt.times import DEFAULT_TIMEZONE

_EPOCH = datetime(1900, 1, 1, tzinfo=UTC)
#: The zone ``to_pylist`` gives UTC times.
_UTC_ZONE = ZoneInfo("UTC")


def _null_string() -> Any:
    return ibis.literal(None, type="string")


def short_host(col: Any) -> Any:
    """``WS-0317.corp.example.cn`` -> ``ws-0317``: logs name hosts either way."""
    # Not ``split(".")``: Spark's split takes a regex, where "." matches every character.
    return col.lower().re_replace(r"\..*$", "")


def plain_user(col: Any) -> Any:
    """``CORP\\liu.wei`` -> ``liu.wei`` (lower case): Windows prefixes the domain."""
    return col.lower().re_replace(r"^.*\\", "")


def _values(column: pa.ChunkedArray[Any]) -> list[Any]:
    """A column's Python values, as ``to_pylist`` gives them: dates and UTC times
    through NumPy (``to_pylist`` makes them one at a time, slowly: the most of a
    round's collecting), the rest by ``to_pylist``."""
    kind = column.type
    if pa.types.is_date32(kind):
        return list(column.to_numpy(zero_copy_only=False).astype("datetime64[D]").tolist())
    if pa.types.is_timestamp(kind) and kind.unit != "ns" and kind.tz in (None, "UTC"):
        naive = column.cast(pa.timestamp(kind.unit)).to_numpy(zero_copy_only=False)
        values = naive.astype("datetime64[us]").tolist()
        if not all(v is None or isinstance(v, datetime) for v in values):
            return list(column.to_pylist())  # beyond what a datetime holds
        if kind.tz is None:
            return list(values)
        return [None if v is None else v.replace(tzinfo=_UTC_ZONE) for v in values]
    return list(column.to_pylist())


class Resolver:
    """The store as of the end of one local day, with who-is-who already joined."""

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
        self.backend = backend
        # With the store (DuckDB, writable), reads resolved to people are kept there
        # and extended day by day (:mod:`molehunt.resolve.stored`).
        self.store = store
        self.refreshes: dict[str, Refresh] = {}
        self._kept: dict[str, dict[str, Any]] = {}
        # Input events per local day, per table, counted once per pass (stored.py).
        self.day_counts: dict[str, list[tuple[date, int]]] = {}
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

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def kept(self, name: str, build: Builder) -> dict[str, Any]:
        """The tables of the relation ``name`` kept in the store (:data:`KEPT`), current
        up to this pass's day; ``build`` resolves the rows of the days from a start."""
        if name not in self._kept:
            assert self.store is not None
            self._kept[name], self.refreshes[name] = kept(self.store, self, KEPT[name], build)
        return self._kept[name]

    # -- small helpers ------------------------------------------------------------

    def table(self, name: str) -> Any:
        return self.backend.table(name)

    def end_literal(self) -> Any:
        return ibis.literal(self.end, type="timestamp('UTC')")

    def local(self, ts: Any) -> Any:
        return ts + ibis.interval(seconds=self.offset)

    def day_of(self, ts: Any) -> Any:
        return self.local(ts).date()

    def collect(self, expr: Any) -> list[dict[str, Any]]:
        """The (small) answer as rows; a list that gathered only NULLs is ``[]``.

        ``collect`` leaves NULLs out, and a group of NULLs only gives NULL on DuckDB
        (an empty list on Spark): reads that all name no table, requests to sites
        of no known category. Detectors iterate these lists, so they get one kind.
        """
        table = self.backend.to_pyarrow(expr)
        names = table.column_names
        columns = []
        for f, column in zip(table.schema, table.columns, strict=True):
            values = _values(column)
            if pa.types.is_list(f.type) or pa.types.is_large_list(f.type):
                values = [[] if v is None else v for v in values]
            columns.append(values)
        return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]

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
        """``ev`` (event_id, time, hostname) -> (event_id, logon_account, logon_person):
        the latest interactive Windows logon at that host before the event, not logged
        off (nulls when there is none).

        With ``owner`` (a column of ``ev``: the account's owner), that person wins when
        logged on there too: on a shared server (the DBAs' jump host) several people
        are logged on at once, and the latest logon need not be the one acting.
        """
        keys = ev.select(
            "event_id",
            "time",
            "hostname",
            k_owner=ev[owner] if owner else _null_string(),
        )
        keys = self._with_logon(keys, "k_owner")
        return keys.select(
            lp_id="event_id", logon_account="logon_account", logon_person="logon_person"
        )

    def _logon_segments(self) -> tuple[Any, Any]:
        """Each host's time cut where a logon starts or ends, with who wins in each piece.

        Who is logged on at a host changes only when a logon starts, ends (its user's
        next logoff there) or gets older than the horizon; between two such moments the
        answer of :meth:`person_at_host` is the same for every event. Working it out per
        piece of time, on the small logon tables, spares a join of every event with every
        logon at its host and a window over every event. Returns the pieces (split by
        local day so that events find theirs by equality) with the latest logon, and
        the latest logon of each person in each piece (``own_key``: the owner, "" for none)
        where it is not that one.
        """
        if self.store is not None:
            tables = self.kept("logons", self._segments_from)
            return tables["kept_logon_pieces"], tables["kept_logon_own"]
        if "segments" not in self._cache:
            pieces, own = self._segments(None)
            self._cache["segments"] = pieces.cache()
            self._cache["segments_own"] = own.cache()
        return self._cache["segments"], self._cache["segments_own"]

    def _segments_from(self, start: date | None) -> dict[str, Any]:
        """The kept logon pieces of days from ``start`` on, and the own logons of pieces
        starting from the day before (:data:`~molehunt.resolve.stored.KEPT`)."""
        pieces, own = self._segments(start)
        if start is None:
            return {"kept_logon_pieces": pieces, "kept_logon_own": own}
        return {
            "kept_logon_pieces": pieces.filter(pieces.seg_day >= ibis.literal(start)),
            "kept_logon_own": own.filter(own.own_day >= ibis.literal(start - timedelta(days=1))),
        }

    def _segments(self, start: date | None) -> tuple[Any, Any]:
        """:meth:`_logon_segments` worked out from the logons of two days before ``start``
        on (default: every logon): exact for the pieces of days from ``start`` and the own
        logons of pieces starting from the day before, since a logon counts for less
        than a day."""
        a = self.table("events_auth")
        a = a.filter(a.time < self.end_literal())
        if start is not None:
            since = day_start(self, start - timedelta(days=2))
            a = a.filter(a.time >= ibis.literal(since, type="timestamp('UTC')"))
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
        ended = logons.left_join(
            offs,
            [
                logons.l_host == offs.o_host,
                logons.l_user == offs.o_user,
                offs.o_time > logons.l_time,
            ],
        )
        ended = ended.group_by(["l_host", "l_user", "l_time", "l_id"]).aggregate(
            l_off=ended.o_time.min()
        )
        horizon = ibis.interval(seconds=int(LOGON_HORIZON.total_seconds()))
        stop = ended.l_time + horizon
        # A logon counts for events at [l_time, l_end): younger than the horizon and
        # before its user's next logoff there.
        ended = ended.mutate(
            l_end=ibis.cases(
                (ended.l_off.notnull() & (ended.l_off < stop), ended.l_off), else_=stop
            )
        )
        ad = self.accounts("ad")
        ended = ended.left_join(ad, ended.l_user == ad.acct).select(
            "l_host", "l_user", "l_time", "l_id", "l_end", "acct_owner"
        )
        # Distinct: one piece per moment, however many logons start or end then.
        points = ended.select(p_host="l_host", p_at="l_time").union(
            ended.select(p_host="l_host", p_at="l_end"), distinct=True
        )
        w = ibis.window(group_by=points.p_host, order_by=points.p_at)
        segs = points.mutate(s_end=points.p_at.lead().over(w))
        active = segs.join(
            ended,
            [
                segs.p_host == ended.l_host,
                ended.l_time <= segs.p_at,
                ended.l_end > segs.p_at,
            ],
        )
        active = active.mutate(seg_key=active.acct_owner.fill_null(""))
        latest = [ibis.desc(active.l_time), ibis.desc(active.l_id)]
        w_all = ibis.window(group_by=[active.p_host, active.p_at], order_by=latest)
        best = active.mutate(_n=ibis.row_number().over(w_all)).filter(lambda x: x._n == 0)
        top = best.select(t_host="p_host", t_start="p_at", t_user="l_user", t_person="acct_owner")
        best = best.select(
            seg_host="p_host",
            seg_start="p_at",
            seg_end="s_end",
            seg_user="l_user",
            seg_person="acct_owner",
        )
        # A piece lasts at most the horizon (shorter than a day): two local days at most.
        first = best.mutate(seg_day=self.day_of(best.seg_start))
        second = best.mutate(seg_day=self.day_of(best.seg_end))
        pieces = first.union(second.filter(second.seg_day != self.day_of(second.seg_start)))
        w_own = ibis.window(group_by=[active.p_host, active.p_at, active.seg_key], order_by=latest)
        own = active.mutate(_n=ibis.row_number().over(w_own)).filter(lambda x: x._n == 0)
        # Where a person's answer is the piece's answer anyway (their latest logon is
        # the latest of all), it is left out: few are kept (shared hosts).
        own = own.join(top, [own.p_host == top.t_host, own.p_at == top.t_start])
        own = own.filter(
            ~(own.l_user.identical_to(own.t_user) & own.acct_owner.identical_to(own.t_person))
        )
        own = own.select(
            own_host="p_host",
            own_start="p_at",
            own_key="seg_key",
            own_user="l_user",
            own_person="acct_owner",
            own_day=self.day_of(own.p_at),
        )
        return pieces, own

    def _with_logon(
        self,
        ev: Any,
        owner: str | None = None,
        day: str | None = None,
        host_owner: str | None = None,
    ) -> Any:
        """``ev`` (time, hostname) plus logon_account and logon_person, as
        :meth:`person_at_host` defines them; ``day`` names a column of ``ev`` that
        holds the local day of ``time`` already (it is not free to work out).

        With ``host_owner`` (a column: the owner of a workstation), that person comes
        next after the account's owner: a colleague from IT who connects to someone's
        PC while they are logged on there is the latest logon, but the one at the desk
        is the owner."""
        pieces, own = self._logon_segments()
        cols = list(ev.columns)
        ev = ev.mutate(_seg_day=ev[day] if day else self.day_of(ev.time))
        ev = ev.left_join(
            pieces,
            [
                ev.hostname == pieces.seg_host,
                ev._seg_day == pieces.seg_day,
                pieces.seg_start <= ev.time,
                pieces.seg_end > ev.time,
            ],
        )
        # "Mine" as the pass always compared it: the owner's id, nulls never equal.
        key = ev[owner].fill_null("-") if owner else ibis.literal("-")
        ev = ev.left_join(
            own,
            [ev.seg_host == own.own_host, ev.seg_start == own.own_start, key == own.own_key],
        )
        found = ev.own_host.notnull()
        if host_owner is None:
            return ev.select(
                *cols,
                logon_account=ibis.cases((found, ev.own_user), else_=ev.seg_user),
                logon_person=ibis.cases((found, ev.own_person), else_=ev.seg_person),
            )
        desk = own.select(
            d_host="own_host", d_start="own_start", d_key="own_key", d_user="own_user"
        )
        ev = ev.left_join(
            desk,
            [
                ev.seg_host == desk.d_host,
                ev.seg_start == desk.d_start,
                ev[host_owner].fill_null("-") == desk.d_key,
            ],
        )
        at_desk = ~found & ev.d_host.notnull()
        return ev.select(
            *cols,
            logon_account=ibis.cases((found, ev.own_user), (at_desk, ev.d_user), else_=ev.seg_user),
            logon_person=ibis.cases(
                (found, ev.own_person), (at_desk, ev[host_owner]), else_=ev.seg_person
            ),
        )

    def resolve_source(
        self, ev: Any, ip: str, owner: str | None = None, day: str | None = None
    ) -> Any:
        """Add hostname, host_kind, host_owner, logon_person and host_person (the
        person at the source host: the one logged on, else a workstation's owner);
        ``owner`` names the column of the account's owner (see :meth:`person_at_host`)."""
        h = self.hosts()
        ev = ev.left_join(h, ev[ip] == h.h_ip).drop("h_ip")
        return self._with_person_at(ev, owner, day)

    def _with_person_at(self, ev: Any, owner: str | None = None, day: str | None = None) -> Any:
        ev = ev.mutate(
            _desk=ibis.cases(
                (ev.host_kind.fill_null("") == "workstation", ev.host_owner),
                else_=_null_string(),
            )
        )
        ev = self._with_logon(ev, owner, day, "_desk").drop("_desk")
        own = ibis.cases(
            (ev.host_kind.fill_null("") == "workstation", ev.host_owner), else_=_null_string()
        )
        return ev.mutate(host_person=ev.logon_person.coalesce(own))

    # -- reads of client data, resolved to people -----------------------------------

    def reads(self) -> Any:
        """Reads of client data (database statements and application accesses) with
        the account's owner, the source host and person, and the acting person.

        Service accounts working from servers (the nightly ETL) are left out: they are
        not people and do what they always do.
        """
        if self.store is not None:
            return self.kept("reads", lambda start: {"kept_reads": self.resolve_reads(start)})[
                "kept_reads"
            ]
        if "reads" not in self._cache:
            self._cache["reads"] = self.resolve_reads().cache()
        return self._cache["reads"]

    def resolve_reads(self, start: date | None = None) -> Any:
        """The expression behind :meth:`reads`, for the reads of local days from
        ``start`` (default: all) to the end of the pass's day."""
        end = self.end_literal()
        begin = (
            ibis.literal(day_start(self, start), type="timestamp('UTC')")
            if start is not None
            else None
        )
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
        if begin is not None:
            db = db.filter(db.time >= begin)
            app = app.filter(app.time >= begin)
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
        ev = ev.mutate(day=self.day_of(ev.time))
        ev = self.resolve_source(ev, "src_ip", "account_owner", "day")
        ev = ev.filter(
            ~(
                (ev.account_kind.fill_null("") == "service")
                & (ev.host_kind.fill_null("") == "server")
            )
        )
        # On the account owner's own workstation the owner acts, whoever else is logged
        # on there too (IT support connecting to a colleague's PC is not using the
        # colleague's account).
        at_own = ev.host_owner.notnull() & (ev.host_owner == ev.account_owner)
        ev = ev.mutate(
            host_person=ibis.cases((at_own, ev.account_owner), else_=ev.host_person),
        )
        ev = ev.mutate(actor=ev.host_person.coalesce(ev.account_owner)).relocate(
            "day", after="actor"
        )
        p = self.people().select(
            p_id="employee_id", actor_role="role", actor_department="department", actor_team="team"
        )
        return ev.left_join(p, ev.actor == p.p_id).drop("p_id")
