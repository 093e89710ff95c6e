"""Sustained excess."""

from __future__ import annotations

from typing import ClassVar

import ibis

from molehunt.detect.base import DetectContext, Finding


class SustainedExcessDetector:
    """Sustained excess: reading a few times the peer group's norm day after day (the
    low and slow case), counted cumulatively, with no single spike needed.

    Measured against the peers of the same day rather than the person's own history,
    which the reading itself inflates as it goes on.
    """

    name: ClassVar[str] = "sustained_excess"
    severity: ClassVar[int] = 60
    description: ClassVar[str] = "records read above the peers' norm day after day"
    source: ClassVar[str] = "db"

    def find(self, ctx: DetectContext) -> list[Finding]:
        s = ctx.settings
        d = ctx.daily_reads()
        peer = d.peer_median.fill_null(0)
        d = d.mutate(
            excess_day=(d.rows > peer * s.sustained_ratio).cast("int32"),
            excess_rows=ibis.greatest(d.rows - peer, 0),
        )
        w = ibis.window(group_by=d.actor, order_by=d.day, rows=(-(s.sustained_window_days - 1), 0))
        d = d.mutate(
            days=d.excess_day.sum().over(w),
            cum=d.excess_rows.sum().over(w),
            active=d.rows.count().over(w),
        )
        d = d.filter(
            (d.excess_day == 1) & (d.days >= s.sustained_min_days) & (d.cum >= s.sustained_min_rows)
        )
        out = []
        for row in ctx.collect(d):
            if not ctx.reported(row["day"]):
                continue
            days = int(row["days"])
            out.append(
                Finding(
                    detector=self.name,
                    day=row["day"],
                    time=ctx.utc(row["last"]),
                    severity=min(90, self.severity + 10 * (days - s.sustained_min_days)),
                    person_id=row["actor"],
                    title=f"above {s.sustained_ratio:g}x the peers' reading on {days} of the "
                    f"last {int(row['active'])} active days ({int(row['cum'])} rows in excess)",
                    event_ids=ctx.ids(row["ids"]),
                    details={
                        "rows_today": int(row["rows"]),
                        "peer_median": float(row["peer_median"] or 0),
                        "excess_days": days,
                        "excess_rows": int(row["cum"]),
                        "peer_group": [row["role"], row["department"]],
                        "events_total": len(row["ids"]),
                    },
                )
            )
        return out
