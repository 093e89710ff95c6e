"""A throwaway PostgreSQL 15 with pgAudit, configured as formats.md recommends.

``pg_server()`` runs ``initdb`` in a temp dir, starts ``postgres`` on a free
loopback port (unix socket in the same dir) with csvlog + stderr logging,
pgAudit, pg_stat_statements and auto_explain (JSON), and yields a
:class:`PgServer`. Stopping it (``pg_ctl stop -m fast``) flushes the logs, which
:meth:`PgServer.stop` then returns. initdb and postgres refuse to run as root,
so as root they run as the ``postgres`` system user (``runuser``).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from molehunt_testing import require_binary

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_LIB = Path("/usr/lib/postgresql/15/lib")
PREFIX = "%m [%p] %q%u@%d %h app=%a "

SETTINGS = f"""
listen_addresses = '127.0.0.1'
shared_preload_libraries = 'pgaudit,pg_stat_statements,auto_explain'
pgaudit.log = 'read,write'
pgaudit.log_relation = on
pgaudit.log_parameter = on
pgaudit.log_rows = on
log_connections = on
log_disconnections = on
logging_collector = on
log_destination = 'stderr,csvlog'
log_directory = 'log'
log_filename = 'postgresql.log'
log_line_prefix = '{PREFIX}'
log_timezone = 'UTC'
auto_explain.log_min_duration = 0
auto_explain.log_analyze = on
auto_explain.log_timing = off
auto_explain.log_format = json
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 16MB
max_connections = 20
"""


@dataclass(slots=True)
class PgServer:
    root: Path
    port: int
    superuser: str

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "sock"

    def dsn(self, user: str | None = None, dbname: str = "postgres", **extra: str) -> str:
        """A libpq connection string over TCP (so the log shows a client IP)."""
        parts = {
            "host": "127.0.0.1",
            "port": str(self.port),
            "user": user or self.superuser,
            "dbname": dbname,
            **extra,
        }
        return " ".join(f"{k}='{v}'" for k, v in parts.items())

    def admin_dsn(self, dbname: str = "postgres") -> str:
        return f"host='{self.socket_dir}' port={self.port} user={self.superuser} dbname={dbname}"

    @property
    def csvlog(self) -> Path:
        return self.datadir / "log" / "postgresql.csv"

    @property
    def stderr_log(self) -> Path:
        return self.datadir / "log" / "postgresql.log"

    def stop(self) -> tuple[bytes, bytes]:
        """Stop the server (flushing its logs); the csvlog and stderr log bytes."""
        _run_as_owner([str(PG_BIN / "pg_ctl"), "stop", "-m", "fast", "-D", str(self.datadir)])
        return self.csvlog.read_bytes(), self.stderr_log.read_bytes()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _as_root() -> bool:
    return os.geteuid() == 0


def _run_as_owner(cmd: list[str]) -> None:
    full = ["runuser", "-u", "postgres", "--", *cmd] if _as_root() else cmd
    done = subprocess.run(full, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {done.stdout}{done.stderr}")


@contextmanager
def pg_server() -> Iterator[PgServer]:
    """Start a throwaway PostgreSQL 15 + pgAudit; skip when the packages are missing."""
    require_binary(str(PG_BIN / "postgres"), "postgresql-15")
    require_binary(str(PG_LIB / "pgaudit.so"), "postgresql-15-pgaudit")
    if _as_root():
        require_binary("runuser", "util-linux")
    root = Path(tempfile.mkdtemp(prefix="molehunt-pg-"))
    try:
        os.chmod(root, 0o700)
        (root / "sock").mkdir()
        if _as_root():
            owner = pwd.getpwnam("postgres")
            for path in (root, root / "sock"):
                os.chown(path, owner.pw_uid, owner.pw_gid)
            superuser = "postgres"
        else:
            superuser = pwd.getpwuid(os.geteuid()).pw_name
        server = PgServer(root=root, port=_free_port(), superuser=superuser)
        _run_as_owner(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(server.datadir),
                "-U",
                superuser,
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ]
        )
        conf = server.datadir / "postgresql.conf"
        with conf.open("a", encoding="utf-8") as f:
            f.write(SETTINGS)
            f.write(f"port = {server.port}\nunix_socket_directories = '{server.socket_dir}'\n")
        _run_as_owner(
            [
                str(PG_BIN / "pg_ctl"),
                "start",
                "-w",
                "-t",
                "30",
                "-D",
                str(server.datadir),
                "-l",
                str(root / "startup.log"),
            ]
        )
        try:
            yield server
        finally:
            if (server.datadir / "postmaster.pid").exists():
                _run_as_owner(
                    [str(PG_BIN / "pg_ctl"), "stop", "-m", "immediate", "-D", str(server.datadir)]
                )
    finally:
        shutil.rmtree(root, ignore_errors=True)
