"""The range of times molehunt takes from users (the CLI's ``--at``, the API's ``at``)."""

from __future__ import annotations

from datetime import UTC, date, datetime

#: The zone in which times are shown and naive times are read unless configured
#: (``timezone`` in the settings): the insurer's own, with no daylight saving time.
DEFAULT_TIMEZONE = "Asia/Shanghai"

#: Wide, but every time in it converts to UTC and back, and its day's end too.
EARLIEST = datetime(1900, 1, 2, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def checked_time(parsed: datetime) -> datetime:
    """``parsed`` when it is within :data:`EARLIEST`..:data:`LATEST`; else ValueError
    saying so (``0001-01-01T00:00:00+14:00`` is before year 1 in UTC).

    >>> checked_time(datetime.fromisoformat("0001-01-01T00:00:00+14:00"))
    Traceback (most recent call last):
    ...
    ValueError: 0001-01-01T00:00:00+14:00 is out of range (years 1900 to 8999)
    """
    try:
        utc = parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        utc = None
    if utc is None or not EARLIEST <= utc <= LATEST:
        raise ValueError(f"{parsed.isoformat()} is out of range (years 1900 to 8999)")
    return parsed


def checked_day(day: date) -> date:
    """``day`` when it is within the range; else ValueError."""
    if not EARLIEST.date() <= day < LATEST.date():
        raise ValueError(f"{day.isoformat()} is out of range (years 1900 to 8999)")
    return day
