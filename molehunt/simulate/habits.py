"""The company's habits, drawn anew for every seed from wide ranges (domain randomisation).

Detection tuned on one simulated company learns that company. Each seed therefore
draws how its staff live: how many chat with shops' customer service and how
often, how big the photos and documents they send there are, how concentrated
they are on a few popular shops (many colleagues posting to one shop's chat),
how much they browse. :func:`draw_habits` uses its own random stream, so the
company's people and the planted scenarios do not move when a range changes.
``truth.json`` records the draw under ``"world"`` so an evaluation can say which
kind of company it was scored on.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

from molehunt.simulate.company import Company, Person

KB = 1024
MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ChatPlatform:
    """How one shopping platform's customer-service chat talks to its server."""

    host: str
    send: str  # path of a text message; ``{id}`` is the shop's id
    upload: str  # path of a photo or document
    chunk: int  # bytes per upload request; 0 = the whole file in one request
    text_multipart: bool  # text messages are posted as multipart/form-data too


#: Customer-service chats of the shopping sites staff may reach. Paths are the shapes
#: such chats use (a shop id in the path or the query).
PLATFORMS: tuple[ChatPlatform, ...] = (
    ChatPlatform("im.jd.com", "/im/send?venderId={id}", "/im/upload?venderId={id}", 0, False),
    ChatPlatform("dd.jd.com", "/chat/{id}/send", "/chat/{id}/upload", 2 * MB, False),
    ChatPlatform("amos.alicdn.com", "/message/send?uid={id}", "/message/attach?uid={id}", 0, True),
    ChatPlatform("chat.tmall.com", "/api/im/{id}/send", "/api/im/{id}/upload", MB, False),
    ChatPlatform("im.taobao.com", "/chat/{id}/send", "/chat/{id}/upload", 2 * MB, False),
    ChatPlatform("im.tmall.com", "/chat/{id}/send", "/chat/{id}/upload", 2 * MB, True),
    ChatPlatform("mms.pinduoduo.com", "/message/send/{id}", "/message/attach/{id}", 0, False),
    ChatPlatform("im.vip.com", "/chat/{id}/send", "/chat/{id}/upload", MB, False),
    ChatPlatform(
        "im.yangkeduo.com", "/api/im/send?mall_id={id}", "/api/im/image?mall_id={id}", 0, True
    ),
)


@dataclass(frozen=True, slots=True)
class Shop:
    """One shop's customer-service chat: where its messages and uploads go."""

    platform: ChatPlatform
    shop_id: int

    @property
    def host(self) -> str:
        return self.platform.host

    @property
    def send_path(self) -> str:
        return self.platform.send.format(id=self.shop_id)

    @property
    def upload_path(self) -> str:
        return self.platform.upload.format(id=self.shop_id)


@dataclass(slots=True)
class PersonHabits:
    """One person's own habits (drawn around the company's)."""

    chats: bool = False
    chat_rate: float = 0.0  # chat sessions a working day
    upload_chance: float = 0.0  # chance a chat session sends a photo or document
    favourites: tuple[int, ...] = ()  # indexes into Habits.shops


@dataclass(slots=True)
class Habits:
    """What this seed's company does on an ordinary day (see the module docstring)."""

    shop_chat_share: float
    chat_sessions_per_day: float
    chat_upload_chance: float
    upload_median_kb: float
    upload_sigma: float
    large_upload_chance: float
    lunch_share: float
    break_share: float
    shop_concentration: float
    shopping_visits: float
    blocked_visits: float
    company_visits: float
    intranet_attach_chance: float
    shops: list[Shop]
    shop_weights: list[float]
    people: dict[int, PersonHabits] = field(default_factory=dict)

    def person(self, p: Person) -> PersonHabits:
        return self.people.get(p.index) or PersonHabits()

    def upload_size(self, rng: random.Random) -> int:
        """Bytes of one photo or document sent to a shop's chat: 50 KB - 8 MB, now and
        then a larger one (a video, a scanned contract)."""
        if rng.random() < self.large_upload_chance:
            return rng.randint(8 * MB, 30 * MB)
        size = rng.lognormvariate(math.log(self.upload_median_kb * KB), self.upload_sigma)
        return int(min(8 * MB, max(50 * KB, size)))

    def as_dict(self) -> dict[str, Any]:
        """The draw, for ``truth.json``'s ``"world"``."""
        chatters = [h for h in self.people.values() if h.chats]
        users: dict[int, int] = {}
        for h in chatters:
            for s in h.favourites:
                users[s] = users.get(s, 0) + 1
        top = sorted(users.values(), reverse=True)
        favourite = max(users, key=lambda s: (users[s], -s)) if users else None
        return {
            "shop_chat": {
                "share_of_staff": round(self.shop_chat_share, 3),
                "chatters": len(chatters),
                "sessions_per_day": round(self.chat_sessions_per_day, 3),
                "upload_chance_per_session": round(self.chat_upload_chance, 3),
                "upload_median_kb": round(self.upload_median_kb, 1),
                "upload_sigma": round(self.upload_sigma, 3),
                "large_upload_chance": round(self.large_upload_chance, 4),
                "lunch_share": round(self.lunch_share, 3),
                "break_share": round(self.break_share, 3),
                "shops": len(self.shops),
                "concentration": round(self.shop_concentration, 3),
                "regulars_of_top_shops": top[:5],
                "top_shop": (
                    f"{self.shops[favourite].host}{self.shops[favourite].upload_path}"
                    if favourite is not None
                    else None
                ),
            },
            "browsing": {
                "shopping_visits_per_day": round(self.shopping_visits, 2),
                "blocked_visits_per_day": round(self.blocked_visits, 2),
                "company_site_visits_per_day": round(self.company_visits, 2),
                "intranet_attach_chance": round(self.intranet_attach_chance, 3),
            },
        }


def _log_uniform(rng: random.Random, lo: float, hi: float) -> float:
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def draw_habits(seed: int, company: Company) -> Habits:
    """The habits of this seed's company and of each of its people."""
    rng = random.Random(f"habits:{seed}")
    # Which platforms this company's staff favour, and how many shops they talk to.
    platform_weights = [rng.random() ** 2 for _ in PLATFORMS]
    n_shops = rng.randint(15, 150)
    ids: set[tuple[str, int]] = set()
    shops: list[Shop] = []
    while len(shops) < n_shops:
        platform = rng.choices(PLATFORMS, weights=platform_weights)[0]
        shop_id = (
            rng.randint(10_000_000, 99_999_999)
            if "{id}/" in platform.upload
            else (rng.randint(100_000, 9_999_999))
        )
        if (platform.host, shop_id) not in ids:
            ids.add((platform.host, shop_id))
            shops.append(Shop(platform, shop_id))
    concentration = rng.uniform(0.4, 1.8)
    weights = [1 / (rank + 1) ** concentration for rank in range(n_shops)]
    lunch = rng.uniform(0.35, 0.85)
    habits = Habits(
        shop_chat_share=rng.uniform(0.1, 0.9),
        chat_sessions_per_day=_log_uniform(rng, 0.12, 1.5),
        chat_upload_chance=rng.uniform(0.15, 0.7),
        upload_median_kb=_log_uniform(rng, 150, 2500),
        upload_sigma=rng.uniform(0.5, 1.2),
        large_upload_chance=_log_uniform(rng, 0.003, 0.04),
        lunch_share=lunch,
        break_share=rng.uniform(0.0, 1.0 - lunch),
        shop_concentration=concentration,
        shopping_visits=_log_uniform(rng, 4, 25),
        blocked_visits=_log_uniform(rng, 0.3, 3.0),
        company_visits=rng.uniform(10, 30),
        intranet_attach_chance=rng.uniform(0.05, 0.3),
        shops=shops,
        shop_weights=weights,
    )
    for p in company.people:
        if not p.host:
            continue
        mine = PersonHabits()
        if rng.random() < habits.shop_chat_share:
            mine.chats = True
            mine.chat_rate = habits.chat_sessions_per_day * rng.lognormvariate(0, 0.7)
            mine.upload_chance = min(0.95, habits.chat_upload_chance * rng.lognormvariate(0, 0.4))
            k = rng.choice((1, 1, 2, 2, 3, 4))
            mine.favourites = tuple(sorted(set(rng.choices(range(n_shops), weights=weights, k=k))))
        habits.people[p.index] = mine
    return habits
