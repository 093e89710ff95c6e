"""Planted insider scenarios and benign look-alikes, one small class each.

Each class picks its people, days and sizes from the seed in :meth:`plan`, acts
on each day in :meth:`day` through :class:`~molehunt.simulate.world.World` (so
its traces look like everyone else's), leaves files behind in :meth:`finish`,
and says what it did in :meth:`truth`. The registries at the bottom list them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, ClassVar

import numpy as np

from molehunt.simulate.clients import BRANCHES, client_id
from molehunt.simulate.company import ETL_ACCOUNT, SERVERS, Account, Person
from molehunt.simulate.normal import CRM_RATE, export_file, work_time
from molehunt.simulate.world import (
    CHROME,
    DBEAVER,
    DBEAVER_APP,
    EXCEL,
    NAVICAT,
    PSQL,
    World,
    at,
)
from molehunt.simulate.writers import MINUTE, SECOND, Statement

CLIENT_COLUMNS = "client_id, name, id_number, mobile, address"


@dataclass(slots=True)
class Context:
    """What a scenario may choose from."""

    world: World
    workdays: list[date]
    rng: random.Random
    taken: set[int] = field(default_factory=set)

    def free(self, role: str, first: date, last: date, *, own_host: bool = True) -> list[Person]:
        """People of ``role`` employed from ``first`` to ``last``, in no other scenario."""
        return [
            p
            for p in self.world.company.people
            if p.role == role
            and p.index not in self.taken
            and p.employed(first)
            and p.employed(last)
            and p.hire_date < first - timedelta(days=60)
            and p.notice_date is None
            and (p.host or not own_host)
        ]

    def window(self, earliest: float, min_days: int, max_share: float) -> list[date]:
        """Consecutive workdays starting after ``earliest`` of the period."""
        n = len(self.workdays)
        first = min(n - 1, max(1, int(n * earliest) + self.rng.randint(0, max(0, n // 10))))
        length = max(min_days, int((n - first) * self.rng.uniform(max_share * 0.6, max_share)))
        return self.workdays[first : min(n, first + length)]


class Scenario:
    """Base: a planted case (or a decoy) with its ground truth."""

    kind: ClassVar[str]
    decoy: ClassVar[bool] = False
    description: ClassVar[str]
    why_benign: ClassVar[str] = ""

    def __init__(self) -> None:
        self.people: list[Person] = []
        self.accounts: list[str] = []
        self.hosts: list[str] = []
        self.days: list[date] = []
        self.leaked: list[str] = []
        self.endpoint: list[str] = []
        self.details: dict[str, Any] = {}

    def plan(self, ctx: Context) -> bool:
        raise NotImplementedError

    def day(self, world: World, day: date) -> None:
        """Act on ``day`` (called for every day of the period)."""

    def finish(self, world: World) -> None:
        """Leave the files this scenario left on endpoints and outside."""

    def active(self, person: Person, day: date) -> bool:
        return day in self.days and person.employed(day) and day not in person.leave_days

    def truth(self, number: int) -> dict[str, Any]:
        base: dict[str, Any] = {
            "id": f"{self.kind}-{number}",
            "kind": self.kind,
            "start_day": self.days[0].isoformat() if self.days else None,
            "end_day": self.days[-1].isoformat() if self.days else None,
            "people": [p.employee_id for p in self.people],
            "accounts": self.accounts,
            "hosts": self.hosts,
            "description": self.description,
            "details": self.details,
        }
        if self.decoy:
            base["days"] = [d.isoformat() for d in self.days]
            base["why_benign"] = self.why_benign
        else:
            base["leaked_files"] = self.leaked
            base["endpoint_files"] = self.endpoint
        return base


def _upload_host(shop: str) -> str:
    return "im." + shop


class BorrowedAccountRing(Scenario):
    """Sales people read the client table with a departed colleague's database account."""

    kind = "borrowed_account_ring"
    description = (
        "Sales people with no database access use a departed employee's still-enabled crm-db "
        "account from their own PCs with DBeaver/Navicat, read thousands of client rows a day "
        "in client-id order, save them to Excel and upload them to one shop's customer-service "
        "chat."
    )

    def plan(self, ctx: Context) -> bool:
        world = ctx.world
        borrowed = [
            a
            for a in world.company.accounts
            if a.system == "crm-db"
            and a.kind == "human"
            and a.disabled is None
            and _owner_gone(world, a, world.company.start)
        ]
        self.days = ctx.window(0.15, 3, 0.8)
        members = ctx.free("sales", self.days[0], self.days[-1])
        if not borrowed or len(members) < 2:
            return False
        account = ctx.rng.choice(borrowed)
        size = min(len(members), ctx.rng.choice((2, 2, 3)))
        self.people = ctx.rng.sample(members, size)
        ctx.taken.update(p.index for p in self.people)
        self.accounts = [account.account]
        self.hosts = [p.host for p in self.people]
        shop = ctx.rng.choice(("taobao.com", "tmall.com", "jd.com"))
        self.shop_host = _upload_host(shop)
        self.chat_path = f"/chat/{ctx.rng.randint(10_000_000, 99_999_999)}/upload"
        self.per_day = ctx.rng.randint(1500, 4000)
        n = world.clients.count
        self.cursor = {p.index: ctx.rng.randrange(n) for p in self.people}
        self.read: dict[int, list[tuple[int, int]]] = {p.index: [] for p in self.people}
        self.saved: dict[int, list[tuple[str, list[int]]]] = {p.index: [] for p in self.people}
        self.tools = {
            p.index: (DBEAVER, DBEAVER_APP) if i % 2 == 0 else (NAVICAT, "")
            for i, p in enumerate(self.people)
        }
        self.details = {
            "borrowed_account_owner": account.owner,
            "upload_url": f"https://{self.shop_host}{self.chat_path}",
            "rows_per_day": self.per_day,
        }
        return True

    def day(self, world: World, day: date) -> None:
        rng = world.rng
        n = world.clients.count
        for p in self.people:
            if not self.active(p, day):
                continue
            image, app = self.tools[p.index]
            start = work_time(world, day, 13.5, 17.0)
            world.process(start, p, p.fqdn, image)
            world.network(start + 5 * SECOND, p, p.fqdn, p.ip, image, "db")
            statements: list[tuple[int, Statement]] = []
            offset = 10 * SECOND
            left = int(self.per_day * rng.uniform(0.6, 1.4))
            rows_today: list[int] = []
            while left > 0:
                size = min(left, rng.randint(300, 1500))
                lo = self.cursor[p.index] % n
                hi = min(n - 1, lo + size - 1)
                text = (
                    f"SELECT {CLIENT_COLUMNS} FROM clients WHERE client_id BETWEEN "
                    f"'{client_id(lo)}' AND '{client_id(hi)}' ORDER BY client_id"
                )
                statements.append(
                    (
                        offset,
                        Statement(
                            text,
                            rows=hi - lo + 1,
                            plan="Index Scan",
                            duration_ms=(hi - lo + 1) * 0.01,
                        ),
                    )
                )
                self.read[p.index].append((lo, hi))
                rows_today.extend(range(lo, hi + 1))
                self.cursor[p.index] = (hi + 1) % n
                left -= hi - lo + 1
                offset += rng.randint(40, 400) * SECOND
            end = world.db_session(start + 8 * SECOND, self.accounts[0], p.ip, app, statements)
            path = world.user_path(p, "Documents", f"客户资料_{day:%m%d}.xlsx")
            world.process(end + 20 * SECOND, p, p.fqdn, EXCEL)
            world.file_created(end + 50 * SECOND, p, p.fqdn, EXCEL, path)
            self.saved[p.index].append((path, rows_today))
            size = len(rows_today) * rng.randint(110, 160) + rng.randint(0, 400_000)
            world.upload(end + rng.randint(5, 40) * MINUTE, p, self.shop_host, self.chat_path, size)

    def finish(self, world: World) -> None:
        everything: list[int] = []
        for p in self.people:
            for path, rows in self.saved[p.index][-2:]:
                self.endpoint.append(world.endpoint_file(p, path, rows))
            for lo, hi in self.read[p.index]:
                everything.extend(range(lo, hi + 1))
        if everything:
            sample = world.rng.sample(everything, min(len(everything), 3000))
            self.leaked.append(world.leaked_file("shop_seller_export.xlsx", sample, 300))
        self.details["rows_read"] = len(everything)


def _owner_gone(world: World, account: Account, by: date) -> bool:
    owner = next((p for p in world.company.people if p.employee_id == account.owner), None)
    return owner is not None and owner.termination_date is not None and owner.termination_date < by


class DepartingEmployee(Scenario):
    """A sales person hands in notice, then exports clients outside their portfolio."""

    kind = "departing_employee"
    description = (
        "A sales person hands in notice, then exports clients of other branches through the "
        "CRM almost daily and uploads files to a shopping site in the last weeks."
    )

    def plan(self, ctx: Context) -> bool:
        world = ctx.world
        notice_days = ctx.window(0.25, 3, 0.3)
        notice = notice_days[0]
        candidates = ctx.free("sales", notice, notice)
        if not candidates:
            return False
        p = ctx.rng.choice(candidates)
        ctx.taken.add(p.index)
        p.notice_date = notice
        p.termination_date = notice + timedelta(days=30)
        _disable_after(world, p)
        self.people, self.hosts, self.accounts = [p], [p.host], [p.login]
        later = [d for d in ctx.workdays if notice + timedelta(days=2) <= d < p.termination_date]
        self.days = later or [notice]
        self.exported: list[tuple[str, list[int]]] = []
        self.upload_host = "rate.taobao.com"
        self.details = {
            "notice_date": notice.isoformat(),
            "termination_date": p.termination_date.isoformat(),
        }
        return True

    def day(self, world: World, day: date) -> None:
        p = self.people[0]
        if not self.active(p, day):
            return
        rng = world.rng
        others = [b for b in range(len(BRANCHES)) if b != p.branch]
        for _ in range(rng.randint(1, 3)):
            us = work_time(world, day, 9.5, 17.5)
            branch = rng.choice(others)
            clients = sorted(set(world.sample(world.branch_clients[branch], rng.randint(80, 500))))
            world.crm(us - 3 * MINUTE, p.login, p.ip, "search", clients[:20], "search")
            path = export_file(world, p, us, clients, "export")
            self.exported.append((path, clients))
        if rng.random() < 0.6:
            us = work_time(world, day, 16.0, 17.8)
            world.web(us - MINUTE, p, "pan.baidu.com", "/disk/upload")
            world.upload(us, p, self.upload_host, "/upload/image", rng.randint(1, 5) * 1024 * 1024)

    def finish(self, world: World) -> None:
        p = self.people[0]
        for path, clients in self.exported[-3:]:
            self.endpoint.append(world.endpoint_file(p, path, clients))
        everything = sorted({c for _, cs in self.exported for c in cs})
        if everything:
            sample = world.rng.sample(everything, min(len(everything), 2000))
            self.leaked.append(world.leaked_file("competitor_leads.csv", sample, 200))
        self.details["clients_exported"] = len(everything)


def _disable_after(world: World, person: Person) -> None:
    gone = person.termination_date
    if gone is None or gone >= world.company.end:
        return
    world.company.accounts = [
        Account(a.account, a.system, a.owner, a.kind, a.created, gone)
        if a.owner == person.employee_id and a.disabled is None
        else a
        for a in world.company.accounts
    ]


class LowAndSlow(Scenario):
    """A few times one's normal CRM reading, every day for weeks, with no spike."""

    kind = "low_and_slow"
    description = (
        "A sales person views 3-5x their usual number of client cards every working day for "
        "weeks, mostly clients outside their portfolio, never in a burst, and copies them into "
        "a spreadsheet."
    )

    def plan(self, ctx: Context) -> bool:
        self.days = ctx.window(0.1, 3, 0.9)
        candidates = ctx.free("sales", self.days[0], self.days[-1])
        if not candidates:
            return False
        p = ctx.rng.choice(candidates)
        ctx.taken.add(p.index)
        self.people, self.hosts, self.accounts = [p], [p.host], [p.login]
        self.factor = ctx.rng.uniform(3.0, 5.0)
        self.viewed: list[int] = []
        self.details = {"factor": round(self.factor, 2)}
        return True

    def day(self, world: World, day: date) -> None:
        p = self.people[0]
        if not self.active(p, day):
            return
        rng = world.rng
        extra = round(CRM_RATE["sales"] * p.activity * (self.factor - 1) * rng.uniform(0.8, 1.2))
        for _ in range(extra):
            us = work_time(world, day, p.arrive + 0.2, p.leave - 0.2)
            branch = rng.randrange(len(BRANCHES))
            (c,) = world.sample(world.branch_clients[branch], 1)
            world.crm(us, p.login, p.ip, "view", [c], "client card")
            self.viewed.append(c)
        if day.weekday() == 4:
            us = at(day, 17.2)
            path = world.user_path(p, "Documents", f"资料整理_{day:%m%d}.xlsx")
            world.process(us, p, p.fqdn, EXCEL)
            world.file_created(us + MINUTE, p, p.fqdn, EXCEL, path)

    def finish(self, world: World) -> None:
        p = self.people[0]
        if self.viewed:
            keep = sorted(set(self.viewed))
            path = world.user_path(p, "Documents", "资料整理.xlsx")
            self.endpoint.append(world.endpoint_file(p, path, keep[:3000]))
            sample = world.rng.sample(keep, min(len(keep), 800))
            self.leaked.append(world.leaked_file("complaint_scam_calls.csv", sample[:30], 5))
            self.leaked.append(world.leaked_file("forum_post_sample.xlsx", sample, 80))
        self.details["clients_viewed"] = len(set(self.viewed))


class PrivilegedDump(Scenario):
    """A DBA copies the client table at night from their own PC, then uploads it."""

    kind = "privileged_dump"
    description = (
        "A DBA runs COPY clients TO STDOUT at night from their own workstation instead of the "
        "jump host, saves the whole table to CSV and uploads it through a shopping site."
    )

    def plan(self, ctx: Context) -> bool:
        self.days = ctx.window(0.5, 1, 0.2)[:1]
        candidates = [p for p in ctx.free("dba", self.days[0], self.days[0]) if p.db_account]
        if not candidates:
            return False
        p = ctx.rng.choice(candidates)
        ctx.taken.add(p.index)
        assert p.db_account is not None
        self.people, self.hosts, self.accounts = [p], [p.host], [p.db_account]
        self.hour = ctx.rng.uniform(21.5, 23.0)
        self.upload_host = "im." + ctx.rng.choice(("jd.com", "vip.com", "tmall.com"))
        self.path = f"/chat/{ctx.rng.randint(10_000_000, 99_999_999)}/upload"
        self.details = {
            "local_hour": round(self.hour, 2),
            "upload_url": f"https://{self.upload_host}{self.path}",
        }
        return True

    def day(self, world: World, day: date) -> None:
        if day not in self.days:
            return
        p = self.people[0]
        assert p.db_account is not None
        start = at(day, self.hour)
        logon_id = world.logon(start, p, p.fqdn)
        world.process(
            start + MINUTE, p, p.fqdn, PSQL, f'"{PSQL}" -h crm-db01 -U {p.db_account} crm'
        )
        world.network(start + MINUTE + SECOND, p, p.fqdn, p.ip, PSQL, "db")
        n = world.clients.count
        copy = Statement(
            "COPY public.clients TO STDOUT WITH (FORMAT csv, HEADER)",
            command="COPY",
            object_type="",
            object_name="",
            rows=0,
            plan=None,
        )
        end = world.db_session(
            start + MINUTE + 2 * SECOND,
            p.db_account,
            p.ip,
            "psql",
            [(3 * SECOND, copy)],
            tail_us=max(5, n // 20_000) * SECOND,
        )
        path = world.user_path(p, "Documents", "clients_full.csv")
        world.file_created(end - SECOND, p, p.fqdn, PSQL, path)
        self.file = path
        world.process(end + 3 * MINUTE, p, p.fqdn, CHROME)
        done = world.upload(end + 5 * MINUTE, p, self.upload_host, self.path, n * 95 // 4)
        world.logoff(done + 2 * MINUTE, p, p.fqdn, logon_id)

    def finish(self, world: World) -> None:
        p = self.people[0]
        n = world.clients.count
        rows = list(range(min(n, 100_000)))
        self.endpoint.append(world.endpoint_file(p, self.file, rows))
        if n > len(rows):
            self.details["endpoint_file_truncated_to_rows"] = len(rows)
        sample = world.rng.sample(range(n), min(n, 5000))
        self.leaked.append(world.leaked_file("db_dump_sample.csv", sample, 500))


class CredentialSharing(Scenario):
    """One person's CRM account used from another person's workstation."""

    kind = "credential_sharing"
    description = (
        "A colleague's CRM login (a role that may read every client) is used from a sales "
        "person's workstation, to read clients outside the sales person's portfolio, partly "
        "while the account's owner is on leave."
    )

    def plan(self, ctx: Context) -> bool:
        self.days = ctx.window(0.3, 2, 0.35)
        owners = ctx.free("underwriter", self.days[0], self.days[-1]) + ctx.free(
            "claims", self.days[0], self.days[-1]
        )
        users = ctx.free("sales", self.days[0], self.days[-1])
        if not owners or not users:
            return False
        owner, user = ctx.rng.choice(owners), ctx.rng.choice(users)
        ctx.taken.update((owner.index, user.index))
        self.people = [user, owner]
        self.accounts, self.hosts = [owner.login], [user.host]
        away = self.days[: max(1, len(self.days) // 3)]
        owner.leave_days.update(away)
        self.details = {
            "account_owner": owner.employee_id,
            "used_by": user.employee_id,
            "owner_on_leave": [d.isoformat() for d in away],
        }
        return True

    def day(self, world: World, day: date) -> None:
        user, owner = self.people
        if not self.active(user, day):
            return
        rng = world.rng
        for _ in range(rng.randint(15, 45)):
            us = work_time(world, day, user.arrive + 0.3, user.leave - 0.3)
            if rng.random() < 0.8:
                world.crm(us, owner.login, user.ip, "view", world.any_clients(1), "client card")
            else:
                found = sorted(set(world.any_clients(rng.randint(5, 20))))
                world.crm(us, owner.login, user.ip, "search", found, "search")


# -- decoys ---------------------------------------------------------------------------


class CampaignWeek(Scenario):
    """A sales team reads more during a campaign week, inside its own portfolios."""

    kind = "campaign_week"
    decoy = True
    description = "A sales team calls its own clients for a product campaign for a week."
    why_benign = "the whole team reads more, inside their own portfolios, for one week"

    def plan(self, ctx: Context) -> bool:
        days = ctx.window(0.2, 1, 0.1)
        self.days = ctx.workdays[ctx.workdays.index(days[0]) :][:5]
        teams: dict[int, list[Person]] = {}
        for p in ctx.free("sales", self.days[0], self.days[-1]):
            teams.setdefault(p.team, []).append(p)
        if not teams:
            return False
        team = ctx.rng.choice(sorted(teams))
        self.people = teams[team]
        ctx.taken.update(p.index for p in self.people)
        self.hosts = [p.host for p in self.people]
        self.accounts = [p.login for p in self.people]
        factor = ctx.rng.uniform(2.0, 3.0)
        for p in self.people:
            for d in self.days:
                ctx.world.crm_boost[(p.index, d)] = factor
        self.details = {"team": team, "factor": round(factor, 2)}
        return True

    def day(self, world: World, day: date) -> None:
        if day != (self.days[0] if self.days else None):
            return
        for p in self.people:
            own = world.portfolio(p)
            if p.employed(day) and day not in p.leave_days and len(own):
                clients = sorted(set(world.sample(own, world.rng.randint(20, 60))))
                export_file(world, p, work_time(world, day, 9.5, 11.0), clients, "活动名单")


class NewHireRampUp(Scenario):
    """A new sales hire reads through an inherited portfolio in the first weeks."""

    kind = "new_hire_ramp_up"
    decoy = True
    description = "A new sales hire takes over a portfolio and reads through it."
    why_benign = "a new joiner with no history reads their own (inherited) portfolio"

    def plan(self, ctx: Context) -> bool:
        world = ctx.world
        hires = [
            p
            for p in world.company.people
            if p.role == "sales"
            and p.index not in ctx.taken
            and world.company.start < p.hire_date < world.company.end - timedelta(days=5)
            and len(world.portfolio(p))
        ]
        if not hires:
            return False
        p = ctx.rng.choice(hires)
        ctx.taken.add(p.index)
        self.people, self.hosts, self.accounts = [p], [p.host], [p.login]
        self.days = [d for d in ctx.workdays if p.hire_date <= d < p.hire_date + timedelta(days=21)]
        for d in self.days:
            world.crm_boost[(p.index, d)] = 3.0
        self.details = {"hire_date": p.hire_date.isoformat()}
        return bool(self.days)


class NightlyEtl(Scenario):
    """The nightly ETL job reads the whole client table (a service, every night)."""

    kind = "nightly_etl"
    decoy = True
    description = "The ETL service account reads every client through a cursor at 02:00."
    why_benign = "a documented service account, from the ETL server, at the same time every night"

    def plan(self, ctx: Context) -> bool:
        c = ctx.world.company
        self.days = [c.start + timedelta(days=i) for i in range((c.end - c.start).days)]
        self.accounts, self.hosts = [ETL_ACCOUNT], [SERVERS["etl"].hostname]
        return True


class AuditorReview(Scenario):
    """An internal auditor samples many clients for the quarterly review (entitled)."""

    kind = "auditor_review"
    decoy = True
    description = "An internal auditor reads and exports samples of clients of every branch."
    why_benign = "the audit role is entitled to read and export clients; a planned review"

    def plan(self, ctx: Context) -> bool:
        days = ctx.window(0.4, 1, 0.1)
        self.days = ctx.workdays[ctx.workdays.index(days[0]) :][: ctx.rng.randint(3, 4)]
        candidates = ctx.free("audit", self.days[0], self.days[-1])
        if not candidates:
            return False
        p = ctx.rng.choice(candidates)
        ctx.taken.add(p.index)
        self.people, self.hosts, self.accounts = [p], [p.host], [p.login]
        return True

    def day(self, world: World, day: date) -> None:
        p = self.people[0]
        if not self.active(p, day):
            return
        rng = world.rng
        for _ in range(rng.randint(150, 400)):
            world.crm(
                work_time(world, day, 9.0, 17.5),
                p.login,
                p.ip,
                "view",
                world.any_clients(1),
                "audit sample",
            )
        for _ in range(rng.randint(1, 2)):
            clients = sorted(set(world.any_clients(rng.randint(100, 300))))
            export_file(world, p, work_time(world, day, 9.0, 17.5), clients, "审计抽样")


class OwnClientList(Scenario):
    """A sales person exports a short list of their own clients."""

    kind = "own_client_list"
    decoy = True
    description = "A sales person exports 30-80 of their own clients to plan visits."
    why_benign = "a short list, only the person's own portfolio, kept on their own PC"

    def plan(self, ctx: Context) -> bool:
        self.days = ctx.window(0.3, 1, 0.5)[:1]
        candidates = [
            p
            for p in ctx.free("sales", self.days[0], self.days[0])
            if len(ctx.world.portfolio(p)) >= 30
        ]
        if not candidates:
            return False
        p = ctx.rng.choice(candidates)
        ctx.taken.add(p.index)
        self.people, self.hosts, self.accounts = [p], [p.host], [p.login]
        self.file: tuple[str, list[int]] | None = None
        return True

    def day(self, world: World, day: date) -> None:
        p = self.people[0]
        if day not in self.days or not p.employed(day):
            return
        own = world.portfolio(p)
        clients = sorted({int(c) for c in own[: world.rng.randint(30, 80)]})
        path = export_file(world, p, work_time(world, day, 9.5, 11.5), clients, "拜访计划")
        self.file = (path, clients)

    def finish(self, world: World) -> None:
        if self.file is not None:
            self.details["endpoint_file"] = world.endpoint_file(self.people[0], *self.file)


class _Afterwards(Scenario):
    """A look-alike found after the run among ordinary people (what they did is
    ordinary behaviour; the decoy only names them)."""

    decoy = True

    def plan(self, ctx: Context) -> bool:
        self.taken = ctx.taken
        return True

    def name(self, world: World, people: list[Person]) -> None:
        self.people = people
        self.taken.update(p.index for p in people)
        self.hosts = [p.host for p in people]
        self.accounts = [p.login for p in people]
        days = set().union(*(world.shop_upload_days.get(p.index, set()) for p in people))
        self.days = sorted(days)


class ShopChatUploaders(_Afterwards):
    """The heaviest legitimate senders of photos and documents to shops' chats."""

    kind = "shop_chat_uploaders"
    description = (
        "The staff who sent the most megabytes of photos and documents to shops' "
        "customer-service chats (lunch-time shopping)."
    )
    why_benign = (
        "ordinary shopping: multipart uploads to shop chats spread over many days, with no "
        "client data read beyond their work"
    )

    def finish(self, world: World) -> None:
        sent: dict[int, int] = {}
        for (person, _shop), size in world.shop_uploads.items():
            if person not in self.taken:
                sent[person] = sent.get(person, 0) + size
        top = sorted(sent, key=lambda i: (-sent[i], i))[:3]
        self.name(world, [world.company.people[i] for i in top])
        self.details = {"bytes": {world.company.people[i].employee_id: sent[i] for i in top}}


class PopularShop(_Afterwards):
    """Many colleagues posting photos to the same popular shop's chat."""

    kind = "popular_shop"
    description = "Colleagues who send photos and documents to the company's most popular shop."
    why_benign = (
        "a shop half the office buys from: many people, each with their own ordinary "
        "shopping, posting to one shop's chat endpoint"
    )

    def finish(self, world: World) -> None:
        users: dict[int, dict[int, int]] = {}
        for (person, shop), size in world.shop_uploads.items():
            users.setdefault(shop, {})[person] = size
        if not users:
            return
        top = max(users, key=lambda k: (len(users[k]), -k))
        ordinary = [i for i in users[top] if i not in self.taken]
        heavy = sorted(ordinary, key=lambda i: (-users[top][i], i))[:12]
        self.name(world, [world.company.people[i] for i in sorted(heavy)])
        chat = world.habits.shops[top]
        self.details = {
            "endpoint": f"{chat.host}{chat.upload_path}",
            "uploaders": len(users[top]),
        }


#: Planted insider scenarios, by the name ``--scenarios`` takes.
SCENARIOS: dict[str, type[Scenario]] = {
    "borrowed_account_ring": BorrowedAccountRing,
    "departing_employee": DepartingEmployee,
    "low_and_slow": LowAndSlow,
    "privileged_dump": PrivilegedDump,
    "credential_sharing": CredentialSharing,
}

#: Benign look-alikes, always planted (detection must stay quiet on them).
DECOYS: dict[str, type[Scenario]] = {
    "campaign_week": CampaignWeek,
    "new_hire_ramp_up": NewHireRampUp,
    "nightly_etl": NightlyEtl,
    "auditor_review": AuditorReview,
    "own_client_list": OwnClientList,
    "shop_chat_uploaders": ShopChatUploaders,
    "popular_shop": PopularShop,
}

__all__ = ["DECOYS", "SCENARIOS", "Context", "Scenario", "np"]
