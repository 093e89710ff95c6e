"""Volume against self and peers."""

from __future__ import annotations

from typing import Any, ClassVar

import ibis

from molehunt.detect.base import DetectContext, Finding, QueryDetector

#: Scales a MAD to a standard deviation for normal data.
MAD_SCALE = 1.4826


def self_baseline(ctx: DetectContext, daily: Any, keys: Any | None = None) -> Any:
    """Per (actor, day) of ``keys`` (default: every row of ``daily``): median and MAD
    of the person's rows on active days in the ``baseline_days`` before (the current
    day excluded), and how many such days."""
    b = daily.select(b_actor="actor", b_day="day", b_rows="rows")
    span = ctx.settings.baseline_days
    keys = (daily if keys is None else keys).select("actor", "day")
    j = keys.join(
        b,
        [
            keys.actor == b.b_actor,
            b.b_day < keys.day,
            b.b_day >= keys.day - ibis.interval(days=span),
        ],
    )
    med = j.group_by(["actor", "day"]).aggregate(med=j.b_rows.median(), n=j.b_rows.count())
    med = med.rename(m_actor="actor", m_day="day")
    j = j.join(med, [j.actor == med.m_actor, j.day == med.m_day])
    mad = j.group_by(["actor", "day", "med", "n"]).aggregate(mad=(j.b_rows - j.med).abs().median())
    return mad.rename(s_actor="actor", s_day="day")


class VolumeSpikeDetector(QueryDetector):
    """Volume against self and peers: a day's records read far above the person's own
    trailing median (median/MAD, current day excluded) and the peer group's that day.

    Comparing with the peers on the same day keeps a whole team's campaign week
    quiet; a person with too little history is compared with the peers only, once the
    store itself has ``min_history_days`` of reads (before that, everyone is new).
    """

    name: ClassVar[str] = "volume_spike"
    severity: ClassVar[int] = 60
    description: ClassVar[str] = "records read in a day far above one's own and one's peers' norm"
    source: ClassVar[str] = "db"
    stage: ClassVar[str] = "collection"

    def query(self, ctx: DetectContext) -> Any:
        s = ctx.settings
        d = ctx.daily_reads()
        # Only days above the floor and the peers can be reported: the baseline (a
        # join of each day with its month) is worked out for those alone.
        d = d.filter(
            (d.rows >= s.spike_min_rows) & (d.rows > d.peer_median.fill_null(0) * s.peer_ratio)
        )
        d = ctx.of_pass(d)  # a day's finding needs its own row and the trailing baseline
        base = self_baseline(ctx, ctx.daily_reads(), keys=d)
        d = d.left_join(base, [d.actor == base.s_actor, d.day == base.s_day])
        med = d.med.fill_null(0)
        mad = d.mad.fill_null(0)
        trusted = d.n.fill_null(0) >= s.min_history_days
        above_self = (d.rows > med * s.spike_ratio) & (d.rows > med + mad * MAD_SCALE * s.spike_mad)
        # A person new to a store that has history is judged by the peers alone; in a
        # store's own first days everyone is new and nobody's volume says anything yet.
        store_known = d.day >= ctx.daily_reads().day.min() + ibis.interval(days=s.min_history_days)
        d = d.filter((~trusted & store_known) | above_self)
        return ctx.with_daily_ids(d)

    def to_finding(self, ctx: DetectContext, row: dict[str, Any]) -> Finding:
        rows = int(row["rows"])
        own = float(row["med"] or 0)
        times = rows / own if own else None
        severity = self.severity + (15 if times is None or times >= 10 else 0)
        vs_self = f"{times:.0f}x own median {own:g}" if times else "no own history"
        return Finding(
            detector=self.name,
            day=row["day"],
            time=ctx.utc(row["last"]),
            severity=severity,
            person_id=row["actor"],
            title=f"{rows} records read in a day ({vs_self}; peers' median "
            f"{float(row['peer_median'] or 0):g})",
            event_ids=ctx.ids(row["ids"]),
            details={
                "rows": rows,
                "own_median": own,
                "own_mad": float(row["mad"] or 0),
                "history_days": int(row["n"] or 0),
                "peer_median": float(row["peer_median"] or 0),
                "peer_group": [row["role"], row["department"]],
                "events_total": len(row["ids"]),
                **ctx.reading_surprise(row["actor"], [row["day"]]),
            },
        )
