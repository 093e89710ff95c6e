"""Scan results kept in the store: what personal data each file on an endpoint held.

``molehunt scan`` of an endpoint collection (``.../endpoint/<host>/<path on the
host>``, or files named with ``--host``) stores one ``events_scan`` row per file
content seen on a host, and the client ids of its client records in
``file_clients``: the detection side reads them (client records written to files,
:mod:`molehunt.detect.client_file`) and attribution names the files that hold a
leaked set. Only counts, verdicts and client ids are stored, never a value.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path, PurePath, PureWindowsPath

import pyarrow as pa

from molehunt.digests import file_sha256
from molehunt.pii.scan import ScannedFile
from molehunt.store import Store

SOURCE_ID = "scan"


def host_path(path: Path | str) -> str | None:
    """``.../endpoint/<host>/C/Users/x/a.xlsx`` -> ``C:\\Users\\x\\a.xlsx`` (the file's
    path on the host, as Sysmon logs it), or None outside that layout."""
    parts = PurePath(path).parts
    for i, part in enumerate(parts[:-2]):
        if part == "endpoint":
            rest = parts[i + 2 :]
            if len(rest) >= 2 and len(rest[0]) == 1 and rest[0].isalpha():
                return str(PureWindowsPath(f"{rest[0]}:\\", *rest[1:]))
            return "/" + "/".join(rest)
    return None


def scan_event_id(host: str, where: str, sha256: str) -> str:
    """The same file content at the same place on the same host is one event."""
    digest = hashlib.blake2b(f"{host}\0{where}\0{sha256}".encode(), digest_size=10)
    return f"{SOURCE_ID}:{digest.hexdigest()}"


def store_scans(
    store: Store, reports: Sequence[ScannedFile], *, scanned_at: datetime | None = None
) -> int:
    """Store the reports of files whose host is known; returns how many were new."""
    scanned_at = scanned_at or datetime.now(UTC)
    rows: list[dict[str, object]] = []
    clients: list[tuple[str, str]] = []
    for r in reports:
        path = Path(r.path)
        if r.host is None or not path.is_file():
            continue
        stat = path.stat()
        digest = file_sha256(path)
        on_host = host_path(path)
        event_id = scan_event_id(r.host.lower(), (on_host or path.name).lower(), digest)
        rows.append(
            {
                "event_id": event_id,
                "time": datetime.fromtimestamp(stat.st_mtime, UTC),
                "source_id": SOURCE_ID,
                "host": r.host,
                "path": str(path),
                "host_path": on_host,
                "sha256": digest,
                "size": stat.st_size,
                "file_kind": r.kind,
                "verdict": r.verdict,
                "findings": json.dumps(r.findings, sort_keys=True),
                "client_records": r.client_records,
                "errors": "; ".join(r.errors) or None,
                "scanned_at": scanned_at,
            }
        )
        clients.extend((event_id, c) for c in r.client_ids)
    if not rows:
        return 0
    ts = pa.timestamp("us", tz="UTC")
    fields: list[tuple[str, pa.DataType]] = [
        ("event_id", pa.string()),
        ("time", ts),
        ("source_id", pa.string()),
        ("host", pa.string()),
        ("path", pa.string()),
        ("host_path", pa.string()),
        ("sha256", pa.string()),
        ("size", pa.int64()),
        ("file_kind", pa.string()),
        ("verdict", pa.string()),
        ("findings", pa.string()),
        ("client_records", pa.int32()),
        ("errors", pa.string()),
        ("scanned_at", ts),
    ]
    scans = pa.Table.from_pylist(rows, schema=pa.schema(fields))
    ids = pa.table(
        {
            "event_id": pa.array([e for e, _ in clients], pa.string()),
            "client_id": pa.array([c for _, c in clients], pa.string()),
        }
    )
    con = store.con
    with store.transaction():
        con.register("_scans", scans)
        con.register("_scan_clients", ids)
        try:
            new = con.execute(
                "SELECT count(DISTINCT event_id) FROM _scans WHERE event_id NOT IN "
                "(SELECT event_id FROM events_scan)"
            ).fetchall()[0][0]
            con.execute(
                "INSERT INTO events_scan BY NAME SELECT DISTINCT ON (event_id) * FROM _scans "
                "WHERE event_id NOT IN (SELECT event_id FROM events_scan)"
            )
            con.execute(
                "INSERT INTO file_clients SELECT DISTINCT event_id, client_id FROM _scan_clients "
                "WHERE event_id NOT IN (SELECT event_id FROM file_clients)"
            )
        finally:
            con.unregister("_scans")
            con.unregister("_scan_clients")
    return int(new)
