"""The running simulation: the company, its clients, its logs, and the actions
people take (CRM use, database sessions, browsing, logons, files).

Scenarios and normal behaviour both act through :class:`World`, so every trace
of an action (the app line and the database statement behind it, the process,
the network connection, the file) is written the same way whoever acts.
"""

from __future__ import annotations

import csv
import io
import os
import random
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt

from molehunt.simulate.clients import ClientMaster, client_id, noise_rows
from molehunt.simulate.company import (
    CRM_SERVICE_ACCOUNT,
    DB_NAME,
    DB_PORT,
    DNS_SUFFIX,
    DOMAIN,
    SERVERS,
    WEB_CATEGORIES,
    WEB_POLICY,
    Company,
    Person,
)
from molehunt.simulate.habits import Habits
from molehunt.simulate.writers import (
    HOUR,
    LOCAL_OFFSET_US,
    MINUTE,
    SECOND,
    SYSMON,
    Logs,
    PgSession,
    Statement,
)
from molehunt.simulate.writers import SECURITY as SECURITY_CHANNEL
from molehunt.synthetic import BRANCHES

EXCEL = r"C:\Program Files\Microsoft Office\root\Office16\EXCEL.EXE"
WORD = r"C:\Program Files\Microsoft Office\root\Office16\WINWORD.EXE"
CHROME = r"C:\Program Files\Google\Chrome\Application\chrome.exe"
EXPLORER = r"C:\Windows\explorer.exe"
DBEAVER = r"C:\Program Files\DBeaver\dbeaver.exe"
NAVICAT = r"C:\Program Files\PremiumSoft\Navicat Premium 16\navicat.exe"
PSQL = r"C:\Program Files\PostgreSQL\15\bin\psql.exe"

DBEAVER_APP = "DBeaver 23.1.0 - Main"
CLIENT_COLUMNS_CN = ("客户号", "姓名", "身份证号", "手机号", "地址")
MULTIPART = "multipart/form-data; boundary=----WebKitFormBoundary"
POOL_LIFETIME = 30 * MINUTE  # HikariCP maxLifetime: pooled connections are renewed


def local_midnight_us(day: date) -> int:
    """Microseconds since the epoch (UTC) of 00:00 in Shanghai on ``day``."""
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * SECOND - (
        LOCAL_OFFSET_US
    )


def at(day: date, hours: float) -> int:
    """A time on ``day`` given in local hours (9.5 = 09:30)."""
    return local_midnight_us(day) + int(hours * HOUR)


def _category(host: str) -> str | None:
    """The category of the longest matching domain suffix (as molehunt matches them)."""
    best: tuple[int, str] | None = None
    for domain, category in WEB_CATEGORIES:
        if (host == domain or host.endswith("." + domain)) and (
            best is None or len(domain) > best[0]
        ):
            best = (len(domain), category)
    return best[1] if best else None


def allowed_host(host: str, policy: dict[str, bool] | None = None) -> bool:
    """Whether the proxy lets ``host`` through under ``policy`` (default :data:`WEB_POLICY`)."""
    category = _category(host)
    return category is not None and (WEB_POLICY if policy is None else policy).get(category, False)


@dataclass(slots=True)
class Pool:
    """The CRM's pooled database connections of one day."""

    sessions: list[list[PgSession]]
    first: list[int]


@dataclass(slots=True)
class World:
    company: Company
    clients: ClientMaster
    logs: Logs
    out: Path
    seed: int
    rng: random.Random
    habits: Habits
    portfolios: dict[int, npt.NDArray[np.int64]] = field(default_factory=dict)
    branch_clients: list[npt.NDArray[np.int64]] = field(default_factory=list)
    crm_boost: dict[tuple[int, date], float] = field(default_factory=dict)
    busy: dict[tuple[int, date], str] = field(default_factory=dict)  # scenario owns the day
    pool: Pool | None = None
    next_pid: int = 21_000
    next_logon: int = 0x3A000
    next_port: int = 40_000
    endpoint_files: list[str] = field(default_factory=list)
    endpoint_rows: int = 0
    #: Bytes each (person, shop) pair sent to shops' chats, and the days each person
    #: sent any (the heaviest and the regulars of the top shop are named as look-alikes).
    shop_uploads: dict[tuple[int, int], int] = field(default_factory=dict)
    shop_upload_days: dict[int, set[date]] = field(default_factory=dict)
    #: Bytes each person sent through each ordinary channel (webmail, cloud, portals),
    #: and on which days.
    channel_bytes: dict[str, dict[int, int]] = field(default_factory=dict)
    channel_days: dict[str, dict[int, set[date]]] = field(default_factory=dict)
    #: People with a workstation (IT support picks among them).
    staff: list[Person] = field(default_factory=list)
    #: Today's hot desks: person -> (host, ip, half of the day).
    seats: dict[int, tuple[str, str, int]] = field(default_factory=dict)
    #: When each path on a host was last written (Sysmon 11), in microseconds.
    written: dict[str, int] = field(default_factory=dict)

    # -- helpers ------------------------------------------------------------------

    def pid(self) -> int:
        self.next_pid += self.rng.randint(1, 9)
        if self.next_pid > 4_000_000:
            self.next_pid = 21_000
        return self.next_pid

    def port(self) -> int:
        self.next_port += self.rng.randint(1, 17)
        if self.next_port > 60_999:
            self.next_port = 40_000
        return self.next_port

    def portfolio(self, person: Person) -> npt.NDArray[np.int64]:
        return self.portfolios.get(person.index, np.empty(0, dtype=np.int64))

    def sample(self, pool: npt.NDArray[np.int64], n: int) -> list[int]:
        if len(pool) == 0 or n <= 0:
            return []
        if n >= len(pool):
            return [int(x) for x in pool]
        return [int(pool[self.rng.randrange(len(pool))]) for _ in range(n)]

    def any_clients(self, n: int) -> list[int]:
        return [self.rng.randrange(self.clients.count) for _ in range(n)]

    # -- the CRM ------------------------------------------------------------------

    def start_pool(self, day: date) -> None:
        slots = max(4, min(20, len(self.company.people) // 30))
        sessions: list[list[PgSession]] = []
        first: list[int] = []
        # With a night team the pool stays open through the night, till 08:30.
        day_end = at(day, 32.5 if self.habits.workforce.night_people else 23.5)
        app = SERVERS["app"]
        for k in range(slots):
            begin = at(day, 6.0) + k * POOL_LIFETIME // slots + self.rng.randint(0, SECOND)
            first.append(begin)
            row: list[PgSession] = []
            t = begin
            while t < day_end:
                s = PgSession(
                    self.pid(),
                    CRM_SERVICE_ACCOUNT,
                    DB_NAME,
                    app.ip,
                    self.port(),
                    "crm-webapp",
                    t,
                    3 + k,
                    self.rng.randint(1, 900),
                )
                self.logs.pg.connect(t, s)
                self.logs.pg.disconnect(t + POOL_LIFETIME - 2 * SECOND, s)
                row.append(s)
                t += POOL_LIFETIME
            sessions.append(row)
        self.pool = Pool(sessions, first)

    def _pooled(self, us: int) -> PgSession:
        assert self.pool is not None
        k = self.rng.randrange(len(self.pool.sessions))
        j = (us - self.pool.first[k]) // POOL_LIFETIME
        row = self.pool.sessions[k]
        return row[min(max(j, 0), len(row) - 1)]

    def crm(
        self, us: int, user: str, ip: str, action: str, clients: Sequence[int], detail: str
    ) -> None:
        """One CRM action: the app's record-access line and the query behind it."""
        ids = [client_id(i) for i in clients]
        self.logs.app.access(us, user, ip, action, ids, detail)
        if action == "view" and len(ids) == 1:
            stmt = Statement(
                "SELECT * FROM clients WHERE client_id = $1",
                parameter=ids[0],
                rows=1,
                plan="Index Scan",
                duration_ms=0.05 + self.rng.random() * 0.2,
            )
        else:
            columns = (
                "client_id, name, mobile, city"
                if action == "search"
                else "client_id, name, id_number, mobile, address, city, product"
            )
            array = "{" + ",".join(ids) + "}"
            stmt = Statement(
                f"SELECT {columns} FROM clients WHERE client_id = ANY($1)",
                parameter=f'"{array}"' if "," in array else array,
                rows=len(ids),
                plan="Index Scan",
                duration_ms=0.1 + len(ids) * 0.004,
            )
        session = self._pooled(us)
        end = us - self.rng.randint(3_000, 40_000)  # the app logs after the query returns
        self.logs.pg.statement(max(end, session.start_us + 2 * SECOND), session, stmt)

    # -- direct database sessions ---------------------------------------------------

    def db_session(
        self,
        start: int,
        user: str,
        ip: str,
        app: str,
        statements: Sequence[tuple[int, Statement]],
        tail_us: int = 2 * SECOND,
    ) -> int:
        """A connection from ``ip`` running ``statements`` (time offsets from the start);
        returns when it disconnected."""
        session = PgSession(
            self.pid(),
            user,
            DB_NAME,
            ip,
            self.port(),
            app,
            start,
            self.rng.randint(3, 60),
            self.rng.randint(1, 9000),
        )
        self.logs.pg.connect(start, session)
        last = start + SECOND
        for offset, stmt in statements:
            last = max(last + 1000, start + offset)
            self.logs.pg.statement(last, session, stmt)
            if stmt.command == "DECLARE CURSOR":
                last += int(stmt.duration_ms * 1000) + 1000
        end = last + tail_us
        self.logs.pg.disconnect(end, session)
        return end

    # -- Windows ----------------------------------------------------------------------

    def logon(
        self, us: int, person: Person, computer: str, logon_type: int = 2, source_ip: str = ""
    ) -> str:
        self.next_logon += self.rng.randint(1, 4000)
        logon_id = f"0x{self.next_logon:x}"
        short = computer.split(".")[0]
        data = {
            "SubjectUserSid": "S-1-5-18",
            "SubjectUserName": f"{short}$",
            "SubjectDomainName": DOMAIN,
            "SubjectLogonId": "0x3e7",
            "TargetUserSid": f"S-1-5-21-3623811015-3361044348-30300820-{1000 + person.index}",
            "TargetUserName": person.login,
            "TargetDomainName": DOMAIN,
            "TargetLogonId": logon_id,
            "LogonType": str(logon_type),
            "LogonProcessName": "User32 " if logon_type in (2, 10) else "Kerberos",
            "AuthenticationPackageName": "Negotiate",
            "WorkstationName": person.host if logon_type == 10 else short,
            "IpAddress": source_ip or "127.0.0.1",
            "IpPort": "0",
            "ProcessName": r"C:\Windows\System32\svchost.exe",
            "ElevatedToken": "%%1843",
        }
        self.logs.win.event(us, computer, SECURITY_CHANNEL, 4624, data)
        return logon_id

    def logoff(
        self, us: int, person: Person, computer: str, logon_id: str, logon_type: int = 2
    ) -> None:
        data = {
            "TargetUserSid": f"S-1-5-21-3623811015-3361044348-30300820-{1000 + person.index}",
            "TargetUserName": person.login,
            "TargetDomainName": DOMAIN,
            "TargetLogonId": logon_id,
            "LogonType": str(logon_type),
        }
        self.logs.win.event(us, computer, SECURITY_CHANNEL, 4634, data)

    def _sysmon_common(self, us: int, person: Person) -> dict[str, str]:
        stamp = datetime.fromtimestamp(us / SECOND, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        r = self.rng.getrandbits
        guid = f"{{{r(32):08x}-{r(16):04x}-6a1f-0000-0010{r(32):08x}}}"
        return {
            "RuleName": "-",
            "UtcTime": stamp,
            "ProcessGuid": guid,
            "User": f"{DOMAIN}\\{person.login}",
        }

    def process(
        self, us: int, person: Person, computer: str, image: str, command_line: str = ""
    ) -> int:
        pid = self.rng.randint(1000, 30000) // 4 * 4
        data = self._sysmon_common(us, person)
        data.update(
            {
                "ProcessId": str(pid),
                "Image": image,
                "CommandLine": command_line or f'"{image}"',
                "CurrentDirectory": f"C:\\Users\\{person.login}\\",
                "IntegrityLevel": "Medium",
                "ParentImage": EXPLORER,
                "ParentCommandLine": EXPLORER,
            }
        )
        self.logs.win.event(us, computer, SYSMON, 1, data)
        return pid

    def network(
        self, us: int, person: Person, computer: str, source_ip: str, image: str, target: str
    ) -> None:
        server = SERVERS[target]
        data = self._sysmon_common(us, person)
        data.update(
            {
                "ProcessId": str(self.rng.randint(1000, 30000) // 4 * 4),
                "Image": image,
                "Protocol": "tcp",
                "Initiated": "true",
                "SourceIsIpv6": "false",
                "SourceIp": source_ip,
                "SourceHostname": computer,
                "SourcePort": str(self.port()),
                "DestinationIsIpv6": "false",
                "DestinationIp": server.ip,
                "DestinationHostname": f"{server.hostname}.{DNS_SUFFIX}",
                "DestinationPort": str(DB_PORT),
                "DestinationPortName": "-",
            }
        )
        self.logs.win.event(us, computer, SYSMON, 3, data)

    def file_created(self, us: int, person: Person, computer: str, image: str, path: str) -> None:
        data = self._sysmon_common(us, person)
        stamp = data["UtcTime"]
        data.update(
            {
                "ProcessId": str(self.rng.randint(1000, 30000) // 4 * 4),
                "Image": image,
                "TargetFilename": path,
                "CreationUtcTime": stamp,
            }
        )
        self.logs.win.event(us, computer, SYSMON, 11, data)
        self.written[path] = max(us, self.written.get(path, us))

    # -- the web --------------------------------------------------------------------

    def web(
        self,
        us: int,
        person: Person,
        host: str,
        path: str = "/",
        *,
        method: str = "GET",
        up: int = 0,
        down: int = 0,
        mime: str = "text/html",
        request_type: str = "-",
        ip: str | None = None,
    ) -> None:
        self.logs.squid.request(
            us,
            ip or person.ip,
            person.login,
            method,
            host,
            path,
            allowed=allowed_host(host, self.habits.policy),
            up=up,
            down=down or self.rng.randint(2_000, 120_000),
            mime=mime,
            request_type=request_type,
            duration_ms=self.rng.randint(20, 900) + up // 20_000,
        )

    def upload(
        self, us: int, person: Person, host: str, path: str, size: int, chunk: int = 2 * 1024 * 1024
    ) -> int:
        """A file sent in pieces of at most ``chunk`` bytes (2 MB, as chat and review
        uploads do; 0 = in one request); returns when the last piece went."""
        left = size
        t = us
        while left > 0:
            piece = min(left, chunk) if chunk else left
            self.web(
                t,
                person,
                host,
                path,
                method="POST",
                up=piece,
                down=self.rng.randint(200, 900),
                mime="application/json",
                request_type=f"{MULTIPART}{self.rng.getrandbits(48):012x}",
            )
            left -= piece
            t += self.rng.randint(2, 9) * SECOND
        return t

    def note_upload(self, channel: str, person: Person, day: date, size: int) -> None:
        """Remember an ordinary upload (the heaviest senders are named as look-alikes)."""
        sent = self.channel_bytes.setdefault(channel, {})
        sent[person.index] = sent.get(person.index, 0) + size
        self.channel_days.setdefault(channel, {}).setdefault(person.index, set()).add(day)

    # -- files on endpoints and outside ----------------------------------------------

    def user_path(self, person: Person, folder: str, name: str) -> str:
        return f"C:\\Users\\{person.login}\\{folder}\\{name}"

    def endpoint_file(self, person: Person, windows_path: str, clients: Sequence[int]) -> str:
        """Write a file holding these clients' rows where a collector would put it:
        ``endpoint/<host>/<path on the host>``; returns its path under the output."""
        relative = Path("endpoint", person.host, *windows_path.replace(":", "").split("\\"))
        rows = [list(r) for r in self.clients.rows(list(clients))]
        write_table(self.out / relative, list(CLIENT_COLUMNS_CN), rows)
        self.date_file(self.out / relative, windows_path)
        self.endpoint_files.append(relative.as_posix())
        self.endpoint_rows += len(rows)
        return relative.as_posix()

    def date_file(self, path: Path, windows_path: str) -> None:
        """Give a collected file the time it was last written, as a collector keeps it:
        its Sysmon write, else the newest write of the simulation (never today, which
        would put a scan months after the logs end)."""
        us = self.written.get(windows_path) or max(self.written.values(), default=0)
        if us:
            os.utime(path, ns=(us * 1000, us * 1000))

    def leaked_file(self, name: str, clients: Sequence[int], noise: int) -> str:
        """A file found outside: client rows without the company's ids, in another
        column order, mixed with rows of people who are no client."""
        relative = Path("leaked", name)
        rows = [[r[1], r[3], r[2], r[4]] for r in self.clients.rows(list(clients))]
        extra = noise_rows(self.seed * 7919 + len(name) + len(clients), noise, self.clients.as_of)
        rows += [[n, m, i, a] for n, i, m, a in extra]
        self.rng.shuffle(rows)
        write_table(self.out / relative, ["姓名", "电话", "证件号码", "住址"], rows)
        return relative.as_posix()


def write_table(path: Path, header: list[str], rows: list[list[str]]) -> None:
    """An .xlsx (text cells, so ID numbers keep 18 digits) or a UTF-8 .csv."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".xlsx":
        from openpyxl import Workbook

        book = Workbook(write_only=True)
        sheet = book.create_sheet("Sheet1")
        sheet.append(header)
        for row in rows:
            sheet.append(row)
        buffer = io.BytesIO()
        book.save(buffer)
        path.write_bytes(_fixed_zip_times(buffer.getvalue()))
        return
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f, lineterminator="\r\n")
        w.writerow(header)
        w.writerows(rows)


def branch_name(index: int) -> str:
    return BRANCHES[index][0]


def days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


_W3CDTF = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z?")


def _fixed_zip_times(data: bytes) -> bytes:
    """The xlsx with fixed member and document times: openpyxl stamps the wall
    clock, and the same seed must give the same bytes."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            content = source.read(info.filename)
            if info.filename == "docProps/core.xml":
                content = _W3CDTF.sub(b"2026-01-01T00:00:00Z", content)
            fixed = zipfile.ZipInfo(info.filename, date_time=(2026, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(fixed, content)
    return out.getvalue()
