"""The store's schema, as forward-only migrations.

Event tables follow OCSF classes (flat columns, UTC timestamps) with the ``class_uid``
in their comment; ``rows`` on datastore activity is our own column, since OCSF has
none. Reference tables keep history: each version of a row lives from
``valid_from`` to ``valid_to`` (NULL = current; a NULL ``valid_from`` means "since
before the first snapshot"), and a view of the same name without ``ref_`` shows
the current snapshot.
"""

from __future__ import annotations

from molehunt.store.derived import DERIVED
from molehunt.store.migration import Migration

# Columns of each reference kind, in a fixed order, with their SQL types, and the
# columns that identify a row (a new version of a row replaces the one with the
# same key).
REFERENCE_TABLES: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {
    "hr": (
        {
            "employee_id": "VARCHAR",
            "name": "VARCHAR",
            "department": "VARCHAR",
            "title": "VARCHAR",
            "role": "VARCHAR",
            "manager_id": "VARCHAR",
            "hire_date": "DATE",
            "notice_date": "DATE",
            "termination_date": "DATE",
        },
        ("employee_id",),
    ),
    "accounts": (
        {
            "account": "VARCHAR",
            "system": "VARCHAR",
            "owner_employee_id": "VARCHAR",
            "kind": "VARCHAR",
            "created": "DATE",
            "disabled": "DATE",
        },
        ("account", "system"),
    ),
    "assets": (
        {
            "hostname": "VARCHAR",
            "ip": "VARCHAR",
            "owner_employee_id": "VARCHAR",
            "kind": "VARCHAR",
            "department": "VARCHAR",
        },
        ("hostname",),
    ),
    "entitlements": (
        {"role": "VARCHAR", "system": "VARCHAR", "resource": "VARCHAR", "access": "VARCHAR"},
        ("role", "system", "resource", "access"),
    ),
    "web_categories": ({"domain": "VARCHAR", "category": "VARCHAR"}, ("domain",)),
    "web_policy": ({"category": "VARCHAR", "allowed": "BOOLEAN"}, ("category",)),
}


def _reference_ddl() -> tuple[str, ...]:
    out: list[str] = []
    for name, (columns, _key) in REFERENCE_TABLES.items():
        cols = ",\n  ".join(f"{col} {typ}" for col, typ in columns.items())
        out.append(
            f"CREATE TABLE ref_{name} (\n  {cols},\n  valid_from TIMESTAMPTZ,\n"
            "  valid_to TIMESTAMPTZ,\n  source_id VARCHAR NOT NULL\n)"
        )
        out.append(
            f"CREATE VIEW {name} AS SELECT {', '.join(columns)} FROM ref_{name} "
            "WHERE valid_to IS NULL"
        )
    return tuple(out)


_EVENT_COMMON = """
  event_id VARCHAR NOT NULL,    -- source + offset; unique by checkpoints, not an index
  time TIMESTAMPTZ NOT NULL,
  source_id VARCHAR NOT NULL,"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "reference, event, checkpoint and quarantine tables",
        (
            *_reference_ddl(),
            # The client master: never PII in clear. *_h columns are keyed 64-bit
            # hashes of normalised values; other columns are added per export as
            # VARCHAR (non-PII attributes used to replay queries).
            """CREATE TABLE clients (
  client_id VARCHAR NOT NULL,  -- unique: duplicates are quarantined on ingest
  source_id VARCHAR NOT NULL
)""",
            """CREATE TABLE client_columns (
  name VARCHAR PRIMARY KEY,
  role VARCHAR NOT NULL,        -- 'pii' (stored as name || '_h') or 'attribute'
  pii_kind VARCHAR              -- normaliser used for the hash
)""",
            # OCSF 3002 Authentication: Windows logons, database connections.
            f"""CREATE TABLE events_auth ({_EVENT_COMMON}
  kind VARCHAR NOT NULL,        -- parser kind
  -- logon, logon_failed, logoff, explicit_credentials, connect, disconnect
  activity VARCHAR NOT NULL,
  user_name VARCHAR,
  user_domain VARCHAR,
  logon_type INTEGER,
  src_ip VARCHAR,
  src_port INTEGER,
  src_host VARCHAR,             -- workstation name as the event reports it
  dst_host VARCHAR,             -- computer or server that logged the event
  service VARCHAR,              -- e.g. the database name
  session_id VARCHAR,
  app_name VARCHAR,
  status VARCHAR,
  event_code INTEGER
)""",
            # OCSF 6005 Datastore Activity: one audited database statement.
            f"""CREATE TABLE events_db ({_EVENT_COMMON}
  kind VARCHAR NOT NULL,
  database VARCHAR,
  db_user VARCHAR,
  src_ip VARCHAR,
  src_port INTEGER,
  session_id VARCHAR,
  pid INTEGER,
  app_name VARCHAR,             -- chosen by the client: a signal, never an identity
  audit_class VARCHAR,          -- READ, WRITE, ...
  command VARCHAR,              -- SELECT, COPY, DECLARE CURSOR, UPDATE, ...
  object_type VARCHAR,
  objects VARCHAR[],
  statement VARCHAR,
  parameters VARCHAR,
  rows BIGINT,                  -- our own column; NULL when unknown
  rows_source VARCHAR,          -- pgaudit, auto_explain, unknown
  bulk_unknown BOOLEAN NOT NULL DEFAULT false,  -- e.g. COPY TO: bulk read of unknown size
  statement_id BIGINT,
  substatement_id BIGINT
)""",
            # Application record access (CRM): one line of the app-access log.
            f"""CREATE TABLE events_app ({_EVENT_COMMON}
  app VARCHAR,
  user_name VARCHAR,
  src_ip VARCHAR,
  action VARCHAR,
  rows BIGINT,
  detail VARCHAR,
  n_client_ids INTEGER
)""",
            """CREATE TABLE record_access (
  event_id VARCHAR NOT NULL,
  client_id VARCHAR NOT NULL,
  how VARCHAR NOT NULL          -- 'listed' (the app said so) or 'replayed'
)""",
            # OCSF 4002 HTTP Activity: one proxy log line.
            f"""CREATE TABLE events_http ({_EVENT_COMMON}
  kind VARCHAR NOT NULL,
  src_ip VARCHAR,
  user_name VARCHAR,
  method VARCHAR,
  url VARCHAR,
  host VARCHAR,
  port INTEGER,
  path VARCHAR,
  status INTEGER,
  squid_result VARCHAR,
  hierarchy VARCHAR,
  bytes_out BIGINT,             -- request bytes from the client (upload); NULL when unknown
  bytes_in BIGINT,              -- reply bytes to the client
  request_content_type VARCHAR,
  content_type VARCHAR,
  user_agent VARCHAR,
  duration_ms BIGINT
)""",
            # OCSF 1007 Process Activity (Sysmon 1).
            f"""CREATE TABLE events_process ({_EVENT_COMMON}
  kind VARCHAR NOT NULL,
  host VARCHAR,
  user_name VARCHAR,
  image VARCHAR,
  command_line VARCHAR,
  pid BIGINT,
  parent_image VARCHAR,
  event_code INTEGER
)""",
            # OCSF 4001 Network Activity (Sysmon 3).
            f"""CREATE TABLE events_network ({_EVENT_COMMON}
  kind VARCHAR NOT NULL,
  host VARCHAR,
  user_name VARCHAR,
  image VARCHAR,
  src_ip VARCHAR,
  src_port INTEGER,
  dst_ip VARCHAR,
  dst_port INTEGER,
  dst_host VARCHAR,
  protocol VARCHAR,
  event_code INTEGER
)""",
            # OCSF 1001 File System Activity (Sysmon 11 create, 23 delete).
            f"""CREATE TABLE events_file ({_EVENT_COMMON}
  kind VARCHAR NOT NULL,
  activity VARCHAR NOT NULL,    -- create, delete
  host VARCHAR,
  user_name VARCHAR,
  image VARCHAR,
  path VARCHAR,
  event_code INTEGER
)""",
            # OCSF 2004 Detection Finding.
            """CREATE TABLE findings (
  finding_id VARCHAR NOT NULL PRIMARY KEY,
  detector VARCHAR NOT NULL,
  time TIMESTAMPTZ NOT NULL,
  day DATE,
  severity INTEGER NOT NULL,
  person_id VARCHAR,
  account VARCHAR,
  host VARCHAR,
  title VARCHAR NOT NULL,
  details JSON,
  event_ids VARCHAR[]
)""",
            # One row per input file ever seen, identified by its content, not its name.
            """CREATE TABLE sources (
  source_id VARCHAR NOT NULL PRIMARY KEY,
  kind VARCHAR NOT NULL,
  path VARCHAR NOT NULL,        -- where it was last seen
  head_len INTEGER NOT NULL,    -- bytes covered by head_hash
  head_hash VARCHAR NOT NULL,
  size BIGINT NOT NULL,
  "offset" BIGINT NOT NULL,     -- bytes consumed and committed
  events BIGINT NOT NULL DEFAULT 0,
  rejected BIGINT NOT NULL DEFAULT 0,
  first_ingest TIMESTAMPTZ NOT NULL,
  last_ingest TIMESTAMPTZ NOT NULL
)""",
            """CREATE TABLE quarantine (
  source_id VARCHAR NOT NULL,
  kind VARCHAR NOT NULL,
  path VARCHAR NOT NULL,
  line BIGINT,
  "offset" BIGINT,
  reason VARCHAR NOT NULL,
  raw VARCHAR,
  quarantined_at TIMESTAMPTZ NOT NULL
)""",
        ),
    ),
)

MIGRATIONS = (
    *MIGRATIONS,
    Migration(
        2,
        "canary client records (keyed hashes only)",
        (
            """CREATE TABLE canaries (
  client_id VARCHAR NOT NULL PRIMARY KEY,
  name_h BIGINT,
  id_number_h BIGINT,
  mobile_h BIGINT,
  address_h BIGINT,
  planted_at TIMESTAMPTZ NOT NULL
)""",
        ),
    ),
)

MIGRATIONS = (
    *MIGRATIONS,
    Migration(
        3,
        "files scanned on endpoints, with their findings and client records",
        (
            # OCSF 1001 File System Activity, activity "scan": one scanned file's
            # content on a host. ``time`` is when the file was last written (its
            # modification time as collected); the event id is made of the host,
            # the path and the content, so scanning a file again stores nothing new.
            f"""CREATE TABLE events_scan ({_EVENT_COMMON}
  host VARCHAR,
  path VARCHAR NOT NULL,        -- where it was scanned
  host_path VARCHAR,            -- its path on the host, from the endpoint collection layout
  sha256 VARCHAR NOT NULL,
  size BIGINT NOT NULL,
  file_kind VARCHAR,
  verdict VARCHAR NOT NULL,     -- bulk-client-data, personal-data, clean, error
  findings JSON,                -- personal data type -> count
  client_records INTEGER NOT NULL,
  errors VARCHAR,
  scanned_at TIMESTAMPTZ NOT NULL
)""",
            """CREATE TABLE file_clients (
  event_id VARCHAR NOT NULL,    -- events_scan
  client_id VARCHAR NOT NULL
)""",
        ),
    ),
)

MIGRATIONS = (
    *MIGRATIONS,
    Migration(
        4,
        "investigators' audit trail (append-only, hash-chained)",
        (
            # Each row's hash covers the row and the previous row's hash, so a row
            # changed or removed breaks the chain from there on (molehunt audit --verify).
            """CREATE TABLE audit_log (
  seq BIGINT NOT NULL PRIMARY KEY,
  time TIMESTAMPTZ NOT NULL,
  actor VARCHAR NOT NULL,       -- who ran it (the operating-system user)
  action VARCHAR NOT NULL,      -- the verb: who, risk, timeline, attribute...
  target VARCHAR,               -- what it was asked about (no personal data)
  rows BIGINT,                  -- how many rows the answer held
  prev_hash VARCHAR NOT NULL,
  hash VARCHAR NOT NULL
)""",
        ),
    ),
)

MIGRATIONS = (
    *MIGRATIONS,
    Migration(
        5,
        "investigators' sign-in, sessions and case files",
        (
            """CREATE TABLE web_users (
  username VARCHAR NOT NULL PRIMARY KEY,
  role VARCHAR NOT NULL,        -- analyst, investigator, auditor, admin
  team VARCHAR NOT NULL,        -- cases are visible to their team only
  password_hash VARCHAR NOT NULL,  -- argon2id
  disabled BOOLEAN NOT NULL,
  created_at TIMESTAMPTZ NOT NULL
)""",
            # The cookie or bearer token itself is never stored, only its SHA-256.
            """CREATE TABLE web_sessions (
  token_hash VARCHAR NOT NULL PRIMARY KEY,
  username VARCHAR NOT NULL,
  csrf VARCHAR NOT NULL,
  created_at TIMESTAMPTZ NOT NULL,
  expires_at TIMESTAMPTZ NOT NULL
)""",
            """CREATE TABLE cases (
  case_id VARCHAR NOT NULL PRIMARY KEY,
  title VARCHAR NOT NULL,
  team VARCHAR NOT NULL,
  status VARCHAR NOT NULL,      -- open, closed
  created_by VARCHAR NOT NULL,
  created_at TIMESTAMPTZ NOT NULL
)""",
            # One piece of evidence: a person, a finding, an event or an attribution,
            # with the investigator's note; ``data`` holds what was seen then (masked).
            """CREATE TABLE case_items (
  case_id VARCHAR NOT NULL,
  seq INTEGER NOT NULL,
  kind VARCHAR NOT NULL,
  ref VARCHAR NOT NULL,
  note VARCHAR,
  data JSON,
  added_by VARCHAR NOT NULL,
  added_at TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (case_id, seq)
)""",
        ),
    ),
)

MIGRATIONS = (
    *MIGRATIONS,
    Migration(
        6,
        "Windows events keep what an investigator reads: who used whose credentials,"
        " towards which server, from which process; logon ids and elevation",
        (
            # 4648 names two accounts: the subject (who used the credentials) and
            # the target (whose credentials); user_name stays the target.
            "ALTER TABLE events_auth ADD COLUMN subject_user_name VARCHAR",
            "ALTER TABLE events_auth ADD COLUMN subject_user_domain VARCHAR",
            "ALTER TABLE events_auth ADD COLUMN subject_logon_id VARCHAR",
            # 4648 TargetServerName: the server the credentials were used for.
            "ALTER TABLE events_auth ADD COLUMN target_server VARCHAR",
            "ALTER TABLE events_auth ADD COLUMN process_name VARCHAR",
            "ALTER TABLE events_auth ADD COLUMN process_id BIGINT",
            "ALTER TABLE events_auth ADD COLUMN elevated_token BOOLEAN",
            "ALTER TABLE events_auth ADD COLUMN auth_package VARCHAR",
            "ALTER TABLE events_process ADD COLUMN logon_id VARCHAR",
            "ALTER TABLE events_process ADD COLUMN parent_pid BIGINT",
            "ALTER TABLE events_process ADD COLUMN parent_command_line VARCHAR",
            "ALTER TABLE events_process ADD COLUMN integrity_level VARCHAR",
        ),
    ),
    Migration(
        7,
        "web sign-in lockouts",
        (
            # A user locked out after too many wrong passwords in a row; an admin lifts it
            # (``molehunt user unlock`` or the Users page), which deletes the row.
            """CREATE TABLE web_lockouts (
  username VARCHAR NOT NULL PRIMARY KEY,
  failures INTEGER NOT NULL,
  locked_at TIMESTAMPTZ NOT NULL
)""",
        ),
    ),
    Migration(
        8,
        "detection passes, with the detectors that failed",
        (
            # One row per pass of the detectors (the last ones kept): ``molehunt status``
            # shows the last pass's failures, whose detectors' findings are missing.
            """CREATE TABLE detection_runs (
  run_at TIMESTAMPTZ NOT NULL,
  as_of DATE NOT NULL,
  since DATE,
  detectors VARCHAR[] NOT NULL, -- those that ran to the end
  findings BIGINT NOT NULL,     -- stored by the pass
  failures JSON NOT NULL        -- [{detector, error, where}], [] when none failed
)""",
        ),
    ),
    Migration(
        9,
        "quarantined records: id, length, hash of their bytes (replay); why a log's bytes pend",
        (
            # ``raw`` is a bounded preview; replay re-reads ``length`` bytes at ``offset``
            # of the file and checks them against ``sha256`` (file changed since?).
            "CREATE SEQUENCE quarantine_ids",
            "ALTER TABLE quarantine ADD COLUMN id BIGINT DEFAULT nextval('quarantine_ids')",
            "ALTER TABLE quarantine ADD COLUMN length BIGINT",
            "ALTER TABLE quarantine ADD COLUMN sha256 VARCHAR",
            # Why a log's last bytes were left unread (unfinished record, waiting...).
            "ALTER TABLE sources ADD COLUMN pending_reason VARCHAR",
        ),
    ),
    Migration(
        10,
        "what the store knows of its keys (fingerprints and public keys, never a key)",
        (
            # key_fingerprint: HMAC-SHA256 of a fixed label under the client-hashing
            # key; signing_public_key: the Ed25519 key that signs case exports;
            # audit_keyed_from: the audit row from which the chain is keyed.
            """CREATE TABLE store_meta (
  name VARCHAR NOT NULL PRIMARY KEY,
  value VARCHAR NOT NULL,
  set_at TIMESTAMPTZ NOT NULL
)""",
        ),
    ),
    Migration(
        11,
        "attribution's reads resolved to people, kept until the store changes",
        (
            # One row per client a read returned (listed by the application or found
            # by replaying the statement), with who read it; ``who`` is the person, or
            # '~system:account' when nobody could be tied to the account. Sorted by
            # who. Rebuilt whole when ``attr_state.built_from`` no longer describes
            # the store (molehunt.attribute.overlap).
            """CREATE TABLE attr_reads (
  who VARCHAR NOT NULL,
  actor VARCHAR,
  event_id VARCHAR NOT NULL,
  time TIMESTAMPTZ,
  system VARCHAR,
  account VARCHAR,
  hostname VARCHAR,
  account_owner VARCHAR,
  host_person VARCHAR,
  client_id VARCHAR NOT NULL,
  how VARCHAR,
  confidence DOUBLE             -- of a replayed statement; NULL when listed
)""",
            # Distinct clients each reader read; what links readers (shared accounts
            # and source hosts); statements not replayed and why.
            "CREATE TABLE attr_readers (who VARCHAR NOT NULL, actor VARCHAR, read BIGINT)",
            "CREATE TABLE attr_links (who VARCHAR NOT NULL, link VARCHAR NOT NULL)",
            "CREATE TABLE attr_refused (event_id VARCHAR NOT NULL, reason VARCHAR NOT NULL)",
            """CREATE TABLE attr_state (
  built_from VARCHAR NOT NULL,  -- row counts, ingested sources, settings it came from
  built_at TIMESTAMPTZ NOT NULL,
  seconds DOUBLE NOT NULL
)""",
        ),
    ),
)

# The tables of state kept to make passes incremental (molehunt.store.derived).
MIGRATIONS = (*MIGRATIONS, *DERIVED)

#: Event tables, for status and for the contract tests.
EVENT_TABLES: tuple[str, ...] = (
    "events_auth",
    "events_db",
    "events_app",
    "events_http",
    "events_process",
    "events_network",
    "events_file",
    "events_scan",
)
