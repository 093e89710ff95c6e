"""Attribution quality against the simulator's ground truth.

Every leaked file a scenario left (and its complaints file) is attributed as
``molehunt attribute`` (``molehunt complaints``) would, and so is a random sample of
:data:`SAMPLE` of the client records recognised in it. For each, the rank of the
scenario's true people (the worst of them), how many other suspects rank as high
(people the evidence cannot tell apart from them, such as someone who read every
client, share their rank), and the time it took.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

from molehunt.attribute.leaked import client_indexes, leaked_set
from molehunt.attribute.overlap import ReadOverlapAttributor, Suspect
from molehunt.store import Store

#: Client records in the small sample attributed next to each whole file.
SAMPLE = 50


def true_rank(suspects: list[Suspect], people: list[str]) -> tuple[int | None, int]:
    """(worst rank of ``people``, other suspects ranked as high); None when one is
    missing."""
    ranks = {s.person_id: s.rank for s in suspects}
    if not people or any(p not in ranks for p in people):
        return None, 0
    worst = max(ranks[p] for p in people)
    return worst, sum(1 for s in suspects if s.rank <= worst and s.person_id not in people)


def evaluate_attribution(
    store: Store,
    key: bytes,
    folder: Path,
    truth: dict[str, Any],
    attributor: ReadOverlapAttributor | None = None,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Attribute each leaked file of ``truth`` (paths under the simulation ``folder``)."""
    attributor = attributor or ReadOverlapAttributor(store)
    started = time.perf_counter()
    attributor.prepare()
    prepared = time.perf_counter() - started
    indexes = client_indexes(store)
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for scenario in truth["scenarios"]:
        people = list(scenario["people"])
        for name in scenario.get("leaked_files", []):
            complaints = "complaint" in Path(name).name
            t = time.perf_counter()
            found = leaked_set(
                folder / name, store, key, single_identifier=complaints, indexes=indexes
            )
            suspects = attributor.rank(found.client_ids, limit=1000)
            seconds = time.perf_counter() - t
            rank, others = true_rank(suspects, people)
            sample = sorted(rng.sample(found.client_ids, min(SAMPLE, len(found.client_ids))))
            sample_rank, sample_others = true_rank(attributor.rank(sample, limit=1000), people)
            out.append(
                {
                    "scenario": scenario["id"],
                    "file": name,
                    "complaints": complaints,
                    "people": people,
                    "client_records": found.client_records,
                    "rank": rank,
                    "others": others,
                    "sample": len(sample),
                    "sample_rank": sample_rank,
                    "sample_others": sample_others,
                    "seconds": round(seconds, 2),
                }
            )
    if out:
        out[0]["prepare_seconds"] = round(prepared, 2)
    return out
