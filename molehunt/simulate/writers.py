"""Log lines in the real formats of ``formats.md``, buffered one day at a time.

Every event of a day is collected with its time, then each log is sorted and
written, so files are in time order while memory stays bounded by one day.
Times are integer microseconds since the epoch, UTC.

* PostgreSQL 15 ``csvlog`` with pgAudit 1.7 (``log_rows = on``), log_connections,
  log_disconnections and auto_explain in JSON: the shapes of
  ``shared/fixtures/postgres/pgaudit-sample.csv``. A plain statement's plan is
  logged just before its AUDIT line (both at executor end); a cursor's plan
  comes when it is closed; ``COPY ... TO`` gets no plan and 0 rows.
* The CRM's record-access log (JSON lines).
* Squid with molehunt's logformat (SSL-bumped HTTPS, so URLs of allowed sites
  are seen; blocked sites are refused at CONNECT).
* Winlogbeat 8 ECS JSON lines: Security 4624/4634, Sysmon 1, 3 and 11.
"""

from __future__ import annotations

import hashlib
import json
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

LOCAL_OFFSET_US = 8 * 3600 * 1_000_000  # Asia/Shanghai has no DST
SECOND = 1_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE


def _utc(us: int) -> datetime:
    return datetime.fromtimestamp(us // SECOND, UTC)


class _SecondCache:
    """Formatting a time costs more than the rest of a line: cache the seconds part."""

    __slots__ = ("fmt", "key", "offset", "text")

    def __init__(self, fmt: str, offset_us: int = 0) -> None:
        self.fmt = fmt
        self.key = -1
        self.text = ""
        self.offset = offset_us

    def __call__(self, us: int) -> str:
        s = (us + self.offset) // SECOND
        if s != self.key:
            self.key = s
            self.text = datetime.fromtimestamp(s, UTC).strftime(self.fmt)
        return self.text


# -- PostgreSQL csvlog -------------------------------------------------------------


def _csv_quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _audit_field(text: str) -> str:
    # pgAudit quotes a field of its payload only when it must (comma, quote, newline).
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def query_id(text: str) -> int:
    """A stable stand-in for pg_stat_statements' query id."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), signed=True)


@dataclass(slots=True)
class PgSession:
    pid: int
    user: str
    database: str
    host: str
    port: int
    app: str  # "" when the client sets no application_name
    start_us: int
    backend: int
    lxid: int
    line: int = 0
    statement: int = 0

    @property
    def session_id(self) -> str:
        return f"{self.start_us // SECOND:x}.{self.pid:x}"


@dataclass(frozen=True, slots=True)
class Statement:
    """One audited statement and what the server did with it."""

    text: str
    audit_class: str = "READ"  # READ, WRITE, MISC...
    command: str = "SELECT"
    object_type: str = "TABLE"
    object_name: str = "public.clients"
    parameter: str = "<none>"
    rows: int = 0
    plan: str | None = None  # node type of the plan's top node; None: no plan
    plan_extra: str = ""  # extra JSON members of the top node (already indented)
    duration_ms: float = 0.5
    xid: int = 0


# One auto_explain plan (JSON, log_analyze on, log_timing off), as the server
# indents it; filled in with % formatting, which is much cheaper than json.dumps.
_PLAN = """duration: %.3f ms  plan:
{
  "Query Text": %s,
  "Plan": {
    "Node Type": "%s",
    "Parallel Aware": false,
    "Async Capable": false,%s
    "Startup Cost": %.2f,
    "Total Cost": %.2f,
    "Plan Rows": %d,
    "Plan Width": %d,
    "Actual Rows": %d,
    "Actual Loops": 1%s
  }
}"""
_RELATION = """
    "Relation Name": "clients",
    "Alias": "clients","""
_INDEX = """
    "Scan Direction": "Forward",
    "Index Name": "clients_pkey",
    "Relation Name": "clients",
    "Alias": "clients","""


def plan_message(statement: Statement) -> str:
    node = statement.plan or "Seq Scan"
    head = _INDEX if node == "Index Scan" else _RELATION if node == "Seq Scan" else ""
    rows = statement.rows
    estimate = max(1, int(rows * 0.8) + 1)
    return _PLAN % (
        statement.duration_ms,
        json.dumps(statement.text, ensure_ascii=False),
        node,
        head,
        0.42 if node == "Index Scan" else 0.0,
        8.44 + rows * 0.011,
        estimate,
        132,
        rows,
        statement.plan_extra,
    )


class PgCsvlog:
    """Collects one day of PostgreSQL events and writes them as csvlog records."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.items: list[tuple[int, int, int, PgSession, Statement | None]] = []
        self.seq = 0
        self.time = _SecondCache("%Y-%m-%d %H:%M:%S")
        self.records = 0
        self.audits = 0
        self.connects = 0
        self.disconnects = 0

    # kinds of item, in the order the server writes them at the same instant
    RECEIVED, AUTHORIZED, PLAN_FIRST, AUDIT_ONLY, AUDIT_THEN_PLAN, CLOSE_PLAN, DISCONNECT = range(7)

    def _add(self, us: int, kind: int, session: PgSession, stmt: Statement | None) -> None:
        self.seq += 1
        self.items.append((us, self.seq, kind, session, stmt))

    def connect(self, us: int, session: PgSession) -> None:
        self._add(us, self.RECEIVED, session, None)
        self._add(us + 600, self.AUTHORIZED, session, None)

    def statement(self, us: int, session: PgSession, stmt: Statement) -> None:
        """``us`` is when the statement ends (when pgAudit logs it with its rows)."""
        if stmt.command == "DECLARE CURSOR":
            # Declared now, fetched by the client, planned when the cursor closes.
            self._add(us, self.AUDIT_THEN_PLAN, session, stmt)
            self._add(us + int(stmt.duration_ms * 1000) + 400, self.CLOSE_PLAN, session, stmt)
        elif stmt.plan is None:
            self._add(us, self.AUDIT_ONLY, session, stmt)
        else:
            self._add(us, self.PLAN_FIRST, session, stmt)

    def disconnect(self, us: int, session: PgSession) -> None:
        self._add(us, self.DISCONNECT, session, None)

    def flush(self, until: int | None = None) -> None:
        """Write the events before ``until`` (all when None) in time order; later ones
        (a night shift past midnight) wait for the next day's flush."""
        self.items.sort(key=lambda item: (item[0], item[1]))
        cut = len(self.items) if until is None else bisect_left(self.items, (until,))
        ready, self.items = self.items[:cut], self.items[cut:]
        write = self.out.write
        for us, _seq, kind, s, stmt in ready:
            t = f"{self.time(us)}.{us // 1000 % 1000:03d} UTC"
            start = f"{_utc(s.start_us).strftime('%Y-%m-%d %H:%M:%S')} UTC"
            conn = f'"{s.host}:{s.port}"'
            head = f"{t},"
            if kind == self.RECEIVED:
                s.line += 1
                write(
                    f'{head},,{s.pid},{conn},{s.session_id},{s.line},"",{start},,0,LOG,00000,'
                    f'"connection received: host={s.host} port={s.port}",,,,,,,,,'
                    '"","not initialized",,0\n'
                )
                self.records += 1
                continue
            who = f'{head}"{s.user}","{s.database}",{s.pid},{conn},{s.session_id},'
            if kind == self.AUTHORIZED:
                s.line += 1
                s.lxid += 1
                app = f" application_name={s.app}" if s.app else ""
                msg = f"connection authorized: user={s.user} database={s.database}{app}"
                write(
                    f'{who}{s.line},"authentication",{start},{s.backend}/{s.lxid},0,LOG,00000,'
                    f'{_csv_quote(msg)},,,,,,,,,"","client backend",,0\n'
                )
                self.records += 1
                self.connects += 1
            elif kind == self.DISCONNECT:
                s.line += 1
                length = us - s.start_us
                hours, rest = divmod(length, HOUR)
                minutes, rest = divmod(rest, MINUTE)
                msg = (
                    f"disconnection: session time: {hours}:{minutes:02d}:{rest / SECOND:06.3f} "
                    f"user={s.user} database={s.database} host={s.host} port={s.port}"
                )
                write(
                    f'{who}{s.line},"idle",{start},,0,LOG,00000,{_csv_quote(msg)},,,,,,,,,'
                    f'{_csv_quote(s.app)},"client backend",,0\n'
                )
                self.records += 1
                self.disconnects += 1
            else:
                assert stmt is not None
                self._statement(write, who, start, us, kind, s, stmt)

    def _statement(
        self, write: Any, who: str, start: str, us: int, kind: int, s: PgSession, stmt: Statement
    ) -> None:
        qid = query_id(stmt.text)
        tail = f',,,,,,,,,{_csv_quote(s.app)},"client backend",,{qid}\n'
        if kind == self.CLOSE_PLAN:
            s.line += 1
            write(
                f'{who}{s.line},"CLOSE CURSOR",{start},{s.backend}/{s.lxid},0,LOG,00000,'
                f"{_csv_quote(plan_message(stmt))}{tail}"
            )
            self.records += 1
            return
        s.lxid += 1
        s.statement += 1
        vxid = f"{s.backend}/{s.lxid}"
        tag = f'"{stmt.command}",{start},{vxid},{stmt.xid}'
        rows = 0 if stmt.command in ("DECLARE CURSOR", "COPY") else stmt.rows
        payload = (
            f"AUDIT: SESSION,{s.statement},1,{stmt.audit_class},{stmt.command},"
            f"{stmt.object_type},{stmt.object_name},{_audit_field(stmt.text)},"
            f"{_audit_field(stmt.parameter)},{rows}"
        )
        if kind == self.PLAN_FIRST:
            s.line += 1
            write(f"{who}{s.line},{tag},LOG,00000,{_csv_quote(plan_message(stmt))}{tail}")
            self.records += 1
        s.line += 1
        write(f"{who}{s.line},{tag},LOG,00000,{_csv_quote(payload)}{tail}")
        self.records += 1
        self.audits += 1


# -- the CRM's record-access log ------------------------------------------------------


class Lines:
    """One day of (time, line) pairs of a line-per-record log."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.items: list[tuple[int, int, str]] = []
        self.seq = 0
        self.count = 0

    def add(self, us: int, line: str) -> None:
        self.seq += 1
        self.items.append((us, self.seq, line))

    def flush(self, until: int | None = None) -> None:
        """Write the lines before ``until`` (all when None) in time order."""
        self.items.sort(key=lambda item: (item[0], item[1]))
        cut = len(self.items) if until is None else bisect_left(self.items, (until,))
        self.out.writelines(f"{line}\n" for _, _, line in self.items[:cut])
        self.count += cut
        del self.items[:cut]


class AppLog(Lines):
    def __init__(self, out: IO[str]) -> None:
        super().__init__(out)
        self.local = _SecondCache("%Y-%m-%dT%H:%M:%S", LOCAL_OFFSET_US)
        self.client_ids = 0

    def access(
        self, us: int, user: str, ip: str, action: str, client_ids: list[str], detail: str
    ) -> None:
        ts = f"{self.local(us)}.{us // 1000 % 1000:03d}+08:00"
        record = {
            "ts": ts,
            "app": "crm",
            "user": user,
            "src_ip": ip,
            "action": action,
            "client_ids": client_ids,
            "rows": len(client_ids),
            "detail": detail,
        }
        self.client_ids += len(client_ids)
        self.add(us, json.dumps(record, ensure_ascii=False))


# -- Squid ----------------------------------------------------------------------------

UA_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)


class SquidLog(Lines):
    def request(
        self,
        us: int,
        ip: str,
        user: str,
        method: str,
        host: str,
        path: str,
        *,
        allowed: bool = True,
        up: int = 0,
        down: int = 20_000,
        mime: str = "text/html",
        request_type: str = "-",
        duration_ms: int = 120,
    ) -> None:
        ts = f"{us // SECOND}.{us // 1000 % 1000:03d}"
        if not allowed:
            # Blocked at CONNECT: ssl-bump never sees the URL.
            self.add(
                us,
                f"{ts} {ip} {user} CONNECT - {host} 443 403 TCP_DENIED/HIER_NONE 260 260 "
                f'3950 180 "text/html" 0 "{UA_CHROME}" "-" - "{host}:443"',
            )
            return
        header = 540 + len(path)
        length = str(up) if up else "-"
        self.add(
            us,
            f"{ts} {ip} {user} {method} https {host} 443 200 TCP_MISS/HIER_DIRECT "
            f'{up + header} {header} {down + 320} 320 "{mime}" {duration_ms} "{UA_CHROME}" '
            f'"{request_type}" {length} "https://{host}{path}"',
        )

    def tunnel(self, us: int, ip: str, user: str, host: str, up: int, down: int, ms: int) -> None:
        """A CONNECT tunnel Squid did not bump: only the host and the bytes each way."""
        ts = f"{us // SECOND}.{us // 1000 % 1000:03d}"
        self.add(
            us,
            f"{ts} {ip} {user} CONNECT - {host} 443 200 TCP_TUNNEL/HIER_DIRECT {up + 180} 180 "
            f'{down} 39 "-" {ms} "{UA_CHROME}" "-" - "{host}:443"',
        )


# -- Winlogbeat -----------------------------------------------------------------------

SECURITY = "Security"
SYSMON = "Microsoft-Windows-Sysmon/Operational"
_PROVIDERS = {SECURITY: "Microsoft-Windows-Security-Auditing", SYSMON: "Microsoft-Windows-Sysmon"}
_ACTIONS = {
    4624: "logged-in",
    4634: "logged-out",
    1: "Process Create (rule: ProcessCreate)",
    3: "Network connection detected (rule: NetworkConnect)",
    11: "File created (rule: FileCreate)",
}


class WinlogNdjson(Lines):
    def __init__(self, out: IO[str]) -> None:
        super().__init__(out)
        self.utc = _SecondCache("%Y-%m-%dT%H:%M:%S")
        self.record_ids: dict[str, int] = {}
        self.by_code: dict[int, int] = {}

    def event(self, us: int, computer: str, channel: str, code: int, data: dict[str, str]) -> None:
        stamp = f"{self.utc(us)}.{us // 1000 % 1000:03d}Z"
        record_id = self.record_ids.get(computer, 1000) + 1
        self.record_ids[computer] = record_id
        self.by_code[code] = self.by_code.get(code, 0) + 1
        doc: dict[str, Any] = {
            "@timestamp": stamp,
            "agent": {"type": "winlogbeat", "version": "8.11.3", "name": computer.split(".")[0]},
            "ecs": {"version": "8.0.0"},
            "event": {
                "code": str(code),
                "kind": "event",
                "provider": _PROVIDERS[channel],
                "action": _ACTIONS[code],
                "created": stamp,
            },
            "host": {"name": computer},
            "log": {"level": "information"},
            "winlog": {
                "api": "wineventlog",
                "channel": channel,
                "computer_name": computer,
                "event_data": data,
                "event_id": str(code),
                "provider_name": _PROVIDERS[channel],
                "record_id": record_id,
            },
        }
        if channel == SECURITY:
            doc["event"]["outcome"] = "success"
        self.add(us, json.dumps(doc, ensure_ascii=False, separators=(",", ":")))


# -- all the logs of a run --------------------------------------------------------------


@dataclass(slots=True)
class Logs:
    """The open log files of a run."""

    pg: PgCsvlog
    app: AppLog
    squid: SquidLog
    win: WinlogNdjson
    files: list[IO[str]] = field(default_factory=list)

    @classmethod
    def open(cls, folder: Path) -> Logs:
        paths = {
            "pg": folder / "postgresql" / "postgresql.csv",
            "app": folder / "crm" / "access.log",
            "squid": folder / "squid" / "access.log",
            "win": folder / "windows" / "winlogbeat.ndjson",
        }
        handles: dict[str, IO[str]] = {}
        for name, path in paths.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            handles[name] = path.open("w", encoding="utf-8", newline="\n", buffering=1 << 20)
        return cls(
            PgCsvlog(handles["pg"]),
            AppLog(handles["app"]),
            SquidLog(handles["squid"]),
            WinlogNdjson(handles["win"]),
            list(handles.values()),
        )

    def flush_day(self, until: int | None = None) -> None:
        """Write what happened before ``until`` (the next day's start; None: everything)."""
        self.pg.flush(until)
        for log in (self.app, self.squid, self.win):
            log.flush(until)

    def close(self) -> None:
        self.flush_day()
        for f in self.files:
            f.close()

    def counts(self) -> dict[str, int]:
        """Rows each store table should get from these logs."""
        win = self.win.by_code
        return {
            "events_db": self.pg.audits,
            "events_auth": self.pg.connects
            + self.pg.disconnects
            + win.get(4624, 0)
            + win.get(4634, 0),
            "events_app": self.app.count,
            "record_access": self.app.client_ids,
            "events_http": self.squid.count,
            "events_process": win.get(1, 0),
            "events_network": win.get(3, 0),
            "events_file": win.get(11, 0),
        }

    def lines(self) -> dict[str, int]:
        return {
            "logs/postgresql/postgresql.csv": self.pg.records,
            "logs/crm/access.log": self.app.count,
            "logs/squid/access.log": self.squid.count,
            "logs/windows/winlogbeat.ndjson": self.win.count,
        }


def iter_days(start_us: int, days: int) -> Iterable[int]:
    return (start_us + d * 24 * HOUR for d in range(days))
