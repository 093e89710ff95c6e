"""Files and values kept beside or inside the store: key files only their owner reads
(``<db>.key``, ``<db>.audit.key``, ``<db>.sign.key``) and ``store_meta``. Below both
:mod:`molehunt.keys` and :mod:`molehunt.audit`, which use them."""

from __future__ import annotations

import os
import secrets
from datetime import UTC, datetime
from pathlib import Path

from molehunt.errors import ConfigError
from molehunt.store.store import Store

KEY_BYTES = 32


def create_key_file(path: Path) -> bool:
    """Write a new random key to ``path`` with mode 0600; False if one exists already."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.fchmod(fd, 0o600)  # whatever the umask
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(secrets.token_hex(KEY_BYTES) + "\n")
    return True


def read_key_file(path: Path) -> bytes:
    """A hex key from a file only its owner can read."""
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise ConfigError(f"{path} is readable by others (mode {mode:o}): chmod 600 it")
    try:
        key = bytes.fromhex(path.read_text(encoding="ascii").strip())
    except ValueError as e:
        raise ConfigError(f"{path} does not hold a hex key") from e
    if len(key) < 16:
        raise ConfigError(f"{path} holds a key shorter than 16 bytes")
    return key


def meta(store: Store, name: str) -> str | None:
    """A value of ``store_meta`` (``None`` when unset)."""
    rows = store.con.execute("SELECT value FROM store_meta WHERE name = ?", [name]).fetchall()
    return str(rows[0][0]) if rows else None


def set_meta(store: Store, name: str, value: str) -> None:
    """Set a value of ``store_meta`` once; a value already there is never replaced."""
    store.con.execute(
        "INSERT INTO store_meta VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        [name, value, datetime.now(UTC)],
    )


def store_file(store: Store, suffix: str) -> Path | None:
    """``<db><suffix>`` beside the store's file; ``None`` for an in-memory store."""
    if store.path in ("", ":memory:") or store.path.startswith(":memory:"):
        return None
    db = Path(store.path)
    return db.with_name(db.name + suffix)
