"""Run a simulation: presets, the day loop, and the ground-truth file."""

from __future__ import annotations

import json
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from molehunt.errors import InputError
from molehunt.simulate.calendar import is_workday
from molehunt.simulate.clients import ClientMaster
from molehunt.simulate.company import build_company, write_hr_version, write_reference
from molehunt.simulate.habits import draw_habits
from molehunt.simulate.normal import nightly_etl, person_day
from molehunt.simulate.scenarios import DECOYS, SCENARIOS, Context, Scenario
from molehunt.simulate.workforce import seats, transfer
from molehunt.simulate.world import World, local_midnight_us, write_table
from molehunt.simulate.writers import Logs
from molehunt.synthetic import BRANCHES

#: Called with (days done, days in all) after each simulated day.
DayProgress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class Params:
    """What to simulate; the same params give byte-identical output."""

    staff: int = 300
    clients: int = 50_000
    days: int = 60
    start: date = date(2026, 3, 2)
    seed: int = 1
    scenarios: tuple[str, ...] = tuple(SCENARIOS)
    preset: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["start"] = self.start.isoformat()
        out["scenarios"] = list(self.scenarios)
        return out


PRESETS: dict[str, Params] = {
    "tiny": Params(staff=40, clients=2_000, days=10, preset="tiny"),
    "small": Params(staff=300, clients=50_000, days=60, preset="small"),
    "large": Params(staff=3_000, clients=1_000_000, days=180, preset="large"),
}


@dataclass(slots=True)
class Result:
    """Where the output went and what was written."""

    out: Path
    truth: dict[str, Any]
    seconds: float
    bytes_written: int = 0
    lines: dict[str, int] = field(default_factory=dict)


def params_for(preset: str | None = None, scenarios: str | None = None, **overrides: Any) -> Params:
    """Params from a preset (default small), with explicit values winning."""
    base = PRESETS.get(preset or "small")
    if base is None:
        raise InputError(f"unknown preset {preset!r}; one of: {', '.join(PRESETS)}")
    chosen = {k: v for k, v in overrides.items() if v is not None}
    if isinstance(chosen.get("start"), str):
        try:
            chosen["start"] = date.fromisoformat(chosen["start"])
        except ValueError as e:
            raise InputError(f"{chosen['start']!r} is not a date like 2026-03-02") from e
    params = replace(base, **chosen)
    if scenarios is not None:
        names = tuple(s.strip() for s in scenarios.split(",") if s.strip())
        unknown = [s for s in names if s not in SCENARIOS]
        if unknown:
            raise InputError(
                f"unknown scenario(s) {', '.join(unknown)}; one of: {', '.join(SCENARIOS)}"
            )
        params = replace(params, scenarios=names)
    if params.staff < 20 or params.clients < 100 or params.days < 3:
        raise InputError("simulate needs at least 20 staff, 100 clients and 3 days")
    return params


def simulate(out: Path, params: Params, progress: DayProgress | None = None) -> Result:
    """Write the company, its logs, endpoint and leaked files and ``truth.json`` to ``out``.

    ``out`` must be empty or absent: an old run's files would mix with the new one.
    """
    began = time.perf_counter()
    if out.exists() and any(out.iterdir()):
        raise InputError(f"{out} is not empty: simulate into a new folder")
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"molehunt-simulate:{params.seed}")
    company = build_company(rng, params.staff, params.start, params.days)
    clients = ClientMaster(params.seed, params.clients, params.start)
    _assign_owners(company, clients, params.seed)
    logs = Logs.open(out / "logs")
    habits = draw_habits(params.seed, company)
    world = World(
        company, clients, logs, out, params.seed, random.Random(f"days:{params.seed}"), habits
    )
    order = np.argsort(clients.owner, kind="stable")
    owners_sorted = clients.owner[order]
    for p in company.people:
        lo, hi = np.searchsorted(owners_sorted, [p.index, p.index + 1])
        if hi > lo:
            world.portfolios[p.index] = np.sort(order[lo:hi]).astype(np.int64)
    world.branch_clients = [
        np.flatnonzero(clients.branch == b).astype(np.int64) for b in range(len(BRANCHES))
    ]
    days = [params.start + timedelta(days=i) for i in range(params.days)]
    hot_desk_people = set(habits.workforce.hot_desk_people)
    world.staff = [p for p in company.people if p.host]
    workdays = [d for d in days if is_workday(d)]
    ctx = Context(world, workdays, random.Random(f"scenarios:{params.seed}"))
    planted: list[Scenario] = []
    for name in params.scenarios:
        scenario = SCENARIOS[name]()
        if workdays and scenario.plan(ctx):
            planted.append(scenario)
    decoys: list[Scenario] = []
    for decoy_cls in DECOYS.values():
        decoy = decoy_cls()
        if workdays and decoy.plan(ctx):
            decoys.append(decoy)

    reference = write_reference(
        company, out / "reference", habits.policy, habits.workforce.hot_desks
    )
    owner_ids = [p.employee_id for p in company.people]
    clients.write_csv(out / "reference" / "clients.csv", owner_ids)
    hr_versions: dict[str, int] = {}
    try:
        for n, day in enumerate(days):
            if transfer(company, habits.workforce, day):
                name = f"reference/hr_changes/hr_{day:%Y-%m-%d}.csv"
                hr_versions[name] = write_hr_version(company, out / name, local_midnight_us(day))
            world.start_pool(day)
            nightly_etl(world, day)
            if is_workday(day):
                present = [
                    p
                    for p in company.people
                    if p.employed(day) and day not in p.leave_days and p.host
                ]
                world.seats = seats(world.rng, habits.workforce, [
                    p for p in present if p.index in hot_desk_people
                ])  # fmt: skip
                for person in present:
                    person_day(world, person, day)
            for s in planted + decoys:
                s.day(world, day)
            logs.flush_day(local_midnight_us(day + timedelta(days=1)))
            if progress:
                progress(n + 1, len(days))
    finally:
        logs.close()
    for s in planted + decoys:
        s.finish(world)
    decoys = [d for d in decoys if d.people or d.accounts]  # a look-alike nobody was
    insiders = {p.index for s in planted + decoys for p in s.people}
    ordinary = ordinary_endpoint_files(world, company, insiders, params.seed)

    truth: dict[str, Any] = {
        "params": params.as_dict(),
        "timezone": "Asia/Shanghai",
        "period": {"start": params.start.isoformat(), "end": days[-1].isoformat()},
        "staff": len([p for p in company.people if p.host]),
        "world": world_truth(world),
        "scenarios": [s.truth(i + 1) for i, s in enumerate(planted)],
        "decoys": [s.truth(i + 1) for i, s in enumerate(decoys)],
        "not_planted": [n for n in params.scenarios if n not in {s.kind for s in planted}],
        "ordinary_endpoint_files": ordinary,
        "written": {
            "reference": {**reference, "clients.csv": clients.count, **hr_versions},
            "lines": logs.lines(),
            "tables": logs.counts(),
            "endpoint_files": len(world.endpoint_files),
            "endpoint_rows": world.endpoint_rows,
        },
    }
    (out / "truth.json").write_text(
        json.dumps(truth, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    written = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    return Result(out, truth, time.perf_counter() - began, written, logs.lines())


def world_truth(world: World) -> dict[str, Any]:
    """The habits this seed drew for its company, and what they came to."""
    drawn = world.habits.as_dict()
    staff = [p for p in world.company.people if p.host]
    uploaders = {person for person, _shop in world.shop_uploads}
    shops: dict[int, set[int]] = {}
    for person, shop in world.shop_uploads:
        shops.setdefault(shop, set()).add(person)
    drawn["shop_chat"]["uploaders"] = len(uploaders)
    drawn["shop_chat"]["share_of_staff_uploading"] = (
        round(len(uploaders) / len(staff), 3) if staff else 0.0
    )
    drawn["shop_chat"]["bytes_uploaded"] = sum(world.shop_uploads.values())
    drawn["shop_chat"]["uploaders_of_busiest_shops"] = sorted(
        (len(v) for v in shops.values()), reverse=True
    )[:5]
    return drawn


#: Share of ordinary staff whose collected endpoint folder holds files.
ORDINARY_ENDPOINT_SHARE = 0.1


def ordinary_endpoint_files(world: World, company: Any, insiders: set[int], seed: int) -> list[str]:
    """Files collected from a sample of ordinary hosts: a sales person's short list of
    their own clients (benign), and office files with no client data. They give the
    scanner the clean and small files it meets among the insiders' ones."""
    rng = random.Random(f"endpoint:{seed}")
    people = [p for p in company.people if p.host and p.index not in insiders]
    written: list[str] = []
    for person in sorted(
        rng.sample(people, min(len(people), max(2, int(len(people) * ORDINARY_ENDPOINT_SHARE)))),
        key=lambda p: p.index,
    ):
        portfolio = world.portfolio(person)
        if len(portfolio) and rng.random() < 0.5:
            own = sorted(int(c) for c in rng.sample(list(portfolio), min(12, len(portfolio))))
            path = world.user_path(person, "Documents", "跟进客户.xlsx")
            written.append(world.endpoint_file(person, path, own))
            continue
        relative = Path(
            "endpoint", person.host, "C", "Users", person.login, "Documents", "工作计划.csv"
        )
        write_table(
            world.out / relative,
            ["周次", "事项", "负责人"],
            [
                [f"W{w}", rng.choice(["客户回访", "培训", "周会", "报表"]), person.login]
                for w in range(1, 9)
            ],
        )
        world.date_file(world.out / relative, "")
        written.append(relative.as_posix())
    return written


def _assign_owners(company: Any, clients: ClientMaster, seed: int) -> None:
    """Each client belongs to a sales person of its branch (who works there in the period)."""
    rng = np.random.default_rng([seed, 0x0E1])
    sales = [p for p in company.people if p.role == "sales" and p.host]
    for b in range(len(BRANCHES)):
        members = np.array([p.index for p in sales if p.branch == b] or [p.index for p in sales])
        mine = np.flatnonzero(clients.branch == b)
        clients.owner[mine] = members[rng.integers(0, len(members), size=len(mine))]


def remove(out: Path) -> None:
    """Delete a simulation folder (tests and benchmarks)."""
    shutil.rmtree(out, ignore_errors=True)
