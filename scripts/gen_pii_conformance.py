"""Generate ``tests/conformance/pii/cn_ric.csv``: resident ID numbers with python-stdnum's verdict.

The expected values are the peer's: ``stdnum.cn.ric.is_valid`` decides each
number's ``stdnum`` column, never molehunt. Rows:

- ``doctest``: the numbers of stdnum's ``cn/ric.py`` and ``tests/test_cn_ric.doctest``.
- ``sample``: one number per region code of a seeded sample of stdnum's
  ``cn/loc.dat`` (retired codes included), born in a year the code was in use.
- mutations of sample numbers: ``check`` (another check character), ``date`` (an
  impossible date, check recomputed), ``region`` (a code never in the list, check
  recomputed), ``retired`` (a code retired before the birth year, check
  recomputed), ``typo`` (one digit changed or two neighbours swapped, as typed).

Run: ``PYTHONPATH=/path/to/unzipped/python_stdnum python scripts/gen_pii_conformance.py``
(``pip download --no-deps python-stdnum`` and unzip the wheel).
"""

from __future__ import annotations

import csv
import random
import re
from pathlib import Path

from stdnum.cn import ric  # type: ignore[import-not-found]

OUT = Path(__file__).resolve().parent.parent / "tests/conformance/pii/cn_ric.csv"
SAMPLE = 1500
MUTATED = 400

#: Numbers in stdnum's module docstring and tests/test_cn_ric.doctest.
DOCTEST = (
    "360426199101010071", "44011320141005001x", "412723199010050012", "110102199101010078",
    "120110198012010073", "120110199212010072", "990426199112010074", "110111198012010078",
    "110201199312010077", "T60426199101010078", "360426199113010079", "36042619910102009X",
)  # fmt: skip


def check_char(body: str) -> str:
    return ric.calc_check_digit(body + "0")  # type: ignore[no-any-return]


def region_periods() -> dict[str, tuple[int, int]]:
    """Code -> (first year, last year) it was in use (the envelope of its names)."""
    out: dict[str, tuple[int, int]] = {}
    loc = Path(ric.__file__).parent / "loc.dat"
    province = ""
    for line in loc.read_text(encoding="utf-8").splitlines():
        if m := re.match(r"^(\d{2}) province=", line):
            province = m.group(1)
        elif m := re.match(r'^  (\d{4}) county="([^"]*)"', line):
            firsts, lasts = [], []
            for name in m.group(2).split(","):
                p = re.match(r"\[(\d*)-(\d*)\]", name)
                firsts.append(int(p.group(1)) if p and p.group(1) else 1900)
                lasts.append(int(p.group(2)) if p and p.group(2) else 2025)
            out[province + m.group(1)] = (min(firsts), max(lasts))
    return out


def main() -> None:
    rng = random.Random(20_260_501)
    periods = region_periods()
    rows: list[tuple[str, str, str]] = [(n, "doctest", "") for n in DOCTEST]
    codes = sorted(periods)
    sample: list[tuple[str, int]] = []
    for code in rng.sample(codes, SAMPLE):
        first, last = periods[code]
        year = rng.randint(max(first, 1900), min(last, 2025))
        body = f"{code}{year:04d}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
        body += f"{rng.randint(0, 999):03d}"
        number = body + check_char(body)
        sample.append((number, year))
        rows.append((number, "sample", code))
    retired = [c for c in codes if periods[c][1] < 2000]
    for number, year in rng.sample(sample, MUTATED):
        body = number[:17]
        wrong = rng.choice([c for c in "0123456789X" if c != number[17]])
        rows.append((body + wrong, "check", ""))
        bad_date = body[:10] + rng.choice(["0230", "1301", "0000", "0431", "0732"]) + body[14:]
        rows.append((bad_date + check_char(bad_date), "date", ""))
        unknown = f"{rng.choice(['00', '09', '19', '24', '39', '49', '55', '66', '77', '90'])}"
        unknown += f"{rng.randint(0, 9999):04d}"
        other = unknown + body[6:]
        rows.append((other + check_char(other), "region", ""))
        code = rng.choice([c for c in retired if periods[c][1] < year] or retired)
        moved = code + body[6:]
        rows.append((moved + check_char(moved), "retired", code))
        i = rng.randint(0, 15)
        if rng.random() < 0.5 and number[i] != number[i + 1]:
            typo = number[:i] + number[i + 1] + number[i] + number[i + 2 :]
        else:
            typo = number[:i] + rng.choice([d for d in "0123456789" if d != number[i]])
            typo += number[i + 1 :]
        rows.append((typo, "typo", ""))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(["number", "stdnum", "variant", "note"])
        for number, variant, note in rows:
            out.writerow([number, int(ric.is_valid(number)), variant, note])
    print(f"{len(rows)} numbers -> {OUT}")


if __name__ == "__main__":
    main()
