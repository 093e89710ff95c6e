"""Shared outside endpoint, measured against how the company's endpoints are shared."""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from datetime import date, timedelta
from typing import Any, ClassVar

from molehunt.detect.base import DetectContext, Finding
from molehunt.detect.surprise import tail_bits

#: Web categories of the company's own sites (an intranet's upload form is no ring).
OWN_CATEGORIES = ("internal", "intranet", "company", "corporate")


class SharedEndpointDetector:
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
    only), and so are the company's own sites (:data:`OWN_CATEGORIES`).
    """

    name: ClassVar[str] = "shared_endpoint"
    severity: ClassVar[int] = 80
    description: ClassVar[str] = "a few people uploading to an endpoint few others share"
    source: ClassVar[str] = "web"
    stage: ClassVar[str] = "exfiltration"

    def find(self, ctx: DetectContext) -> list[Finding]:
        s = ctx.settings
        u = ctx.uploads()
        u = u.filter(
            (u.method != "CONNECT") & ~u.category.fill_null("").lower().isin(list(OWN_CATEGORIES))
        )
        u = u.mutate(endpoint=u.web_host + u.path.fill_null(""))
        mine = u.group_by(["actor", "endpoint", "day"]).aggregate(
            ids=u.event_id.collect(), last=u.time.max(), host=u.hostname.max()
        )
        rows = ctx.collect(mine)
        span = timedelta(days=s.ring_days - 1)
        people_on: dict[str, dict[date, set[str]]] = defaultdict(lambda: defaultdict(set))
        for r in rows:
            people_on[r["endpoint"]][r["day"]].add(r["actor"])
        ids_of = {(r["actor"], r["endpoint"], r["day"]): r["ids"] for r in rows}
        shared: dict[date, list[int]] = {}

        def uploaders(endpoint: str, day: date) -> set[str]:
            days = people_on[endpoint]
            return {a for d, who in days.items() if day - span <= d <= day for a in who}

        everyone: dict[date, int] = {}

        def uploaders_anywhere(day: date) -> int:
            if day not in everyone:
                everyone[day] = len(
                    {
                        a
                        for days in people_on.values()
                        for d, who in days.items()
                        if day - span <= d <= day
                        for a in who
                    }
                )
            return everyone[day]

        def sharing(day: date) -> list[int]:
            """How many uploaders each endpoint had in the window ending ``day``, sorted."""
            if day not in shared:
                shared[day] = sorted(
                    len(uploaders(e, day))
                    for e, days in people_on.items()
                    if any(day - span <= d <= day for d in days)
                )
            return shared[day]

        out = []
        for r in rows:
            day = r["day"]
            if not ctx.reported(day):
                continue
            people = uploaders(r["endpoint"], day)
            n = len(people)
            most = min(s.ring_max_people, int(s.ring_max_share * uploaders_anywhere(day)))
            if not s.ring_min_people <= n <= most:
                continue
            counts = sharing(day)
            reach = len(counts) - bisect_left(counts, n)
            bits = tail_bits(reach - 1, len(counts) - 1)
            if bits < s.ring_min_bits:
                continue
            out.append(self._finding(ctx, r, people, bits, len(counts), reach, ids_of))
        return out

    def _finding(
        self,
        ctx: DetectContext,
        r: dict[str, Any],
        people: set[str],
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
