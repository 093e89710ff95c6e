"""pg-stderr: events/s against DuckDB's own read_csv of the same file, and peak RSS.

Run: ``python -m bench.ingest_pg_stderr [--sessions N]``. The same two logs as
``bench.ingest_pg_csvlog`` (realistic, and every statement with its JSON plan),
written as PostgreSQL's stderr log with the default ``log_line_prefix``
(``%m [%p] %q%u@%d %h app=%a``), are parsed in ``batch_bytes`` chunks. The
ceiling is DuckDB's CSV reader cutting the same file into lines, one VARCHAR
column a line, on one thread.
"""

from __future__ import annotations

from bench.ingest_pg_csvlog import Record, cli, compare

# No byte of the log is a delimiter or a quote, so every line is one field.
LINE_OPTIONS = (
    "columns = {'line': 'VARCHAR'}, header = false, delim = '\\x01', quote = '', escape = '',"
    " strict_mode = false"
)


def stderr_line(r: Record) -> str:
    """``r`` as the stderr log prints it: the prefix, then a tab before each further line."""
    known = bool(r.user)
    user = r.user if known else "[unknown]"
    database = r.database if known else "[unknown]"
    app = r.app or "[unknown]"
    message = r.message.replace("\n", "\n\t")
    return f"{r.time} [{r.pid}] {user}@{database} {r.host} app={app} LOG:  {message}\n"


def main(sessions_count: int = 30_000) -> None:
    compare(
        "pg-stderr",
        ("molehunt.ingest.postgres.stderr", "PgStderrParser"),
        stderr_line,
        LINE_OPTIONS,
        sessions_count,
    )


if __name__ == "__main__":
    args = cli(__doc__).parse_args()
    main(args.sessions)
