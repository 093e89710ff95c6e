"""A small hand-written insurer for detection tests: reference CSVs plus log lines in
the real formats (app-access JSON, pg-csvlog, Squid, Winlogbeat NDJSON), stored
through the real ingest path.

Staff (local time Asia/Shanghai; workstations WS-0nn at 10.0.1.nn):

- E001 Zhang Wei, E002 Li Na, E003 Wang Fang, E008 Wu Gang, E009 Xu Jing: sales
- E004 Chen Jie: underwriter, resigned 2026-04-30, db account ``resigned_agent`` still enabled
- E005 Zhao Lei: DBA (db account ``zhao_dba``, psql is his daily tool)
- E006 Sun Li: auditor, entitled to read clients in the CRM
- E007 Zhou Min: sales, notice 2026-05-10, leaves 2026-06-05
- ``etl_svc``: service account of the nightly ETL on server ETL-01 (10.0.9.1)

Clients C0nnn are owned by the sales staff (10 each). Files collected from the
endpoints (``endpoint/<host>/...``) are scanned and stored as ``molehunt scan`` does.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from molehunt.config import Settings
from molehunt.detect import DetectionSettings, Finding
from molehunt.detect.runner import run_detectors, write_findings
from molehunt.ingest.runner import ingest_paths
from molehunt.keys import create_key_file, load_key
from molehunt.pii.edm import ClientIndex
from molehunt.pii.scan import scan_paths
from molehunt.pii.stored import store_scans
from molehunt.store import Store

CST = ZoneInfo("Asia/Shanghai")
SALES = ("E001", "E002", "E003", "E008", "E009", "E007")
LOGIN = {
    "E001": "zhang.wei",
    "E002": "li.na",
    "E003": "wang.fang",
    "E004": "chen.jie",
    "E005": "zhao.lei",
    "E006": "sun.li",
    "E007": "zhou.min",
    "E008": "wu.gang",
    "E009": "xu.jing",
}

HR = """employee_id,name,department,title,role,manager_id,hire_date,notice_date,termination_date
E001,Zhang Wei,Sales,Agent,sales,,2020-01-01,,
E002,Li Na,Sales,Agent,sales,,2020-01-01,,
E003,Wang Fang,Sales,Agent,sales,,2020-01-01,,
E004,Chen Jie,Underwriting,Underwriter,underwriter,,2018-01-01,2026-04-01,2026-04-30
E005,Zhao Lei,IT,DBA,dba,,2019-01-01,,
E006,Sun Li,Audit,Auditor,audit,,2019-01-01,,
E007,Zhou Min,Sales,Agent,sales,,2020-01-01,2026-05-10,2026-06-05
E008,Wu Gang,Sales,Agent,sales,,2020-01-01,,
E009,Xu Jing,Sales,Agent,sales,,2020-01-01,,
"""

ENTITLEMENTS = """role,system,resource,access
sales,crm-app,clients,read
underwriter,crm-app,clients,read
audit,crm-app,clients,read
dba,crm-db,public.clients,read
"""

WEB_CATEGORIES = """domain,category
shop.example.cn,shopping
chat.example.com,im
news.example.cn,news
crm.corp.example.cn,internal
"""

WEB_POLICY = """category,allowed
shopping,yes
news,yes
internal,yes
im,no
"""


def ws(employee: str) -> str:
    return f"WS-{employee[1:]}"


def ip(employee: str) -> str:
    return f"10.0.1.{int(employee[1:])}"


ETL_IP = "10.0.9.1"


def _accounts() -> str:
    rows = ["account,system,owner_employee_id,kind,created,disabled"]
    for emp, login in LOGIN.items():
        rows.append(f"{login},ad,{emp},human,2018-01-01,")
        rows.append(f"{login},crm-app,{emp},human,2018-01-01,")
    rows.append("resigned_agent,crm-db,E004,human,2018-01-01,")
    rows.append("zhao_dba,crm-db,E005,admin,2019-01-01,")
    rows.append("etl_svc,crm-db,,service,2019-01-01,")
    return "\n".join(rows) + "\n"


def _assets() -> str:
    rows = ["hostname,ip,owner_employee_id,kind,department"]
    for emp in LOGIN:
        rows.append(f"{ws(emp)}.corp.example.cn,{ip(emp)},{emp},workstation,x")
    rows.append(f"ETL-01.corp.example.cn,{ETL_IP},,server,IT")
    return "\n".join(rows) + "\n"


def own_clients(employee: str) -> list[str]:
    base = SALES.index(employee) * 10 if employee in SALES else 900
    return [f"C{base + i:04d}" for i in range(1, 11)]


_SURNAMES = "王李张刘陈杨黄赵吴周"
_GIVEN = "伟芳娜敏静丽强磊军洋"


def client_pii(cid: str) -> tuple[str, str]:
    """(name, mobile) of client ``cid``: unique mobiles, Chinese names."""
    n = int(cid[1:])
    return f"{_SURNAMES[n % 10]}{_GIVEN[(n // 10) % 10]}{_GIVEN[n % 7]}", f"1380013{n:04d}"


def _clients() -> str:
    rows = ["client_id,name,mobile,city,owner_employee_id"]
    for emp in SALES:
        for cid in own_clients(emp):
            name, mobile = client_pii(cid)
            rows.append(f"{cid},{name},{mobile},Shanghai,{emp}")
    return "\n".join(rows) + "\n"


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), CST)


def workdays(start: date, days: int) -> list[date]:
    out = [start + timedelta(days=i) for i in range(days)]
    return [d for d in out if d.weekday() < 5]


def _csv_field(value: str) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow([value])
    return buf.getvalue()


@dataclass
class World:
    """Collects log lines; :meth:`ingest` writes them and runs the real ingest."""

    app_lines: list[str] = field(default_factory=list)
    pg_lines: list[str] = field(default_factory=list)
    squid_lines: list[str] = field(default_factory=list)
    win_lines: list[str] = field(default_factory=list)
    # (host, path on the host, client ids, when written)
    endpoint_files: list[tuple[str, str, list[str], datetime]] = field(default_factory=list)
    _pid: int = 1000

    # -- the application -------------------------------------------------------

    def app(
        self,
        when: datetime,
        employee: str,
        client_ids: list[str],
        *,
        action: str = "view",
        src: str | None = None,
        rows: int | None = None,
    ) -> None:
        doc = {
            "ts": when.isoformat(timespec="milliseconds"),
            "app": "crm",
            "user": LOGIN[employee],
            "src_ip": src or ip(employee),
            "action": action,
            "client_ids": client_ids,
            "rows": rows if rows is not None else len(client_ids),
            "detail": "client card",
        }
        self.app_lines.append(json.dumps(doc))

    # -- PostgreSQL csvlog ------------------------------------------------------

    def db(
        self,
        when: datetime,
        user: str,
        src: str,
        statement: str,
        rows: int,
        *,
        app_name: str = "psql",
        command: str = "SELECT",
        objects: str = "public.clients",
        object_type: str = "TABLE",
    ) -> None:
        self._pid += 1
        stamp = when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"
        start = when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") + " UTC"
        session = f"6b08{self._pid:04x}.{self._pid:x}"
        conn = f"{src}:{40000 + self._pid % 20000}"
        audit = ",".join(
            [
                "AUDIT: SESSION",
                "1",
                "1",
                "READ",
                command,
                object_type,
                objects,
                _csv_field(statement),
                "<none>",
                str(rows),
            ]
        )
        fields = [
            stamp,
            user,
            "crm",
            str(self._pid),
            conn,
            session,
            "3",
            command,
            start,
            "3/4",
            "0",
            "LOG",
            "00000",
            audit,
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            app_name,
            "client backend",
            "",
            "0",
        ]
        self.pg_lines.append(",".join(_csv_field(f) if f else "" for f in fields))

    # -- Squid -------------------------------------------------------------------

    def http(
        self,
        when: datetime,
        src: str,
        url: str,
        *,
        method: str = "GET",
        bytes_out: int = 300,
        content_type: str = "-",
        user: str = "-",
    ) -> None:
        ts = f"{when.timestamp():.3f}"
        if method == "CONNECT":
            host, port = url.rsplit(":", 1)
            scheme, result = "-", "TCP_TUNNEL/HIER_DIRECT"
        else:
            scheme, rest = url.split("://", 1)
            host = rest.split("/", 1)[0]
            port = "443" if scheme == "https" else "80"
            result = "TCP_MISS/HIER_DIRECT"
        length = str(bytes_out) if method in ("POST", "PUT") else "-"
        self.squid_lines.append(
            f"{ts} {src} {user} {method} {scheme} {host} {port} 200 {result} {bytes_out} 200 "
            f'2000 200 "text/html" 120 "Mozilla/5.0" "{content_type}" {length} "{url}"'
        )

    # -- Windows -------------------------------------------------------------------

    def _win(
        self, when: datetime, channel: str, code: int, host: str, data: dict[str, str]
    ) -> None:
        doc = {
            "@timestamp": when.astimezone(UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "event": {"code": str(code)},
            "winlog": {
                "channel": channel,
                "event_id": str(code),
                "computer_name": f"{host}.corp.example.cn",
                "event_data": data,
            },
        }
        self.win_lines.append(json.dumps(doc))

    def logon(self, when: datetime, host: str, employee: str, logon_type: int = 2) -> None:
        self._win(
            when,
            "Security",
            4624,
            host,
            {
                "TargetUserName": LOGIN[employee],
                "TargetDomainName": "CORP",
                "LogonType": str(logon_type),
                "IpAddress": "127.0.0.1",
            },
        )

    def logoff(self, when: datetime, host: str, employee: str) -> None:
        self._win(
            when,
            "Security",
            4634,
            host,
            {"TargetUserName": LOGIN[employee], "TargetDomainName": "CORP", "LogonType": "2"},
        )

    def file(self, when: datetime, host: str, employee: str, path: str) -> None:
        self._win(
            when,
            "Microsoft-Windows-Sysmon/Operational",
            11,
            host,
            {
                "Image": "C:\\Program Files\\Microsoft Office\\EXCEL.EXE",
                "TargetFilename": path,
                "User": f"CORP\\{LOGIN[employee]}",
            },
        )

    def saved(self, when: datetime, employee: str, path: str, client_ids: list[str]) -> None:
        """``employee`` writes a spreadsheet of these clients on their workstation
        (Sysmon 11), and the endpoint collection later picks it up."""
        self.file(when, ws(employee), employee, path)
        self.endpoint_files.append((ws(employee), path, client_ids, when))

    def process(self, when: datetime, host: str, employee: str, image: str) -> None:
        self._win(
            when,
            "Microsoft-Windows-Sysmon/Operational",
            1,
            host,
            {"Image": image, "CommandLine": image, "User": f"CORP\\{LOGIN[employee]}"},
        )

    # -- routines ------------------------------------------------------------------

    def routine(
        self,
        start: date,
        days: int,
        *,
        people: Iterable[str] = ("E001", "E002", "E003", "E005", "E006", "E007", "E008", "E009"),
        searches: int = 6,
    ) -> None:
        """Ordinary working days: logon at 9, a few searches of 5 of one's own clients
        (30 rows a day; the auditor 5 of anyone's), DBA psql checks, logoff at 18, and
        the nightly ETL (a service account on its server, every night)."""
        for day in workdays(start, days):
            for emp in people:
                self.logon(at(day, 9), ws(emp), emp)
                if emp in SALES:
                    mine = own_clients(emp)
                    for k in range(searches):
                        picked = [mine[(k + j) % len(mine)] for j in range(5)]
                        self.app(at(day, 10, k), emp, picked, action="search")
                elif emp == "E006":
                    self.app(at(day, 10), emp, [f"C{i:04d}" for i in range(1, 6)], action="search")
                elif emp == "E005":
                    self.db(
                        at(day, 11),
                        "zhao_dba",
                        ip(emp),
                        "SELECT count(*) FROM clients;",
                        1,
                        app_name="psql",
                    )
                self.http(at(day, 12), ip(emp), "http://news.example.cn/today")
                self.logoff(at(day, 18), ws(emp), emp)
        for i in range(days):
            day = start + timedelta(days=i)
            self.db(
                at(day, 2),
                "etl_svc",
                ETL_IP,
                "SELECT * FROM clients;",
                60,
                app_name="etl-nightly",
            )
            self.db(
                at(day, 2, 5),
                "etl_svc",
                ETL_IP,
                "COPY clients TO STDOUT;",
                0,
                app_name="etl-nightly",
                command="COPY",
                objects="",
                object_type="",
            )

    # -- storing -------------------------------------------------------------------

    def ingest(self, store: Store, settings: Settings, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        refs = {
            "hr.csv": HR,
            "accounts.csv": _accounts(),
            "assets.csv": _assets(),
            "entitlements.csv": ENTITLEMENTS,
            "web_categories.csv": WEB_CATEGORIES,
            "web_policy.csv": WEB_POLICY,
            "clients.csv": _clients(),
        }
        logs = {
            "app-access.jsonl": ("app-access", self.app_lines),
            "postgresql.csv": ("pg-csvlog", self.pg_lines),
            "access.log": ("squid", self.squid_lines),
            "winlogbeat.ndjson": ("winlog-ndjson", self.win_lines),
        }
        paths: list[tuple[Path, str | None]] = []
        for name, text in refs.items():
            path = folder / name
            path.write_text(text, encoding="utf-8")
            paths.append((path, None))
        for name, (kind, lines) in logs.items():
            if not lines:
                continue
            path = folder / name
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            paths.append((path, kind))
        when = datetime(2026, 1, 1, tzinfo=UTC)
        for path, file_kind in paths:
            report = ingest_paths(store, settings, [path], kind=file_kind, as_of=when)
            assert not report.errors, report.as_dict()
            assert report.rejected == 0, report.as_dict()
        self._scan_endpoints(store, settings, folder / "endpoint")

    def _scan_endpoints(self, store: Store, settings: Settings, folder: Path) -> None:
        files = []
        for host, on_host, client_ids, when in self.endpoint_files:
            path = folder / host / on_host.replace(":", "").replace("\\", "/")
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("w", encoding="utf-8", newline="") as f:
                out = csv.writer(f)
                out.writerow(["姓名", "手机"])
                out.writerows(client_pii(c) for c in client_ids)
            os.utime(path, (when.timestamp(), when.timestamp()))
            files.append(path)
        if files:
            reports = scan_paths(
                files, key=load_key(settings), clients=ClientIndex.from_store(store), workers=1
            )
            assert store_scans(store, reports) == len(files)


# -- the shared scenario ------------------------------------------------------------

START = date(2026, 4, 1)
END = date(2026, 5, 29)
SHOP_CHAT = "http://shop.example.cn/shop/8848/chat/upload"
MULTIPART = "multipart/form-data; boundary=x"


def borrowed_day(w: World, day: date, employee: str) -> None:
    """The founding case, one day of it: the resigned person's database account from a
    sales PC with DBeaver, an Excel file, then an upload to a shop's chat."""
    w.db(
        at(day, 14),
        "resigned_agent",
        ip(employee),
        "SELECT * FROM clients WHERE id <= 3000;",
        3000,
        app_name="DBeaver 23.1.0 - Main",
    )
    w.file(
        at(day, 14, 30),
        ws(employee),
        employee,
        f"C:\\Users\\{LOGIN[employee]}\\Desktop\\clients_{day:%m%d}.xlsx",
    )
    w.http(
        at(day, 15),
        ip(employee),
        SHOP_CHAT,
        method="POST",
        bytes_out=2_500_000,
        content_type=MULTIPART,
    )


def scenario_world() -> World:
    """Two months of routine with the insider scenarios and benign look-alikes planted:

    - borrowed account ring: E001 on workdays 05-06..05-15, E002 on 05-07 and 05-12
    - departing E007 (notice 05-10): exports 50 clients of others (saved as a CSV on
      WS-007, collected and scanned) and uploads, 05-18/19
    - low and slow E008: 100 rows a day (peers 30) from 05-11
    - privileged dump: DBA E005 at 01:30 on 05-20 from WS-003 (logged on there), COPY,
      then an 8 MB tunnel to a chat site
    - credential sharing: E009's CRM account used at WS-003 (E003 logged on), 05-21
    - benign: E003 keeps a list of her own 10 clients on WS-003 (05-08); nightly ETL,
      auditor E006's review of 1,000 records 05-13, campaign week
      05-25..27 (all sales read 3x), E003's 1 MB review photo 05-14
    """
    w = World()
    w.routine(START, (END - START).days + 1)
    for day in workdays(date(2026, 5, 6), 10):
        borrowed_day(w, day, "E001")
    for day in (date(2026, 5, 7), date(2026, 5, 12)):
        borrowed_day(w, day, "E002")
    others = [c for e in SALES if e != "E007" for c in own_clients(e)]
    for day in (date(2026, 5, 18), date(2026, 5, 19)):
        w.app(at(day, 16), "E007", others, action="export")
        w.saved(
            at(day, 16, 5), "E007", f"C:\\Users\\zhou.min\\Downloads\\export_{day:%m%d}.csv", others
        )
        w.http(
            at(day, 17),
            ip("E007"),
            "http://shop.example.cn/shop/555/review",
            method="POST",
            bytes_out=3_000_000,
            content_type="image/jpeg",
        )
    w.http(
        at(date(2026, 5, 19), 17, 30),
        ip("E007"),
        "chat.example.com:443",
        method="CONNECT",
        bytes_out=5_000_000,
    )
    for day in workdays(date(2026, 5, 11), 19):
        mine = own_clients("E008")
        for k in range(14):
            w.app(at(day, 14, k), "E008", [mine[(k + j) % 10] for j in range(5)], action="search")
    dump = date(2026, 5, 20)
    w.logon(at(dump, 1, 20), ws("E003"), "E005", logon_type=10)
    w.db(
        at(dump, 1, 30),
        "zhao_dba",
        ip("E003"),
        "COPY clients TO STDOUT;",
        0,
        command="COPY",
        objects="",
        object_type="",
    )
    w.http(at(dump, 2), ip("E003"), "chat.example.com:443", method="CONNECT", bytes_out=8_000_000)
    w.app(at(date(2026, 5, 21), 11), "E009", own_clients("E009")[:3], src=ip("E003"))
    w.saved(
        at(date(2026, 5, 8), 10),
        "E003",
        "C:\\Users\\wang.fang\\Documents\\跟进客户.csv",
        own_clients("E003"),
    )
    review = date(2026, 5, 13)
    for k in range(40):
        w.app(
            at(review, 10, k),
            "E006",
            [f"C{(k * 25 + j) % 60 + 1:04d}" for j in range(25)],
            action="search",
        )
    for day in workdays(date(2026, 5, 25), 3):
        for emp in SALES:
            mine = own_clients(emp)
            for k in range(12):
                w.app(at(day, 15, k), emp, [mine[(k + j) % 10] for j in range(5)], action="search")
    w.http(
        at(date(2026, 5, 14), 12, 30),
        ip("E003"),
        "http://shop.example.cn/shop/777/review",
        method="POST",
        bytes_out=1_000_000,
        content_type="image/jpeg",
    )
    return w


@dataclass
class Scenario:
    """The scenario world stored once per test session, detected as of :data:`END`."""

    store: Store
    settings: Settings
    findings: list[Finding]

    def of(
        self, detector: str, person: str | None = None, day: date | None = None
    ) -> list[Finding]:
        """Findings of ``detector`` behind ``person`` (on ``day``)."""
        return [
            f
            for f in self.findings
            if f.detector == detector
            and (person is None or f.person_id == person)
            and (day is None or f.day == day)
        ]


_SCENARIO: list[Scenario] = []


def scenario() -> Scenario:
    """Build (once per process) the scenario store, run every detector, keep findings."""
    if not _SCENARIO:
        folder = Path(tempfile.mkdtemp(prefix="molehunt-scenario-"))
        key_file = folder / "molehunt.key"
        create_key_file(key_file)
        settings = Settings.load(
            {"db": folder / "molehunt.duckdb", "key_file": key_file}, environ={}, cwd=folder
        )
        store = Store.open(settings.db)
        scenario_world().ingest(store, settings, folder / "in")
        report = run_detectors(store, DetectionSettings(), END)
        write_findings(store, report)
        _SCENARIO.append(Scenario(store, settings, report.findings))
    return _SCENARIO[0]


#: The log files :meth:`World.ingest` writes, and the World attribute holding each one's lines.
LOG_FILES = {
    "app-access.jsonl": "app_lines",
    "postgresql.csv": "pg_lines",
    "access.log": "squid_lines",
    "winlogbeat.ndjson": "win_lines",
}


def append_logs(world: World, folder: Path) -> None:
    """Append ``world``'s lines to the log files in ``folder``, as the writers would."""
    for name, attr in LOG_FILES.items():
        lines: list[str] = getattr(world, attr)
        if lines:
            with (folder / name).open("a", encoding="utf-8") as f:
                f.write("\n".join(lines) + "\n")


def one_day(day: date, *borrowers: str) -> World:
    """A day of routine, with the borrowed-account theft by each of ``borrowers``."""
    world = World()
    world.routine(day, 1)
    for employee in borrowers:
        borrowed_day(world, day, employee)
    return world


def routine_logs(store: Store, settings: Settings, folder: Path, last: date) -> list[Path]:
    """Routine from START to ``last`` written to ``folder`` and ingested; the log paths."""
    world = World()
    world.routine(START, (last - START).days + 1)
    world.ingest(store, settings, folder)
    return [folder / name for name in LOG_FILES]


def borrowed_store(folder: Path, as_of: date) -> Settings:
    """A store in ``folder`` (with its key) of three people's routine from 2026-04-20
    and E001's day on a borrowed account on 2026-05-06, ingested and detected as of
    ``as_of`` with the findings stored: the read verbs' tests serve it."""
    key_file = folder / "molehunt.key"
    create_key_file(key_file)
    settings = Settings.load(
        {"db": folder / "molehunt.duckdb", "key_file": key_file}, environ={}, cwd=folder
    )
    w = World()
    w.routine(date(2026, 4, 20), 20, people=("E001", "E002", "E003"))
    borrowed_day(w, date(2026, 5, 6), "E001")
    with Store.open(settings.db) as store:
        w.ingest(store, settings, folder / "in")
        write_findings(store, run_detectors(store, settings.detection, as_of))
    return settings
