"""Working days in mainland China: weekends, public holidays and make-up workdays."""

from __future__ import annotations

from datetime import date, timedelta


def _span(first: str, last: str) -> set[date]:
    a, b = date.fromisoformat(first), date.fromisoformat(last)
    return {a + timedelta(days=i) for i in range((b - a).days + 1)}


# State Council holiday notices (2025, 2026); other years get the fixed-date holidays.
HOLIDAYS: set[date] = set().union(
    _span("2025-01-01", "2025-01-01"), _span("2025-01-28", "2025-02-04"),
    _span("2025-04-04", "2025-04-06"), _span("2025-05-01", "2025-05-05"),
    _span("2025-05-31", "2025-06-02"), _span("2025-10-01", "2025-10-08"),
    _span("2026-01-01", "2026-01-03"), _span("2026-02-15", "2026-02-23"),
    _span("2026-04-04", "2026-04-06"), _span("2026-05-01", "2026-05-05"),
    _span("2026-06-19", "2026-06-21"), _span("2026-09-25", "2026-09-27"),
    _span("2026-10-01", "2026-10-07"),
)  # fmt: skip
MAKEUP_WORKDAYS: set[date] = {
    date.fromisoformat(d)
    for d in (
        "2025-01-26", "2025-02-08", "2025-04-27", "2025-09-28", "2025-10-11",
        "2026-01-04", "2026-02-14", "2026-02-28", "2026-05-09", "2026-09-20", "2026-10-10",
    )
}  # fmt: skip


def is_workday(day: date) -> bool:
    if day in MAKEUP_WORKDAYS:
        return True
    if day in HOLIDAYS:
        return False
    if day.year not in (2025, 2026) and (day.month, day.day) in {(1, 1), (5, 1), (10, 1)}:
        return False
    return day.weekday() < 5
