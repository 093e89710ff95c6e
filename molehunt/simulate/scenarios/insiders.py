"""The planted insider scenarios, their ways of sending files out, and the
:data:`SCENARIOS` registry (the names ``--scenarios`` takes)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from molehunt.simulate.clients import client_id
from molehunt.simulate.company import Account, Person
from molehunt.simulate.habits import CLOUD_HOSTS, MB, WEBMAIL_HOSTS
from molehunt.simulate.normal import CRM_RATE, export_file, work_time
from molehunt.simulate.scenarios.base import Context, Scenario
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
            # Within the member's session: the reads, the workbook and the upload.
            start = work_time(world, day, *p.within_day(13.5, 17.0, margin=1.5))
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
            us = work_time(world, day, *p.within_day(9.5, 17.5))
            branch = rng.choice(others)
            clients = sorted(set(world.sample(world.branch_clients[branch], rng.randint(80, 500))))
            world.crm(us - 3 * MINUTE, p.login, p.ip, "search", clients[:20], "search")
            path = export_file(world, p, us, clients, "export")
            self.exported.append((path, clients))
        if rng.random() < 0.6:
            us = work_time(world, day, *p.within_day(16.0, 17.8))
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


#: Planted insider scenarios, by the name ``--scenarios`` takes.
SCENARIOS: dict[str, type[Scenario]] = {
    "borrowed_account_ring": BorrowedAccountRing,
    "departing_employee": DepartingEmployee,
    "low_and_slow": LowAndSlow,
    "privileged_dump": PrivilegedDump,
    "credential_sharing": CredentialSharing,
}
