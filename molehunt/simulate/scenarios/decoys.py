"""The benign look-alikes, always planted so that detection is seen to stay quiet on
them, and the :data:`DECOYS` registry."""

from __future__ import annotations

from datetime import date, timedelta
from typing import ClassVar

from molehunt.simulate.company import ETL_ACCOUNT, SERVERS, Person
from molehunt.simulate.normal import analyst_extract, export_file, work_time
from molehunt.simulate.scenarios.base import Context, Scenario
from molehunt.simulate.workforce import SERVICE_DESK_ACCOUNT
from molehunt.simulate.world import World


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
