"""The time zone PostgreSQL prints after a log time (``%m``, ``%t``, csvlog ``log_time``).

PostgreSQL prints the abbreviation of ``log_timezone`` at that moment (``CST``,
``CEST``, ``MSK``), or a numeric offset where the zone has none (``+08``,
``-0330``). An abbreviation is read through a small table, token to zone:

* an offset (``+08:00``) where the abbreviation means one offset wherever it is
  used (``CET``, ``CEST``, ``JST``, ``PDT``...);
* for the abbreviations of the server's own ``log_timezone`` (the setting
  ``pg_log_timezone``, by default ``timezone``), what that zone means by them:
  ``CST`` is +08:00 in ``Asia/Shanghai`` and -06:00 in ``America/Chicago``; an
  abbreviation whose offset changed over the years (``MSK`` was +04:00 in
  2011-2014) is read through the zone itself, at each record's date;
* an IANA name (``Asia/Shanghai``) is read as that zone.

An abbreviation that means several zones (``CST``, ``IST``, ``BST``...) and is not
one of ``pg_log_timezone``'s is refused, naming the setting to fix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

#: Abbreviations that mean one offset wherever PostgreSQL's zone data uses them.
FIXED_ABBREVIATIONS: Mapping[str, str] = {
    "UTC": "+00:00",
    "UCT": "+00:00",
    "GMT": "+00:00",
    "Z": "+00:00",
    "WET": "+00:00",
    "WEST": "+01:00",
    "CET": "+01:00",
    "CEST": "+02:00",
    "MET": "+01:00",
    "MEST": "+02:00",
    "EET": "+02:00",
    "EEST": "+03:00",
    "MSK": "+03:00",
    "MSD": "+04:00",
    "SAST": "+02:00",
    "CAT": "+02:00",
    "EAT": "+03:00",
    "WAT": "+01:00",
    "PKT": "+05:00",
    "HKT": "+08:00",
    "HKST": "+09:00",
    "PHT": "+08:00",
    "SGT": "+08:00",
    "WIB": "+07:00",
    "WITA": "+08:00",
    "WIT": "+09:00",
    "JST": "+09:00",
    "KST": "+09:00",
    "AWST": "+08:00",
    "ACST": "+09:30",
    "ACDT": "+10:30",
    "AEST": "+10:00",
    "AEDT": "+11:00",
    "NZST": "+12:00",
    "NZDT": "+13:00",
    "HST": "-10:00",
    "AKST": "-09:00",
    "AKDT": "-08:00",
    "PST": "-08:00",
    "PDT": "-07:00",
    "MST": "-07:00",
    "MDT": "-06:00",
    "EST": "-05:00",
    "EDT": "-04:00",
    "NST": "-03:30",
    "NDT": "-02:30",
    "IDT": "+03:00",
    "ChST": "+10:00",
}

#: Abbreviations that mean several zones: read only in ``pg_log_timezone``.
AMBIGUOUS_ABBREVIATIONS: Mapping[str, str] = {
    "CST": "Asia/Shanghai +08:00, America/Chicago -06:00, America/Havana -05:00",
    "CDT": "America/Chicago -05:00, America/Havana -04:00, Asia/Shanghai +09:00 (1986-1991)",
    "IST": "Asia/Kolkata +05:30, Asia/Jerusalem +02:00, Europe/Dublin +01:00",
    "BST": "Europe/London +01:00, Asia/Dhaka +06:00 (2009)",
    "AST": "America/Halifax -04:00, Asia/Riyadh +03:00",
    "ADT": "America/Halifax -03:00, Asia/Baghdad +04:00",
    "SST": "Pacific/Pago_Pago -11:00, Asia/Singapore +08:00 (before 1982)",
}

_OFFSET = re.compile(r"^([+-])(\d\d):?(\d\d)?$")


def offset_minutes(text: str) -> int | None:
    """Minutes east of UTC that a numeric zone (``+08``, ``-0330``, ``+05:30``) means."""
    m = _OFFSET.match(text)
    if m is None:
        return None
    minutes = int(m.group(2)) * 60 + int(m.group(3) or 0)
    return -minutes if m.group(1) == "-" else minutes


@lru_cache(maxsize=32)
def _zone_abbreviations(name: str) -> dict[str, str]:
    """What ``name`` (IANA) means by each abbreviation it has printed since 1970:
    an offset where it was always one, else the zone itself."""
    zone = ZoneInfo(name)
    seen: dict[str, set[timedelta]] = {}
    moment = datetime(1970, 1, 1, tzinfo=UTC)
    end = datetime(2040, 1, 1, tzinfo=UTC)
    step = timedelta(days=7)
    while moment < end:
        local = moment.astimezone(zone)
        abbrev = local.tzname()
        offset = local.utcoffset()
        if abbrev and offset is not None and not _OFFSET.match(abbrev):
            seen.setdefault(abbrev, set()).add(offset)
        moment += step
    out: dict[str, str] = {}
    for abbrev, offsets in seen.items():
        if len(offsets) == 1:
            minutes = int(next(iter(offsets)).total_seconds()) // 60
            out[abbrev] = _format_offset(minutes)
        else:
            out[abbrev] = name
    return out


def _format_offset(minutes: int) -> str:
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{mins:02d}"


def check_zone_name(name: str) -> str:
    """``name`` if it is an IANA time zone; raises ValueError saying so otherwise."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ValueError(
            f"unknown time zone {name!r}: give an IANA name such as Asia/Shanghai"
        ) from e
    return name


def log_zones(log_timezone: str | None = None) -> dict[str, str]:
    """Token to zone (offset or IANA name) for a server whose ``log_timezone`` is
    ``log_timezone`` (IANA; ``None``: UTC)."""
    zones = dict(FIXED_ABBREVIATIONS)
    if log_timezone:
        zones.update(_zone_abbreviations(check_zone_name(log_timezone)))
    return zones


@lru_cache(maxsize=1)
def _iana_names() -> frozenset[str]:
    return frozenset(available_timezones())


def resolve_zone(token: str, zones: Mapping[str, str]) -> tuple[int | None, str | None, str | None]:
    """``(minutes east of UTC, IANA zone, why not)`` for the zone text of a log time:
    one of the first two is set, or the third says why the token cannot be read."""
    given = zones.get(token)
    if given is not None:
        minutes = offset_minutes(given)
        if minutes is not None:
            return minutes, None, None
        if given.upper() in ("UTC", "GMT", "Z"):
            return 0, None, None
        return None, given, None
    minutes = offset_minutes(token)
    if minutes is not None:
        return minutes, None, None
    if "/" in token and token in _iana_names():
        return None, token, None
    if token in AMBIGUOUS_ABBREVIATIONS:
        return (
            None,
            None,
            f"ambiguous time zone {token} ({AMBIGUOUS_ABBREVIATIONS[token]}): set "
            "pg_log_timezone to the server's log_timezone",
        )
    return (
        None,
        None,
        f"unknown time zone {token} (log_timezone): set pg_log_timezone to the "
        "server's log_timezone",
    )
