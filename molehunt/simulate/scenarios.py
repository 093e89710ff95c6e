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

from molehunt.simulate.clients import client_id
from molehunt.simulate.company import ETL_ACCOUNT, SERVERS, Account, Person
from molehunt.simulate.habits import CLOUD_HOSTS, MB, WEBMAIL_HOSTS
from molehunt.simulate.normal import CRM_RATE, analyst_extract, export_file, work_time
from molehunt.simulate.workforce import SERVICE_DESK_ACCOUNT
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
from molehunt.synthetic import BRANCHES

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
        workforce = self.world.habits.workforce
        irregular = set(workforce.night_people) | set(workforce.hot_desk_people)
        irregular |= {i for _day, i, _dept in workforce.transfers}
        return [
            p
            for p in self.world.company.people
            if p.role == role
            and p.index not in self.taken
            and p.index not in irregular
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
        # Days someone of the scenario was at work to act (not on leave): the case
        # starts on the first of them, not on a planned day its actor spent away.
        self.acted: set[date] = set()

    def plan(self, ctx: Context) -> bool:
        raise NotImplementedError

    def day(self, world: World, day: date) -> None:
        """Act on ``day`` (called for every day of the period)."""

    def finish(self, world: World) -> None:
        """Leave the files this scenario left on endpoints and outside."""

    def active(self, person: Person, day: date) -> bool:
        at_work = day in self.days and person.employed(day) and day not in person.leave_days
        if at_work:
            self.acted.add(day)
        return at_work

    def truth(self, number: int) -> dict[str, Any]:
        base: dict[str, Any] = {
            "id": f"{self.kind}-{number}",
            "kind": self.kind,
            "start_day": min(self.acted or self.days).isoformat() if self.days else None,
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
            base["planned_start_day"] = self.days[0].isoformat() if self.days else None
            base["leaked_files"] = self.leaked
            base["endpoint_files"] = self.endpoint
        return base


def _upload_host(shop: str) -> str:
    return "im." + shop


#: Seeds whose scenarios keep the founding case's shape (the demo's default seed): a
#: ring on a departed person's database account with DBeaver/Navicat, sending Excel
#: files to one shop's chat. Every other seed draws the scenarios' variants.
FOUNDING_SEEDS = frozenset({7})

#: Borrowed-account tools: (image, application_name); "crm-app" is the CRM itself.
RING_TOOLS: dict[str, tuple[str, str]] = {
    "dbeaver": (DBEAVER, DBEAVER_APP),
    "navicat": (NAVICAT, ""),
    "psql": (PSQL, "psql"),
    "excel-odbc": (EXCEL, ""),
}
#: Allowed hosts a tunnel goes to (Squid does not bump them: host and bytes only).
TUNNEL_HOSTS = ("upload.vip.com", "static.jd.com", "g.alicdn.com")


@dataclass(frozen=True, slots=True)
class Exfil:
    """How a scenario sends files out: a shop's chat, webmail, a cloud drive, a tunnel."""

    channel: str
    host: str
    path: str = ""

    @property
    def url(self) -> str:
        return f"{self.host}:443" if self.channel == "tunnel" else f"https://{self.host}{self.path}"


def draw_exfil(ctx: Context, founding: bool, shop_chat: Exfil) -> Exfil:
    """A channel this company's policy lets through (the shop chat in the founding case)."""
    policy = ctx.world.habits.policy
    options = ["shop_chat", "shop_chat", "tunnel"]
    options += ["webmail"] if policy.get("webmail") else []
    options += ["cloud"] if policy.get("cloud-storage") else []
    channel = "shop_chat" if founding else ctx.rng.choice(options)
    if channel == "webmail":
        host = ctx.rng.choice(WEBMAIL_HOSTS)
        return Exfil("webmail", host, f"/js6/upload?sid={ctx.rng.getrandbits(64):016x}")
    if channel == "cloud":
        host, path = ctx.rng.choice(CLOUD_HOSTS)
        return Exfil("cloud", host, path.format(id=ctx.rng.getrandbits(40)))
    if channel == "tunnel":
        return Exfil("tunnel", ctx.rng.choice(TUNNEL_HOSTS))
    return shop_chat


def exfiltrate(world: World, person: Person, us: int, size: int, how: Exfil) -> int:
    """Send ``size`` bytes out through ``how``; returns when it was done."""
    if how.channel == "tunnel":
        ms = max(500, size // 400)
        world.logs.squid.tunnel(
            us, person.ip, person.login, how.host, size, world.rng.randint(3_000, 40_000), ms
        )
        return us + ms * 1000
    chunk = {"cloud": 4 * MB, "webmail": 0}.get(how.channel, 2 * MB)
    return world.upload(us, person, how.host, how.path, size, chunk)


class BorrowedAccountRing(Scenario):
    """Sales people read clients with a departed colleague's account that nobody disabled."""

    kind = "borrowed_account_ring"
    description = (
        "Sales people with no database access use a departed employee's still-enabled account "
        "(the database through a desktop SQL client, psql or Excel, or the CRM itself) from "
        "their own PCs, read hundreds to thousands of client rows a day in client-id order, "
        "save them to Excel and send them out (one shop's customer-service chat in the "
        "founding case; webmail, a cloud drive or a tunnel in other companies)."
    )

    def plan(self, ctx: Context) -> bool:
        world = ctx.world
        founding = world.seed in FOUNDING_SEEDS
        start = world.company.start
        borrowed = [
            a
            for a in world.company.accounts
            if a.system in ("crm-db", "crm-app")
            and a.kind == "human"
            and a.disabled is None
            and _owner_gone(world, a, start)
        ]
        db = [a for a in borrowed if a.system == "crm-db"]
        app = [a for a in borrowed if a.system == "crm-app"]
        tools = ["dbeaver-navicat", "dbeaver-navicat", "psql", "excel-odbc", "navicat"]
        tools += ["crm-app"] if app else []
        tool = "dbeaver-navicat" if founding or not db else ctx.rng.choice(tools)
        self.pace = "fast" if founding or ctx.rng.random() < 0.6 else "slow"
        if self.pace == "slow":
            self.days = ctx.window(0.05, 3, 0.95)
            self.per_day = ctx.rng.randint(150, 800)
        else:
            self.days = ctx.window(0.15, 3, 0.8)
            self.per_day = ctx.rng.randint(1500, 4000)
        members = ctx.free("sales", self.days[0], self.days[-1])
        pool = app if tool == "crm-app" else db
        if not pool or len(members) < 2:
            return False
        account = ctx.rng.choice(pool)
        size = min(len(members), ctx.rng.choice((2, 2, 3) if founding else (2, 2, 3, 4)))
        self.people = ctx.rng.sample(members, size)
        ctx.taken.update(p.index for p in self.people)
        self.accounts = [account.account]
        self.hosts = [p.host for p in self.people]
        shop = ctx.rng.choice(("taobao.com", "tmall.com", "jd.com"))
        chat = f"/chat/{ctx.rng.randint(10_000_000, 99_999_999)}/upload"
        self.exfil = draw_exfil(ctx, founding, Exfil("shop_chat", _upload_host(shop), chat))
        n = world.clients.count
        self.cursor = {p.index: ctx.rng.randrange(n) for p in self.people}
        self.read: dict[int, list[tuple[int, int]]] = {p.index: [] for p in self.people}
        self.saved: dict[int, list[tuple[str, list[int]]]] = {p.index: [] for p in self.people}
        self.tool = tool
        self.tools = {
            p.index: RING_TOOLS[
                ("dbeaver" if i % 2 == 0 else "navicat") if tool == "dbeaver-navicat" else tool
            ]
            for i, p in enumerate(self.people)
            if tool != "crm-app"
        }
        self.details = {
            "borrowed_account_owner": account.owner,
            "borrowed_account_system": account.system,
            "upload_url": self.exfil.url,
            "channel": self.exfil.channel,
            "tool": tool,
            "pace": self.pace,
            "rows_per_day": self.per_day,
        }
        return True

    def _ranges(self, world: World, p: Person, smallest: int, largest: int) -> list[range]:
        """Today's reads: consecutive client-id ranges from where this person stopped."""
        rng, n = world.rng, world.clients.count
        left = int(self.per_day * rng.uniform(0.6, 1.4))
        out = []
        while left > 0:
            size = min(left, rng.randint(smallest, largest))
            lo = self.cursor[p.index] % n
            hi = min(n - 1, lo + size - 1)
            out.append(range(lo, hi + 1))
            self.read[p.index].append((lo, hi))
            self.cursor[p.index] = (hi + 1) % n
            left -= hi - lo + 1
        return out

    def day(self, world: World, day: date) -> None:
        rng = world.rng
        for p in self.people:
            if not self.active(p, day):
                continue
            start = work_time(world, day, 13.5, 17.0)
            rows_today: list[int] = []
            if self.tool == "crm-app":
                # The departed person's CRM login: page after page of search results.
                us = start
                for r in self._ranges(world, p, 50, 200):
                    world.crm(us, self.accounts[0], p.ip, "search", list(r), "search")
                    rows_today.extend(r)
                    us += rng.randint(20, 180) * SECOND
                end = us
            else:
                image, app = self.tools[p.index]
                world.process(start, p, p.fqdn, image)
                world.network(start + 5 * SECOND, p, p.fqdn, p.ip, image, "db")
                statements: list[tuple[int, Statement]] = []
                offset = 10 * SECOND
                for r in self._ranges(world, p, 300, 1500):
                    text = (
                        f"SELECT {CLIENT_COLUMNS} FROM clients WHERE client_id BETWEEN "
                        f"'{client_id(r[0])}' AND '{client_id(r[-1])}' ORDER BY client_id"
                    )
                    stmt = Statement(
                        text, rows=len(r), plan="Index Scan", duration_ms=len(r) * 0.01
                    )
                    statements.append((offset, stmt))
                    rows_today.extend(r)
                    offset += rng.randint(40, 400) * SECOND
                end = world.db_session(start + 8 * SECOND, self.accounts[0], p.ip, app, statements)
            path = world.user_path(p, "Documents", f"客户资料_{day:%m%d}.xlsx")
            world.process(end + 20 * SECOND, p, p.fqdn, EXCEL)
            world.file_created(end + 50 * SECOND, p, p.fqdn, EXCEL, path)
            self.saved[p.index].append((path, rows_today))
            size = len(rows_today) * rng.randint(110, 160) + rng.randint(0, 400_000)
            exfiltrate(world, p, end + rng.randint(5, 40) * MINUTE, size, self.exfil)

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
        "CRM almost daily and sends files out in the last weeks (a shopping site's review "
        "upload in the founding case; webmail, a cloud drive or a tunnel elsewhere)."
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
        founding = world.seed in FOUNDING_SEEDS
        review = Exfil("shop_review", "rate.taobao.com", "/upload/image")
        self.exfil = draw_exfil(ctx, founding, review)
        self.details = {
            "notice_date": notice.isoformat(),
            "termination_date": p.termination_date.isoformat(),
            "channel": self.exfil.channel,
            "upload_url": self.exfil.url,
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
            if self.exfil.channel == "shop_review":
                world.web(us - MINUTE, p, "pan.baidu.com", "/disk/upload")
            exfiltrate(world, p, us, rng.randint(1, 5) * MB, self.exfil)

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
        founding = ctx.world.seed in FOUNDING_SEEDS
        self.factor = ctx.rng.uniform(3.0, 5.0) if founding else ctx.rng.uniform(2.5, 5.0)
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
        "jump host, saves the whole table to CSV and sends it out (a shop's chat, webmail, a "
        "cloud drive or a tunnel)."
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
        founding = ctx.world.seed in FOUNDING_SEEDS
        self.hour = ctx.rng.uniform(21.5, 23.0) if founding else ctx.rng.uniform(20.5, 23.8)
        host = "im." + ctx.rng.choice(("jd.com", "vip.com", "tmall.com"))
        chat = Exfil("shop_chat", host, f"/chat/{ctx.rng.randint(10_000_000, 99_999_999)}/upload")
        self.exfil = draw_exfil(ctx, founding, chat)
        self.details = {
            "local_hour": round(self.hour, 2),
            "upload_url": self.exfil.url,
            "channel": self.exfil.channel,
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
        done = exfiltrate(world, p, end + 5 * MINUTE, n * 95 // 4, self.exfil)
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

    def name(self, world: World, people: list[Person], channel: str = "") -> None:
        self.people = people
        self.taken.update(p.index for p in people)
        self.hosts = [p.host for p in people]
        self.accounts = [p.login for p in people]
        seen = world.channel_days.get(channel, {}) if channel else world.shop_upload_days
        self.days = sorted(set().union(*(seen.get(p.index, set()) for p in people)))


class _HeaviestSenders(_Afterwards):
    """The people who sent the most through one ordinary channel."""

    channel: ClassVar[str]
    count: ClassVar[int] = 3

    def finish(self, world: World) -> None:
        sent = {
            i: n
            for i, n in world.channel_bytes.get(self.channel, {}).items()
            if i not in self.taken
        }
        top = sorted(sent, key=lambda i: (-sent[i], i))[: self.count]
        self.name(world, [world.company.people[i] for i in top], self.channel)
        self.details = {
            "channel": self.channel,
            "senders": len(world.channel_bytes.get(self.channel, {})),
            "bytes": {world.company.people[i].employee_id: sent[i] for i in top},
        }


class WebmailSenders(_HeaviestSenders):
    """The heaviest senders of webmail attachments (where the policy allows webmail)."""

    kind = "webmail_senders"
    channel = "webmail"
    description = "The staff who sent the most webmail attachments (webmail is allowed here)."
    why_benign = "webmail is an allowed channel in this company; ordinary mail with attachments"


class CloudDriveUsers(_HeaviestSenders):
    """The heaviest uploaders of a team that keeps its files on a cloud drive."""

    kind = "cloud_drive_users"
    channel = "cloud_drive"
    description = "Members of a team that keeps its working files on an allowed cloud drive."
    why_benign = "the company allows the cloud drive and this team works from it every week"


class PartnerPortalUploaders(_HeaviestSenders):
    """Claims adjusters and underwriters sending the most documents to partners."""

    kind = "partner_portal_uploaders"
    channel = "partner_portal"
    description = "Claims and underwriting staff who upload the most documents to partner portals."
    why_benign = "claim files and risk documents go to the partners' portals as part of the job"


class ExpensePortalUsers(_HeaviestSenders):
    """People filing the most receipts on the expense portal half the company uses."""

    kind = "expense_portal_users"
    channel = "expense_portal"
    count = 5
    description = "Staff who file the most receipt photos on the travel and expense portal."
    why_benign = "a portal a large part of the company posts receipts to: many people, one endpoint"


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
        cap = min(12, max(3, len(world.staff) // 25))
        heavy = sorted(ordinary, key=lambda i: (-users[top][i], i))[:cap]
        self.name(world, [world.company.people[i] for i in sorted(heavy)])
        chat = world.habits.shops[top]
        self.details = {
            "endpoint": f"{chat.host}{chat.upload_path}",
            "uploaders": len(users[top]),
        }


class _Workforce(Scenario):
    """A look-alike of how this company works (drawn with its habits)."""

    decoy = True
    cap: ClassVar[int] = 8

    def chosen(self, ctx: Context) -> list[int]:
        raise NotImplementedError

    def plan(self, ctx: Context) -> bool:
        company = ctx.world.company
        picked = [i for i in self.chosen(ctx) if i not in ctx.taken][: self.cap]
        self.people = [company.people[i] for i in picked]
        ctx.taken.update(picked)
        self.hosts = [p.host for p in self.people]
        self.accounts = [p.login for p in self.people]
        self.days = list(ctx.workdays)
        return bool(self.people)


class AnalystCampaignList(Scenario):
    """An analyst extracts a large campaign list and keeps it as a workbook."""

    kind = "analyst_campaign_list"
    decoy = True
    description = (
        "A data analyst queries the client database from their own PC for a product "
        "campaign (tens of thousands of rows) and saves the list as a workbook."
    )
    why_benign = (
        "analysts are entitled to read the client table directly; a campaign list ordered by "
        "marketing, on the analyst's own PC, in working hours"
    )

    def plan(self, ctx: Context) -> bool:
        self.days = ctx.window(0.2, 1, 0.6)[:1]
        candidates = [p for p in ctx.free("analyst", self.days[0], self.days[0]) if p.db_account]
        if not candidates:
            return False
        p = ctx.rng.choice(candidates)
        ctx.taken.add(p.index)
        assert p.db_account is not None
        self.people, self.hosts, self.accounts = [p], [p.host], [p.login, p.db_account]
        n = ctx.world.clients.count
        self.rows = min(n, ctx.rng.randint(20_000, 100_000))
        self.file: tuple[str, list[int]] | None = None
        self.details = {"rows": self.rows}
        return True

    def day(self, world: World, day: date) -> None:
        p = self.people[0]
        if day not in self.days or not p.employed(day):
            return
        us = work_time(world, day, 9.5, 16.0)
        path = analyst_extract(world, p, us, self.rows, "营销名单")
        branch = world.branch_clients[world.rng.randrange(len(world.branch_clients))]
        self.file = (path, sorted(set(world.sample(branch, min(self.rows, 5_000)))))

    def finish(self, world: World) -> None:
        if self.file is not None:
            self.details["endpoint_file"] = world.endpoint_file(self.people[0], *self.file)


class Transfers(_Workforce):
    """People who moved to another department (and role) in the period."""

    kind = "transfers"
    description = "Staff transferred to another department mid-period (a new HR version)."
    why_benign = "a documented move: HR shows the new role from the day of the transfer"

    def chosen(self, ctx: Context) -> list[int]:
        return [i for _day, i, _dept in ctx.world.habits.workforce.transfers]

    def plan(self, ctx: Context) -> bool:
        ok = super().plan(ctx)
        moves = {i: (d, dept) for d, i, dept in ctx.world.habits.workforce.transfers}
        self.details = {
            p.employee_id: {"day": moves[p.index][0].isoformat(), "to": moves[p.index][1].role}
            for p in self.people
        }
        return ok


class NightShift(_Workforce):
    """A team that works 20:00-08:00 (reads clients at night, from its own PCs)."""

    kind = "night_shift"
    description = "A customer-service or claims team working 20:00-08:00 every working day."
    why_benign = "their shift: the night hours are their normal hours, in their own role"

    def chosen(self, ctx: Context) -> list[int]:
        return ctx.world.habits.workforce.night_people


class AnalystReports(_Workforce):
    """Analysts who read many rows for reports, more at month- and quarter-end."""

    kind = "analyst_reports"
    cap = 5
    description = "Data analysts run large report queries from their PCs, more at month-end."
    why_benign = "entitled direct database readers; the peaks follow the reporting calendar"

    def chosen(self, ctx: Context) -> list[int]:
        return [
            p.index
            for p in ctx.world.company.people
            if p.role == "analyst" and p.host and p.db_account
        ]

    def plan(self, ctx: Context) -> bool:
        ok = super().plan(ctx)
        self.accounts += [p.db_account for p in self.people if p.db_account]
        return ok


class HotDesks(_Workforce):
    """People who sit at shared desks, two of them on one PC on some days."""

    kind = "hot_desks"
    description = "Sales and service staff on hot desks: several people on one PC in a day."
    why_benign = "the desks are shared by design; each person uses their own login there"

    def chosen(self, ctx: Context) -> list[int]:
        self.hosts_used = [h for h, _ip in ctx.world.habits.workforce.hot_desks]
        return ctx.world.habits.workforce.hot_desk_people

    def plan(self, ctx: Context) -> bool:
        ok = super().plan(ctx)
        self.hosts = self.hosts_used
        return ok


class SharedServiceDesk(_Workforce):
    """A shared CRM login of the service desk, known and entitled, used by several agents."""

    kind = "shared_service_desk"
    description = "Several service agents use the service desk's shared CRM login from their PCs."
    why_benign = "a documented shared account (kind shared), owned by the desk's lead, CS role"

    def chosen(self, ctx: Context) -> list[int]:
        return sorted(ctx.world.habits.workforce.desk_users)

    def plan(self, ctx: Context) -> bool:
        ok = super().plan(ctx)
        self.accounts = [SERVICE_DESK_ACCOUNT]
        self.details = {"owner": ctx.world.habits.workforce.desk_owner}
        return ok


class ItSupport(_Workforce):
    """IT engineers who log on to many colleagues' PCs every day."""

    kind = "it_support"
    cap = 5
    description = "IT engineers log on to colleagues' workstations (RDP, network logons)."
    why_benign = "desktop support: their job is to log on to other people's PCs"

    def chosen(self, ctx: Context) -> list[int]:
        if ctx.world.habits.workforce.it_visits < 1:
            return []
        return [
            p.index
            for p in ctx.world.company.people
            if p.role == "it" and p.host and p.title != "Department Head"
        ]


class HomeWorkers(_Workforce):
    """People who work from home through the VPN most often."""

    kind = "vpn_home_workers"
    cap = 5
    description = "Staff working from home through the VPN on some days."
    why_benign = "home working through the company VPN: another address, the same person"

    def chosen(self, ctx: Context) -> list[int]:
        vpn = ctx.world.habits.workforce.vpn_people
        return sorted(vpn, key=lambda i: (-vpn[i], i))


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
    "analyst_campaign_list": AnalystCampaignList,
    "analyst_reports": AnalystReports,
    "transfers": Transfers,
    "night_shift": NightShift,
    "hot_desks": HotDesks,
    "shared_service_desk": SharedServiceDesk,
    "it_support": ItSupport,
    "vpn_home_workers": HomeWorkers,
    "shop_chat_uploaders": ShopChatUploaders,
    "popular_shop": PopularShop,
    "webmail_senders": WebmailSenders,
    "cloud_drive_users": CloudDriveUsers,
    "partner_portal_uploaders": PartnerPortalUploaders,
    "expense_portal_users": ExpensePortalUsers,
}

__all__ = ["DECOYS", "SCENARIOS", "Context", "Scenario", "np"]
