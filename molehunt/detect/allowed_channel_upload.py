"""Uploads through allowed channels, measured against the company's own population."""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from datetime import date, timedelta
from typing import Any, ClassVar

from molehunt.detect.base import DetectContext, Finding, QueryDetector
from molehunt.detect.surprise import percentile_words, tail_bits

#: A destination with fewer upload person-days than this in the window is judged
#: against all allowed destinations together (too few to say what is usual there).
MIN_SITE_POPULATION = 20


def _reach(values: list[int], x: int) -> int:
    """How many of the sorted ``values`` are >= ``x``."""
    return len(values) - bisect_left(values, x)


class AllowedChannelUploadDetector(QueryDetector):
    """Uploads through allowed channels: a day's uploads to a site the policy allows
    (a shop's chat, webmail, a portal) or through a CONNECT tunnel that are surprising
    both for that destination's population and for the person's own days.

    Nothing is a fixed size: the strength of a finding is its surprise in bits, the
    ``-log2`` of the share of the destination's upload days (everyone's, over the
    trailing ``baseline_days``) that reach it, and the day must also exceed every one
    of the person's own active days in that window (or be as rare among them). A site
    few people upload to is judged against all allowed destinations together; a
    person with less than ``min_history_days`` of history against the population only.
    A finding needs ``upload_min_bits``; a bulk read on the same host within
    ``follow_hours`` before it makes it stronger.
    """

    name: ClassVar[str] = "allowed_channel_upload"
    severity: ClassVar[int] = 60
    description: ClassVar[str] = "uploads far above what the destination and the person usually see"
    source: ClassVar[str] = "web"
    stage: ClassVar[str] = "exfiltration"

    def query(self, ctx: DetectContext) -> Any:
        # A day is judged against the trailing ``baseline_days`` (module doc).
        u = ctx.trailing(ctx.uploads())
        u = u.filter(u.allowed | (u.method == "CONNECT"))
        return u.group_by(["actor", "day", "web_host"]).aggregate(
            bytes=u.bytes_out.sum(),
            requests=u.event_id.count(),
            first=u.time.min(),
            last=u.time.max(),
            host=u.hostname.max(),
            tunnel=(u.method == "CONNECT").cast("int32").max(),
        )

    def rows(self, ctx: DetectContext) -> list[dict[str, Any]]:
        """One row per person-day with ``items``: its surprising uploads to each site
        (judged against everyone's, :func:`_surprising`); their event ids and the bulk
        reads on their hosts are gathered for the pass, for those alone."""
        rows = ctx.collect(self.query(ctx))
        if not rows:
            return []
        h = ctx.trailing(ctx.http())
        active = h.filter(h.actor.notnull()).select("actor", "day").distinct()
        days_of: dict[str, set[date]] = defaultdict(set)
        for r in ctx.collect(active):
            days_of[r["actor"]].add(r["day"])
        flagged = _surprising(rows, days_of, ctx)
        if not flagged:
            return []
        u = ctx.of_pass(ctx.uploads())
        u = u.filter(u.allowed | (u.method == "CONNECT"))
        actors = sorted({r["actor"] for r in flagged})
        u = u.filter(u.actor.isin(actors))
        ids = u.group_by(["actor", "day", "web_host"]).aggregate(ids=u.event_id.collect())
        self._id_of = {(r["actor"], r["day"], r["web_host"]): r["ids"] for r in ctx.collect(ids)}
        # Bulk reads up to ``follow_hours`` before a reported day's uploads.
        b = ctx.trailing(ctx.bulk_reads(), 1 + ctx.settings.follow_hours // 24)
        b = b.select(b_id="event_id", b_time="time", b_host="hostname")
        hosts = sorted({r["host"] for r in flagged if r["host"]})
        reads_of: dict[str, list[tuple[Any, str]]] = defaultdict(list)
        if hosts:
            for r in ctx.collect(b.filter(b.b_host.isin(hosts))):
                reads_of[r["b_host"]].append((ctx.utc(r["b_time"]), r["b_id"]))
        self._reads_of = reads_of
        by_person: dict[tuple[str, date], list[dict[str, Any]]] = defaultdict(list)
        for r in flagged:
            by_person[(r["actor"], r["day"])].append(r)
        return [
            {"actor": actor, "day": day, "items": items}
            for (actor, day), items in sorted(by_person.items())
        ]

    def to_finding(self, ctx: DetectContext, row: dict[str, Any]) -> Finding:
        s = ctx.settings
        actor, day, items = row["actor"], row["day"], row["items"]
        items.sort(key=lambda r: -r["bits"])
        top = items[0]
        first = min(ctx.utc(r["first"]) for r in items)
        last = max(ctx.utc(r["last"]) for r in items)
        window = timedelta(hours=s.follow_hours)
        reads = sorted(
            {
                rid
                for r in items
                for t, rid in self._reads_of.get(r["host"] or "", [])
                if first - window < t <= last
            }
        )
        bits = float(top["bits"])
        severity = min(95, round(40 + 4 * bits) + (20 if reads else 0))
        mb = sum(int(r["bytes"]) for r in items) / 1_048_576
        sites = sorted(r["web_host"] for r in items)
        after = f"; {len(reads)} bulk read(s) before on that host" if reads else ""
        return Finding(
            detector=self.name,
            day=day,
            time=last,
            severity=severity,
            person_id=actor,
            title=f"{mb:.1f} MB uploaded to {', '.join(sites)} ({top['why']}{after})",
            host=top["host"],
            event_ids=ctx.ids(
                *(self._id_of.get((actor, day, r["web_host"]), []) for r in items), reads
            ),
            details={
                "bytes_out": sum(int(r["bytes"]) for r in items),
                "bits": round(bits, 2),
                "site_bits": round(float(top["site_bits"]), 2),
                "own_bits": round(float(top["own_bits"]), 2),
                "uploaders_at_site": int(top["uploaders"]),
                "sites": sites,
                "tunnel": bool(top["tunnel"]),
                "bulk_reads_before": len(reads),
            },
        )


def _surprising(
    rows: list[dict[str, Any]], days_of: dict[str, set[date]], ctx: DetectContext
) -> list[dict[str, Any]]:
    """The (person, day, site) upload rows whose surprise reaches ``upload_min_bits``,
    each with its bits and a sentence saying against what."""
    s = ctx.settings
    span = timedelta(days=s.baseline_days)
    by_site_day: dict[str, dict[date, list[tuple[int, str]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    all_by_day: dict[date, list[int]] = defaultdict(list)
    own_total: dict[tuple[str, date], int] = defaultdict(int)
    for r in rows:
        value = int(r["bytes"] or 0)
        by_site_day[r["web_host"]][r["day"]].append((value, r["actor"]))
        all_by_day[r["day"]].append(value)
        own_total[(r["actor"], r["day"])] += value
    windows: dict[tuple[str, date], tuple[list[int], int]] = {}
    all_windows: dict[date, list[int]] = {}

    def site_window(site: str, day: date) -> tuple[list[int], int]:
        key = (site, day)
        if key not in windows:
            days = by_site_day[site]
            values = [v for d in days if day - span <= d <= day for v, _ in days[d]]
            people = {a for d in days if day - span <= d <= day for _, a in days[d]}
            windows[key] = (sorted(values), len(people))
        return windows[key]

    def any_window(day: date) -> list[int]:
        if day not in all_windows:
            all_windows[day] = sorted(
                v for d, vs in all_by_day.items() if day - span <= d <= day for v in vs
            )
        return all_windows[day]

    out = []
    for r in rows:
        day = r["day"]
        if not ctx.reported(day):
            continue
        x = int(r["bytes"] or 0)
        values, uploaders = site_window(r["web_host"], day)
        against = f"{uploaders} colleague(s) upload to {r['web_host']}"
        if len(values) < MIN_SITE_POPULATION:
            values = any_window(day)
            against = f"only {uploaders} colleague(s) upload to {r['web_host']}; judged against "
            against += "all allowed destinations"
        # the row itself is in the window: count the others
        site_bits = tail_bits(_reach(values, x) - 1, len(values) - 1)
        if site_bits < s.upload_min_bits:
            continue
        own_days = [d for d in days_of.get(r["actor"], ()) if day - span <= d < day]
        if len(own_days) >= s.min_history_days:
            total = own_total[(r["actor"], day)]
            reach = sum(1 for d in own_days if own_total.get((r["actor"], d), 0) >= total)
            own_bits = tail_bits(reach, len(own_days))
            # A month of history can say at most log2(31) bits: above every own day is
            # as surprising as the person's own days can tell.
            if reach > 0 and own_bits < s.upload_min_bits:
                continue
            own = f"{percentile_words(own_bits)} of this person's {len(own_days)} days"
        else:
            own_bits = 0.0
            own = f"{len(own_days)} day(s) of own history: judged against the population only"
        bits = site_bits
        why = f"{percentile_words(site_bits)} of upload days there, {against}; {own}"
        out.append(
            {
                **r,
                "bits": bits,
                "site_bits": site_bits,
                "own_bits": own_bits,
                "uploaders": uploaders,
                "why": why,
            }
        )
    return out
