"""Shared outside endpoint."""

from __future__ import annotations

from typing import ClassVar

import ibis

from molehunt.detect.base import DetectContext, Finding

#: Web categories of the company's own sites (an intranet's upload form is no ring).
OWN_CATEGORIES = ("internal", "intranet", "company", "corporate")


class SharedEndpointDetector:
    """Shared outside endpoint: several people uploading to the same outside host and
    path (one shop's chat, one shop id) within ``ring_days``: a ring.

    More than ``ring_max_people`` uploaders means a popular service, not a ring.
    CONNECT tunnels are left out: they show the host only, and one host shared by
    several people is too weak a tie; so are the company's own sites
    (:data:`OWN_CATEGORIES`).
    """

    name: ClassVar[str] = "shared_endpoint"
    severity: ClassVar[int] = 80
    description: ClassVar[str] = "several people uploading to one outside endpoint"
    source: ClassVar[str] = "web"

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
        o = u.select(o_actor="actor", o_end="endpoint", o_day="day", o_id="event_id")
        j = mine.join(
            o,
            [
                mine.endpoint == o.o_end,
                o.o_day <= mine.day,
                o.o_day > mine.day - ibis.interval(days=s.ring_days),
            ],
        )
        g = j.group_by(["actor", "endpoint", "day"]).aggregate(
            people=j.o_actor.collect(distinct=True),
            n=j.o_actor.nunique(),
            other_ids=j.o_id.collect(distinct=True),
        )
        g = g.filter((g.n >= s.ring_min_people) & (g.n <= s.ring_max_people))
        g = g.rename(g_actor="actor", g_end="endpoint", g_day="day")
        mine = mine.join(
            g, [mine.actor == g.g_actor, mine.endpoint == g.g_end, mine.day == g.g_day]
        )
        out = []
        for row in ctx.collect(mine):
            if not ctx.reported(row["day"]):
                continue
            others = tuple(sorted(p for p in row["people"] if p != row["actor"]))
            out.append(
                Finding(
                    detector=self.name,
                    day=row["day"],
                    time=ctx.utc(row["last"]),
                    severity=self.severity,
                    person_id=row["actor"],
                    title=f"uploads to {row['endpoint']}, as did {', '.join(others)} "
                    f"(within {s.ring_days} days)",
                    host=row["host"],
                    event_ids=ctx.ids(row["ids"], row["other_ids"]),
                    related=others,
                    details={"endpoint": row["endpoint"], "people": sorted(row["people"])},
                    key=row["endpoint"],
                )
            )
        return out
