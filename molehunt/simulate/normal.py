"""What people do on an ordinary working day, and what the machines do every night.

Rates are per person (``Person.activity``) and per role; the day has a rhythm
(arrival, a lunch dip, leaving), and scenarios can raise a person's CRM use on a
day through ``World.crm_boost``.
"""

from __future__ import annotations

import math
from datetime import date

from molehunt.simulate.clients import client_id
from molehunt.simulate.company import ETL_ACCOUNT, SERVERS, Person
from molehunt.simulate.habits import CLOUD_HOSTS, MB, PORTALS, Habits
from molehunt.simulate.workforce import SERVICE_DESK_ACCOUNT, vpn_address
from molehunt.simulate.world import (
    CHROME,
    DBEAVER,
    DBEAVER_APP,
    EXCEL,
    MULTIPART,
    NAVICAT,
    PSQL,
    WORD,
    World,
    at,
)
from molehunt.simulate.writers import MINUTE, SECOND, Statement
from molehunt.synthetic import BRANCHES, PRODUCTS

#: Mean CRM actions a day by role.
CRM_RATE: dict[str, float] = {
    "sales": 22.0,
    "cs": 30.0,
    "underwriter": 14.0,
    "claims": 14.0,
    "manager": 5.0,
    "audit": 2.0,
    "analyst": 6.0,
}
SUPPORT_TOOLS = (
    r"C:\Windows\System32\mmc.exe",
    r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe",
    r"C:\Windows\System32\cmd.exe",
)
ACTIVITY_QUERY = "SELECT pid, usename, application_name, client_addr, state FROM pg_stat_activity"
COMPANY_SITES = ("oa.example-insure.cn", "portal.example-insure.cn", "wiki.example-insure.cn")
SHOPS = ("www.taobao.com", "www.jd.com", "www.tmall.com", "mobile.yangkeduo.com", "www.vip.com")
BLOCKED = (
    "weibo.com",
    "www.bilibili.com",
    "www.douyin.com",
    "news.sina.com.cn",
    "mail.163.com",
    "pan.baidu.com",
    "www.baidu.com",
    "www.zhihu.com",
)


def poisson(world: World, mean: float) -> int:
    """A Poisson draw from the world's stream (normal approximation when large)."""
    rng = world.rng
    if mean <= 0:
        return 0
    if mean > 40:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def work_time(world: World, day: date, arrive: float, leave: float) -> int:
    """A moment of the working day, less likely at lunch."""
    rng = world.rng
    while True:
        h = rng.uniform(arrive + 0.1, leave - 0.05)
        if not 12.0 <= h < 13.0 or rng.random() < 0.3:
            return at(day, h)


def person_day(world: World, person: Person, day: date) -> None:
    """One working day: logon, the CRM, the web, office files, the role's own work.

    On a hot-desk day the person works from that desk (its host and address), half a
    day when two people share it; on a home day through the VPN (a VPN address on
    their laptop, or RDP to their own PC, as this company does it)."""
    rng = world.rng
    workforce = world.habits.workforce
    arrive = person.arrive + rng.gauss(0, 0.2)
    leave = max(arrive + 6, person.leave + rng.gauss(0, 0.35))
    own_host, own_ip = person.host, person.ip
    logon_type, source = 2, ""
    seat = world.seats.get(person.index)
    if seat is not None:
        person.host, person.ip, half = seat
        if half == 1:
            leave = min(leave, 12.4)
        elif half == 2:
            arrive = max(arrive, 13.1)
    elif person.index in workforce.vpn_people and rng.random() < workforce.vpn_people[person.index]:
        if workforce.vpn_style == "laptop":
            person.ip = vpn_address(person, day)
        else:
            logon_type, source = 10, vpn_address(person, day)
    person.today = (arrive, leave)
    try:
        computer = person.fqdn
        logon_id = world.logon(at(day, arrive), person, computer, logon_type, source)
        world.process(at(day, arrive) + 40 * SECOND, person, computer, CHROME)
        _crm_use(world, person, day, arrive, leave)
        _browse(world, person, day, arrive, leave)
        _office_files(world, person, day, arrive, leave)
        if person.role == "dba":
            dba_work(world, person, day, arrive, leave)
        elif person.role == "it":
            it_support(world, person, day, arrive, leave)
        elif person.role == "analyst" and person.db_account:
            rows = world.habits.analyst_rows_median
            chance = world.habits.analyst_extract_chance * world.habits.workforce.peak(
                day, "analyst"
            )
            if rng.random() < chance:
                n = int(min(world.clients.count, rng.lognormvariate(math.log(rows), 0.8)))
                analyst_extract(world, person, work_time(world, day, arrive, leave), n, "月报")
        world.logoff(at(day, leave), person, computer, logon_id, logon_type)
    finally:
        person.host, person.ip = own_host, own_ip


#: (image, application_name) of each way analysts reach the database.
ANALYST_CLIENTS: dict[str, tuple[str, str]] = {
    "dbeaver": (DBEAVER, DBEAVER_APP),
    "excel-odbc": (EXCEL, ""),
    "psql": (PSQL, "psql"),
    "navicat": (NAVICAT, ""),
}


def analyst_extract(world: World, person: Person, us: int, rows: int, stem: str) -> str:
    """An analyst's report or campaign list: a direct query from their own PC with the
    company's tool, a few aggregates, one large extract, saved as a workbook."""
    rng = world.rng
    assert person.db_account is not None
    tool = world.habits.analyst_tools[person.index % len(world.habits.analyst_tools)]
    image, app = ANALYST_CLIENTS[tool]
    world.process(us, person, person.fqdn, image)
    world.network(us + 4 * SECOND, person, person.fqdn, person.ip, image, "db")
    branch = rng.randrange(len(BRANCHES))
    product = rng.choice(PRODUCTS)
    statements = [
        (
            5 * SECOND,
            Statement(
                "SELECT branch, product, count(*) FROM clients GROUP BY branch, product",
                rows=len(BRANCHES) * len(PRODUCTS),
                plan="Aggregate",
                duration_ms=world.clients.count / 15_000,
            ),
        ),
        (
            rng.randint(60, 900) * SECOND,
            Statement(
                "SELECT client_id, name, mobile, city, product FROM clients "
                f"WHERE branch = '{BRANCHES[branch][0]}' AND product = '{product}'",
                rows=rows,
                plan="Seq Scan",
                duration_ms=world.clients.count / 5_000,
            ),
        ),
    ]
    end = world.db_session(us + 5 * SECOND, person.db_account, person.ip, app, statements)
    path = world.user_path(person, "Documents", f"{stem}_{end // SECOND % 1_000_000}.xlsx")
    world.process(end + 30 * SECOND, person, person.fqdn, EXCEL)
    world.file_created(end + 90 * SECOND, person, person.fqdn, EXCEL, path)
    return path


def it_support(world: World, person: Person, day: date, arrive: float, leave: float) -> None:
    """An IT engineer logs on to colleagues' PCs to fix things (RDP or a network logon)."""
    rng = world.rng
    staff = world.staff
    for _ in range(poisson(world, world.habits.workforce.it_visits)):
        target = staff[rng.randrange(len(staff))]
        if target.index == person.index:
            continue
        us = work_time(world, day, arrive, max(arrive + 0.5, leave - 0.7))
        kind = rng.choice((3, 10, 10))
        logon_id = world.logon(us, person, target.fqdn, kind, person.ip)
        if kind == 10:
            world.process(us + 20 * SECOND, person, target.fqdn, rng.choice(SUPPORT_TOOLS))
        world.logoff(us + rng.randint(3, 40) * MINUTE, person, target.fqdn, logon_id, kind)


def _crm_use(world: World, person: Person, day: date, arrive: float, leave: float) -> None:
    base = CRM_RATE.get(person.role, 0.0)
    if not base or not person.department.crm:
        return
    rng = world.rng
    boost = world.crm_boost.get((person.index, day), 1.0)
    boost *= world.habits.workforce.peak(day, person.role)
    desk = world.habits.workforce.desk_users.get(person.index, 0.0)
    # A new hire learns the tool over the first weeks.
    tenure = (day - person.hire_date).days
    ramp = 0.4 + 0.6 * min(1.0, tenure / 30) if tenure < 30 else 1.0
    n = poisson(world, base * person.activity * boost * ramp)
    own = world.portfolio(person)
    for _ in range(n):
        us = work_time(world, day, arrive, leave)
        login = SERVICE_DESK_ACCOUNT if desk and rng.random() < desk else person.login
        r = rng.random()
        if person.role == "sales":
            pick = (
                own if (rng.random() < 0.93 and len(own)) else world.branch_clients[person.branch]
            )
        elif person.role == "manager":
            pick = world.branch_clients[person.branch]
        else:
            pick = None
        if r < 0.72:
            clients = world.sample(pick, 1) if pick is not None else world.any_clients(1)
            world.crm(us, login, person.ip, "view", clients, "client card")
        elif r < 0.95:
            k = rng.randint(1, 20)
            clients = world.sample(pick, k) if pick is not None else world.any_clients(k)
            world.crm(us, login, person.ip, "search", sorted(set(clients)), "search")
        elif r < 0.98 or person.role not in ("sales", "manager"):
            clients = world.sample(pick, 1) if pick is not None else world.any_clients(1)
            world.crm(us, login, person.ip, "print", clients, "print policy")
        else:
            k = rng.randint(5, 40)
            clients = sorted(set(world.sample(pick if pick is not None else own, k)))
            if not clients:
                continue
            export_file(world, person, us, clients, "客户清单")


def export_file(world: World, person: Person, us: int, clients: list[int], stem: str) -> str:
    """A CRM export: the app line, the download written by the browser."""
    world.crm(us, person.login, person.ip, "export", clients, "export xlsx")
    stamp = (us // SECOND) % 1_000_000
    path = world.user_path(person, "Downloads", f"{stem}_{stamp}.xlsx")
    world.file_created(us + 2 * SECOND, person, person.fqdn, CHROME, path)
    return path


def _browse(world: World, person: Person, day: date, arrive: float, leave: float) -> None:
    rng = world.rng
    habits = world.habits
    for _ in range(poisson(world, habits.company_visits * person.activity)):
        world.web(
            work_time(world, day, arrive, leave),
            person,
            rng.choice(COMPANY_SITES),
            rng.choice(("/", "/workflow/list", "/notice/2026", "/static/app.js")),
        )
    # Shopping, mostly at lunch.
    for _ in range(poisson(world, habits.shopping_visits * person.activity)):
        shop = rng.choice(SHOPS)
        world.web(
            at(day, _leisure_hour(world, arrive, leave)),
            person,
            shop,
            rng.choice(("/", "/item/", "/search?q=", "/cart")),
        )
    mine = habits.person(person)
    if mine.chats:
        for _ in range(poisson(world, mine.chat_rate)):
            shop_chat(world, person, day, arrive, leave)
    for _ in range(poisson(world, habits.blocked_visits)):
        world.web(work_time(world, day, arrive, leave), person, rng.choice(BLOCKED))
    _channels(world, person, day, arrive, leave)
    if rng.random() < habits.intranet_attach_chance:
        world.web(
            work_time(world, day, arrive, leave),
            person,
            "oa.example-insure.cn",
            "/workflow/attach",
            method="POST",
            up=rng.randint(20_000, 900_000),
            mime="application/json",
            request_type="multipart/form-data; boundary=----x",
        )


def _channels(world: World, person: Person, day: date, arrive: float, leave: float) -> None:
    """Documents that leave through allowed channels for ordinary reasons: claim files to
    partners, receipts to the expense portal, webmail attachments, a team's cloud drive."""
    rng = world.rng
    habits = world.habits
    mine = habits.person(person)
    portals = [p for p in PORTALS if person.role in p.roles]
    rate = {"claims": habits.claims_docs, "underwriter": habits.underwriting_docs}
    for _ in range(poisson(world, rate.get(person.role, 0.0) * person.activity)):
        portal = rng.choice(portals)
        us = work_time(world, day, arrive, leave)
        world.web(us - 30 * SECOND, person, portal.host, "/")
        size = Habits.document_size(rng, 600, 0.9, 15 * MB)
        world.upload(us, person, portal.host, portal.path, size, 0)
        world.note_upload("partner_portal", person, day, size)
    if mine.expenses:
        for _ in range(poisson(world, habits.expense_rate)):
            us = work_time(world, day, arrive, leave)
            expense = PORTALS[-1]
            size = Habits.document_size(rng, 300, 0.7, 5 * MB)
            world.upload(us, person, expense.host, expense.path, size, 0)
            world.note_upload("expense_portal", person, day, size)
    if mine.webmail:
        for _ in range(poisson(world, habits.webmail_rate)):
            us = (
                at(day, _leisure_hour(world, arrive, leave))
                if rng.random() < 0.3
                else work_time(world, day, arrive, leave)
            )
            sid = f"{rng.getrandbits(64):016x}"
            world.web(us, person, mine.webmail, f"/js6/main.jsp?sid={sid}")
            for _ in range(rng.choice((1, 1, 1, 2, 3))):
                us += rng.randint(20, 300) * SECOND
                size = Habits.document_size(rng, 400, 1.1, 20 * MB)
                us = world.upload(us, person, mine.webmail, f"/js6/upload?sid={sid}", size, 0)
                world.note_upload("webmail", person, day, size)
            world.web(
                us + rng.randint(10, 120) * SECOND,
                person,
                mine.webmail,
                f"/js6/s?sid={sid}&func=mbox:compose",
                method="POST",
                up=rng.randint(800, 9000),
                mime="application/json",
                request_type="application/x-www-form-urlencoded",
            )
    if mine.cloud:
        for _ in range(poisson(world, habits.cloud_rate)):
            host, path = rng.choice(CLOUD_HOSTS)
            size = Habits.document_size(rng, 2500, 1.3, 300 * MB)
            world.upload(
                work_time(world, day, arrive, leave),
                person,
                host,
                path.format(id=rng.getrandbits(40)),
                size,
                4 * MB,
            )
            world.note_upload("cloud_drive", person, day, size)


def _leisure_hour(world: World, arrive: float, leave: float) -> float:
    """When people shop: at lunch, in a coffee break, or any time of the day."""
    r = world.rng.random()
    habits = world.habits
    if not arrive < 12.0 < 13.0 < leave:  # a night shift, half a day: any time at work
        return world.rng.uniform(arrive + 0.05, leave - 0.05)
    if r < habits.lunch_share:
        return world.rng.uniform(12.0, 13.0)
    if r < habits.lunch_share + habits.break_share:
        return world.rng.choice((10.0, 15.0)) + world.rng.uniform(0.0, 0.5)
    return world.rng.uniform(arrive + 0.05, leave - 0.05)


def shop_chat(world: World, person: Person, day: date, arrive: float, leave: float) -> None:
    """A conversation with a shop's customer service: the shop page, a few text messages,
    and often a photo or a document (the item, a receipt, a damaged parcel)."""
    rng = world.rng
    habits = world.habits
    mine = habits.person(person)
    if mine.favourites and rng.random() < 0.8:
        which = rng.choice(mine.favourites)
    else:
        which = rng.choices(range(len(habits.shops)), habits.shop_weights)[0]
    shop = habits.shops[which]
    us = at(day, _leisure_hour(world, arrive, leave))
    world.web(us, person, "www." + shop.host.split(".", 1)[1], "/item/")
    platform = shop.platform
    text_type = (
        f"{MULTIPART}{rng.getrandbits(48):012x}" if platform.text_multipart else "application/json"
    )
    for _ in range(rng.randint(1, 6)):
        us += rng.randint(5, 120) * SECOND
        world.web(
            us,
            person,
            shop.host,
            shop.send_path,
            method="POST",
            up=rng.randint(300, 6000),
            down=rng.randint(200, 2000),
            mime="application/json",
            request_type=text_type,
        )
        if rng.random() < mine.upload_chance:
            us += rng.randint(10, 90) * SECOND
            size = habits.upload_size(rng)
            us = world.upload(us, person, shop.host, shop.upload_path, size, platform.chunk)
            key = (person.index, which)
            world.shop_uploads[key] = world.shop_uploads.get(key, 0) + size
            world.shop_upload_days.setdefault(person.index, set()).add(day)


def _office_files(world: World, person: Person, day: date, arrive: float, leave: float) -> None:
    rng = world.rng
    if rng.random() < 0.5:
        us = work_time(world, day, arrive, leave)
        world.process(us, person, person.fqdn, EXCEL)
        name = rng.choice(("周报", "业绩统计", "费用报销", "工作计划"))
        path = world.user_path(person, "Documents", f"{name}_{day:%m%d}.xlsx")
        world.file_created(us + 30 * SECOND, person, person.fqdn, EXCEL, path)
    if rng.random() < 0.25:
        us = work_time(world, day, arrive, leave)
        world.process(us, person, person.fqdn, WORD)
        path = world.user_path(person, "Documents", f"会议纪要_{day:%m%d}.docx")
        world.file_created(us + 60 * SECOND, person, person.fqdn, WORD, path)


def dba_work(world: World, person: Person, day: date, arrive: float, leave: float) -> None:
    """DBA work: RDP to the jump host, DBeaver there, small queries and fixes."""
    rng = world.rng
    jump = SERVERS["jump"]
    jump_fqdn = f"{jump.hostname}.corp.example-insure.cn"
    start = at(day, arrive + rng.uniform(0.3, 1.5))
    logon_id = world.logon(start, person, jump_fqdn, logon_type=10, source_ip=person.ip)
    world.process(start + 30 * SECOND, person, jump_fqdn, DBEAVER)
    assert person.db_account is not None
    for _ in range(rng.randint(1, 3)):
        t = start + rng.randint(1, int((leave - arrive - 2) * 60)) * MINUTE
        world.network(t - SECOND, person, jump_fqdn, jump.ip, DBEAVER, "db")
        statements: list[tuple[int, Statement]] = [
            (
                2 * SECOND,
                Statement(
                    ACTIVITY_QUERY,
                    object_type="VIEW",
                    object_name="pg_catalog.pg_stat_activity",
                    rows=rng.randint(8, 40),
                    plan="Function Scan",
                ),
            ),
            (
                20 * SECOND,
                Statement(
                    "SELECT count(*) FROM clients",
                    rows=1,
                    plan="Aggregate",
                    duration_ms=world.clients.count / 20_000,
                ),
            ),
        ]
        if rng.random() < 0.3:
            target = world.rng.randrange(world.clients.count)
            statements.append(
                (
                    90 * SECOND,
                    Statement(
                        f"UPDATE clients SET mobile = mobile WHERE client_id = "
                        f"'{client_id(target)}'",
                        audit_class="WRITE",
                        command="UPDATE",
                        rows=1,
                        plan="ModifyTable",
                        xid=rng.randint(10_000, 900_000),
                    ),
                )
            )
        world.db_session(t, person.db_account, jump.ip, DBEAVER_APP, statements)
    world.logoff(at(day, leave - 0.2), person, jump_fqdn, logon_id, logon_type=10)


def nightly_etl(world: World, day: date) -> None:
    """The ETL job: every night at 02:00 it reads the whole client table through a cursor."""
    etl = SERVERS["etl"]
    n = world.clients.count
    columns = (
        "client_id, name, id_number, mobile, address, city, branch, product, owner_employee_id"
    )
    statements = [
        (
            SECOND,
            Statement(
                "SELECT count(*) FROM clients", rows=1, plan="Aggregate", duration_ms=n / 20_000
            ),
        ),
        (
            3 * SECOND,
            Statement(
                f"DECLARE etl_cur NO SCROLL CURSOR FOR SELECT {columns} FROM clients",
                object_type="",
                object_name="",
                command="DECLARE CURSOR",
                rows=n,
                plan="Seq Scan",
                duration_ms=n / 900,
            ),
        ),
    ]
    world.db_session(
        at(day, 2.0) + world.rng.randint(0, 90) * SECOND,
        ETL_ACCOUNT,
        etl.ip,
        "etl-nightly",
        statements,
    )
