"""The client-hashing key: created once by ``molehunt init``, kept outside the store."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from molehunt.config import Settings
from molehunt.errors import ConfigError, KeyMissingError

KEY_BYTES = 32


def create_key_file(path: Path) -> bool:
    """Write a new random key to ``path`` with mode 0600; False if one exists already."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(secrets.token_hex(KEY_BYTES) + "\n")
    return True


def load_key(settings: Settings) -> bytes:
    """The key from ``MOLEHUNT_KEY`` (settings.key) or from the key file."""
    if settings.key:
        return bytes.fromhex(settings.key)
    path = settings.key_file
    if not path.exists():
        raise KeyMissingError(
            f"no client-hashing key at {path}: run `molehunt init` or set MOLEHUNT_KEY"
        )
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
