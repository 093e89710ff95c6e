"""``molehunt --help`` and ``molehunt version`` load no heavy library (issue 15).

A module-list check, not a stopwatch: robust on a busy machine. The timing is in
``bench/cli_start.py`` (``make bench``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from molehunt import __version__
from molehunt.cli.case import KINDS

ROOT = Path(__file__).resolve().parents[1]

#: Libraries that take tenths of a second each to import: only the verbs that use
#: them may load them.
HEAVY = (
    "duckdb",
    "ibis",
    "numba",
    "hyperscan",
    "pyarrow",
    "pyspark",
    "fastapi",
    "pandas",
    "polars",
    "sqlglot",
)


def _imported(*args: str) -> tuple[set[str], str]:
    """The top-level packages a fresh ``python -X importtime -m molehunt.cli ARGS``
    imported, and what it printed."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "molehunt.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=120,
    )
    modules = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "molehunt" in modules  # the check reads the right output
    return modules, done.stdout


@pytest.mark.parametrize("args", [("version",), ("--help",), ("case", "--help")])
def test_start_loads_no_heavy_library(args: tuple[str, ...]) -> None:
    modules, printed = _imported(*args)
    assert sorted(modules & set(HEAVY)) == []
    if args == ("version",):
        assert printed.strip() == __version__


def test_case_kinds_are_the_librarys() -> None:
    """The help of ``case add`` names the kinds without loading the case library."""
    from molehunt import cases

    assert KINDS == cases.KINDS
