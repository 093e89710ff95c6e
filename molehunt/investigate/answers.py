"""The service's answers built from what the libraries return (dicts, ISO strings):
:mod:`molehunt.models` objects with times in UTC. Masking happens before these run
(:mod:`molehunt.investigate.masking`), except :func:`masked_rank_row`, which masks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, replace
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from molehunt.investigate.masking import masked_row
from molehunt.models import (
    Attribution,
    AuditCheck,
    AuditEntry,
    CaseItem,
    EventSummary,
    RankRow,
    Reason,
    Suspect,
    TimelineFinding,
    User,
)

if TYPE_CHECKING:
    from molehunt.audit import Verified

#: The keys of an attribution report that hold times (ISO strings in UTC).
ATTRIBUTION_TIMES = frozenset({"first_read", "last_read", "written"})


def utc(value: object) -> datetime | None:
    """An ISO time string (as the libraries give them) as a UTC datetime."""
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def with_times(value: Any, keys: frozenset[str], key: str | None = None) -> Any:
    """``value`` with the ISO strings under ``keys`` made UTC datetimes."""
    if isinstance(value, dict):
        return {k: with_times(v, keys, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return tuple(with_times(v, keys, key) for v in value)
    if isinstance(value, str) and key in keys:
        return utc(value) or value
    return value


def event_summary(found: Mapping[str, Any]) -> EventSummary:
    """One event of :func:`molehunt.timeline.events` (or a cited one that is missing)."""
    return EventSummary(
        event_id=str(found["event_id"]),
        time=utc(found.get("time")),
        table=found.get("table"),
        summary=found.get("summary"),
        missing=bool(found.get("missing", False)),
    )


def timeline_finding(e: Mapping[str, Any]) -> TimelineFinding:
    """One entry of :func:`molehunt.timeline.timeline`."""
    return TimelineFinding(
        time=utc(e["time"]) or datetime.min.replace(tzinfo=UTC),
        day=date.fromisoformat(e["day"]),
        detector=e["detector"],
        stage=e["stage"],
        severity=int(e["severity"]),
        title=e["title"],
        as_=e["as"],
        person_id=e["person_id"],
        related=tuple(e["related"]),
        account=e["account"],
        host=e["host"],
        finding_id=e["finding_id"],
        details=e["details"],
        events=tuple(event_summary(ev) for ev in e["events"]),
    )


def attribution(result: Mapping[str, Any]) -> Attribution:
    """The report of :func:`molehunt.attribute.attribute`."""
    report = with_times(dict(result), ATTRIBUTION_TIMES)
    return Attribution(
        records_in_file=int(report["records_in_file"]),
        client_records=int(report["client_records"]),
        non_client_rows=int(report["non_client_rows"]),
        damaged=int(report["damaged"]),
        suspects=tuple(
            Suspect(
                rank=int(s["rank"]),
                person_id=s["person_id"],
                name=s["name"],
                accounts=tuple(s["accounts"]),
                hosts=tuple(s["hosts"]),
                covered=int(s["covered"]),
                coverage=float(s["coverage"]),
                first_read=s["first_read"],
                last_read=s["last_read"],
                score=float(s["score"]),
                evidence=tuple(s.get("evidence") or ()),
                group=s.get("group"),
                bits=float(s.get("bits") or 0.0),
                explanation=str(s.get("explanation") or ""),
            )
            for s in report["suspects"]
        ),
        files=tuple(report.get("files") or ()),
    )


def case_item(i: Mapping[str, Any]) -> CaseItem:
    """One item of :func:`molehunt.cases.items`."""
    return CaseItem(
        case_id=i["case_id"],
        seq=int(i["seq"]),
        kind=i["kind"],
        ref=i["ref"],
        note=i["note"],
        data=i["data"],
        added_by=i["added_by"],
        added_at=i["added_at"],
    )


def audit_entry(r: Mapping[str, Any]) -> AuditEntry:
    """One row of :func:`molehunt.audit.entries`."""
    return AuditEntry(
        seq=int(r["seq"]),
        time=utc(r["time"]),
        actor=r["actor"],
        action=r["action"],
        target=r["target"],
        rows=r["rows"],
        prev_hash=r["prev_hash"],
        hash=r["hash"],
    )


def audit_check(checked: Verified) -> AuditCheck:
    """What :func:`molehunt.audit.verify` found."""
    return AuditCheck(
        checked.rows, checked.head, checked.broken_at, checked.reason, checked.keyed_from
    )


def with_lock(user: User, locked: bool) -> User:
    """``user`` with whether the sign-in throttle locked them out."""
    return replace(user, locked=locked)


def masked_rank_row(row: RankRow) -> RankRow:
    """``row`` with its free text (names, chain, reasons' summaries) masked, as the
    ranking's JSON was before it was typed."""
    done = masked_row(asdict(row))
    return RankRow(
        **{
            **done,
            "chain": tuple(done["chain"]),
            "reasons": tuple(
                Reason(**{**r, "events": tuple(r["events"])}) for r in done["reasons"]
            ),
        }
    )
