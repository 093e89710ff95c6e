"""``molehunt scan``: personal data and client records in files, with a verdict each.

Verdicts: ``bulk-client-data`` (at least ``bulk_records`` of the company's client
records, by exact data match), ``personal-data`` (any finding of medium or high
confidence, or fewer client records), ``clean``, or ``error`` (the file could not
be scanned: the reason is in ``errors``). Values are never reported in clear:
``details`` carry masked values and where they are.

:func:`scan_upload` is the same scanner for an upload body arriving in pieces.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePath
from typing import Any

from molehunt.config import Settings
from molehunt.errors import MolehuntError
from molehunt.keys import KeyMismatchError, load_key
from molehunt.pii.edm import ClientIndex
from molehunt.pii.engine import PiiFinding, default_engine
from molehunt.pii.files import Detail, FileScan, Limits, kind_of, scan_files
from molehunt.store import Store

BULK_RECORDS = 10
VERDICTS = ("bulk-client-data", "personal-data", "clean", "error")


@dataclass(slots=True)
class ScannedFile:
    """One scanned file, as ``molehunt scan`` prints it."""

    path: str
    host: str | None
    kind: str
    findings: dict[str, int]
    client_records: int
    verdict: str
    errors: list[str]
    client_ids: list[str] = field(default_factory=list)
    details: list[Detail] | None = None

    def as_json(self, detail: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.path,
            "host": self.host,
            "kind": self.kind,
            "findings": self.findings,
            "client_records": self.client_records,
            "client_ids": self.client_ids,
            "verdict": self.verdict,
            "errors": self.errors,
        }
        if detail:
            out["details"] = [asdict(d) for d in self.details or []]
        return out


def expand(paths: Iterable[Path]) -> list[Path]:
    """Files named, and scannable files under folders named, in a stable order."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*") if p.is_file() and kind_of(p.name)))
        else:
            out.append(path)
    return out


def host_of(path: Path) -> str | None:
    """``.../endpoint/<host>/...`` -> ``<host>`` (the endpoint collection layout)."""
    parts = PurePath(path).parts
    for i, part in enumerate(parts[:-2]):
        if part == "endpoint":
            return parts[i + 1]
    return None


def verdict(scan: FileScan, client_records: int, bulk_records: int = BULK_RECORDS) -> str:
    if client_records >= bulk_records:
        return "bulk-client-data"
    if client_records or scan.confident:
        return "personal-data"
    if scan.errors and not scan.findings:
        return "error"
    return "clean"


def scan_paths(
    paths: Sequence[Path],
    *,
    key: bytes | None = None,
    clients: ClientIndex | None = None,
    host: str | None = None,
    detail: bool = False,
    workers: int | None = None,
    limits: Limits | None = None,
    bulk_records: int = BULK_RECORDS,
) -> list[ScannedFile]:
    """Scan files (folders expanded) for personal data and the company's client records.

    ``key`` and ``clients`` enable exact data match (both or neither): the key of
    the client hashes (``molehunt.keys.load_key``) and the index of the store's
    client master (:meth:`ClientIndex.from_store`).
    """
    files = expand(paths)
    # The verdict weighs confidence without details (FileScan.confident).
    scans = scan_files(
        files,
        key=key if clients is not None else None,
        limits=limits,
        detail=detail,
        workers=workers,
    )
    reports: list[ScannedFile] = []
    for path, scan in zip(files, scans, strict=True):
        match = clients.match(scan.records) if clients is not None else None
        records = match.records if match else 0
        reports.append(
            ScannedFile(
                path=str(path),
                host=host or host_of(path),
                kind=scan.kind,
                findings=dict(sorted(scan.findings.items())),
                client_records=records,
                verdict=verdict(scan, records, bulk_records),
                errors=scan.errors,
                client_ids=match.client_ids if match else [],
                details=scan.details if detail else None,
            )
        )
    return reports


def scan_upload(pieces: Iterable[bytes]) -> list[PiiFinding]:
    """Findings in an upload body given in pieces (a proxy's chunks, a socket's reads);
    the same whatever the cuts. Offsets are in the body's folded UTF-8."""
    scan = default_engine().stream()
    for piece in pieces:
        scan.feed(piece)
    return scan.close()


def scan_with_settings(
    settings: Settings, paths: Sequence[Path], *, host: str | None = None, detail: bool = False
) -> tuple[list[ScannedFile], str | None]:
    """:func:`scan_paths` with exact data match against the configured store and key,
    when both exist; else without it, and the reason why."""
    key: bytes | None = None
    clients: ClientIndex | None = None
    note: str | None = None
    if not settings.db.exists():
        note = f"no store at {settings.db}: client records not matched"
    else:
        with Store.open(settings.db, memory_limit=settings.memory_limit) as store:
            try:
                # A key that is not the store's is refused (KeyMismatchError): it
                # would match no client and call bulk client data clean.
                key = load_key(settings, store)
            except KeyMismatchError:
                raise
            except MolehuntError as e:
                note = f"{e}: client records not matched"
            else:
                clients = ClientIndex.from_store(store)
        if clients is not None and len(clients) == 0:
            note = "no client master in the store: client records not matched"
    reports = scan_paths(paths, key=key, clients=clients, host=host, detail=detail)
    return reports, note
