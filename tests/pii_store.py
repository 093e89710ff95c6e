"""A tiny store whose evidence names a client's ID number and mobile, for the checks
that personal data never leaves the web app unmasked (the scenario insurer's events
hold none, so a check over them could not fail)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

from molehunt.config import Settings
from molehunt.keys import create_key_file
from molehunt.store import Store

ID_NUMBER = "11010519491231002X"  # a valid resident ID number (checksum X)
MOBILE = "13912345678"
PII_EVENT = "pii-source:000000000042"
PII_DAY = date(2026, 5, 6)
PII_PERSON = "E100"


def pii_store(folder: Path) -> Settings:
    """A store in ``folder`` with one SQL statement naming ``ID_NUMBER`` and ``MOBILE``,
    and one finding of ``PII_PERSON`` citing it; returns its settings."""
    create_key_file(folder / "m.key")
    settings = Settings.load(
        {"db": folder / "m.duckdb", "key_file": folder / "m.key"}, environ={}, cwd=folder
    )
    when = datetime(2026, 5, 6, 6, 30, tzinfo=UTC)
    statement = f"SELECT * FROM clients WHERE id_no = '{ID_NUMBER}' OR mobile = '{MOBILE}'"
    with Store.open(settings.db) as store:
        store.con.execute(
            "INSERT INTO events_db (event_id, time, source_id, kind, db_user, src_ip, app_name, "
            "command, statement, rows) VALUES (?, ?, 'pii-source', 'pgaudit', 'resigned_agent', "
            "'10.0.1.100', 'psql', 'SELECT', ?, 2)",
            [PII_EVENT, when, statement],
        )
        store.con.execute(
            "INSERT INTO findings VALUES ('f-pii', 'bulk_read', ?, ?, 90, ?, 'resigned_agent', "
            "'ws-100', ?, ?, [?])",
            [
                when,
                PII_DAY,
                PII_PERSON,
                f"looked up client {MOBILE}",
                json.dumps({"statement": statement}),
                PII_EVENT,
            ],
        )
    return settings
