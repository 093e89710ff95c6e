"""Who was behind an account, an IP or a host at a given time.

Accounts map to owners (accounts), IPs to hosts and hosts to owners (assets),
and Windows logons (Security 4624) tell who sat at a workstation. Reference data
is read as it stood at that time (the store keeps every version), employment
status from the HR dates (dates are local to the configured zone).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from molehunt.models import Person as Person  # re-exported: identity.Person
from molehunt.store import Store

#: Logon types that put a person at the keyboard (interactive, unlock, remote, cached).
INTERACTIVE_LOGON_TYPES = (2, 7, 10, 11)
#: A logon older than this without a logoff is not taken as "still there".
LOGON_HORIZON = timedelta(hours=14)


def _valid_at(alias: str = "") -> str:
    p = f"{alias}." if alias else ""
    return (
        f"({p}valid_from IS NULL OR {p}valid_from <= $at) "
        f"AND ({p}valid_to IS NULL OR {p}valid_to > $at)"
    )


def employment_status(
    day: date, hire: date | None, notice: date | None, termination: date | None
) -> str:
    """Status on a local ``day``: the termination date is the last day employed."""
    if hire is not None and day < hire:
        return "not_yet_hired"
    if termination is not None and day > termination:
        return "departed"
    if notice is not None and day >= notice:
        return "on_notice"
    return "employed"


def person_from_versions(
    employee_id: str, versions: list[dict[str, Any]], at: datetime, zone: ZoneInfo
) -> Person:
    """The person as of ``at`` from all stored versions of their HR row.

    Name, role and department come from the version valid at ``at`` (else the newest
    one); the dates come from the latest knowledge, since a termination date set later
    still applies.
    """
    if not versions:
        return Person(employee_id, None, None, None, None, "unknown", None, None, None)

    def valid(r: dict[str, Any]) -> bool:
        return (r["valid_from"] is None or r["valid_from"] <= at) and (
            r["valid_to"] is None or r["valid_to"] > at
        )

    then = min(
        versions,
        key=lambda v: (
            not valid(v),
            v["valid_from"] is None,
            -(v["valid_from"].timestamp() if v["valid_from"] is not None else 0.0),
        ),
    )
    latest = min(
        versions,
        key=lambda v: (
            v["valid_to"] is not None,
            -(v["valid_to"].timestamp() if v["valid_to"] is not None else 0.0),
        ),
    )
    day = at.astimezone(zone).date()
    return Person(
        employee_id=employee_id,
        name=then["name"],
        department=then["department"],
        title=then["title"],
        role=then["role"],
        status=employment_status(
            day, latest["hire_date"], latest["notice_date"], latest["termination_date"]
        ),
        hire_date=latest["hire_date"],
        notice_date=latest["notice_date"],
        termination_date=latest["termination_date"],
    )


class Identity:
    """Identity answers over one store, in one zone."""

    def __init__(self, store: Store, timezone: str = "Asia/Shanghai") -> None:
        self.store = store
        self.zone = ZoneInfo(timezone)

    def person(self, employee_id: str | None, at: datetime) -> Person | None:
        if not employee_id:
            return None
        versions = self.store.query(
            "SELECT * FROM ref_hr WHERE employee_id = $id", {"id": employee_id}
        )
        return person_from_versions(employee_id, versions, at, self.zone)

    def accounts(self, account: str, at: datetime) -> list[dict[str, Any]]:
        rows = self.store.query(
            f"""
            SELECT account, system, owner_employee_id, kind, created, disabled
            FROM (
              SELECT *, row_number() OVER (
                PARTITION BY account, system
                ORDER BY ({_valid_at()}) DESC, valid_to DESC NULLS FIRST) AS n
              FROM ref_accounts WHERE account = $account
            ) WHERE n = 1 ORDER BY system
            """,
            {"account": account, "at": at},
        )
        day = at.astimezone(self.zone).date()
        out = []
        for r in rows:
            enabled = (r["created"] is None or r["created"] <= day) and (
                r["disabled"] is None or r["disabled"] > day
            )
            owner = self.person(r["owner_employee_id"], at)
            out.append({**r, "enabled": enabled, "owner": asdict(owner) if owner else None})
        return out

    def host(
        self, *, ip: str | None = None, hostname: str | None = None, at: datetime
    ) -> dict[str, Any] | None:
        column, value = ("ip", ip) if ip else ("hostname", hostname)
        rows = self.store.query(
            f"""
            SELECT hostname, ip, owner_employee_id, kind, department FROM ref_assets
            WHERE lower({column}) = lower($value)
            ORDER BY ({_valid_at()}) DESC, valid_to DESC NULLS FIRST LIMIT 1
            """,
            {"value": value, "at": at},
        )
        if not rows:
            return None
        r = rows[0]
        owner = self.person(r["owner_employee_id"], at)
        return {**r, "owner": asdict(owner) if owner else None}

    def logged_on(self, hostname: str, at: datetime) -> list[dict[str, Any]]:
        """People with an interactive logon on ``hostname`` open at ``at``."""
        rows = self.store.query(
            """
            WITH logons AS (
              SELECT user_name, max(time) AS since FROM events_auth
              WHERE activity = 'logon' AND logon_type IN (2, 7, 10, 11)
                AND lower(split_part(dst_host, '.', 1)) = lower(split_part($host, '.', 1))
                AND time <= $at AND time > $at - $horizon
              GROUP BY user_name
            )
            SELECT l.user_name, l.since FROM logons l
            WHERE NOT EXISTS (
              SELECT 1 FROM events_auth o
              WHERE o.activity = 'logoff' AND o.user_name = l.user_name
                AND lower(split_part(o.dst_host, '.', 1)) = lower(split_part($host, '.', 1))
                AND o.time > l.since AND o.time <= $at)
            ORDER BY l.since DESC
            """,
            {"host": hostname, "at": at, "horizon": LOGON_HORIZON},
        )
        out = []
        for r in rows:
            owners = [a for a in self.accounts(r["user_name"], at) if a["system"] == "ad"]
            person = owners[0]["owner"] if owners else None
            out.append({"account": r["user_name"], "since": r["since"], "person": person})
        return out

    def who(
        self,
        at: datetime,
        *,
        ip: str | None = None,
        account: str | None = None,
        hostname: str | None = None,
    ) -> dict[str, Any]:
        """Everything known about an IP, an account or a host at ``at``."""
        answer: dict[str, Any] = {"at": at.isoformat()}
        if account:
            answer["accounts"] = self.accounts(account, at)
        if ip or hostname:
            host = self.host(ip=ip, hostname=hostname, at=at)
            answer["host"] = host
            answer["logged_on"] = self.logged_on(host["hostname"], at) if host else []
        return answer

    def orphaned_accounts(self, at: datetime) -> list[dict[str, Any]]:
        """Enabled accounts whose owner had departed by ``at``."""
        day = at.astimezone(self.zone).date()
        return self.store.query(
            """
            SELECT a.account, a.system, a.kind, a.owner_employee_id, h.name,
                   h.termination_date, date_diff('day', h.termination_date, $day) AS days_since
            FROM accounts a JOIN hr h ON h.employee_id = a.owner_employee_id
            WHERE h.termination_date IS NOT NULL AND h.termination_date < $day
              AND (a.disabled IS NULL OR a.disabled > $day)
            ORDER BY days_since DESC, a.account, a.system
            """,
            {"day": day},
        )
