"""pg-csvlog: events/s against DuckDB's own read_csv of the same file, and peak RSS.

Run: ``python -m bench.ingest_pg_csvlog [--sessions N]``. Two logs of a busy
pgAudit + auto_explain server are written into a temporary folder and parsed in
``batch_bytes`` chunks as the runner does:

* ``realistic``: what production writes (``pgaudit.log_rows = on``, plans only
  for slow statements): sessions of AUDIT lines, a JSON plan now and then, a
  cursor read (DECLARE CURSOR, whose count comes from its plan) every tenth
  session.
* ``all-plans``: the worst case (``auto_explain.log_min_duration = 0``): every
  statement is followed by its multi-line JSON plan, so most bytes are plans.

Each measured step runs in its own process (three times, interleaved; the best
is shown), times only its own work and reports its own peak RSS. The ceiling is
``CREATE TABLE t AS SELECT * FROM read_csv(...)`` of the same file on one
thread (the parser uses one core); the parser's one-time start-up (imports,
its DuckDB connection) is left out as DuckDB's is.

The parser's process tunes its allocator exactly as ``molehunt ingest`` does
(:func:`molehunt.ingest.memory.tune_allocator`, called by the runner before the
first batch); the ceiling's process is left as it is (DuckDB has its own
allocator).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

BATCH_BYTES = 64 * 2**20
REPEAT = 3
STATEMENTS = 20  # per session

# Runs in a child process: argv = module, class, path, batch bytes.
PARSE = """
import importlib, json, resource, sys, time
from molehunt.ingest.memory import tune_allocator
batch = int(sys.argv[4])
tune_allocator(batch)  # as the runner does before the first batch
parser = getattr(importlib.import_module(sys.argv[1]), sys.argv[2])()
events = rejected = 0
# Start-up (imports pyarrow makes on first use, the DuckDB connection) is paid
# once per process, as DuckDB's own is outside the ceiling: warm up on a copy.
with open(sys.argv[3], "rb") as f:
    head = f.read(1 << 16)
parser.parse(head, base_offset=0, source_id="warm-up", path=sys.argv[3])
start = time.perf_counter()
with open(sys.argv[3], "rb") as f:
    offset, pending = 0, b""
    while True:
        chunk = f.read(max(batch - len(pending), 1 << 20))
        data = pending + chunk
        if not data:
            break
        result = parser.parse(
            data, base_offset=offset, source_id="bench", path=sys.argv[3], final=not chunk
        )
        events += result.events
        rejected += len(result.rejected)
        offset += result.consumed
        pending = data[result.consumed:]
        if not chunk:
            break
seconds = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "events": events, "rejected": rejected, "rss": rss}))
"""

# The ceiling: DuckDB's CSV reader cutting the same file into its fields
# (argv = path, read_csv options).
CEILING = """
import duckdb, json, resource, sys, time
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
con.execute("SET threads = 1")
start = time.perf_counter()
con.execute(f"CREATE TABLE t AS SELECT * FROM read_csv('{sys.argv[1]}', {sys.argv[2]})")
seconds = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "rss": rss}))
"""

CSV_OPTIONS = (
    "columns = {"
    + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(26))
    + "}, header = false, quote = '\"', escape = '\"', strict_mode = false"
)

_PLAN = (
    '{{\n  "Query Text": "{query}",\n  "Plan": {{\n    "Node Type": "Index Scan",\n'
    '    "Parallel Aware": false,\n    "Relation Name": "clients",\n'
    '    "Alias": "clients",\n    "Startup Cost": 0.28,\n    "Total Cost": 8.30,\n'
    '    "Plan Rows": 1,\n    "Actual Rows": {rows},\n    "Actual Loops": 1\n  }}\n}}'
)


@dataclass(frozen=True, slots=True)
class Record:
    """One log record, before it is written in either format."""

    time: str
    user: str
    database: str
    pid: int
    host: str
    port: int
    session_id: str
    line: int
    tag: str
    message: str
    app: str


def sessions(count: int, *, all_plans: bool) -> Iterator[tuple[list[Record], int]]:
    """The records of each session and how many events they hold."""
    for s in range(count):
        pid = 10_000 + s % 50_000
        sid = f"6b0826{s:02x}.{pid:x}"
        user = f"agent_{s % 300}"
        app = "crm-webapp" if s % 3 else "DBeaver 23.1.0 - Main"
        hms = f"{8 + s // 4000 % 10:02d}:{s // 60 % 60:02d}:{s % 60:02d}"
        host = f"10.20.{pid % 250}.{s % 250}"
        port = 40_000 + pid % 20_000
        lines = iter(range(1, 10_000))

        def rec(
            tag: str,
            message: str,
            who: str = user,
            db: str = "crm",
            name: str = app,
            *,
            s: int = s,
            pid: int = pid,
            sid: str = sid,
            hms: str = hms,
            host: str = host,
            port: int = port,
            lines: Iterator[int] = lines,
        ) -> Record:
            n = next(lines)
            stamp = f"2026-11-26 {hms}.{(s + n) % 1000:03d} UTC"
            return Record(stamp, who, db, pid, host, port, sid, n, tag, message, name)

        out = [
            rec("", f"connection received: host={host} port={port}", "", "", ""),
            rec(
                "authentication",
                f"connection authorized: user={user} database=crm application_name={app}",
            ),
        ]
        events = 2  # connect and disconnect
        for k in range(STATEMENTS):
            if k == 5 and s % 10 == 0:
                query = "DECLARE c CURSOR FOR SELECT national_id, phone FROM clients"
                out.append(
                    rec(
                        "DECLARE CURSOR",
                        f'AUDIT: SESSION,{k + 1},1,READ,DECLARE CURSOR,,,"{query}",<none>,0',
                    )
                )
                plan = _PLAN.format(query=query, rows=500 + s % 1000)
                out.append(rec("CLOSE CURSOR", f"duration: 0.050 ms  plan:\n{plan}"))
            elif k % 4 == 3:
                query = f"UPDATE clients SET phone = $1 WHERE id = {s * 10 + k}"
                audit = (
                    f"AUDIT: SESSION,{k + 1},1,WRITE,UPDATE,TABLE,public.clients,{query},"
                    f'"13900001234",1'
                )
                out.append(rec("UPDATE", audit))
            else:
                query = f"SELECT name, phone FROM clients WHERE id = {s * 10 + k}"
                audit = (
                    f'AUDIT: SESSION,{k + 1},1,READ,SELECT,TABLE,public.clients,"{query};",<none>,1'
                )
                out.append(rec("SELECT", audit))
                if all_plans or (s * STATEMENTS + k) % 25 == 0:
                    plan = _PLAN.format(query=query + ";", rows=1)
                    out.append(rec("SELECT", f"duration: 212.022 ms  plan:\n{plan}"))
            events += 1
        out.append(rec("idle", "disconnection: session time: 0:00:01.220"))
        yield out, events


def csv_line(r: Record) -> str:
    def q(text: str) -> str:
        return '"' + text.replace('"', '""') + '"'

    return (
        f"{r.time},{q(r.user) if r.user else ''},{q(r.database) if r.database else ''},{r.pid},"
        f'"{r.host}:{r.port}",{r.session_id},{r.line},{q(r.tag)},2026-11-26 08:00:00 UTC,'
        f"3/{r.line},0,LOG,00000,{q(r.message)},,,,,,,,,{q(r.app)},"
        '"client backend",,0\n'
    )


def write_log(
    path: Path, count: int, *, all_plans: bool, line: Callable[[Record], str] = csv_line
) -> int:
    """Write ``count`` sessions; the number of events they hold."""
    total = 0
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for records, events in sessions(count, all_plans=all_plans):
            f.write("".join(line(r) for r in records))
            total += events
    return total


def run(code: str, *args: str) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
    )
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def compare(
    kind: str,
    parser: tuple[str, str],
    line: Callable[[Record], str],
    ceiling_options: str,
    count: int,
) -> None:
    """Generate both logs of ``kind``, measure the parser and the ceiling, print a table.

    The all-plans log gets a quarter of the sessions: its plans make it 2 M lines.
    """
    print(f"{'log':<22}{'step':<26}{'seconds':>9}{'events/s':>12}{'MB/s':>8}{'peak RSS MiB':>14}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, all_plans in (("realistic", False), ("all-plans", True)):
            path = Path(tmp) / f"{name}.log"
            n = count // 4 if all_plans else count
            expected = write_log(path, n, all_plans=all_plans, line=line)
            size = path.stat().st_size
            with path.open("rb") as f:
                lines = sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 24), b""))
            # The machine is shared: each side's best of REPEAT runs, interleaved.
            ceilings, parses = [], []
            for _ in range(REPEAT):
                ceilings.append(run(CEILING, str(path), ceiling_options))
                parses.append(run(PARSE, *parser, str(path), str(BATCH_BYTES)))
            ceiling = min(ceilings, key=lambda r: r["seconds"])
            ours = min(parses, key=lambda r: r["seconds"])
            label = f"{kind} {name}"
            for step, r in (("DuckDB read_csv (ceiling)", ceiling), ("molehunt parser", ours)):
                print(
                    f"{label:<22}{step:<26}{r['seconds']:>9.2f}{expected / r['seconds']:>12,.0f}"
                    f"{size / 1e6 / r['seconds']:>8.0f}{r['rss']:>14,.0f}"
                )
            print(
                f"{label:<22}ratio to ceiling: {ceiling['seconds'] / ours['seconds']:.2f}"
                f"  ({lines:,} lines, {size / 2**20:,.0f} MiB, {expected:,} events,"
                f" {BATCH_BYTES // 2**20} MiB batches)"
            )
            if ours["events"] != expected or ours["rejected"]:
                print(f"  WARNING: {ours['events']:,.0f} events, {ours['rejected']:,.0f} rejected")


def main(sessions_count: int = 30_000) -> None:
    compare(
        "pg-csvlog",
        ("molehunt.ingest.postgres.csvlog", "PgCsvlogParser"),
        csv_line,
        CSV_OPTIONS,
        sessions_count,
    )


def cli(description: str | None = __doc__) -> argparse.ArgumentParser:
    """The command line of the PostgreSQL benchmarks."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--sessions", type=int, default=30_000)
    return parser


if __name__ == "__main__":
    args = cli().parse_args()
    main(args.sessions)
