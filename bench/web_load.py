"""Many investigators at once: 20 signed-in users browse a real ``molehunt serve``
while ``--follow`` ingests, and the latency of what they see is measured.

Run: ``python -m bench.web_load [--users 20] [--requests 25] [--seconds 180]``.
A tiny simulated insurer is generated into a temporary folder and ingested (all
but its proxy log); ``molehunt serve --follow`` then runs in its own process on a
loopback port, following a proxy log that this script appends to, a piece every
second, while the users (httpx, one thread each) sign in and go through the risk
ranking, people's timelines, the ranking history and their team's cases (listing,
opening, now and then opening one). Each user makes ``--requests`` requests, or
stops at ``--seconds``. Printed: requests, errors (any answer other than 2xx, or
no answer), latency p50/p95/max, and the watch rounds that ran meanwhile.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any

import httpx

PASSWORD = "load test password"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _prepare(folder: Path, users: int) -> tuple[Path, Path, date, Path]:
    """(store, key, last day, the proxy log to feed): a tiny insurer, ingested and
    detected, with ``users`` investigators in four teams."""
    from molehunt.config import Settings
    from molehunt.detect.runner import run_detectors, write_findings
    from molehunt.ingest.runner import ingest_paths
    from molehunt.keys import create_key_file
    from molehunt.simulate import params_for, simulate
    from molehunt.store import Store
    from molehunt.web.users import add_user

    sim = folder / "sim"
    result = simulate(sim, params_for("tiny", None, seed=11))
    last = date.fromisoformat(result.truth["period"]["end"])
    settings = Settings.load(environ={}).model_copy(
        update={"db": folder / "store.duckdb", "key_file": folder / "store.key"}
    )
    create_key_file(settings.key_file)
    proxy = sim / "logs" / "squid"
    feed = folder / "follow" / "squid"
    feed.mkdir(parents=True)
    shutil.move(str(proxy / "access.log"), str(folder / "squid-source.log"))
    with Store.open(settings.db) as store:
        ingest_paths(store, settings, [sim / "reference", sim / "logs"])
        write_findings(
            store, run_detectors(store, settings.detection, last, timezone=settings.timezone)
        )
        for i in range(users):
            add_user(store, f"inv{i:02d}", PASSWORD, "investigator", f"team{i % 4}")
    return settings.db, settings.key_file, last, feed / "access.log"


def _feed(source: Path, target: Path, stop: threading.Event, pieces: int) -> int:
    """Append ``source`` to ``target`` a piece a second (whole lines); bytes written."""
    data = source.read_bytes()
    size = max(1, len(data) // pieces)
    done = 0
    while done < len(data) and not stop.is_set():
        end = data.find(b"\n", done + size)
        end = len(data) if end < 0 else end + 1
        with target.open("ab") as out:
            out.write(data[done:end])
        done = end
        stop.wait(1.0)
    return done


class User:
    """One investigator's browsing: answers and their latencies."""

    def __init__(self, base: str, name: str, last: date, seed: int) -> None:
        self.client = httpx.Client(base_url=base, timeout=120)
        self.name = name
        self.last = last
        self.random = random.Random(seed)
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.people: list[str] = []
        self.cases: list[str] = []

    def call(self, method: str, url: str, **kwargs: Any) -> httpx.Response | None:
        clock = time.perf_counter()
        try:
            answer = self.client.request(method, url, **kwargs)
        except httpx.HTTPError as e:
            self.errors.append(f"{method} {url}: {type(e).__name__}")
            return None
        self.latencies.append(time.perf_counter() - clock)
        if not answer.is_success:
            self.errors.append(f"{method} {url}: {answer.status_code}")
        return answer

    def run(self, requests: int, until: float) -> None:
        signed = self.call(
            "POST", "/api/session", json={"username": self.name, "password": PASSWORD}
        )
        if signed is None or not signed.is_success:
            return
        self.client.headers["Authorization"] = f"Bearer {signed.json()['token']}"
        for n in range(requests):
            if time.monotonic() > until:
                break
            self.step(n)
        self.client.close()

    def step(self, n: int) -> None:
        choice = n % 5 if n < 5 else self.random.randrange(5)
        if choice == 0 or not self.people:
            answer = self.call("GET", f"/api/risk?as_of={self.last}&all=true&top=30")
            if answer is not None and answer.is_success:
                self.people = [r["person_id"] for r in answer.json()["ranking"]] or ["E0001"]
        elif choice == 1:
            self.call("GET", f"/api/people/{self.random.choice(self.people)}/timeline")
        elif choice == 2:
            self.call("GET", f"/api/risk/history?until={self.last}&top=5")
        elif choice == 3:
            answer = self.call("GET", "/api/cases")
            if answer is not None and answer.is_success:
                self.cases = [c["case_id"] for c in answer.json()]
            if self.cases:
                self.call("GET", f"/api/cases/{self.random.choice(self.cases)}")
        else:
            made = self.call("POST", "/api/cases", json={"title": f"load test {n}"})
            if made is not None and made.is_success and self.people:
                case_id = made.json()["case_id"]
                self.call(
                    "POST",
                    f"/api/cases/{case_id}/items",
                    json={"kind": "person", "ref": self.random.choice(self.people)},
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--requests", type=int, default=25)
    parser.add_argument("--seconds", type=float, default=180.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="molehunt-web-load-") as tmp:
        folder = Path(tmp)
        clock = time.perf_counter()
        db, key, last, feed = _prepare(folder, args.users)
        print(f"prepared a tiny insurer in {time.perf_counter() - clock:.0f} s", flush=True)
        port = _port()
        server = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from molehunt.cli import main; main()",
                *("--db", str(db), "--key-file", str(key), "serve", "--port", str(port)),
                *("--follow", str(feed.parent), "--interval", "2"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        base = f"http://127.0.0.1:{port}"
        stop = threading.Event()
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{base}/healthz", timeout=2).is_success:
                        break
                except httpx.HTTPError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the server did not start")
                time.sleep(0.25)
            fed: list[int] = []
            feeder = threading.Thread(
                target=lambda: fed.append(_feed(folder / "squid-source.log", feed, stop, 60))
            )
            feeder.start()
            users = [User(base, f"inv{i:02d}", last, seed=i) for i in range(args.users)]
            until = time.monotonic() + args.seconds
            threads = [threading.Thread(target=u.run, args=(args.requests, until)) for u in users]
            clock = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - clock
            stop.set()
            feeder.join()
        finally:
            stop.set()
            server.send_signal(signal.SIGINT)
            try:
                _, log = server.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                _, log = server.communicate()
        latencies = sorted(x for u in users for x in u.latencies)
        errors = [e for u in users for e in u.errors]
        from molehunt.store import Store

        with Store.open(db, read_only=True) as store:  # the server has stopped
            stored = store.query("SELECT count(*) AS n FROM events_http")[0]["n"]
            source = store.query(
                "SELECT max(\"offset\") AS o FROM sources WHERE path LIKE '%follow%'"
            )
        p95 = latencies[max(0, int(len(latencies) * 0.95) - 1)] if latencies else float("nan")
        print(f"{args.users} users, {len(latencies)} answers in {wall:.1f} s")
        print(
            f"latency p50 {statistics.median(latencies) * 1000:.0f} ms, "
            f"p95 {p95 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms"
        )
        print(f"errors {len(errors)}" + (f": {errors[:5]}" if errors else ""))
        print(
            f"meanwhile {sum(fed) / 1e6:.1f} MB were appended to the followed log; the server "
            f"stored {stored:,} proxy events (read to offset {source[0]['o']})"
        )
        if server.returncode not in (0, -signal.SIGINT):
            print(f"server exit {server.returncode}: {log[-500:]}")


if __name__ == "__main__":
    main()
