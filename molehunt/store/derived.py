"""Migrations of the store's derived tables: state kept so that passes are incremental.

Who-is-who resolved day by day (:mod:`molehunt.resolve.stored`), each day's scored
people (:mod:`molehunt.score.stored`), the events counted per day, and attribution's
replayed statements (:mod:`molehunt.attribute.replay`). Nothing here is evidence:
every table can be emptied and is built again from the events and reference data.
Appended to :data:`molehunt.store.schema.MIGRATIONS` in version order.
"""

from __future__ import annotations

from molehunt.store.migration import Migration

DERIVED: tuple[Migration, ...] = (
    Migration(
        12,
        "who-is-who kept and extended day by day (molehunt.resolve.stored)",
        (
            # The kept relations' own tables (kept_reads, kept_http, kept_logon_*) are
            # created from their expressions when first resolved.
            """CREATE TABLE kept_state (
  relation VARCHAR NOT NULL,
  built_from VARCHAR NOT NULL,  -- version, zone, offset, hash of the reference rows
  through_end TIMESTAMPTZ NOT NULL,  -- end of the last day resolved (UTC)
  built_at TIMESTAMPTZ NOT NULL
)""",
            # Input events per local day and table when the relation's day was resolved.
            """CREATE TABLE kept_days (
  relation VARCHAR NOT NULL,
  day DATE NOT NULL,
  tbl VARCHAR NOT NULL,
  events BIGINT NOT NULL
)""",
        ),
    ),
    Migration(
        13,
        "each day's scored people, kept until the findings, HR or settings change",
        (
            # One row per person and day with a finding up to it (molehunt.score.stored);
            # reasons: [[detector, score, day its text holds from (ordinal)]], highest
            # first, the text in risk_reasons.
            """CREATE TABLE risk_days (
  day DATE NOT NULL,
  person_id VARCHAR NOT NULL,
  score DOUBLE NOT NULL,
  flagged BOOLEAN NOT NULL,
  departing BOOLEAN NOT NULL,
  corroborated VARCHAR[] NOT NULL,
  chain VARCHAR[] NOT NULL,
  reasons JSON NOT NULL
)""",
            """CREATE TABLE risk_reasons (
  person_id VARCHAR NOT NULL,
  detector VARCHAR NOT NULL,
  since INTEGER NOT NULL,       -- day ordinal from which the text holds
  summary VARCHAR NOT NULL,
  first_seen TIMESTAMPTZ NOT NULL,
  last_seen TIMESTAMPTZ NOT NULL,
  events VARCHAR[] NOT NULL
)""",
            "CREATE TABLE risk_thresholds (day DATE NOT NULL, value DOUBLE NOT NULL, how VARCHAR)",
            # The findings of each day the scores were built from (count, hash): a pass
            # that changes a day's findings has every later day scored again.
            "CREATE TABLE risk_inputs (day DATE NOT NULL, n BIGINT NOT NULL, digest UBIGINT)",
            """CREATE TABLE risk_state (
  built_from VARCHAR NOT NULL,  -- settings, time zone, HR, first day: a change rebuilds all
  first_day DATE NOT NULL,
  last_day DATE NOT NULL,
  built_at TIMESTAMPTZ NOT NULL,
  seconds DOUBLE NOT NULL
)""",
        ),
    ),
    Migration(
        14,
        "events per local day and table, counted from the rows appended since the last count",
        (
            # molehunt.resolve.stored: a pass counts only the rows appended since (the
            # event tables only grow), not every event's time again.
            """CREATE TABLE event_days (
  tbl VARCHAR NOT NULL,
  utc_offset INTEGER NOT NULL,  -- seconds east of UTC the days were cut with
  day DATE,                     -- NULL: events without a time
  events BIGINT NOT NULL
)""",
            """CREATE TABLE event_days_seen (
  tbl VARCHAR NOT NULL,
  utc_offset INTEGER NOT NULL,
  rows_seen BIGINT NOT NULL     -- rows of the table counted (its rowids below this)
)""",
        ),
    ),
    Migration(
        15,
        "each database statement's replay kept until the client master changes",
        (
            # molehunt.attribute.replay: one row per replayed statement (its confidence,
            # or why it was refused); the clients a confident one returned are in
            # record_access (how 'replayed').
            """CREATE TABLE attr_replayed (
  event_id VARCHAR NOT NULL,
  confidence DOUBLE,  -- NULL: refused
  reason VARCHAR      -- why refused
)""",
            # What the replays were made against (version, the master's rows and columns).
            "CREATE TABLE attr_replay_state (master VARCHAR NOT NULL)",
        ),
    ),
    Migration(
        16,
        "each record-level row with its read's local day, kept as the rows arrive",
        (
            # molehunt.resolve.stored.count_access_days: a kept relation that reads the
            # record-level rows of a day (out_of_scope's) reads them here, in day order,
            # not from every row of record_access. Days are cut with the offset of
            # access_days_seen.
            """CREATE TABLE access_days (
  day DATE,                     -- NULL: the read is not stored yet (looked for again)
  event_id VARCHAR NOT NULL,
  client_id VARCHAR NOT NULL
)""",
            # Where the next count starts: the rowid after the last row counted, and the
            # rows there were then (fewer now: rows were deleted, count again whole).
            """CREATE TABLE access_days_seen (
  utc_offset INTEGER NOT NULL,  -- seconds east of UTC access_days' days were cut with
  next_rowid BIGINT NOT NULL,
  rows_counted BIGINT NOT NULL
)""",
        ),
    ),
)
