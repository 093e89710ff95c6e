"""Case files: evidence an investigator collects about a suspected leak, and its export.

A case belongs to a team: only that team sees it (:func:`get_case` answers ``None``
for another team's case, as for a case that does not exist). Items are numbered
1..n in the order added; a closed case takes no more. Every function that shows or
changes a case writes its audit row (:mod:`molehunt.audit`: ``case new``, ``case
add``, ``case close``, ``case view``, ``case export``) itself, before it returns, so
no caller (CLI or web) can forget it. Audit targets name the case and the item's
reference, never a title or a note (they may hold personal data).

Titles, notes, item references and item data are stored masked
(:func:`molehunt.pii.mask.mask_text`): a case file is read by many people and
exported; the clear values stay in the evidence store, behind the audited
unmasking. They are masked again on the way out (titles and items written before
titles and references were masked, by an older molehunt), so no function here
returns an ID number, a mobile or a client's name in clear.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from molehunt import audit
from molehunt.errors import Conflict, InvalidInput, NotFound
from molehunt.export import (
    MANIFEST,
    build_zip,
    content_digest,
    csv_bytes,
    verify_export,
    xlsx_bytes,
)
from molehunt.keys import signing_key, signing_public_key
from molehunt.models import Case as Case  # re-exported: cases.Case
from molehunt.pii.mask import mask_data, mask_text, mask_texts
from molehunt.store import Store
from molehunt.timeline import events as timeline_events

KINDS = ("person", "finding", "event", "attribution")
OPEN, CLOSED = "open", "closed"
ITEM_COLUMNS = ("seq", "kind", "ref", "note", "added_by", "added_at", "data")
EVENT_COLUMNS = ("event_id", "time", "table", "summary", "cited_by")


class CaseError(InvalidInput):
    """A case operation that cannot be done as asked (no title, a bad kind)."""


class UnknownCaseError(NotFound, CaseError):
    """No such case (or not one the caller's team may see)."""


class CaseClosedError(Conflict, CaseError):
    """The case is closed: it takes no more items and cannot be closed again."""


_CASE_COLUMNS = "case_id, title, team, status, created_by, created_at"


def _cases(rows: list[tuple[Any, ...]]) -> list[Case]:
    titles = mask_texts([str(r[1]) for r in rows])
    return [
        Case(case_id, title, team, status, created_by, created_at.astimezone(UTC))
        for (case_id, _, team, status, created_by, created_at), title in zip(
            rows, titles, strict=True
        )
    ]


def create_case(
    store: Store, title: str, team: str, by: str, *, now: datetime | None = None
) -> Case:
    """A new open case of ``team``, numbered in sequence within the year (UTC)."""
    title, team = mask_text(title.strip()), team.strip()
    if not title:
        raise CaseError("a case needs a title")
    if not team:
        raise CaseError("a case needs a team")
    when = (now or datetime.now(UTC)).astimezone(UTC)
    prefix = f"C-{when.year}-"
    with store.transaction() as con:
        last = con.execute(
            "SELECT max(TRY_CAST(substr(case_id, ?) AS INTEGER)) FROM cases WHERE case_id LIKE ?",
            [len(prefix) + 1, prefix + "%"],
        ).fetchall()[0][0]
        case = Case(f"{prefix}{(last or 0) + 1:04d}", title, team, OPEN, by, when)
        con.execute(
            f"INSERT INTO cases ({_CASE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
            [case.case_id, title, team, OPEN, by, when],
        )
    audit.record(store, "case new", case.case_id, 1, who=by)
    return case


def list_cases(store: Store, team: str | None) -> list[Case]:
    """Cases of ``team`` (every team's when ``None``), newest first."""
    rows = store.con.execute(
        f"SELECT {_CASE_COLUMNS} FROM cases WHERE $team IS NULL OR team = $team "
        "ORDER BY created_at DESC, case_id DESC",
        {"team": team},
    ).fetchall()
    return _cases(rows)


def get_case(store: Store, case_id: str, team: str | None) -> Case | None:
    """The case, or ``None`` when it does not exist or belongs to another team than
    ``team`` (``None``: any team)."""
    rows = store.con.execute(
        f"SELECT {_CASE_COLUMNS} FROM cases "
        "WHERE case_id = $id AND ($team IS NULL OR team = $team)",
        {"id": case_id, "team": team},
    ).fetchall()
    return _cases(rows)[0] if rows else None


def _existing(store: Store, case_id: str) -> Case:
    case = get_case(store, case_id, None)
    if case is None:
        raise UnknownCaseError(f"no case {case_id}")
    return case


def add_item(
    store: Store,
    case_id: str,
    kind: str,
    ref: str,
    note: str | None,
    data: dict[str, Any] | None,
    by: str,
) -> int:
    """Add one piece of evidence to an open case; returns its number (1..n)."""
    if kind not in KINDS:
        raise CaseError(f"unknown item kind {kind!r}; one of: {', '.join(KINDS)}")
    ref = mask_text(ref.strip())
    if not ref:
        raise CaseError("an item needs a reference (a person, finding or event id)")
    stored = json.dumps(mask_data(data), ensure_ascii=False, default=str) if data else None
    with store.transaction() as con:
        rows = con.execute("SELECT status FROM cases WHERE case_id = ?", [case_id]).fetchall()
        if not rows:
            raise UnknownCaseError(f"no case {case_id}")
        if rows[0][0] != OPEN:
            raise CaseClosedError(f"case {case_id} is closed: no items can be added")
        seq = int(
            con.execute(
                "SELECT coalesce(max(seq), 0) + 1 FROM case_items WHERE case_id = ?", [case_id]
            ).fetchall()[0][0]
        )
        con.execute(
            "INSERT INTO case_items VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                case_id,
                seq,
                kind,
                ref,
                mask_text(note) if note else None,
                stored,
                by,
                datetime.now(UTC),
            ],
        )
    audit.record(store, "case add", f"{case_id} #{seq} {kind} {ref}", 1, who=by)
    return seq


def items(store: Store, case_id: str, *, by: str | None = None) -> list[dict[str, Any]]:
    """The case's items in order. With ``by`` (the viewer) a ``case view`` audit row
    is written first; without it the caller writes its own."""
    rows = store.query(
        "SELECT seq, kind, ref, note, data, added_by, added_at FROM case_items "
        "WHERE case_id = $id ORDER BY seq",
        {"id": case_id},
    )
    texts = mask_texts([t for r in rows for t in (r["ref"], r["note"] or "")])
    out = [
        {
            "case_id": case_id,
            **r,
            "ref": texts[2 * i],
            "note": texts[2 * i + 1] if r["note"] is not None else None,
            "added_at": r["added_at"].astimezone(UTC),
            "data": mask_data(json.loads(r["data"])) if r["data"] is not None else None,
        }
        for i, r in enumerate(rows)
    ]
    if by is not None:
        audit.record(store, "case view", case_id, len(out), who=by)
    return out


def close_case(store: Store, case_id: str, by: str) -> None:
    """Close an open case: it keeps its items and takes no more."""
    with store.transaction() as con:
        rows = con.execute("SELECT status FROM cases WHERE case_id = ?", [case_id]).fetchall()
        if not rows:
            raise UnknownCaseError(f"no case {case_id}")
        if rows[0][0] != OPEN:
            raise CaseClosedError(f"case {case_id} is already closed")
        con.execute("UPDATE cases SET status = ? WHERE case_id = ?", [CLOSED, case_id])
    audit.record(store, "case close", case_id, None, who=by)


def cited_events(store: Store, case_items: list[dict[str, Any]]) -> dict[str, list[int]]:
    """Event ids the items cite, each with the items citing it: an event item's
    reference, the events of a finding item, of the findings naming a person item
    as the actor, and any ``event_ids`` an item's data lists."""
    cited: dict[str, list[int]] = {}

    def cite(event_id: object, seq: int) -> None:
        if isinstance(event_id, str) and event_id and seq not in cited.setdefault(event_id, []):
            cited[event_id].append(seq)

    for item in case_items:
        seq, kind, ref = item["seq"], item["kind"], item["ref"]
        if kind == "event":
            cite(ref, seq)
        elif kind in ("finding", "person"):
            column = "finding_id" if kind == "finding" else "person_id"
            for (event_ids,) in store.con.execute(
                f"SELECT event_ids FROM findings WHERE {column} = ?", [ref]
            ).fetchall():
                for e in event_ids or ():
                    cite(e, seq)
        data = item["data"]
        if isinstance(data, dict) and isinstance(data.get("event_ids"), list):
            for e in data["event_ids"]:
                cite(e, seq)
    return cited


def export_case(store: Store, case_id: str, by: str, timezone: str) -> bytes:
    """The case as a zip a court can check (:func:`molehunt.export.verify_export`):
    ``items.csv``, ``items.xlsx``, ``events.csv`` (every event the items cite, with
    masked summaries) and ``manifest.json`` (the case, who exported it and when,
    each file's SHA-256 and size, and the audit chain's head and row count, which
    include this export's own audit row, which names the content's hash), signed
    with the store's Ed25519 key (``manifest.sig``)."""
    case = _existing(store, case_id)
    case_items = items(store, case_id)
    cited = cited_events(store, case_items)
    found = timeline_events(store, sorted(cited), timezone)
    item_rows = [
        [
            i["seq"],
            i["kind"],
            i["ref"],
            i["note"],
            i["added_by"],
            i["added_at"].isoformat(),
            json.dumps(i["data"], ensure_ascii=False, sort_keys=True) if i["data"] else None,
        ]
        for i in case_items
    ]
    ordered = sorted(cited.items())
    # One scan for every summary (a case may cite thousands of events).
    summaries = mask_texts([found.get(e, {}).get("summary") or "" for e, _ in ordered])
    event_rows: list[list[object]] = []
    for (event_id, seqs), summary in zip(ordered, summaries, strict=True):
        event = found.get(event_id)
        cited_by = " ".join(str(s) for s in seqs)
        if event is None:
            event_rows.append([event_id, None, None, "(not in the store)", cited_by])
        else:
            event_rows.append([event_id, event["time"], event["table"], summary, cited_by])
    files = {
        "items.csv": csv_bytes(ITEM_COLUMNS, item_rows),
        "items.xlsx": xlsx_bytes("items", ITEM_COLUMNS, item_rows),
        "events.csv": csv_bytes(EVENT_COLUMNS, event_rows),
    }
    key = signing_key(store)
    digest = content_digest(files)
    # Written before the data leaves, and before the chain head is taken, so the
    # manifest's head covers this export; it names the export's own hash.
    audit.record(
        store, "case export", f"{case_id} content sha256:{digest}", len(case_items), who=by
    )
    chain = audit.verify(store)
    manifest = {
        "case": {**asdict(case), "created_at": case.created_at.isoformat()},
        "items": len(case_items),
        "events": len(event_rows),
        "exported_by": by,
        "exported_at": datetime.now(UTC).isoformat(),
        "timezone": timezone,
        "audit": {"head": chain.head, "rows": chain.rows, "broken_at": chain.broken_at},
        "content_sha256": digest,
    }
    return build_zip(files, manifest, key)


def verify_against_store(store: Store, zip_bytes: bytes) -> list[str]:
    """:func:`molehunt.export.verify_export` with the store's signing public key
    (a zip signed by any other key is refused), and the export's own hash looked up
    on the audit trail (an export this store never made is reported)."""
    trusted = signing_public_key(store)
    problems = verify_export(zip_bytes, trusted)
    if problems:
        return problems
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as zf:
        manifest = json.loads(zf.read(MANIFEST).decode("utf-8"))
    digest = manifest.get("content_sha256")
    case_id = manifest.get("case", {}).get("case_id") if isinstance(manifest, dict) else None
    if not isinstance(digest, str) or not isinstance(case_id, str):
        return [f"{MANIFEST} names no content hash or case"]
    found = store.con.execute(
        "SELECT count(*) FROM audit_log WHERE action = 'case export' AND target = ?",
        [f"{case_id} content sha256:{digest}"],
    ).fetchall()[0][0]
    if not found:
        return [f"no `case export` of {case_id} with this content on the store's audit trail"]
    return []
