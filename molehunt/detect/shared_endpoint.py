"""Shared outside endpoint, measured against how the company's endpoints are shared."""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from datetime import date, timedelta
from typing import Any, ClassVar

from molehunt.detect.base import DetectContext, Finding, QueryDetector
from molehunt.detect.surprise import tail_bits


class SharedEndpointDetector(QueryDetector):
    """Shared outside endpoint: a few people uploading to the same outside host and
    path (one shop's chat, one shop id) within ``ring_days``, where the company's
    endpoints are rarely shared by that many: a ring.

    The strength is the surprise in bits of an endpoint having this many uploaders:
    ``-log2`` of the share of all endpoints uploaded to in the window that have at
    least as many. Where colleagues commonly talk to the same popular shop, a group
    of three is ordinary and no finding; where endpoints are private, it is rare. A
    finding needs ``ring_min_bits``; more than ``ring_max_people`` uploaders, or more
    than ``ring_max_share`` of everyone who uploaded anywhere, is a popular service,
    not a ring. CONNECT tunnels are left out (they show the host
    only), and the company's own sites carry no upload (:meth:`DetectContext.uploads`).
    """

    name: ClassVar[str] = "shared_endpoint"
    severity: ClassVar[int] = 80
    description: ClassVar[str] = "a few people uploading to an endpoint few others share"
    source: ClassVar[str] = "web"
    stage: ClassVar[str] = "exfiltration"

    def query(self, ctx: DetectContext) -> Any:
        # A day is judged against the ``ring_days`` ending it.
        u = ctx.trailing(ctx.uploads(), ctx.settings.ring_days)
        u = u.filter(u.method != "CONNECT")
        u = u.mutate(endpoint=u.web_host + u.path.fill_null(""))
        return u.group_by(["actor", "endpoint", "day"]).aggregate(
            ids=u.event_id.collect(), last=u.time.max(), host=u.hostname.max()
        )

    def rows(self, ctx: DetectContext) -> list[dict[str, Any]]:
        """Each person's uploads to an endpoint on a day; who uploaded where, to judge
        each against every endpoint, is kept for the pass."""
        rows = ctx.collect(self.query(ctx))
        self._rings = _Rings(rows, ctx.settings.ring_days)
        return rows

    def to_finding(self, ctx: DetectContext, row: dict[str, Any]) -> Finding | None:
        s = ctx.settings
        rings = self._rings
        day = row["day"]
        people = rings.uploaders(row["endpoint"], day)
        n = len(people)
        most = min(s.ring_max_people, int(s.ring_max_share * rings.uploaders_anywhere(day)))
        if not s.ring_min_people <= n <= most:
            return None
        counts = rings.sharing(day)
        reach = len(counts) - bisect_left(counts, n)
        bits = tail_bits(reach - 1, len(counts) - 1)
        if bits < s.ring_min_bits:
            return None
        return self._finding(ctx, row, people, bits, len(counts), reach, rings.ids_of)

    def _finding(
        self,
        ctx: DetectContext,
        r: dict[str, Any],
        people: frozenset[str],
        bits: float,
        endpoints: int,
        reach: int,
        ids_of: dict[tuple[str, str, date], list[str]],
    ) -> Finding:
        s = ctx.settings
        day = r["day"]
        span = timedelta(days=s.ring_days - 1)
        others = tuple(sorted(p for p in people if p != r["actor"]))
        other_ids = [
            i
            for (a, e, d), ids in ids_of.items()
            if e == r["endpoint"] and a in others and day - span <= d <= day
            for i in ids
        ]
        return Finding(
            detector=self.name,
            day=day,
            time=ctx.utc(r["last"]),
            severity=min(95, self.severity + round(2 * (bits - s.ring_min_bits))),
            person_id=r["actor"],
            title=f"uploads to {r['endpoint']}, as did {', '.join(others)} within "
            f"{s.ring_days} days; {reach - 1} of the company's other {endpoints - 1} upload "
            f"endpoints have {len(people)} or more uploaders ({bits:.1f} bits)",
            host=r["host"],
            event_ids=ctx.ids(r["ids"], other_ids),
            related=others,
            details={
                "endpoint": r["endpoint"],
                "people": sorted(people),
                "bits": round(bits, 2),
                "endpoints_in_window": endpoints,
                "endpoints_as_shared": reach,
            },
            key=r["endpoint"],
        )


class _Rings:
    """Who uploaded to which endpoint on which day: an endpoint's uploaders in the
    ``ring_days`` ending a day, everyone who uploaded anywhere then, and how many
    uploaders each endpoint had (worked out once per day asked)."""

    def __init__(self, rows: list[dict[str, Any]], ring_days: int) -> None:
        self.span = timedelta(days=ring_days - 1)
        self.people_on: dict[str, dict[date, set[str]]] = defaultdict(lambda: defaultdict(set))
        for r in rows:
            self.people_on[r["endpoint"]][r["day"]].add(r["actor"])
        self.ids_of = {(r["actor"], r["endpoint"], r["day"]): r["ids"] for r in rows}
        self._shared: dict[date, list[int]] = {}
        self._everyone: dict[date, int] = {}
        self._uploaders: dict[tuple[str, date], frozenset[str]] = {}

    def uploaders(self, endpoint: str, day: date) -> frozenset[str]:
        # Once per endpoint and day: every uploader of a busy endpoint asks the same.
        key = (endpoint, day)
        if key not in self._uploaders:
            days = self.people_on[endpoint]
            low = day - self.span
            self._uploaders[key] = frozenset(
                a for d, who in days.items() if low <= d <= day for a in who
            )
        return self._uploaders[key]

    def uploaders_anywhere(self, day: date) -> int:
        if day not in self._everyone:
            self._everyone[day] = len(
                {
                    a
                    for days in self.people_on.values()
                    for d, who in days.items()
                    if day - self.span <= d <= day
                    for a in who
                }
            )
        return self._everyone[day]

    def sharing(self, day: date) -> list[int]:
        """How many uploaders each endpoint had in the window ending ``day``, sorted."""
        if day not in self._shared:
            low = day - self.span
            self._shared[day] = sorted(
                len(self.uploaders(e, day))
                for e, days in self.people_on.items()
                if any(low <= d <= day for d in days)
            )
        return self._shared[day]
