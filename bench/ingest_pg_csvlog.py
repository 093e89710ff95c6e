"""Benchmark pg-csvlog against DuckDB's own read_csv of the same file.

Writes a csvlog of sessions like a busy pgAudit + auto_explain server (connect,
statements each with an AUDIT line and a JSON plan, a cursor read now and then,
disconnect), parses it in ``batch_bytes`` chunks as the runner does, and prints
events/s next to the ceiling: ``CREATE TABLE t AS SELECT * FROM read_csv(...)``
of the same file, on one thread and on all.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from molehunt.ingest.pg_csvlog import PgCsvlogParser

BATCH_BYTES = 64 * 1024 * 1024
SESSIONS = 20_000
STATEMENTS = 10  # per session, each an AUDIT line and a plan

_PLAN = (
    '{{\n  ""Query Text"": ""{query}"",\n  ""Plan"": {{\n    ""Node Type"": ""Index Scan"",\n'
    '    ""Parallel Aware"": false,\n    ""Relation Name"": ""clients"",\n'
    '    ""Alias"": ""clients"",\n    ""Startup Cost"": 0.28,\n    ""Total Cost"": 8.30,\n'
    '    ""Plan Rows"": 1,\n    ""Actual Rows"": {rows},\n    ""Actual Loops"": 1\n  }}\n}}'
)


def _line(t: str, user: str, sid: str, pid: int, n: int, tag: str, message: str, app: str) -> str:
    return (
        f'{t},"{user}","crm",{pid},"10.20.{pid % 250}.{n % 250}:{40000 + pid % 20000}",{sid},{n},'
        f'"{tag}",2026-11-26 12:00:00 UTC,3/{n},0,LOG,00000,"{message}",,,,,,,,,"{app}",'
        '"client backend",,0\n'
    )


def write_log(path: Path) -> int:
    """Write the log; the number of events it holds."""
    events = 0
    with path.open("w", encoding="utf-8") as f:
        for s in range(SESSIONS):
            pid = 10_000 + s
            sid = f"6b0826{s:02x}.{pid:x}"
            user = f"agent_{s % 300}"
            app = "crm-webapp" if s % 3 else "DBeaver 23.1.0"
            t = f"2026-11-26 {8 + s // 2000 % 10:02d}:{s % 60:02d}:{s % 60:02d}.{s % 1000:03d} UTC"
            lines = [
                _line(
                    t,
                    user,
                    sid,
                    pid,
                    1,
                    "authentication",
                    f"connection authorized: user={user} database=crm application_name={app}",
                    "",
                )
            ]
            for k in range(STATEMENTS):
                n = 2 + 2 * k
                if k == 5 and s % 10 == 0:
                    query = "DECLARE c CURSOR FOR SELECT * FROM clients"
                    audit = f"AUDIT: SESSION,{k + 1},1,READ,DECLARE CURSOR,,,{query},<none>,0"
                    lines.append(_line(t, user, sid, pid, n, "DECLARE CURSOR", audit, app))
                    plan = _PLAN.format(query=query, rows=500 + s % 1000)
                    message = f"duration: 0.050 ms  plan:\n{plan}"
                    lines.append(_line(t, user, sid, pid, n + 1, "CLOSE CURSOR", message, app))
                else:
                    query = f"SELECT name, phone FROM clients WHERE id = {s * 10 + k}"
                    plan = _PLAN.format(query=query, rows=1)
                    message = f"duration: 0.022 ms  plan:\n{plan}"
                    lines.append(_line(t, user, sid, pid, n, "SELECT", message, app))
                    audit = (
                        f"AUDIT: SESSION,{k + 1},1,READ,SELECT,TABLE,public.clients,"
                        f'""{query};"",<none>,1'
                    )
                    lines.append(_line(t, user, sid, pid, n + 1, "SELECT", audit, app))
                events += 1
            lines.append(
                _line(t, user, sid, pid, 30, "idle", "disconnection: session time: 0:00:01", app)
            )
            events += 2
            f.write("".join(lines))
    return events


def parse_file(path: Path) -> tuple[int, int, float]:
    """Parse ``path`` in batches; (events, rejected, seconds)."""
    parser = PgCsvlogParser()
    events = rejected = 0
    position = 0
    pending = b""
    start = time.perf_counter()
    with path.open("rb") as f:
        while True:
            chunk = f.read(BATCH_BYTES)
            data = pending + chunk if pending else chunk
            if not data:
                break
            result = parser.parse(data, base_offset=position, source_id="bench", path=str(path))
            if result.consumed == 0 and not chunk:
                break
            events += result.events
            rejected += len(result.rejected)
            position += result.consumed
            pending = data[result.consumed :]
    return events, rejected, time.perf_counter() - start


def duckdb_ceiling(path: Path, threads: int | None) -> float:
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    if threads:
        con.execute(f"SET threads = {threads}")
    columns = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(26)) + "}"
    start = time.perf_counter()
    con.execute(
        f"CREATE TABLE t AS SELECT * FROM read_csv('{path}', columns = {columns}, header = false,"
        " quote = '\"', escape = '\"', strict_mode = false)"
    )
    seconds = time.perf_counter() - start
    con.close()
    return seconds


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "postgresql.csv"
        expected = write_log(path)
        size = path.stat().st_size
        with path.open("rb") as f:
            lines = sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 24), b""))
        events, rejected, seconds = parse_file(path)
        one = duckdb_ceiling(path, threads=1)
        every = duckdb_ceiling(path, threads=None)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"file: {size / 1e6:.0f} MB, {lines:,} lines, {expected:,} events expected")
    print(f"{'reader':<34} {'seconds':>8} {'events/s':>12} {'MB/s':>8} {'vs us':>7}")
    for name, secs in (
        ("molehunt pg-csvlog (1 thread)", seconds),
        ("duckdb read_csv, 1 thread", one),
        ("duckdb read_csv, all threads", every),
    ):
        print(
            f"{name:<34} {secs:8.2f} {events / secs:12,.0f} {size / 1e6 / secs:8.0f}"
            f" {seconds / secs:7.2f}"
        )
    print(f"events: {events:,}  rejected: {rejected}  peak RSS: {peak_mb:,.0f} MB")
    if events != expected or rejected:
        sys.exit(f"expected {expected} events and no rejects")


if __name__ == "__main__":
    main()
