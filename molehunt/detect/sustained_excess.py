"""Sustained excess."""

from __future__ import annotations

from typing import Any, ClassVar

import ibis

from molehunt.detect.base import DetectContext, Finding, QueryDetector


class SustainedExcessDetector(QueryDetector):
    """Sustained excess: reading a few times one's own norm day after day (the low and
    slow case), counted cumulatively, with no single spike needed.

    Counted in reads (statements, application look-ups) against the person's own
    median over the trailing ``baseline_days`` active days: a search that returns
    twenty clients is one look-up, so rows would mostly measure how broad the
    searches were. A day counts as excess above ``sustained_ratio`` times that median,
    scaled up by how much the team read above its own medians that day (a campaign
    week lifts the whole team, not one person). People with fewer than
    ``min_history_days`` active days before have no norm yet and are left out.
    """

    name: ClassVar[str] = "sustained_excess"
    severity: ClassVar[int] = 60
    description: ClassVar[str] = "records read above one's own norm day after day"
    source: ClassVar[str] = "db"
    stage: ClassVar[str] = "collection"

    def query(self, ctx: DetectContext) -> Any:
        s = ctx.settings
        d = ctx.daily_reads()
        hist = ibis.window(group_by=d.actor, order_by=d.day, rows=(-s.baseline_days, -1))
        d = d.mutate(own=d.reads.median().over(hist), history=d.reads.count().over(hist))
        d = d.mutate(
            own=ibis.cases((d.history.fill_null(0) >= s.min_history_days, d.own), else_=None)
        )
        d = d.mutate(lift=d.reads / ibis.greatest(d.own, 1))
        team = d.filter(d.own.notnull())
        team = team.group_by(["role", "department", "team", "day"]).aggregate(
            team_lift=team.lift.median()
        )
        team = team.rename(t_role="role", t_dept="department", t_team="team", t_day="day")
        d = d.left_join(
            team,
            [
                d.role.fill_null("") == team.t_role.fill_null(""),
                d.department.fill_null("") == team.t_dept.fill_null(""),
                d.team.fill_null("") == team.t_team.fill_null(""),
                d.day == team.t_day,
            ],
        ).drop("t_role", "t_dept", "t_team", "t_day")
        norm = ibis.greatest(d.own, 1) * ibis.greatest(d.team_lift.fill_null(1), 1)
        d = d.filter(d.own.notnull()).mutate(norm=norm)
        d = d.mutate(
            excess_day=(d.reads > d.norm * s.sustained_ratio).cast("int32"),
            excess_reads=ibis.greatest(d.reads - d.norm, 0),
        )
        w = ibis.window(group_by=d.actor, order_by=d.day, rows=(-(s.sustained_window_days - 1), 0))
        d = d.mutate(
            days=d.excess_day.sum().over(w),
            cum=(d.excess_reads * d.excess_day).sum().over(w),
            active=d.reads.count().over(w),
        )
        d = d.filter(
            (d.excess_day == 1)
            & (d.days >= s.sustained_min_days)
            & (d.cum >= s.sustained_min_reads)
        )
        # The windows above need every earlier day; only the pass's days are reported.
        return ctx.with_daily_ids(ctx.of_pass(d))

    def to_finding(self, ctx: DetectContext, row: dict[str, Any]) -> Finding:
        s = ctx.settings
        days = int(row["days"])
        return Finding(
            detector=self.name,
            day=row["day"],
            time=ctx.utc(row["last"]),
            severity=min(90, self.severity + 10 * (days - s.sustained_min_days)),
            person_id=row["actor"],
            title=f"{int(row['reads'])} reads today, above {s.sustained_ratio:g}x "
            f"one's own norm ({float(row['norm']):g}) on {days} of the last "
            f"{int(row['active'])} active days ({int(row['cum'])} reads in excess)",
            event_ids=ctx.ids(row["ids"]),
            details={
                "reads_today": int(row["reads"]),
                "rows_today": int(row["rows"]),
                "own_median": float(row["own"]),
                "team_lift": float(row["team_lift"] or 1),
                "excess_days": days,
                "excess_reads": int(row["cum"]),
                "peer_group": [row["role"], row["department"], row["team"]],
                "events_total": len(row["ids"]),
            },
        )
