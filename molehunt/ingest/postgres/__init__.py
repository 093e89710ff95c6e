"""PostgreSQL logs with pgAudit and auto_explain: three formats, one way to events.

Each format parser cuts its bytes into records (:mod:`.csvlog` with
:mod:`.csv_records`, :mod:`.stderr` with :mod:`.prefix`, :mod:`.syslog`) and hands
the interesting ones to :func:`~.events.build_events`, which reads their log times
(:mod:`.times`, :mod:`.zones`), AUDIT payloads (:mod:`.audit`) and auto_explain
plans (:mod:`.plans`) into the event tables (:mod:`.tables`). The generic byte
kernels all of them use are in :mod:`.kernels`; :mod:`.records` says what a
record is and which messages matter.
"""

from __future__ import annotations

from molehunt.ingest.postgres.csvlog import PgCsvlogParser
from molehunt.ingest.postgres.prefix import DEFAULT_PREFIX, infer_prefix, prefix_pattern
from molehunt.ingest.postgres.stderr import PgStderrParser, PrefixMismatchError
from molehunt.ingest.postgres.syslog import PgSyslogParser

__all__ = [
    "DEFAULT_PREFIX",
    "PgCsvlogParser",
    "PgStderrParser",
    "PgSyslogParser",
    "PrefixMismatchError",
    "infer_prefix",
    "prefix_pattern",
]
