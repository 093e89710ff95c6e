"""A small company whose staff upload to shops every day: the population the upload
detectors measure against (the scenario world has too few uploads to say what is usual)."""

from __future__ import annotations

import random
import tempfile
from datetime import date
from pathlib import Path

from insurer import START, World, at, ip, workdays

from molehunt.config import Settings
from molehunt.detect import DetectionSettings, Finding
from molehunt.detect.runner import run_detectors
from molehunt.keys import create_key_file
from molehunt.store import Store

STAFF = ("E001", "E002", "E003", "E005", "E006", "E007", "E008", "E009")
DAYS = workdays(START, 30)
LAST = DAYS[-1]
POPULAR = "http://im.shop.example.cn/chat/upload"
MULTIPART = "multipart/form-data; boundary=x"
RING = "http://im.tiny-shop.example.cn/chat/5566/upload"
#: The company's own site (category ``internal``): an upload there stays inside.
INTRANET = "http://crm.corp.example.cn/oa/attachments"


def upload_world(*, shared_pairs: bool = False) -> World:
    """Everyone posts photos to one popular shop chat most days (0.3-3 MB) and to a
    private shop endpoint of their own, and one more shop chat every day (a company has
    many); on the last day E008 uploads 40 MB, E009 60 MB to the company's own
    site, and E001 and E002 both post to one small shop's chat. With ``shared_pairs``, colleagues
    commonly share endpoints in pairs, so two people on one endpoint is ordinary."""
    rng = random.Random(5)
    w = World()
    w.routine(START, 30)
    for day in DAYS:
        for i, emp in enumerate(STAFF):
            if rng.random() < 0.8:
                size = rng.randint(300_000, 3_000_000)
                w.http(
                    at(day, 12, 10 + i),
                    ip(emp),
                    POPULAR,
                    method="POST",
                    bytes_out=size,
                    content_type=MULTIPART,
                )
            if rng.random() < 0.3:
                mate = STAFF[i ^ 1] if shared_pairs else emp
                url = f"http://shop{min(emp, mate)}-{day.day % 6}.example.cn/im/send"
                w.http(
                    at(day, 13, i),
                    ip(emp),
                    url,
                    method="POST",
                    bytes_out=rng.randint(300_000, 900_000),
                    content_type=MULTIPART,
                )
            # A company has many shops' chats: each person one more, every day.
            w.http(
                at(day, 14, i),
                ip(emp),
                f"http://store{emp}-{day.isoformat()}.example.cn/im/send",
                method="POST",
                bytes_out=500_000,
                content_type=MULTIPART,
            )
    w.http(
        at(LAST, 15),
        ip("E008"),
        POPULAR,
        method="POST",
        bytes_out=40_000_000,
        content_type=MULTIPART,
    )
    w.http(at(LAST, 15, 30), ip("E009"), INTRANET, method="POST", bytes_out=60_000_000)
    for emp in ("E001", "E002"):
        w.http(
            at(LAST, 16), ip(emp), RING, method="POST", bytes_out=600_000, content_type=MULTIPART
        )
    return w


def detect(world: World, names: tuple[str, ...], day: date = LAST) -> list[Finding]:
    folder = Path(tempfile.mkdtemp(prefix="molehunt-uploads-"))
    create_key_file(folder / "k")
    settings = Settings.load(
        {"db": folder / "m.duckdb", "key_file": folder / "k"}, environ={}, cwd=folder
    )
    with Store.open(settings.db) as store:
        world.ingest(store, settings, folder / "in")
        return run_detectors(store, DetectionSettings(), day, names=names).findings
