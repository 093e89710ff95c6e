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


#: Every detection setting, with what it means (for the README and a docs test).
DETECTION_SETTINGS_DOC: dict[str, str] = {
    "baseline_days": "days of history (active days, current day excluded) in a baseline",
    "min_history_days": "active days a person needs before their own baseline is trusted",
    "bulk_rows": "rows in one read that make it a bulk read",
    "offhours_rows": "rows in one read outside working hours that make it a bulk read",
    "spike_ratio": "a day's rows must exceed this many times the person's own median",
    "spike_mad": "... and the median plus this many scaled MADs",
    "spike_min_rows": "a day with fewer rows read is never a spike",
    "peer_ratio": "a day's rows must exceed this many times the peer group's median that day",
    "sustained_window_days": "trailing days (rows) over which sustained excess is counted",
    "sustained_ratio": "a day counts as excess above this many times one's own median reads "
    "(times the team's lift that day)",
    "sustained_min_days": "excess days within the window that make it sustained",
    "sustained_min_reads": "excess reads (cumulative, over one's own norm) that make it sustained",
    "out_of_scope_min_clients": "clients of other portfolios read in a day that make a finding",
    "out_of_scope_min_reads": "separate reads of other portfolios' clients in a day that make "
    "a finding",
    "file_min_clients": "client records of other portfolios (all, for people without one) in "
    "one file found on a host that make a finding",
    "spreadsheet_suffixes": "file name endings counted as spreadsheets or data exports",
    "follow_hours": "hours after a bulk read within which a file or upload is linked to it",
    "upload_request_bytes": "request bytes that make one request an upload",
    "ring_days": "trailing days over which uploaders of one endpoint are counted",
    "ring_min_people": "distinct people uploading to one endpoint that make a ring",
    "ring_max_people": "more uploaders than this mean a popular service, not a ring",
    "ring_max_share": "... and so do more than this share of everyone who uploaded anywhere "
    "in the window",
    "departing_days": "days before termination during which a person counts as departing",
    "desktop_clients": "substrings of app names / process images of desktop SQL tools",
    "tool_roles": "roles whose work is to use desktop SQL tools (DBAs)",
    "work_start_hour": "local hour working time starts",
    "work_end_hour": "local hour working time ends",
    "work_days": "local weekdays worked, Monday = 0",
    "max_event_ids": "event ids a finding cites at most (the count is kept in details)",
    "weights": "weight of each detector in the person score",
    "half_life_days": "days after which a finding counts half in the score",
    "repeat_share": "share counted of a detector's findings beyond its strongest one",
    "related_share": "share of a finding's score that goes to the other person it names",
    "departing_multiplier": "score multiplier for a person during notice or before termination",
    "corroboration_bonus": "score multiplier added per extra source family (db, file, web) "
    "on the same host within follow_hours",
    "alert_threshold": "score at or above which a person is flagged (the floor when an alert "
    "budget is set)",
    "chain_days": "days within which findings of different stages (motive, access, collection, "
    "exfiltration) on one person form a chain",
    "chain_memory_days": "days after a person's last chain step that their chain still lifts the "
    "lone cap (a critical finding lifts it for good)",
    "send_days": "days after something was taken (access or collection) within which an upload "
    "is a chain step sending it: 0 the same day, 1 the same or the next day",
    "lone_cap": "a person with neither a critical finding nor a chain scores at most this share "
    "of alert_threshold, however often the lone signal repeats",
    "alert_budget": "target people flagged per 1,000 staff-days: when set, the threshold of a day "
    "is raised (never lowered below alert_threshold) so that the trailing budget_days would have "
    "flagged at most that many",
    "budget_days": "trailing days over which the alert budget is calibrated",
    "critical_file_clients": "clients of other portfolios in one file of a portfolio holder that "
    "make the file critical on its own",
    "critical_file_share": "share of the whole client master in one file that makes it critical "
    "on its own, whoever holds it (a copy of the client table)",
    "upload_min_bits": "surprise (bits, -log2 of the tail share) an upload day needs, under the "
    "destination's population and under the person's own days, to be a finding",
    "tool_min_bits": "surprise (bits) of the share of a role's other members who used a desktop "
    "SQL tool in the trailing baseline_days below which an unusual_client finding is the role's "
    "work (context, no chain step)",
    "collection_min_bits": "surprise (bits) of a person's rows read in a day among their role's "
    "other members' days (trailing baseline_days) below which a bulk read, volume spike or file "
    "after a bulk read is routine work (context) rather than a collection step; a day never "
    "reached by the peers is never routine",
    "scope_min_bits": "surprise (bits) a day's clients of other portfolios, or separate reads "
    "of them, needs among the role's other members' days (trailing baseline_days) to be a "
    "finding; the out_of_scope minimums are floors below it",
    "ring_min_bits": "surprise (bits) of several people sharing one upload endpoint, under how "
    "often the company's endpoints are shared that much, to be a finding",
}

DEFAULT_WEIGHTS: dict[str, float] = {
    "departed_account": 1.0,
    "borrowed_account": 1.0,
    "outside_entitlement": 0.8,
    "unusual_client": 0.4,
    "volume_spike": 0.6,
    "sustained_excess": 0.7,
    "out_of_scope": 0.6,
    "bulk_read": 0.6,
    "file_write": 0.6,
    "client_file": 0.8,
    "allowed_channel_upload": 0.7,
    "departing_person": 0.2,
    "shared_endpoint": 0.9,
    "disallowed_category": 0.3,
}


class DetectionSettings(BaseModel):
    """Thresholds, weights and working hours of detection and scoring."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    baseline_days: int = Field(default=30, ge=3)
    min_history_days: int = Field(default=5, ge=1)
    bulk_rows: int = Field(default=1000, ge=1)
    offhours_rows: int = Field(default=200, ge=1)
    spike_ratio: float = Field(default=4.0, gt=1)
    spike_mad: float = Field(default=6.0, gt=0)
    spike_min_rows: int = Field(default=300, ge=1)
    peer_ratio: float = Field(default=3.0, gt=1)
    sustained_window_days: int = Field(default=10, ge=2)
    sustained_ratio: float = Field(default=2.0, gt=1)
    sustained_min_days: int = Field(default=3, ge=1)
    sustained_min_reads: int = Field(default=30, ge=1)
    out_of_scope_min_clients: int = Field(default=50, ge=1)
    out_of_scope_min_reads: int = Field(default=15, ge=1)
    file_min_clients: int = Field(default=25, ge=1)
    spreadsheet_suffixes: tuple[str, ...] = (".xlsx", ".xls", ".xlsm", ".csv", ".ods")
    follow_hours: int = Field(default=24, ge=1)
    upload_request_bytes: int = Field(default=256 * 1024, ge=1)
    ring_days: int = Field(default=30, ge=1)
    ring_min_people: int = Field(default=2, ge=2)
    ring_max_people: int = Field(default=8, ge=2)
    ring_max_share: float = Field(default=0.25, gt=0, le=1)
    departing_days: int = Field(default=28, ge=0)
    desktop_clients: tuple[str, ...] = (
        "dbeaver",
        "navicat",
        "psql",
        "pgadmin",
        "datagrip",
        "heidisql",
        "toad",
        "sql developer",
        "excel",
        "odbc",
        "msqry",
    )
    tool_roles: tuple[str, ...] = ("dba",)
    work_start_hour: int = Field(default=8, ge=0, le=23)
    work_end_hour: int = Field(default=19, ge=1, le=24)
    work_days: tuple[int, ...] = (0, 1, 2, 3, 4)
    max_event_ids: int = Field(default=200, ge=1)
    weights: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    half_life_days: float = Field(default=14.0, gt=0)
    repeat_share: float = Field(default=0.25, ge=0, le=1)
    related_share: float = Field(default=0.5, ge=0, le=1)
    departing_multiplier: float = Field(default=1.5, ge=1)
    corroboration_bonus: float = Field(default=0.5, ge=0)
    alert_threshold: float = Field(default=0.75, gt=0)
    chain_days: int = Field(default=7, ge=0)
    chain_memory_days: int = Field(default=14, ge=0)
    send_days: int = Field(default=1, ge=0)
    lone_cap: float = Field(default=0.9, gt=0, lt=1)
    alert_budget: float | None = Field(default=None, gt=0)
    budget_days: int = Field(default=30, ge=1)
    critical_file_clients: int = Field(default=1000, ge=1)
    critical_file_share: float = Field(default=0.5, gt=0, le=1)
    upload_min_bits: float = Field(default=7.0, ge=0)
    ring_min_bits: float = Field(default=6.0, ge=0)
    collection_min_bits: float = Field(default=5.0, ge=0)
    tool_min_bits: float = Field(default=2.0, ge=0)
    scope_min_bits: float = Field(default=6.0, ge=0)


def detection_settings(settings: object) -> DetectionSettings:
    """The ``detection`` part of the application settings, or the defaults while the
    settings object has none."""
    found = getattr(settings, "detection", None)
    return found if isinstance(found, DetectionSettings) else DetectionSettings()


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
