"""A person's evidence in time order: their findings and the events each one cites."""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from molehunt.score import load_findings, stage_of
from molehunt.store import Store
from molehunt.times import DEFAULT_TIMEZONE

# What an investigator needs to see of an event, per event table.
_SUMMARIES: dict[str, str] = {
    "events_db": "concat_ws(' ', db_user, 'from', src_ip, 'app=' || app_name, command, "
    "coalesce(CAST(rows AS VARCHAR), '?') || ' rows', left(statement, 200))",
    "events_app": "concat_ws(' ', user_name, 'from', src_ip, action, "
    "coalesce(CAST(rows AS VARCHAR), '?') || ' rows', detail)",
    "events_http": "concat_ws(' ', src_ip, user_name, method, host || coalesce(path, ''), "
    "coalesce(CAST(bytes_out AS VARCHAR), '?') || ' bytes out')",
    "events_file": "concat_ws(' ', activity, host, user_name, path)",
    "events_process": "concat_ws(' ', 'process', host, user_name, image)",
    "events_network": "concat_ws(' ', 'connection', host, image, dst_ip, dst_host)",
    "events_auth": "concat_ws(' ', activity, user_name, 'from', src_ip, src_host, 'at', dst_host)",
}


def events(store: Store, event_ids: list[str], timezone: str) -> dict[str, dict[str, Any]]:
    """Time, table and a one-line summary of each event id found in the store."""
    if not event_ids:
        return {}
    zone = ZoneInfo(timezone)
    union = " UNION ALL ".join(
        f"SELECT event_id, time, '{table}' AS tbl, {summary} AS summary FROM {table} "
        "WHERE event_id IN (SELECT unnest($ids))"
        for table, summary in _SUMMARIES.items()
    )
    rows = store.query(union, {"ids": event_ids})
    return {
        r["event_id"]: {
            "event_id": r["event_id"],
            "time": r["time"].astimezone(zone).isoformat(),
            "table": r["tbl"],
            "summary": r["summary"],
        }
        for r in rows
    }


def timeline(
    store: Store,
    person_id: str,
    *,
    until: date | None = None,
    timezone: str = DEFAULT_TIMEZONE,
) -> list[dict[str, Any]]:
    """Every finding naming ``person_id`` (as the one behind it or as the other person
    involved), oldest first, each with its theft stage (the steps of a chain: access,
    collection, exfiltration; or critical, or context) and the events it cites."""
    zone = ZoneInfo(timezone)
    found = [
        f for f in load_findings(store, until) if f.person_id == person_id or person_id in f.related
    ]
    known = events(store, sorted({e for f in found for e in f.event_ids}), timezone)
    return [
        {
            "time": f.time.astimezone(zone).isoformat(),
            "day": f.day.isoformat(),
            "detector": f.detector,
            "stage": stage_of(f),
            "severity": f.severity,
            "title": f.title,
            "as": "actor" if f.person_id == person_id else "named",
            "person_id": f.person_id,
            "related": list(f.related),
            "account": f.account,
            "host": f.host,
            "finding_id": f.finding_id,
            "details": f.details,
            "events": [known.get(e, {"event_id": e, "missing": True}) for e in f.event_ids],
        }
        for f in found
    ]
