"""The investigators' audit trail: who looked at what, when, and how much came back.

Every verb that shows people, accounts, evidence or client records appends one
``audit_log`` row: time, actor (the operating-system user running molehunt, or the
web user), action (the verb), target (what was asked: a person id, an account, a
file's hash; never a personal value) and the number of rows in the answer.

Rows are chained: each ``hash`` covers the previous row's hash and this row's
fields, so changing or deleting a row breaks every hash after it. The chain is
*keyed*: HMAC-SHA256 under the audit key ``<db>.audit.key`` (mode 0600, beside the
store, never in it), so whoever can write the store but not read that key cannot
edit a row and recompute the chain. Stores whose trail began before the key keep
their first rows as they were (plain SHA-256, checked the old way); a row with
action ``audit keyed`` marks where the keyed part starts (its number is also in
``store_meta.audit_keyed_from``).

The head (the last row's number and hash) is exported on every append: one JSON
line appended to ``<db>.audit.head`` (make it append-only, ``chattr +a``, or put it
where the store's owner cannot write, with :func:`configure`), and, when
``audit_syslog`` is set, a line to syslog (stdlib ``SysLogHandler``). :func:`verify`
walks the chain and compares it with the last exported head, so cutting rows off
the end is caught too.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import json
import logging
import logging.handlers
import os
import secrets
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from molehunt.errors import ConfigError
from molehunt.store import Store
from molehunt.store.files import create_key_file, meta, read_key_file, set_meta, store_file

GENESIS = "0" * 64
KEY_SUFFIX = ".audit.key"
HEAD_SUFFIX = ".audit.head"
KEYED_ACTION = "audit keyed"
KEYED_FROM = "audit_keyed_from"

# In-memory stores (tests, one-off runs) have no file beside them: a key for the
# life of the process.
_EPHEMERAL: weakref.WeakKeyDictionary[Store, bytes] = weakref.WeakKeyDictionary()


@dataclass(slots=True)
class _Export:
    head_file: Path | None = None  # None: <db>.audit.head
    syslog: logging.Logger | None = None


_export = _Export()


def configure(*, head_file: Path | None = None, syslog: str | None = None) -> None:
    """Where heads are exported: ``head_file`` instead of ``<db>.audit.head``, and
    syslog at ``syslog`` (``/dev/log``, or ``host:port`` over UDP) when given."""
    _export.head_file = head_file
    _export.syslog = None
    if syslog:
        address: str | tuple[str, int] = syslog
        if not syslog.startswith("/"):
            host, _, port = syslog.rpartition(":")
            if not host or not port.isdigit():
                raise ConfigError(f"audit_syslog {syslog!r} is neither a socket path nor host:port")
            address = (host, int(port))
        logger = logging.getLogger("molehunt.audit.head")
        logger.handlers.clear()
        logger.propagate = False
        logger.setLevel(logging.INFO)
        handler = logging.handlers.SysLogHandler(
            address, facility=logging.handlers.SysLogHandler.LOG_AUTHPRIV
        )
        handler.setFormatter(logging.Formatter("molehunt-audit: %(message)s"))
        logger.addHandler(handler)
        _export.syslog = logger


@dataclass(frozen=True, slots=True)
class Verified:
    """The outcome of walking the chain."""

    rows: int
    head: str  # hash of the last row (GENESIS when empty)
    broken_at: int | None  # seq of the first row whose hash does not follow
    reason: str | None = None  # what is wrong there, in words
    keyed_from: int | None = None  # first keyed row (None: not keyed yet)


def actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in a bare container
        return "unknown"


def _fields(
    prev: str, seq: int, time: datetime, who: str, action: str, target: str | None, rows: int | None
) -> bytes:
    fields = [prev, seq, time.astimezone(UTC).isoformat(), who, action, target, rows]
    return json.dumps(fields, ensure_ascii=False).encode()


def _digest(
    prev: str,
    seq: int,
    time: datetime,
    who: str,
    action: str,
    target: str | None,
    rows: int | None,
    key: bytes | None = None,
) -> str:
    """SHA-256 of the fields (the unkeyed rows of old stores), HMAC-SHA256 with ``key``."""
    data = _fields(prev, seq, time, who, action, target, rows)
    if key is None:
        return hashlib.sha256(data).hexdigest()
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def key_path(store: Store) -> Path | None:
    """The audit key's file, ``<db>.audit.key`` (``None`` for an in-memory store)."""
    return store_file(store, KEY_SUFFIX)


def head_path(store: Store) -> Path | None:
    """Where heads are exported (``<db>.audit.head`` unless configured)."""
    return _export.head_file or store_file(store, HEAD_SUFFIX)


def audit_key(store: Store, *, create: bool = False) -> bytes | None:
    """The audit key; made (0600) when ``create`` and there is none yet."""
    path = key_path(store)
    if path is None:
        if store not in _EPHEMERAL:
            _EPHEMERAL[store] = secrets.token_bytes(32)
        return _EPHEMERAL[store]
    if not path.exists():
        if not create:
            return None
        create_key_file(path)
    return read_key_file(path)


def ensure_keyed(store: Store) -> int:
    """Key the chain from now on (``molehunt init`` does it; so does the first append
    to a store made before keyed chains): returns the first keyed row's number. An
    empty trail is keyed from row 1; a trail with unkeyed rows gets an ``audit
    keyed`` row marking where the keyed part starts."""
    known = meta(store, KEYED_FROM)
    if known is not None:
        return int(known)
    key = audit_key(store, create=True)
    assert key is not None
    with store.transaction() as con:
        last = con.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchall()
        if not last:
            set_meta(store, KEYED_FROM, "1")
            return 1
        seq, prev = int(last[0][0]) + 1, str(last[0][1])
        when = datetime.now(UTC)
        fields = ("molehunt", KEYED_ACTION, "chain keyed from here on (HMAC-SHA256)", None)
        digest = _digest(prev, seq, when, *fields, key=key)
        con.execute(
            "INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [seq, when, *fields, prev, digest],
        )
        set_meta(store, KEYED_FROM, str(seq))
    _export_head(store, seq, digest, when)
    return seq


def record(
    store: Store,
    action: str,
    target: str | None = None,
    rows: int | None = None,
    *,
    who: str | None = None,
    now: datetime | None = None,
) -> int:
    """Append one row to the trail (keying the chain first if it is not yet: see
    :func:`ensure_keyed`) and export the new head; returns the row's sequence number."""
    who = who or actor()
    when = (now or datetime.now(UTC)).astimezone(UTC)
    keyed_from = ensure_keyed(store)
    key = audit_key(store)
    if key is None:
        raise ConfigError(
            f"the audit chain's key {key_path(store)} is missing: restore it from backup "
            f"(the chain is keyed from row {keyed_from} on; molehunt will not start a new key)"
        )
    with store.transaction() as con:
        last = con.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchall()
        seq, prev = (int(last[0][0]) + 1, str(last[0][1])) if last else (1, GENESIS)
        digest = _digest(prev, seq, when, who, action, target, rows, key=key)
        con.execute(
            "INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [seq, when, who, action, target, rows, prev, digest],
        )
    _export_head(store, seq, digest, when)
    return seq


def _export_head(store: Store, seq: int, digest: str, when: datetime) -> None:
    line = json.dumps(
        {"seq": seq, "hash": digest, "time": when.isoformat(), "store": _store_name(store)}
    )
    path = head_path(store)
    if path is not None:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)
    if _export.syslog is not None:
        _export.syslog.info(line)


def _store_name(store: Store) -> str:
    """The store as heads name it: its absolute path (or ``:memory:``)."""
    path = key_path(store)
    return str(Path(store.path).resolve()) if path is not None else store.path


def exported_head(store: Store) -> dict[str, Any] | None:
    """The last head of this store written to the head file (``None`` when there is
    none in its last 64 KiB)."""
    path = head_path(store)
    if path is None or not path.exists():
        return None
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - 65536))
        tail = f.read().splitlines()
    for raw in reversed(tail):
        try:
            found = json.loads(raw)
        except ValueError:
            continue
        # A head file configured for several stores: this store's heads only.
        if (
            isinstance(found, dict)
            and isinstance(found.get("seq"), int)
            and found.get("store") == _store_name(store)
        ):
            return found
    return None


def entries(store: Store, limit: int | None = None) -> list[dict[str, Any]]:
    """The trail, newest first."""
    sql = "SELECT * FROM audit_log ORDER BY seq DESC"
    return store.query(sql + (f" LIMIT {int(limit)}" if limit else ""))


def verify(store: Store) -> Verified:
    """Recompute every hash in order (plain SHA-256 before the ``audit keyed`` row,
    HMAC from it on) and compare the end with the last exported head; the first row
    that does not follow is reported, with the reason."""
    rows = store.con.execute(
        "SELECT seq, time, actor, action, target, rows, prev_hash, hash FROM audit_log ORDER BY seq"
    ).fetchall()
    known = meta(store, KEYED_FROM)
    keyed_from = int(known) if known is not None else None
    key = audit_key(store)
    n = len(rows)

    def broken(at: int, reason: str, head: str) -> Verified:
        return Verified(n, head, at, reason, keyed_from)

    if keyed_from is None and key is not None and key_path(store) is not None:
        first = int(rows[0][0]) if rows else 1
        return broken(first, "an audit key but no keyed rows: store_meta edited?", GENESIS)
    if keyed_from is not None and key is None:
        return broken(keyed_from, f"the audit key {key_path(store)} is missing", GENESIS)
    prev = GENESIS
    expected_seq = 1
    for seq, time, who, action, target, count, prev_hash, digest in rows:
        keyed = keyed_from is not None and seq >= keyed_from
        if seq != expected_seq:
            return broken(int(seq), f"row {expected_seq} is missing before it", prev)
        if prev_hash != prev:
            return broken(int(seq), "it does not follow the row before", prev)
        if keyed and seq == keyed_from and seq > 1 and action != KEYED_ACTION:
            return broken(int(seq), "the row marking the keyed chain was changed", prev)
        if digest != _digest(prev, seq, time, who, action, target, count, key if keyed else None):
            return broken(int(seq), "its hash does not match its fields", prev)
        prev = digest
        expected_seq += 1
    if keyed_from is not None and keyed_from > max(n, 1):  # the marker row and after cut
        return broken(n + 1, f"rows from {n + 1} on are missing (keyed from {keyed_from})", prev)
    head = exported_head(store)
    if head is not None:
        at = int(head["seq"])
        if at > n:
            return broken(n + 1, f"rows {n + 1}..{at} are missing (exported head at {at})", prev)
        if rows[at - 1][7] != head.get("hash"):
            return broken(at, f"row {at} differs from the head exported then", prev)
    return Verified(n, prev, None, None, keyed_from)
