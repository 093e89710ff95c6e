"""Squid parsers: events/s against DuckDB's own read_csv of the same file, and peak RSS.

Run: ``python -m bench.ingest_squid [--lines N] [--repeats R]`` (default 1,500,000
per format, best of 3). Both formats are generated into a temporary folder; each
measured step runs in its own process, times only its own work and reports its
own peak RSS. The parser's process tunes its allocator as ``molehunt ingest``
does (:func:`molehunt.ingest.memory.tune_allocator`).

Times are CPU seconds of the working process (all its threads: DuckDB uses every
core on both sides), best of the interleaved repeats: the machine is shared, and
wall time measures the neighbours' load too (it swings 2x under load).

Neither side is warmed up. The parsers' compiled kernel
(:mod:`molehunt.ingest.squid_cut`) is loaded from numba's disk cache on the
first parse, inside the timing (about 0.3 CPU s); with a cold cache the first
repeat also compiles it (about 7 CPU s), and a later repeat is the best.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

BATCH_BYTES = 64 * 2**20

# Runs in a child process: argv = kind, path, batch bytes.
PARSE = """
import json, resource, sys, time
from molehunt.ingest.squid import SquidParser
from molehunt.ingest.squid_native import SquidNativeParser
from molehunt.ingest.memory import tune_allocator
tune_allocator(int(sys.argv[3]))
parser = {"squid": SquidParser, "squid-native": SquidNativeParser}[sys.argv[1]]()
batch = int(sys.argv[3])
events = rejected = 0
start = time.process_time()
with open(sys.argv[2], "rb") as f:
    offset, pending = 0, b""
    while True:
        chunk = f.read(batch - len(pending))
        data = pending + chunk
        if not data:
            break
        result = parser.parse(data, base_offset=offset, source_id="bench", path=sys.argv[2])
        events += result.events
        rejected += len(result.rejected)
        offset += result.consumed
        pending = data[result.consumed:]
        if not chunk:
            break
seconds = time.process_time() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "rows": events, "rejected": rejected, "rss": rss}))
"""

# The ceiling: DuckDB's CSV reader cutting the same file into its space-separated
# fields (the native format pads a field with spaces, hence null_padding).
CEILING = """
import duckdb, json, resource, sys, time
con = duckdb.connect()
con.execute("SET enable_progress_bar=false")
options = {
    "squid": "delim=' ', quote='\\"', escape='\\\\', header=false",
    "squid-native": "delim=' ', quote='', header=false, all_varchar=true, null_padding=true,"
    " strict_mode=false",
}[sys.argv[1]]
start = time.process_time()
con.execute(f"CREATE TABLE t AS SELECT * FROM read_csv('{sys.argv[2]}', {options})")
seconds = time.process_time() - start
rows = con.execute("SELECT count(*) FROM t").fetchone()[0]
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "rows": rows, "rejected": 0, "rss": rss}))
"""

AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) Gecko/20100101 Firefox/121.0",
    "curl/8.5.0",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17126)",
)
SITES = (
    "www.example.com",
    "pan.baidu.com",
    "mail.corp.local",
    "crm.corp.local",
    "cdn.jsdelivr.net",
)


def generate(path: Path, lines: int, *, native: bool) -> None:
    """A proxy day: mostly GETs, some uploads (POST) and CONNECT tunnels."""
    rng = random.Random(7)
    t0 = 1_777_777_777
    with path.open("w", encoding="utf-8", newline="\n") as out:
        buf: list[str] = []
        for i in range(lines):
            ts = f"{t0 + i // 20}.{rng.randrange(1000):03d}"
            ip = f"10.20.{rng.randrange(40)}.{rng.randrange(1, 255)}"
            user = f"u{rng.randrange(3000):05d}" if rng.random() < 0.7 else "-"
            site = rng.choice(SITES)
            tr = rng.randrange(1, 5000)
            roll = rng.random()
            if roll < 0.1:
                method, url, up, ct = "CONNECT", f"{site}:443", rng.randrange(500, 9_000_000), "-"
                mt, result, status = "-", "TCP_TUNNEL", 200
            elif roll < 0.2:
                method, url = "POST", f"http://{site}/upload/{i}"
                up, ct = rng.randrange(1000, 3_000_000), "multipart/form-data; boundary=----x7"
                mt, result, status = "application/json", "TCP_MISS", 200
            else:
                method, url, up, ct = "GET", f"http://{site}/item/{i % 9973}?", 180, "-"
                mt, result, status = "text/html", "TCP_MISS", rng.choice((200, 200, 304, 404))
            down = rng.randrange(200, 500_000)
            if native:
                buf.append(
                    f"{ts} {tr:6d} {ip} {result}/{status:03d} {down} {method} {url} {user}"
                    f" HIER_DIRECT/192.0.2.{rng.randrange(1, 255)} {mt}\n"
                )
            else:
                port = 443 if method == "CONNECT" else 80
                scheme = "-" if method == "CONNECT" else "http"
                cl = up if method == "POST" else "-"
                buf.append(
                    f"{ts} {ip} {user} {method} {scheme} {site} {port} {status}"
                    f' {result}/HIER_DIRECT {up} {min(up, 300)} {down} 250 "{mt}" {tr}'
                    f' "{rng.choice(AGENTS)}" "{ct}" {cl} "{url}"\n'
                )
            if len(buf) >= 100_000:
                out.write("".join(buf))
                buf.clear()
        out.write("".join(buf))


def _run(code: str, *args: str) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
    )
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _seconds(result: dict[str, float]) -> float:
    return result["seconds"]


def main(lines: int = 1_500_000, repeats: int = 3) -> None:
    print(f"best of {repeats}, CPU seconds of the working process")
    print(f"{'format':<14}{'step':<26}{'CPU s':>9}{'events/s':>12}{'peak RSS MiB':>14}")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("squid", "squid-native"):
            path = Path(tmp) / f"{kind}.log"
            generate(path, lines, native=kind == "squid-native")
            ceiling = ours = {"seconds": float("inf")}
            for _ in range(repeats):
                ceiling = min(ceiling, _run(CEILING, kind, str(path)), key=_seconds)
                ours = min(ours, _run(PARSE, kind, str(path), str(BATCH_BYTES)), key=_seconds)
            size = path.stat().st_size / 2**20
            for step, r in (("DuckDB read_csv (ceiling)", ceiling), ("molehunt parser", ours)):
                rate = r["rows"] / r["seconds"]
                print(f"{kind:<14}{step:<26}{r['seconds']:>9.2f}{rate:>12,.0f}{r['rss']:>14,.0f}")
            if ours["rows"] != lines or ours["rejected"]:
                print(f"  WARNING: {ours['rows']:,.0f} events, {ours['rejected']:,.0f} rejected")
            print(
                f"{kind:<14}ratio to ceiling: {ceiling['seconds'] / ours['seconds']:.2f}"
                f"  ({lines:,} lines, {size:,.0f} MiB, {BATCH_BYTES // 2**20} MiB batches)"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=1_500_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    main(args.lines, args.repeats)
