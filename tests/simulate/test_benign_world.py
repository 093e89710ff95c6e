"""The simulated company's ordinary life is wide and drawn anew per seed: staff chat
with shops and send them photos, many colleagues use the same popular shop, and the
habits (how many, how often, how big, how concentrated) differ from seed to seed."""

from __future__ import annotations

import csv
import json
import random
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from molehunt.config import Settings
from molehunt.ingest.runner import ingest_paths
from molehunt.keys import create_key_file
from molehunt.simulate import PRESETS, Params, simulate
from molehunt.simulate.company import Company, build_company
from molehunt.simulate.habits import (
    CLOUD_HOSTS,
    KB,
    MB,
    PLATFORMS,
    PORTALS,
    WEBMAIL_HOSTS,
    draw_habits,
)
from molehunt.simulate.workforce import SERVICE_DESK_ACCOUNT, VPN_SUBNET
from molehunt.simulate.world import allowed_host
from molehunt.store import Store

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


def _company(seed: int) -> Company:
    return build_company(
        random.Random(f"molehunt-simulate:{seed}"), TINY.staff, TINY.start, TINY.days
    )


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
        h = draw_habits(seed, _company(seed))
        shares.append(h.shop_chat_share)
        rates.append(h.chat_sessions_per_day)
        shops.append(len(h.shops))
        concentrations.append(h.shop_concentration)
        assert draw_habits(seed, _company(seed)).as_dict() == h.as_dict(), "same seed, same habits"
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
    assert len(popular["people"]) >= 3
    assert popular["details"]["uploaders"] >= 5
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


# -- channels, working patterns, analysts ----------------------------------------------


def _squid(folder: Path) -> list[dict[str, str]]:
    with (folder / "logs" / "squid" / "access.log").open(encoding="utf-8") as f:
        return [m.groupdict() for line in f if (m := _LINE.match(line.rstrip("\n")))]


def _policy(folder: Path) -> dict[str, bool]:
    rows = (folder / "reference" / "web_policy.csv").read_text("utf-8").splitlines()[1:]
    return {c: a == "yes" for c, a in (r.split(",") for r in rows)}


def _csv(folder: Path, name: str) -> list[dict[str, str]]:
    with (folder / "reference" / name).open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_webmail_cloud_and_portals_follow_this_seeds_policy(worlds: dict[int, Path]) -> None:
    for seed, folder in worlds.items():
        policy, lines = _policy(folder), _squid(folder)
        world = _truth(folder)["world"]
        assert policy["webmail"] == world["webmail"]["allowed"]
        mail = [r for r in lines if r["host"] in WEBMAIL_HOSTS and r["method"] == "POST"]
        cloud = [r for r in lines if r["host"] in {h for h, _ in CLOUD_HOSTS}]
        assert bool(mail) == policy["webmail"], seed
        if not policy["cloud-storage"]:
            assert not [r for r in cloud if r["method"] == "POST"], seed
        expense = [r for r in lines if r["url"].startswith("https://" + PORTALS[-1].host)]
        # One endpoint many colleagues post receipts to.
        assert len({r["url"] for r in expense}) == 1
        assert len({r["user"] for r in expense}) >= 3
    assert _policy(worlds[3])["webmail"] != _policy(worlds[10])["webmail"]


def _app(folder: Path) -> list[dict[str, Any]]:
    text = (folder / "logs" / "crm" / "access.log").read_text("utf-8")
    return [json.loads(line) for line in text.splitlines()]


def test_the_night_team_works_through_the_night(worlds: dict[int, Path]) -> None:
    truth = _truth(worlds[3])
    night = {d["kind"]: d for d in truth["decoys"]}["night_shift"]
    logins = {r["employee_id"]: r for r in _csv(worlds[3], "hr.csv")}
    users = {a["account"] for a in _csv(worlds[3], "accounts.csv") if a["owner_employee_id"]
             in night["people"] and a["system"] == "crm-app"}  # fmt: skip
    assert night["people"]
    assert all(p in logins for p in night["people"])
    hours = [int(r["ts"][11:13]) for r in _app(worlds[3]) if r["user"] in users]
    at_night = [h for h in hours if h >= 20 or h < 8]
    assert len(at_night) > 0.9 * len(hours) > 20


def test_logs_stay_in_time_order_across_midnight(worlds: dict[int, Path]) -> None:
    folder = worlds[3]
    logs = folder / "logs"
    squid = [float(line.split(" ", 1)[0]) for line in _lines(logs / "squid" / "access.log")]
    assert squid == sorted(squid)
    app = [r["ts"] for r in _app(folder)]
    assert app == sorted(app)
    win = [
        json.loads(line)["@timestamp"] for line in _lines(logs / "windows" / "winlogbeat.ndjson")
    ]
    assert win == sorted(win)


def _lines(path: Path) -> list[str]:
    return path.read_text("utf-8").splitlines()


def _logons(folder: Path) -> list[dict[str, str]]:
    out = []
    text = (folder / "logs" / "windows" / "winlogbeat.ndjson").read_text("utf-8")
    for line in text.splitlines():
        doc = json.loads(line)
        if doc["event"]["code"] == "4624":
            data = doc["winlog"]["event_data"]
            out.append({**data, "computer": doc["host"]["name"], "day": doc["@timestamp"][:10]})
    return out


def test_hot_desks_are_shared_by_several_people_in_a_day(worlds: dict[int, Path]) -> None:
    folder = worlds[10]
    desks = {a["hostname"] for a in _csv(folder, "assets.csv") if a["hostname"].startswith("HD-")}
    assert desks
    assert all(
        not a["owner_employee_id"] for a in _csv(folder, "assets.csv") if a["hostname"] in desks
    )
    on_desk: dict[tuple[str, str], set[str]] = {}
    for logon in _logons(folder):
        host = logon["computer"].split(".")[0]
        if host in desks:
            on_desk.setdefault((host, logon["day"]), set()).add(logon["TargetUserName"])
    assert on_desk
    assert max(len(users) for users in on_desk.values()) >= 2


def test_the_service_desk_shares_one_entitled_login(worlds: dict[int, Path]) -> None:
    folder = worlds[3]
    (desk,) = [a for a in _csv(folder, "accounts.csv") if a["account"] == SERVICE_DESK_ACCOUNT]
    assert desk["kind"] == "shared"
    owner = next(r for r in _csv(folder, "hr.csv") if r["employee_id"] == desk["owner_employee_id"])
    assert owner["role"] == "cs"
    ips = {r["src_ip"] for r in _app(folder) if r["user"] == SERVICE_DESK_ACCOUNT}
    assert len(ips) >= 2, "several agents use it, each from their own PC"


def test_it_staff_log_on_to_colleagues_pcs(worlds: dict[int, Path]) -> None:
    folder = worlds[3]
    hr = {r["employee_id"]: r for r in _csv(folder, "hr.csv")}
    assets = {a["hostname"]: a for a in _csv(folder, "assets.csv")}
    it = {a["account"] for a in _csv(folder, "accounts.csv")
          if a["system"] == "ad" and hr[a["owner_employee_id"]]["role"] == "it"}  # fmt: skip
    remote = [
        logon
        for logon in _logons(folder)
        if logon["TargetUserName"] in it and logon["LogonType"] in ("3", "10")
    ]
    hosts = {r["computer"].split(".")[0] for r in remote}
    others = {h for h in hosts if hr.get(assets.get(h, {}).get("owner_employee_id", ""), {})}
    assert len(others) >= 5


def test_some_staff_work_from_home_through_the_vpn(worlds: dict[int, Path]) -> None:
    folder = worlds[3]
    assert _truth(folder)["world"]["workforce"]["vpn"]["style"] == "laptop"
    assert any(r["ip"].startswith(f"10.{VPN_SUBNET}.") for r in _squid(folder))


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A company big enough for an analytics team, over a quarter-end, with transfers."""
    folder = tmp_path_factory.mktemp("company") / "out"
    simulate(folder, Params(staff=120, clients=3_000, days=10, seed=4, start=date(2026, 3, 23)))
    return folder


def test_analysts_extract_many_rows_from_their_own_pcs(company: Path) -> None:
    truth = _truth(company)
    peaks = truth["world"]["workforce"]["reporting_peaks"]
    assert "2026-03-31" in peaks["days"]
    assert "analyst" in peaks["roles"]
    decoys = {d["kind"]: d for d in truth["decoys"]}
    campaign = decoys["analyst_campaign_list"]
    assert campaign["details"]["rows"] >= 3_000
    assert (company / campaign["details"]["endpoint_file"]).is_file()
    text = (company / "logs" / "postgresql" / "postgresql.csv").read_text("utf-8")
    extracts = re.findall(
        r'"(ana_\w+)","crm",\d+,"(10\.30\.[\d.]+):\d+".*AUDIT: SESSION.*,(\d+)"', text
    )
    assert max(int(rows) for _a, _ip, rows in extracts) >= 1_000
    account = campaign["accounts"][1]
    assert any(a == account for a, _ip, _rows in extracts)


def test_transfers_give_the_hr_roster_a_new_version_on_their_day(
    company: Path, tmp_path: Path
) -> None:
    moves = _truth(company)["world"]["workforce"]["transfers"]
    assert moves
    create_key_file(tmp_path / "molehunt.key")
    settings = Settings.load(
        {"db": tmp_path / "m.duckdb", "key_file": tmp_path / "molehunt.key"},
        environ={},
        cwd=tmp_path,
    )
    with Store.open(settings.db) as store:
        report = ingest_paths(store, settings, [company / "reference", company / "logs"])
        assert report.errors == []
        assert report.rejected == 0
        for move in moves:
            versions = store.con.execute(
                "SELECT role, valid_from AT TIME ZONE 'Asia/Shanghai' FROM ref_hr "
                "WHERE employee_id = ? ORDER BY valid_from NULLS FIRST",
                [move["person"]],
            ).fetchall()
            assert len(versions) == 2, move
            (before, since), (after, moved) = versions
            assert since is None
            assert after == move["to"] != before
            assert moved.date().isoformat() == move["day"]
        # hr.csv is the roster from before the moves; the later versions sit beside it.
        hr = {r["employee_id"]: r for r in _csv(company, "hr.csv")}
        assert all(hr[m["person"]]["role"] != m["to"] for m in moves)


def test_a_world_with_night_shift_and_channels_is_read_with_zero_rejected(
    worlds: dict[int, Path], tmp_path: Path
) -> None:
    create_key_file(tmp_path / "molehunt.key")
    settings = Settings.load(
        {"db": tmp_path / "m.duckdb", "key_file": tmp_path / "molehunt.key"},
        environ={},
        cwd=tmp_path,
    )
    with Store.open(settings.db) as store:
        report = ingest_paths(store, settings, [worlds[3] / "reference", worlds[3] / "logs"])
    assert report.errors == []
    assert report.rejected == 0


# -- scenario variants -------------------------------------------------------------------


def test_each_seed_draws_its_scenarios_variants_and_the_logs_show_them(
    worlds: dict[int, Path],
) -> None:
    variants = set()
    for folder in worlds.values():
        truth, lines = _truth(folder), _squid(folder)
        policy = _policy(folder)
        ring = next(s for s in truth["scenarios"] if s["kind"] == "borrowed_account_ring")
        d = ring["details"]
        variants.add((d["channel"], d["tool"], d["pace"]))
        assert d["channel"] in ("shop_chat", "webmail", "cloud", "tunnel")
        assert d["channel"] != "webmail" or policy["webmail"]
        assert d["channel"] != "cloud" or policy["cloud-storage"]
        logins = {r["employee_id"]: r for r in _csv(folder, "hr.csv")}
        users = {
            a["account"]
            for a in _csv(folder, "accounts.csv")
            if a["system"] == "ad" and a["owner_employee_id"] in ring["people"]
        }
        assert all(p in logins for p in ring["people"])
        if d["channel"] == "tunnel":
            host = d["upload_url"].split(":")[0]
            sent = _tunnels(folder, host)
        else:
            sent = [(r["user"], int(r["length"])) for r in lines
                    if r["url"] == d["upload_url"] and r["method"] == "POST"]  # fmt: skip
        # Every sender is in the ring (one may be on leave for all of a short ring's days).
        assert {u for u, _ in sent} <= users
        assert sent
        assert sum(n for _, n in sent) > 100_000
    assert len(variants) == 2, "two seeds, two different rings"


def _tunnels(folder: Path, host: str) -> list[tuple[str, int]]:
    out = []
    for line in _lines(folder / "logs" / "squid" / "access.log"):
        f = line.split(" ")
        if f[3] == "CONNECT" and f[5] == host and f[8].startswith("TCP_TUNNEL"):
            out.append((f[2], int(f[9]) - int(f[10])))
    return out


def test_the_demo_seed_keeps_the_founding_case(tmp_path: Path) -> None:
    params = Params(staff=40, clients=2_000, days=6, seed=7)
    truth = simulate(tmp_path / "out", params).truth
    ring = next(s for s in truth["scenarios"] if s["kind"] == "borrowed_account_ring")
    d = ring["details"]
    assert (d["channel"], d["tool"], d["borrowed_account_system"]) == (
        "shop_chat",
        "dbeaver-navicat",
        "crm-db",
    )
    assert re.fullmatch(r"https://im\.(taobao|tmall|jd)\.com/chat/\d{8}/upload", d["upload_url"])


def test_a_ring_can_borrow_a_departed_persons_crm_login(tmp_path: Path) -> None:
    """Seed 64 draws the variant without a database client: the CRM itself."""
    params = Params(staff=40, clients=2_000, days=5, seed=64, scenarios=("borrowed_account_ring",))
    truth = simulate(tmp_path / "out", params).truth
    (ring,) = truth["scenarios"]
    assert ring["details"]["tool"] == "crm-app"
    (login,) = ring["accounts"]
    (account,) = [a for a in _csv(tmp_path / "out", "accounts.csv")
                  if a["account"] == login and a["system"] == "crm-app"]  # fmt: skip
    assert account["disabled"] == ""
    owner = next(r for r in _csv(tmp_path / "out", "hr.csv") if r["employee_id"] == account[
        "owner_employee_id"])  # fmt: skip
    assert owner["termination_date"] < ring["start_day"]
    ips = {a["ip"] for a in _csv(tmp_path / "out", "assets.csv") if a["hostname"] in ring["hosts"]}
    used = [r for r in _app(tmp_path / "out") if r["user"] == login]
    assert {r["src_ip"] for r in used} == ips
    assert sum(r["rows"] for r in used) == ring["details"]["rows_read"]
