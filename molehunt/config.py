"""One typed settings object, loaded once and passed down.

Sources, later ones winning: built-in defaults, ``molehunt.toml`` in the working
directory (or the file named by ``MOLEHUNT_CONFIG``), ``MOLEHUNT_*`` environment
variables, then command-line options. Nothing here runs at import time.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from molehunt.detect.settings import DetectionSettings
from molehunt.errors import ConfigError

DEFAULT_PG_PREFIX = "%m [%p] %q%u@%d %h app=%a "

#: Every setting, with what it means; the README's configuration table and a
#: test keep each other honest.
SETTINGS_DOC: dict[str, str] = {
    "db": "DuckDB store file (default molehunt.duckdb in the working directory)",
    "key_file": "file holding the client-hashing key, mode 0600 (default: <db>.key, "
    "beside the store)",
    "key": "the client-hashing key as 64 hex digits; overrides key_file (env only)",
    "audit_syslog": "also send the audit chain's head to syslog on every append: a socket "
    "path (/dev/log) or host:port (UDP); unset: the head file only",
    "timezone": "zone in which times are shown and naive times are read (Asia/Shanghai)",
    "pg_log_line_prefix": "PostgreSQL log_line_prefix of pg-stderr logs",
    "pg_log_timezone": "PostgreSQL log_timezone (IANA) in which an abbreviation such as CST "
    "is read (default: timezone)",
    "squid_logformat": "the squid.conf 'logformat NAME ...' line of squid-logformat logs "
    "(any Squid format codes; time, client address and URL required)",
    "batch_bytes": "bytes of log read per ingest batch (bounded memory)",
    "ingest_workers": "processes that parse logs during ingest (default: one per core; "
    "1: parse in the writing process); also [ingest] workers in molehunt.toml",
    "memory_limit": "DuckDB memory limit, e.g. 2GB",
    "detection": "detection thresholds, weights, working hours and alert threshold "
    "(a [detection] table in molehunt.toml; each key is in the README)",
}


class Settings(BaseModel):
    """What molehunt needs to know about its environment."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    db: Path = Path("molehunt.duckdb")
    key_file: Path = Path("molehunt.duckdb.key")  # beside the store: see _key_beside_store
    key: str | None = Field(default=None, repr=False)
    audit_syslog: str | None = None
    timezone: str = "Asia/Shanghai"
    pg_log_line_prefix: str = DEFAULT_PG_PREFIX
    pg_log_timezone: str | None = None
    squid_logformat: str | None = None
    batch_bytes: int = Field(default=64 * 1024 * 1024, ge=4096)
    ingest_workers: int | None = Field(default=None, ge=1)
    memory_limit: str = "1GB"
    detection: DetectionSettings = Field(default_factory=DetectionSettings)

    @model_validator(mode="before")
    @classmethod
    def _key_beside_store(cls, values: Any) -> Any:
        """No ``key_file`` given: ``<db>.key`` beside the store, wherever the store is."""
        if isinstance(values, dict) and values.get("key_file") is None:
            db = Path(values.get("db") or "molehunt.duckdb")
            values = {**values, "key_file": db.with_name(db.name + ".key")}
        return values

    @field_validator("key")
    @classmethod
    def _key_is_hex(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            raw = bytes.fromhex(value)
        except ValueError as e:
            raise ValueError("key must be hex digits") from e
        if len(raw) < 16:
            raise ValueError("key must be at least 16 bytes (32 hex digits)")
        return value

    @classmethod
    def load(
        cls,
        overrides: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> Settings:
        """Read the settings from file, environment and explicit overrides."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        config_path = Path(env["MOLEHUNT_CONFIG"]) if "MOLEHUNT_CONFIG" in env else None
        if config_path is None:
            candidate = (cwd or Path.cwd()) / "molehunt.toml"
            config_path = candidate if candidate.exists() else None
        if config_path is not None:
            try:
                values.update(tomllib.loads(config_path.read_text(encoding="utf-8")))
                _flatten_ingest_table(values)
            except (OSError, tomllib.TOMLDecodeError) as e:
                raise ConfigError(f"{config_path}: {e}") from e
        for name in cls.model_fields:
            if name == "detection":
                continue  # a table of its own: molehunt.toml only
            env_name = f"MOLEHUNT_{name.upper()}"
            if env_name in env:
                values[name] = env[env_name]
        values.update({k: v for k, v in (overrides or {}).items() if v is not None})
        try:
            return cls(**values)
        except ValidationError as e:
            raise ConfigError(str(e)) from e


def _flatten_ingest_table(values: dict[str, Any]) -> None:
    """``[ingest] workers = N`` in molehunt.toml is the ``ingest_workers`` setting."""
    table = values.pop("ingest", None)
    if table is None:
        return
    if not isinstance(table, dict) or set(table) - {"workers"}:
        raise ConfigError("[ingest] in molehunt.toml takes one key: workers")
    if "workers" in table:
        values.setdefault("ingest_workers", table["workers"])
