"""A throwaway real Squid on loopback, and the servers behind it, for tests.

:func:`running_squid` starts ``squid -N`` with its own configuration in a
temporary folder (free loopback port, no cache, logs in the folder, any user
name accepted by Squid's fake basic-auth helper when it is installed) and
stops it on exit, after which its access logs are complete. Squid run as root
drops to the ``proxy`` user, so the folder is handed to that user.

:func:`origin_server` is a small HTTP server and :func:`tunnel_sink` a TCP
server that reads an exact number of bytes and answers with another, for
CONNECT tunnels. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import os
import pwd
import shutil
import socket
import socketserver
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MOLEHUNT_LOGFORMAT = (
    "logformat molehunt %ts.%03tu %>a %un %rm %>rs %>rd %>rP %>Hs %Ss/%Sh %>st %>sh %<st %<sh"
    ' "%mt" %tr "%{User-Agent}>h" "%{Content-Type}>h" %{Content-Length}>h "%ru"'
)
FAKE_AUTH = Path("/usr/lib/squid/basic_fake_auth")
START_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class Squid:
    """A running Squid: where to send requests and where it logs."""

    port: int
    directory: Path
    #: Access log in the molehunt logformat.
    access_log: Path
    #: Access log in Squid's default ``squid`` logformat, same transactions.
    native_log: Path
    #: Whether requests must carry proxy credentials (any name is accepted).
    auth: bool
    process: subprocess.Popen[bytes]


def stop(squid: Squid) -> None:
    """Shut Squid down and wait: its logs are then flushed and closed."""
    if squid.process.poll() is not None:
        return
    # SIGTERM is Squid's shutdown: it waits shutdown_lifetime, then flushes.
    squid.process.terminate()
    try:
        squid.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        squid.process.kill()
        squid.process.wait()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _config(directory: Path, port: int, tunnel_ports: tuple[int, ...], auth: bool) -> str:
    lines = [
        f"http_port 127.0.0.1:{port}",
        "visible_hostname molehunt-test",
        MOLEHUNT_LOGFORMAT,
        f"access_log stdio:{directory}/access.log molehunt",
        f"access_log stdio:{directory}/native.log squid",
        f"cache_log {directory}/cache.log",
        f"pid_filename {directory}/squid.pid",
        f"coredump_dir {directory}",
        "cache deny all",
        "cache_mem 8 MB",
        "shutdown_lifetime 1 seconds",
        "pinger_enable off",
        "netdb_filename none",
        "logfile_rotate 0",
        "acl CONNECT method CONNECT",
        f"acl tunnel_ports port {' '.join(str(p) for p in tunnel_ports) or '1'}",
        "http_access deny CONNECT !tunnel_ports",
    ]
    if auth:
        lines += [
            f"auth_param basic program {FAKE_AUTH}",
            "auth_param basic realm molehunt-test",
            "acl authenticated proxy_auth REQUIRED",
            "http_access allow localhost authenticated",
        ]
    else:
        lines.append("http_access allow localhost")
    lines.append("http_access deny all")
    return "\n".join(lines) + "\n"


def _hand_to_proxy_user(directory: Path) -> None:
    if os.geteuid() != 0:
        return
    try:
        proxy = pwd.getpwnam("proxy")
    except KeyError:
        directory.chmod(0o777)
        return
    os.chown(directory, proxy.pw_uid, proxy.pw_gid)


def _wait_listening(port: int, process: subprocess.Popen[bytes], cache_log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = cache_log.read_text(errors="replace") if cache_log.exists() else ""
            raise RuntimeError(f"squid exited with {process.returncode}:\n{log[-3000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"squid did not listen on 127.0.0.1:{port} in {START_TIMEOUT} s")


@contextlib.contextmanager
def running_squid(binary: Path, *, tunnel_ports: tuple[int, ...] = ()) -> Iterator[Squid]:
    """Run Squid until the block ends (or :func:`stop`); read its logs after
    :func:`stop`, inside the block: the folder is removed on exit."""
    directory = Path(tempfile.mkdtemp(prefix="molehunt-squid-"))
    try:
        _hand_to_proxy_user(directory)
        port = free_port()
        auth = FAKE_AUTH.exists()
        conf = directory / "squid.conf"
        conf.write_text(_config(directory, port, tunnel_ports, auth))
        process = subprocess.Popen(
            [str(binary), "-N", "-f", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        squid = Squid(
            port=port,
            directory=directory,
            access_log=directory / "access.log",
            native_log=directory / "native.log",
            auth=auth,
            process=process,
        )
        try:
            _wait_listening(port, process, directory / "cache.log")
            yield squid
        finally:
            stop(squid)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def proxy_headers(squid: Squid, user: str) -> dict[str, str]:
    """Headers that authenticate ``user`` to ``squid`` (none when it asks none)."""
    if not squid.auth:
        return {}
    token = base64.b64encode(f"{user}:secret".encode()).decode("ascii")
    return {"Proxy-Authorization": f"Basic {token}"}


class _OriginHandler(BaseHTTPRequestHandler):
    body_size = 0

    def do_GET(self) -> None:
        body = b"x" * self.body_size
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        received = self.rfile.read(length)
        body = f'{{"received": {len(received)}}}'.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output clean


@contextlib.contextmanager
def origin_server(get_body_size: int) -> Iterator[int]:
    """An HTTP server on a free loopback port: GET returns ``get_body_size``
    bytes of text, POST answers how many bytes it received. Yields the port."""
    handler = type("Handler", (_OriginHandler,), {"body_size": get_body_size})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextlib.contextmanager
def tunnel_sink(expect: int, answer: int) -> Iterator[int]:
    """A TCP server that reads exactly ``expect`` bytes, then sends ``answer``
    bytes and closes. Yields its port."""

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            left = expect
            while left > 0:
                got = self.request.recv(min(left, 65536))
                if not got:
                    return
                left -= len(got)
            self.request.sendall(b"y" * answer)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def proxied_request(
    squid: Squid,
    method: str,
    url: str,
    *,
    headers: dict[str, str],
    body: bytes | None = None,
) -> tuple[int, bytes]:
    """Send one request through the proxy (absolute URL); status and body."""
    conn = http.client.HTTPConnection("127.0.0.1", squid.port, timeout=30)
    try:
        conn.request(method, url, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def tunnel(squid: Squid, port: int, *, headers: dict[str, str], send: int) -> tuple[int, int]:
    """CONNECT through the proxy to 127.0.0.1:``port``, send ``send`` bytes and
    read until the far end closes. Returns the CONNECT status and bytes read."""
    with socket.create_connection(("127.0.0.1", squid.port), timeout=30) as s:
        head = f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        s.sendall(head.encode("ascii"))
        reply = b""
        while b"\r\n\r\n" not in reply:
            got = s.recv(4096)
            if not got:
                break
            reply += got
        status = int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/") else 0
        if status != 200:
            return status, 0
        extra = reply.split(b"\r\n\r\n", 1)[1]
        s.sendall(b"z" * send)
        received = len(extra)
        while got := s.recv(65536):
            received += len(got)
        return status, received
