"""What a suspect's evidence shows: the accounts and hosts of their reads of leaked
records, and each of those reads (:meth:`ReadOverlapAttributor.rank
<molehunt.attribute.overlap.ReadOverlapAttributor.rank>`; split from it for size).

Each event is a row of the ranking's hits: ``(who, event_id, time, system, account,
hostname, account_owner, host_person, how, covered, confidence)``.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any


def accounts_of(events: list[tuple[Any, ...]], names: dict[str, str]) -> list[dict[str, Any]]:
    """Accounts used, with their owner (named apart when it is not the person)."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    clients: dict[tuple[str, str], int] = defaultdict(int)
    for _who, _id, _t, system, account, _host, owner, person, _how, covered, _c in events:
        k = (system, account)
        clients[k] += int(covered)
        if k not in seen:
            seen[k] = {
                "system": system,
                "account": account,
                "owner_id": owner,
                "owner_name": names.get(owner) if owner else None,
                "owner_is_person": owner is not None and owner == person,
            }
    order = sorted(seen, key=lambda k: -clients[k])
    return [{**seen[k], "covered_reads": clients[k]} for k in order]


def hosts_of(events: list[tuple[Any, ...]], names: dict[str, str]) -> list[dict[str, Any]]:
    """Source hosts, with the person found at each (logged on, else its owner)."""
    seen: dict[str, dict[str, Any]] = {}
    counts: dict[str, int] = defaultdict(int)
    for _who, _id, _t, _system, _account, host, _owner, person, _how, covered, _c in events:
        key = host or "?"
        counts[key] += int(covered)
        seen.setdefault(
            key,
            {
                "host": host,
                "person_id": person,
                "person_name": names.get(person) if person else None,
            },
        )
    order = sorted(seen, key=lambda k: -counts[k])
    return [{**seen[k], "covered_reads": counts[k]} for k in order]


def evidence_of(e: tuple[Any, ...]) -> dict[str, Any]:
    _who, event_id, t, system, account, host, _owner, _person, how, covered, confidence = e
    out: dict[str, Any] = {
        "event_id": event_id,
        "time": iso(t),
        "system": system,
        "account": account,
        "host": host,
        "how": how,
        "covered": int(covered),
    }
    if confidence is not None:
        out["confidence"] = round(float(confidence), 3)
    return out


def iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return str(value)
