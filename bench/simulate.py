"""Simulator speed: the small preset (and the large one with ``--large``).

Prints seconds, MB written, log lines per second and peak RSS. The small preset
must take under a minute on the project's machine.
"""

from __future__ import annotations

import resource
import sys
import tempfile
from pathlib import Path

from molehunt.simulate import PRESETS, simulate


def main() -> None:
    names = ["small", "large"] if "--large" in sys.argv else ["small"]
    print(f"{'preset':8} {'seconds':>8} {'MB':>8} {'lines':>11} {'lines/s':>9} {'peak RSS MB':>12}")
    for name in names:
        with tempfile.TemporaryDirectory() as tmp:
            result = simulate(Path(tmp) / "out", PRESETS[name])
            lines = sum(result.lines.values())
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(
                f"{name:8} {result.seconds:8.1f} {result.bytes_written / 1e6:8.0f} {lines:11,d} "
                f"{lines / result.seconds:9,.0f} {peak:12.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
