"""Start-up time of the ``molehunt`` command: ``version`` and ``--help``, next to the
0.3 s ceiling and to the import of Typer with the pydantic it loads to read any
option (the floor).

Run: ``python -m bench.cli_start [--runs 10]``. Each run is a fresh interpreter
(``python -m molehunt.cli ...``) importing this tree; the table gives the median and
best wall-clock seconds and the median CPU seconds (user + system) of the child, so
a busy machine shows as wall time well above CPU time.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

CEILING = 0.3
ROOT = Path(__file__).resolve().parents[1]


def _one(args: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one child process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, *args], env=env, check=True, stdout=subprocess.DEVNULL, cwd=ROOT
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def measure(args: list[str], runs: int) -> tuple[float, float, float]:
    """Median wall, best wall and median CPU seconds over ``runs`` runs."""
    _one(args)  # warm the file cache and the byte-code
    walls, cpus = zip(*(_one(args) for _ in range(runs)), strict=True)
    return statistics.median(walls), min(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    runs = parser.parse_args().runs
    cases = {
        "molehunt version": ["-m", "molehunt.cli", "version"],
        "molehunt --help": ["-m", "molehunt.cli", "--help"],
        "typer + pydantic (floor)": ["-c", "import typer._adapters, rich.console, rich.table"],
    }
    print(f"{'command':28} {'median s':>9} {'best s':>7} {'cpu s':>6} {'ceiling':>8}  verdict")
    for name, args in cases.items():
        median, best, cpu = measure(args, runs)
        verdict = "" if "floor" in name else ("under" if median < CEILING else "OVER")
        print(f"{name:28} {median:9.3f} {best:7.3f} {cpu:6.3f} {CEILING:8.1f}  {verdict}")
    print(f"({runs} runs each; load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
