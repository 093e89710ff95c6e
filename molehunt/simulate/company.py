"""The simulated insurer: departments, people, workstations, servers and accounts.

Everything here is drawn from one seeded :class:`random.Random`, so the same seed
gives the same company. The company includes what a real one has lying around:
people who left before the simulated period (their HR rows stay, with a
termination date), and a few of their database and CRM accounts that nobody
disabled.
"""

from __future__ import annotations

import csv
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from molehunt.synthetic import BRANCHES, GIVEN, SURNAMES

DOMAIN = "CORP"
DNS_SUFFIX = "corp.example-insure.cn"
DB_NAME = "crm"
DB_PORT = 5432


@dataclass(frozen=True, slots=True)
class Department:
    name: str
    role: str
    share: float  # of the staff
    subnet: int  # second octet of 10.x.y.z
    title: str  # title of the rank and file
    crm: bool  # uses the CRM app


DEPARTMENTS: tuple[Department, ...] = (
    Department("Sales", "sales", 0.45, 21, "Sales Representative", True),
    Department("Underwriting", "underwriter", 0.10, 22, "Underwriter", True),
    Department("Claims", "claims", 0.10, 23, "Claims Adjuster", True),
    Department("Customer Service", "cs", 0.12, 24, "Service Agent", True),
    Department("IT", "it", 0.06, 25, "Engineer", False),
    Department("DBA", "dba", 0.01, 26, "Database Administrator", False),
    Department("Management", "manager", 0.05, 27, "Manager", True),
    Department("Audit", "audit", 0.03, 28, "Internal Auditor", True),
    Department("HR", "hr", 0.03, 29, "HR Specialist", False),
    Department("Analytics", "analyst", 0.02, 30, "Data Analyst", True),
)


@dataclass(frozen=True, slots=True)
class Server:
    hostname: str
    ip: str
    purpose: str


SERVERS: dict[str, Server] = {
    "db": Server("crm-db01", "10.10.0.5", "CRM PostgreSQL database"),
    "app": Server("crm-app01", "10.10.0.10", "CRM application server"),
    "etl": Server("etl01", "10.10.0.20", "nightly ETL"),
    "jump": Server("dba-jump01", "10.10.0.30", "DBA jump host"),
    "proxy": Server("proxy01", "10.10.0.40", "Squid web proxy"),
}

#: Database accounts of machines, not people.
CRM_SERVICE_ACCOUNT = "crm_app"
ETL_ACCOUNT = "etl_nightly"


@dataclass(slots=True)
class Person:
    index: int
    employee_id: str
    name: str
    login: str  # AD, CRM app and proxy user name
    department: Department
    title: str
    role: str
    branch: int  # index into BRANCHES
    team: int
    manager: int | None
    hire_date: date
    notice_date: date | None = None
    termination_date: date | None = None
    host: str = ""
    ip: str = ""
    activity: float = 1.0  # personal rate multiplier
    arrive: float = 8.8  # usual arrival, hours
    leave: float = 18.0
    db_account: str | None = None  # personal crm-db account (DBAs, analysts)
    leave_days: set[date] = field(default_factory=set)
    today: tuple[float, float] = (8.8, 18.0)  # this working day's logon and logoff, hours

    def within_day(self, start: float, end: float, margin: float = 0.2) -> tuple[float, float]:
        """Hours ``start``-``end`` narrowed to today's logon session (:attr:`today`),
        ending ``margin`` hours before the logoff: what a person does at their PC
        happens while they are logged on there, not after (when an IT engineer's
        remote session may be the only one left on the host)."""
        lo, hi = max(start, self.today[0] + 0.2), min(end, self.today[1] - margin)
        return (lo, hi) if lo < hi else (self.today[0] + 0.1, self.today[1] - 0.1)

    def employed(self, day: date) -> bool:
        if day < self.hire_date:
            return False
        return self.termination_date is None or day < self.termination_date

    @property
    def fqdn(self) -> str:
        return f"{self.host}.{DNS_SUFFIX}"


@dataclass(frozen=True, slots=True)
class Account:
    account: str
    system: str
    owner: str  # employee id, or "" for a service account
    kind: str
    created: date
    disabled: date | None


@dataclass(slots=True)
class Company:
    people: list[Person]
    accounts: list[Account]
    start: date
    end: date  # first day after the simulated period

    def by_role(self, role: str) -> list[Person]:
        return [p for p in self.people if p.role == role]

    def active(self, day: date) -> list[Person]:
        return [p for p in self.people if p.employed(day)]

    def person(self, employee_id: str) -> Person:
        return next(p for p in self.people if p.employee_id == employee_id)

    def by_ip(self) -> dict[str, Person]:
        return {p.ip: p for p in self.people if p.ip}


def _counts(staff: int) -> list[int]:
    counts = [max(1, round(staff * d.share)) for d in DEPARTMENTS]
    counts[DEPARTMENTS.index(next(d for d in DEPARTMENTS if d.role == "dba"))] = max(
        2, round(staff * 0.01)
    )
    counts[0] += staff - sum(counts)  # sales absorbs the rounding
    return counts


def build_company(rng: random.Random, staff: int, start: date, days: int) -> Company:
    """``staff`` people employed during the period, plus some who left before it."""
    end = start + timedelta(days=days)
    people: list[Person] = []
    logins: set[str] = set()
    surname_weights = [w for _, _, w in SURNAMES]

    def new_person(dept: Department, title: str, role: str, branch: int, team: int) -> Person:
        s = rng.choices(SURNAMES, weights=surname_weights)[0]
        given = [rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2)))]
        base = f"{s[1]}.{''.join(g[1] for g in given)}"
        login, n = base, 1
        while login in logins:
            n += 1
            login = f"{base}{n}"
        logins.add(login)
        index = len(people)
        hire = start - timedelta(days=rng.randint(120, 4000))
        person = Person(
            index=index,
            employee_id=f"E{10001 + index:05d}",
            name=s[0] + "".join(g[0] for g in given),
            login=login,
            department=dept,
            title=title,
            role=role,
            branch=branch,
            team=team,
            manager=None,
            hire_date=hire,
            activity=rng.lognormvariate(0, 0.35),
            arrive=rng.gauss(8.75, 0.3),
            leave=rng.gauss(17.9, 0.4),
        )
        people.append(person)
        return person

    team_no = 0
    for dept, count in zip(DEPARTMENTS, _counts(staff), strict=True):
        head_role = "manager"
        head = new_person(dept, "Department Head", head_role, 0, team_no)
        remaining = count - 1
        while remaining > 0:
            team_no += 1
            size = min(remaining, rng.randint(7, 12))
            branch = rng.choices(range(len(BRANCHES)), weights=[32, 28, 14, 14, 12])[0]
            lead = new_person(dept, "Team Lead", dept.role, branch, team_no)
            lead.manager = head.index
            for _ in range(size - 1):
                member = new_person(dept, dept.title, dept.role, branch, team_no)
                member.manager = lead.index
            remaining -= size
        team_no += 1

    # Some people join or leave during the period, as in any company.
    movers = [p for p in people if p.title not in ("Department Head", "Team Lead")]
    rng.shuffle(movers)
    n_move = max(1, staff // 50)
    for p in movers[:n_move]:
        p.hire_date = start + timedelta(days=rng.randint(3, max(4, days - 5)))
    for p in movers[n_move : 2 * n_move]:
        last = start + timedelta(days=rng.randint(10, max(11, days + 20)))
        p.notice_date = last - timedelta(days=30)
        p.termination_date = last if last < end else None
        if p.termination_date is None:
            p.notice_date = p.notice_date if p.notice_date < end else None

    # People who left before the period: still in the HR export.
    departed_count = max(3, staff // 30)
    for _ in range(departed_count):
        dept = rng.choices(DEPARTMENTS, weights=[d.share for d in DEPARTMENTS])[0]
        if _ < 2:
            dept = next(d for d in DEPARTMENTS if d.role == "it")  # former report analysts
        p = new_person(dept, dept.title, dept.role, rng.randrange(len(BRANCHES)), -1)
        gone = start - timedelta(days=rng.randint(5, 120))
        p.termination_date = gone
        p.notice_date = gone - timedelta(days=30)
        p.hire_date = min(p.hire_date, gone - timedelta(days=400))

    _assign_hosts(people)
    accounts = _accounts(rng, people, start)
    company = Company(people, accounts, start, end)
    _plan_leave(rng, company)
    return company


def _assign_hosts(people: list[Person]) -> None:
    per_dept: dict[int, int] = {}
    number = 0
    for p in people:
        if p.team == -1:
            continue  # left before the period: their PC went to someone else
        number += 1
        k = per_dept.get(p.department.subnet, 0)
        per_dept[p.department.subnet] = k + 1
        p.host = f"WS-{number:04d}"
        p.ip = f"10.{p.department.subnet}.{k // 200}.{k % 200 + 20}"


def _accounts(rng: random.Random, people: list[Person], start: date) -> list[Account]:
    out: list[Account] = []
    for p in people:
        gone = p.termination_date
        out.append(Account(p.login, "ad", p.employee_id, "human", p.hire_date, gone))
        if p.department.crm:
            # One departed person in three keeps a working CRM login: nobody asked IT.
            forgotten = gone is not None and gone < start and rng.random() < 0.33
            out.append(
                Account(
                    p.login,
                    "crm-app",
                    p.employee_id,
                    "human",
                    p.hire_date,
                    None if forgotten else gone,
                )
            )
        if p.role == "dba":
            p.db_account = f"dba_{p.login.replace('.', '_')}"
            out.append(Account(p.db_account, "crm-db", p.employee_id, "admin", p.hire_date, gone))
        elif p.role == "analyst":
            # Analysts query the database directly for reports and campaign lists.
            p.db_account = f"ana_{p.login.replace('.', '_')}"
            out.append(Account(p.db_account, "crm-db", p.employee_id, "human", p.hire_date, gone))
        elif p.role == "it" and p.team == -1:
            # Former reporting analysts had personal database accounts; never disabled.
            p.db_account = f"rpt_{p.login.replace('.', '_')}"
            out.append(Account(p.db_account, "crm-db", p.employee_id, "human", p.hire_date, None))
    out.append(Account("crm_app", "crm-db", "", "service", date(2019, 3, 1), None))
    out.append(Account("etl_nightly", "crm-db", "", "service", date(2020, 7, 1), None))
    out.append(Account("postgres", "crm-db", "", "admin", date(2019, 3, 1), None))
    return out


def _plan_leave(rng: random.Random, company: Company) -> None:
    days = (company.end - company.start).days
    for p in company.people:
        n_blocks = sum(rng.random() < days / 365 * 2.5 for _ in range(2))
        for _ in range(n_blocks):
            first = company.start + timedelta(days=rng.randrange(max(1, days)))
            for k in range(rng.choice((1, 1, 2, 3, 5))):
                p.leave_days.add(first + timedelta(days=k))
        for _ in range(days):
            if rng.random() < 0.006:
                p.leave_days.add(company.start + timedelta(days=rng.randrange(max(1, days))))


# -- reference exports ---------------------------------------------------------------


def _iso(d: date | None) -> str:
    return d.isoformat() if d else ""


HR_COLUMNS = [
    "employee_id",
    "name",
    "department",
    "title",
    "role",
    "manager_id",
    "hire_date",
    "notice_date",
    "termination_date",
]


def hr_rows(company: Company) -> list[list[str]]:
    """The HR roster as it stands now (a transfer changes it mid-period)."""
    by_index = {p.index: p for p in company.people}
    return [
        [
            p.employee_id,
            p.name,
            p.department.name,
            p.title,
            p.role,
            by_index[p.manager].employee_id if p.manager is not None else "",
            _iso(p.hire_date),
            _iso(p.notice_date),
            _iso(p.termination_date),
        ]
        for p in company.people
    ]


def write_hr_version(company: Company, path: Path, as_of_us: int) -> int:
    """A later HR export (after transfers), dated ``as_of_us`` (its mtime, which the
    ingest takes as the version's start); rows written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = hr_rows(company)
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(HR_COLUMNS)
        w.writerows(rows)
    os.utime(path, ns=(as_of_us * 1000, as_of_us * 1000))
    return len(rows)


def write_reference(
    company: Company,
    folder: Path,
    policy: dict[str, bool] | None = None,
    shared_desks: Sequence[tuple[str, str]] = (),
) -> dict[str, int]:
    """hr, accounts, assets (with ``shared_desks``: hot desks nobody owns, as (host, ip)),
    entitlements, web categories and policy (this seed's, else :data:`WEB_POLICY`) CSVs;
    rows written."""
    policy = WEB_POLICY if policy is None else policy
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, int] = {}

    def write(name: str, header: list[str], rows: list[list[str]]) -> None:
        with (folder / name).open("w", encoding="utf-8", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(header)
            w.writerows(rows)
        written[name] = len(rows)

    write("hr.csv", HR_COLUMNS, hr_rows(company))
    write(
        "accounts.csv",
        ["account", "system", "owner_employee_id", "kind", "created", "disabled"],
        [
            [a.account, a.system, a.owner, a.kind, _iso(a.created), _iso(a.disabled)]
            for a in company.accounts
        ],
    )
    assets = [
        [p.host, p.ip, p.employee_id, "workstation", p.department.name]
        for p in company.people
        if p.host
    ]
    assets += [[host, ip, "", "workstation", "Shared"] for host, ip in shared_desks]
    assets += [[s.hostname, s.ip, "", "server", "IT"] for s in SERVERS.values()]
    write("assets.csv", ["hostname", "ip", "owner_employee_id", "kind", "department"], assets)
    write("entitlements.csv", ["role", "system", "resource", "access"], ENTITLEMENTS)
    write("web_categories.csv", ["domain", "category"], [[d, c] for d, c in WEB_CATEGORIES])
    write(
        "web_policy.csv",
        ["category", "allowed"],
        [[c, "yes" if ok else "no"] for c, ok in policy.items()],
    )
    return written


ENTITLEMENTS: list[list[str]] = [
    ["sales", "crm-app", "clients", "read"],
    ["sales", "crm-app", "clients", "export"],
    ["cs", "crm-app", "clients", "read"],
    ["underwriter", "crm-app", "clients", "read"],
    ["claims", "crm-app", "clients", "read"],
    ["manager", "crm-app", "clients", "read"],
    ["manager", "crm-app", "clients", "export"],
    ["audit", "crm-app", "clients", "read"],
    ["audit", "crm-app", "clients", "export"],
    ["analyst", "crm-app", "clients", "read"],
    ["analyst", "crm-app", "clients", "export"],
    ["analyst", "crm-db", "public.clients", "read"],
    ["dba", "crm-db", "public.clients", "read"],
    ["dba", "crm-db", "public.clients", "write"],
]

#: (domain, category): shopping and the company's own sites are allowed, the rest not.
WEB_CATEGORIES: list[tuple[str, str]] = [
    ("example-insure.cn", "company"),
    ("taobao.com", "shopping"),
    ("tmall.com", "shopping"),
    ("jd.com", "shopping"),
    ("pinduoduo.com", "shopping"),
    ("yangkeduo.com", "shopping"),
    ("vip.com", "shopping"),
    ("alicdn.com", "shopping"),
    ("weibo.com", "social"),
    ("qq.com", "social"),
    ("douyin.com", "video"),
    ("bilibili.com", "video"),
    ("iqiyi.com", "video"),
    ("sina.com.cn", "news"),
    ("163.com", "webmail"),
    ("126.com", "webmail"),
    ("mail.qq.com", "webmail"),
    ("health-tpa.cn", "partner"),
    ("reinsure-partner.cn", "partner"),
    ("autorepair-alliance.cn", "partner"),
    ("trip-expense.cn", "partner"),
    ("pan.baidu.com", "cloud-storage"),
    ("aliyundrive.com", "cloud-storage"),
    ("baidu.com", "search"),
    ("zhihu.com", "social"),
]
WEB_POLICY: dict[str, bool] = {
    "company": True,
    "partner": True,
    "shopping": True,
    "social": False,
    "video": False,
    "news": False,
    "webmail": False,
    "cloud-storage": False,
    "search": False,
}
