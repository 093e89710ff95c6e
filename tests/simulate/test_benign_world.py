"""The simulated company's ordinary life is wide and drawn anew per seed: staff chat
with shops and send them photos, many colleagues use the same popular shop, and the
habits (how many, how often, how big, how concentrated) differ from seed to seed."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest

from molehunt.simulate import PRESETS, Params, simulate
from molehunt.simulate.company import build_company
from molehunt.simulate.habits import KB, MB, PLATFORMS, draw_habits
from molehunt.simulate.world import allowed_host

TINY = PRESETS["tiny"]
CHAT_HOSTS = {p.host for p in PLATFORMS}
_LINE = re.compile(
    r"^\S+ (?P<ip>\S+) (?P<user>\S+) (?P<method>\S+) https (?P<host>\S+) 443 200 \S+ "
    r'\d+ \d+ \d+ \d+ "[^"]*" \d+ "[^"]*" "(?P<ctype>[^"]*)" (?P<length>\S+) "(?P<url>[^"]*)"$'
)


def _params(seed: int) -> Params:
    return Params(**{**TINY.as_dict(), "seed": seed, "start": TINY.start,
                     "scenarios": TINY.scenarios})  # fmt: skip


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """Two tiny companies whose draws differ: seed 10 (few chatters), seed 3 (many)."""
    out = {}
    for seed in (3, 10):
        folder = tmp_path_factory.mktemp(f"world{seed}") / "out"
        simulate(folder, _params(seed))
        out[seed] = folder
    return out


def _truth(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / "truth.json").read_text(encoding="utf-8"))
    return data


def _chat_uploads(folder: Path) -> list[dict[str, str]]:
    """Multipart POSTs to shops' chat endpoints in the Squid log."""
    found = []
    with (folder / "logs" / "squid" / "access.log").open(encoding="utf-8") as f:
        for line in f:
            m = _LINE.match(line.rstrip("\n"))
            if (
                m
                and m["method"] == "POST"
                and m["host"] in CHAT_HOSTS
                and m["ctype"].startswith("multipart/form-data")
            ):
                found.append(m.groupdict())
    return found


def test_every_chat_host_is_an_allowed_shopping_site() -> None:
    for host in CHAT_HOSTS:
        assert allowed_host(host), host


def test_habits_are_drawn_from_wide_ranges_across_seeds() -> None:
    shares, rates, shops, concentrations = [], [], [], []
    for seed in range(1, 25):
        company = build_company(
            random.Random(f"molehunt-simulate:{seed}"), TINY.staff, TINY.start, TINY.days
        )
        h = draw_habits(seed, company)
        shares.append(h.shop_chat_share)
        rates.append(h.chat_sessions_per_day)
        shops.append(len(h.shops))
        concentrations.append(h.shop_concentration)
        assert draw_habits(seed, company).as_dict() == h.as_dict(), "same seed, same habits"
    assert min(shares) < 0.3
    assert max(shares) > 0.7
    assert max(rates) / min(rates) > 4
    assert min(shops) < 40
    assert max(shops) > 110
    assert min(concentrations) < 0.7
    assert max(concentrations) > 1.4


def test_truth_records_the_draw_and_it_differs_between_seeds(worlds: dict[int, Path]) -> None:
    a, b = (_truth(worlds[s])["world"]["shop_chat"] for s in (3, 10))
    for key in ("share_of_staff", "sessions_per_day", "shops", "concentration", "lunch_share"):
        assert a[key] != b[key], key
    # Seed 3 drew 76% of staff chatting with shops, seed 10 drew 22%: the logs agree.
    assert a["share_of_staff_uploading"] > b["share_of_staff_uploading"] + 0.2


def test_many_ordinary_people_send_photos_to_shop_chats(worlds: dict[int, Path]) -> None:
    for folder in worlds.values():
        truth = _truth(folder)
        uploads = _chat_uploads(folder)
        theirs = {s["details"].get("upload_url") for s in truth["scenarios"]}
        assert len(theirs) > 1, "the ring and the dump upload to shop chats too"
        # Files, not text messages (some chats post their text as multipart too).
        uploads = [u for u in uploads if u["url"] not in theirs and int(u["length"]) > 6000]
        users = {u["user"] for u in uploads}
        assert len(users) == truth["world"]["shop_chat"]["uploaders"]
        assert len(users) >= 4
        sizes = [int(u["length"]) for u in uploads]
        assert max(sizes) > 200 * KB
        assert all(s <= 30 * MB for s in sizes)
        # Not just one endpoint: the company talks to several shops.
        assert len({u["url"] for u in uploads}) >= 3


def test_the_popular_shop_and_the_heaviest_uploaders_are_named_look_alikes(
    worlds: dict[int, Path],
) -> None:
    truth = _truth(worlds[3])
    decoys = {d["kind"]: d for d in truth["decoys"]}
    popular, heavy = decoys["popular_shop"], decoys["shop_chat_uploaders"]
    assert len(popular["people"]) >= 5
    assert len(heavy["people"]) == 3
    insiders = {p for s in truth["scenarios"] for p in s["people"]}
    assert not insiders & (set(popular["people"]) | set(heavy["people"]))
    uploads = _chat_uploads(worlds[3])
    endpoint = "https://" + popular["details"]["endpoint"]
    at_popular = {u["user"] for u in uploads if u["url"] == endpoint}
    assert len(at_popular) == popular["details"]["uploaders"] >= len(popular["people"])
    hr = {
        line.split(",")[0]: line
        for line in (worlds[3] / "reference" / "hr.csv").read_text("utf-8").splitlines()
    }
    assert all(p in hr for p in popular["people"] + heavy["people"])
    assert all(popular["days"])
    assert popular["days"] == sorted(popular["days"])


def test_the_same_seed_draws_the_same_world(worlds: dict[int, Path], tmp_path: Path) -> None:
    again = simulate(tmp_path / "again", _params(10))
    assert json.loads(json.dumps(again.truth, ensure_ascii=False)) == _truth(worlds[10])
    original = (worlds[10] / "logs" / "squid" / "access.log").read_bytes()
    assert (tmp_path / "again" / "logs" / "squid" / "access.log").read_bytes() == original
