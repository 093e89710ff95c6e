"""PII scanner: MB/s against Hyperscan's no-match ceiling, Python ``re`` and Presidio;
precision and recall per type on a labelled corpus; xlsx rows/s against calamine.

Run: ``python -m bench.scan [--mb 64] [--presidio /path/to/venv/bin/python]``.
Presidio is never a dependency: give the Python of a throwaway virtualenv where
``presidio-analyzer`` is installed, and it runs pattern recognizers for the same
types there (no NLP model: it cannot load one offline, and it has no Chinese ones).

Times are CPU seconds of the process doing the work (best of a few runs), on both
sides: the machine is shared, and wall time measures the neighbours' load too.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import tempfile
import time
from collections import Counter
from datetime import date
from pathlib import Path

import hyperscan
import numpy as np

from molehunt.pii.engine import Engine, PiiFinding, fold_bytes
from molehunt.pii.files import scan_file
from molehunt.pii.recognizers import RECOGNIZERS
from molehunt.pii.recognizers.base import BOUNDARY_CLASS
from molehunt.synthetic import check_digit, make_people

Span = tuple[str, int, int]  # type, start, end (characters)

_LOREM_ZH = "本公司近期对客户服务流程进行了优化，请各部门按照要求落实相关工作，并及时反馈问题。"
_LOREM_EN = "Please review the quarterly renewal figures and confirm the schedule by Friday. "


class Corpus:
    """Lines of mixed Chinese/English text and CSV, with the true spans of each type."""

    def __init__(self, seed: int, dense: bool, target_chars: int) -> None:
        rng = random.Random(seed)
        people = make_people(np.random.default_rng(seed), 20_000, date(2026, 5, 1))
        parts: list[str] = []
        self.truth: list[Span] = []
        i = 0
        line: list[str] = []
        cursor = [0]  # character offset of the next piece

        def put(text: str, kind: str | None = None) -> None:
            if kind:
                self.truth.append((kind, cursor[0], cursor[0] + len(text)))
            line.append(text)
            cursor[0] += len(text)

        while cursor[0] < target_chars:
            k = i % len(people.names)
            i += 1
            line.clear()
            if not dense:
                put(_LOREM_ZH * rng.randint(2, 6) + _LOREM_EN * rng.randint(1, 4))
            style = rng.randrange(4)
            if style == 0:  # CSV row
                put(f"{people.names[k]},")
                put(people.id_numbers[k], "china_resident_id")
                put(",")
                put(people.mobiles[k], "china_mobile")
                put(f",{rng.randint(1000, 99999)}.00")
            elif style == 1:  # Chinese sentence
                put("客户身份证号：")
                put(people.id_numbers[k], "china_resident_id")
                put("，联系手机")
                put(people.mobiles[k], "china_mobile")
                put("。" + _LOREM_ZH[: rng.randint(5, 30)])
            elif style == 2:  # English sentence with noise and a bad check digit
                bad = people.id_numbers[k][:17]
                wrong = "0123456789X".replace(check_digit(bad), "")[rng.randrange(10)]
                put(f"Ticket {rng.randint(10**8, 10**9)}: id {bad}{wrong} (typo), phone ")
                put(people.mobiles[k], "china_mobile")
                put(f", ref {rng.randint(10**25, 10**26)} ")
            else:  # long digit noise only
                put(f"trace {rng.randint(10**40, 10**41)}{rng.randint(10**30, 10**31)} ok")
            put("\n")
            parts.append("".join(line))
        self.text = "".join(parts)


def score(found: list[Span], truth: list[Span], kind: str) -> tuple[float, float]:
    """Precision and recall of one type, counting a span right when it overlaps a true one."""
    f = sorted((s, e) for t, s, e in found if t == kind)
    t = sorted((s, e) for k, s, e in truth if k == kind)
    t_starts = np.array([s for s, _ in t])
    t_ends = np.array([e for _, e in t])

    def overlaps(s: int, e: int, starts: np.ndarray, ends: np.ndarray) -> bool:
        i = int(np.searchsorted(ends, s, "right"))
        return i < len(starts) and starts[i] < e

    tp_f = sum(overlaps(s, e, t_starts, t_ends) for s, e in f)
    f_starts = np.array([s for s, _ in f])
    f_ends = np.array([e for _, e in f])
    tp_t = sum(overlaps(s, e, f_starts, f_ends) for s, e in t)
    return (tp_f / len(f) if f else 1.0), (tp_t / len(t) if t else 1.0)


def to_char_spans(text: str, findings: list[PiiFinding]) -> list[Span]:
    data = fold_bytes(text.encode())  # the engine's offsets are in the folded bytes
    cont = np.cumsum((np.frombuffer(data, np.uint8) & 0xC0) == 0x80, dtype=np.int64)
    cont = np.concatenate([[0], cont])
    return [(f.type, f.start - int(cont[f.start]), f.end - int(cont[f.end])) for f in findings]


def mbps(seconds: float, size: int) -> float:
    return size / seconds / 1e6


def timed(fn: object, *args: object, repeat: int = 5) -> float:
    assert callable(fn)
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        fn(*args)
        best = min(best, time.process_time() - started)
    return best


def weighed_find(engine: Engine, data: bytes) -> None:
    """Findings as arrays with their confidence levels (context words looked for)."""
    engine.find(data).level  # noqa: B018 (weighed on first use)


def no_match_ceiling(data: bytes) -> float:
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    db.compile(expressions=[rb"\x00never\x01matches\x02"], ids=[0], elements=1, flags=[0])
    return timed(lambda: db.scan(data, match_event_handler=lambda *a: None))


PRESIDIO = r"""
import json, sys, time
from presidio_analyzer import Pattern, PatternRecognizer
specs = json.loads(sys.argv[2])
recs = [PatternRecognizer(supported_entity=k, patterns=[Pattern(k, p, 0.5) for p in v])
        for k, v in specs.items()]
text = open(sys.argv[1], encoding="utf-8").read()
best = None
for _ in range(3):  # best of 3, as molehunt's side is best of several
    started = time.process_time()
    n = 0
    for r in recs:
        n += len(r.analyze(text, entities=[r.supported_entities[0]], nlp_artifacts=None))
    took = time.process_time() - started
    best = took if best is None else min(best, took)
print(json.dumps({"seconds": best, "results": n}))
"""


def presidio_patterns() -> dict[str, list[str]]:
    """Our own patterns, as Presidio's ``re`` patterns with the same boundaries."""
    out: dict[str, list[str]] = {}
    for name, cls in RECOGNIZERS.items():
        for pattern in cls.patterns:
            if pattern.width is not None:
                b = BOUNDARY_CLASS[pattern.boundary]
                out.setdefault(name, []).append(f"(?<![{b}])(?:{pattern.regex})(?![{b}])")
            elif pattern.left is not None:
                out.setdefault(name, []).append(pattern.python())
    return out


def presidio(python: str, text: str, tmp: Path) -> float | None:
    path = tmp / "presidio_sample.txt"
    path.write_text(text, encoding="utf-8")
    script = tmp / "presidio_run.py"
    script.write_text(PRESIDIO, encoding="utf-8")
    try:
        out = subprocess.run(
            [python, str(script), str(path), json.dumps(presidio_patterns())],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"  presidio: could not run ({e})")
        return None
    return float(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])


def xlsx_rows(tmp: Path, rows: int) -> None:
    import openpyxl
    from python_calamine import CalamineWorkbook

    people = make_people(np.random.default_rng(1), rows, date(2026, 5, 1))
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("clients")
    sheet.append(["姓名", "身份证号", "手机", "地址", "金额"])
    for i in range(rows):
        sheet.append(
            [people.names[i], people.id_numbers[i], int(people.mobiles[i]), people.addresses[i], i]
        )
    path = tmp / "clients.xlsx"
    book.save(path)
    bare = timed(
        lambda: CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).to_python(), repeat=2
    )
    ours = timed(lambda: scan_file(path), repeat=2)
    print(
        f"xlsx {rows:,} rows: calamine bare read {rows / bare:,.0f} rows/s, "
        f"molehunt scan {rows / ours:,.0f} rows/s (ratio {bare / ours:.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=float, default=32, help="size of each corpus, MB")
    parser.add_argument("--presidio", default="", help="python of a venv with presidio")
    parser.add_argument("--presidio-mb", type=float, default=2)
    parser.add_argument("--xlsx-rows", type=int, default=100_000)
    args = parser.parse_args()
    engine = Engine()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        # molehunt: arrays (counts, verdicts); +levels: confidences weighed (context
        # words looked for); +objects: a PiiFinding per finding (--detail).
        print(
            f"{'mix':8} {'MB':>6} {'molehunt':>9} {'+levels':>9} {'+objects':>9} {'re':>7} "
            f"{'ceiling':>9} {'x re':>6}"
        )
        for name, dense in (("dense", True), ("sparse", False)):
            corpus = Corpus(7, dense, int(args.mb * 1e6 / 2))
            data = corpus.text.encode("utf-8")
            ours = timed(engine.find, data)
            levels = timed(weighed_find, engine, data)
            objects = timed(engine.scan, data)
            ref = timed(engine.reference_scan, corpus.text, repeat=1)
            ceiling = no_match_ceiling(data)
            size = len(data)
            print(
                f"{name:8} {size / 1e6:6.1f} {mbps(ours, size):9.1f} {mbps(levels, size):9.1f} "
                f"{mbps(objects, size):9.1f} {mbps(ref, size):7.1f} "
                f"{mbps(ceiling, size):9.0f} {ref / ours:6.1f}"
            )
            found = to_char_spans(corpus.text, engine.scan(data))
            per_type = Counter(t for t, _s, _e in found)
            print(f"  {len(found):,} findings, one per {size / max(len(found), 1):.0f} bytes")
            for kind in ("china_resident_id", "china_mobile"):
                p, r = score(found, corpus.truth, kind)
                print(f"  {kind:18} precision {p:.4%} recall {r:.4%} (found {per_type[kind]:,})")
            if args.presidio:
                sample = corpus.text[: int(args.presidio_mb * 1e6 / 2)]
                sample_bytes = len(sample.encode())
                seconds = presidio(args.presidio, sample, tmp)
                ours_sample = timed(engine.find, sample.encode())
                weighed = timed(weighed_find, engine, sample.encode())
                if seconds is not None:
                    theirs, ours_mb = mbps(seconds, sample_bytes), mbps(ours_sample, sample_bytes)
                    print(
                        f"  presidio {theirs:.2f} MB/s on {sample_bytes / 1e6:.1f} MB; "
                        f"molehunt {ours_mb:.1f} MB/s: {seconds / ours_sample:.0f}x "
                        f"(+levels {seconds / weighed:.0f}x)"
                    )
        xlsx_rows(tmp, args.xlsx_rows)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    main()
