"""``mask_text`` over event summaries: summaries/s, next to the scanner in the same run.

Run: ``python -m bench.mask [--n 10000]``. The summaries look like the timeline's
(``molehunt.timeline``): database statements, HTTP requests, file paths and
application actions, about one in five holding a client's ID number, mobile, card
or email. Measured side by side (CPU seconds, best of three): ``mask_text`` per
summary; ``mask_texts`` over batches of 200 (a timeline page); the engine's scan
per summary without the quick filter (what a call would cost without it); and one
scan of all the summaries joined (the engine's block-mode ceiling, no per-call
overhead).
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable

from molehunt.pii.engine import default_engine
from molehunt.pii.mask import mask_text, mask_texts
from molehunt.synthetic import check_digit

SEED = 7


def _resident_id(rng: random.Random) -> str:
    body = f"{rng.choice(['110101', '310104', '440305', '330106'])}"
    body += f"{rng.randint(1950, 2005)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    body += f"{rng.randint(0, 999):03d}"
    return body + check_digit(body)


def _mobile(rng: random.Random) -> str:
    return f"{rng.choice(['138', '139', '186', '152', '177'])}{rng.randint(0, 99_999_999):08d}"


def summaries(n: int, seed: int = SEED) -> list[str]:
    rng = random.Random(seed)
    users = ["li_na", "wang_wei", "zhang_min", "svc_report", "chen_jie"]
    out: list[str] = []
    for _ in range(n):
        user, ip = (
            rng.choice(users),
            f"10.{rng.randint(0, 9)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
        )
        rows = rng.choice(["1", "20", "5000", "?"])
        pii = rng.random() < 0.2
        kind = rng.randrange(5)
        if kind == 0:
            where = (
                f"id_number='{_resident_id(rng)}'"
                if pii
                else f"policy_no='P{rng.randint(0, 10**8)}'"
            )
            out.append(
                f"{user} from {ip} app=psql SELECT {rows} rows SELECT name, phone, address "
                f"FROM clients WHERE {where} LIMIT 100"
            )
        elif kind == 1:
            query = f"phone={_mobile(rng)}" if pii else f"page={rng.randint(1, 40)}"
            out.append(f"{ip} {user} GET crm.internal/api/clients/search?{query} 18231 bytes out")
        elif kind == 2:
            name = (
                f"export_{_mobile(rng)}.xlsx"
                if pii
                else f"report_2026-05-{rng.randint(1, 28):02d}.xlsx"
            )
            host = f"WS-{rng.randint(1, 300):03d}"
            out.append(f"file created {host} {user} C:\\Users\\{user}\\Desktop\\{name}")
        elif kind == 3:
            detail = f"客户 {_mobile(rng)} 续保" if pii else "查看保单详情"
            out.append(f"{user} from {ip} view_client {rows} rows {detail}")
        else:
            mail = f"to {user}.home@example.com" if pii else "to the team"
            out.append(
                f"connection WS-{rng.randint(1, 300):03d} outlook.exe 203.0.113.9 smtp {mail}"
            )
    return out


def _cpu(fn: Callable[[], object], runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10_000)
    args = parser.parse_args()
    texts = summaries(args.n)
    engine = default_engine()
    mask_text(texts[0])  # compile the databases outside the timings
    masked = [mask_text(t) for t in texts]
    assert mask_texts(texts) == masked
    changed = sum(m != t for m, t in zip(masked, texts, strict=True))
    timings = {
        "mask_text, per summary": _cpu(lambda: [mask_text(t) for t in texts]),
        "mask_texts, batches of 200 (a timeline)": _cpu(
            lambda: [mask_texts(texts[i : i + 200]) for i in range(0, len(texts), 200)]
        ),
        "engine scan per summary (no filter)": _cpu(lambda: [engine.find(t) for t in texts]),
        "engine scan of all joined (ceiling)": _cpu(lambda: engine.find("\n".join(texts))),
    }
    print(f"{args.n} summaries, {changed} with something masked")
    base = timings["mask_text, per summary"]
    print(f"{'':40} {'summaries/s':>12} {'vs mask_text':>13}")
    for name, seconds in timings.items():
        rate = args.n / seconds if seconds else float("inf")
        print(f"{name:40} {rate:12,.0f} {base / seconds if seconds else 0:12.2f}x")


if __name__ == "__main__":
    main()
