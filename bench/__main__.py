"""Run every benchmark in this folder: ``python -m bench`` (what ``make bench`` does).

Each module has a ``main()`` that generates its data, measures molehunt next to a
ceiling or peer in the same run, and prints a small table with the ratio.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def main() -> None:
    names = sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]))
    chosen = sys.argv[1:] or names
    # Each benchmark reads its own options; run together they take their defaults.
    sys.argv = sys.argv[:1]
    for name in chosen:
        module = importlib.import_module(f"bench.{name}")
        print(f"\n== {name} ==", flush=True)
        module.main()


if __name__ == "__main__":
    main()
