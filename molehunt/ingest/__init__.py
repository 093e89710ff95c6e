"""Ingest: one parser per input format, each registered by one line below.

Registry key = the ``--kind`` users type; module name = the key in snake_case (the
PostgreSQL formats in :mod:`molehunt.ingest.postgres`: ``pg-csvlog`` is ``postgres/csvlog.py``).
"""

from __future__ import annotations

from molehunt.ingest.accounts import AccountsParser
from molehunt.ingest.app_access import AppAccessParser
from molehunt.ingest.assets import AssetsParser
from molehunt.ingest.base import FileParser, LogParser, ParseResult, ReferenceParser, Rejected
from molehunt.ingest.clients import ClientsParser
from molehunt.ingest.entitlements import EntitlementsParser
from molehunt.ingest.evtx import EvtxParser
from molehunt.ingest.hr import HrParser
from molehunt.ingest.postgres import PgCsvlogParser, PgStderrParser, PgSyslogParser
from molehunt.ingest.squid import SquidParser
from molehunt.ingest.squid_logformat import SquidLogformatParser
from molehunt.ingest.squid_native import SquidNativeParser
from molehunt.ingest.web_categories import WebCategoriesParser
from molehunt.ingest.web_policy import WebPolicyParser
from molehunt.ingest.winlog_flat import WinlogFlatParser
from molehunt.ingest.winlog_ndjson import WinlogNdjsonParser

#: Reference snapshots: who is who and who may do what.
REFERENCE_PARSERS: dict[str, type[ReferenceParser]] = {
    "hr": HrParser,
    "accounts": AccountsParser,
    "assets": AssetsParser,
    "entitlements": EntitlementsParser,
    "web-categories": WebCategoriesParser,
    "web-policy": WebPolicyParser,
}

#: The client master: hashed on the way in (see molehunt.ingest.clients).
CLIENTS_KIND = ClientsParser.kind

#: Append-only logs read in chunks with byte-offset checkpoints.
LOG_PARSERS: dict[str, type[LogParser]] = {
    "pg-csvlog": PgCsvlogParser,
    "pg-stderr": PgStderrParser,
    "pg-syslog": PgSyslogParser,
    "app-access": AppAccessParser,
    "squid": SquidParser,
    "squid-native": SquidNativeParser,
    "squid-logformat": SquidLogformatParser,
    "winlog-ndjson": WinlogNdjsonParser,
    "winlog-flat": WinlogFlatParser,
}

#: Structured files read whole (EVTX), with a record-number checkpoint.
FILE_PARSERS: dict[str, type[FileParser]] = {
    "evtx": EvtxParser,
}


def all_kinds() -> dict[str, str]:
    """Every kind ``molehunt ingest --kind`` accepts, with its description."""
    kinds: dict[str, str] = {k: p.description for k, p in REFERENCE_PARSERS.items()}
    kinds[CLIENTS_KIND] = ClientsParser.description
    kinds.update({k: p.description for k, p in LOG_PARSERS.items()})
    kinds.update({k: p.description for k, p in FILE_PARSERS.items()})
    return kinds


__all__ = [
    "CLIENTS_KIND",
    "FILE_PARSERS",
    "LOG_PARSERS",
    "REFERENCE_PARSERS",
    "ParseResult",
    "Rejected",
    "all_kinds",
]
