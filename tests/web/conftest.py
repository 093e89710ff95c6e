"""Shared fixtures of the web tests: the scenario store with users of every role,
signed-in test clients, and the app served by uvicorn on a loopback port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from insurer import scenario

from molehunt.config import Settings
from molehunt.investigate.users import add_user, get_user, set_user
from molehunt.store import Store
from molehunt.web import create_app

PASSWORD = "correct horse battery staple"

#: (user name, role, team) of the users every web test may sign in as.
USERS: tuple[tuple[str, str, str], ...] = (
    ("analyst", "analyst", "red"),
    ("investigator", "investigator", "red"),
    ("auditor", "auditor", "red"),
    ("admin", "admin", "red"),
    ("blue-analyst", "analyst", "blue"),
    ("blue-investigator", "investigator", "blue"),
)


def ensure_users(store: Store) -> None:
    for name, role, team in USERS:
        if get_user(store, name) is None:
            add_user(store, name, PASSWORD, role, team)
        else:  # a test may have changed or disabled one: put it back
            set_user(store, name, role=role, team=team, disabled=False)


@pytest.fixture(scope="session")
def web_store() -> Store:
    """The scenario insurer's store (tests/insurer.py), with users of every role in
    teams red and blue (see :func:`web_users`)."""
    world = scenario()
    ensure_users(world.store)
    return world.store


@pytest.fixture(scope="session")
def web_settings(web_store: Store) -> Settings:
    return scenario().settings


@pytest.fixture(scope="session")
def web_users() -> tuple[tuple[str, str, str], ...]:
    """(user name, role, team): the user name is the role for team red,
    ``blue-analyst`` and ``blue-investigator`` are team blue."""
    return USERS


@pytest.fixture(scope="session")
def web_password() -> str:
    """Every test user's password."""
    return PASSWORD


@pytest.fixture(scope="session")
def web_app(web_store: Store, web_settings: Settings) -> FastAPI:
    return create_app(web_store, web_settings)


def _sign_in(app: FastAPI, username: str) -> TestClient:
    client = TestClient(app)
    answer = client.post("/api/session", json={"username": username, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    client.cookies.set("molehunt_session", body["token"])
    client.headers["X-CSRF-Token"] = body["csrf"]
    return client


@pytest.fixture(scope="session")
def sign_in(web_app: FastAPI) -> Callable[[str], TestClient]:
    """``sign_in("analyst")``: a new client signed in by cookie that sends the CSRF
    header (``client.headers["X-CSRF-Token"]``) on every request; its token is
    ``client.cookies["molehunt_session"]``. The caller closes it."""
    return lambda username: _sign_in(web_app, username)


@pytest.fixture
def app_client(web_app: FastAPI, web_store: Store) -> Iterator[Callable[[str], TestClient]]:
    """``app_client("investigator")``: a client signed in as that user (a role name
    signs in as the team-red user of that role; ``blue-investigator`` for team blue),
    closed after the test."""
    ensure_users(web_store)
    made: list[TestClient] = []

    def make(username: str) -> TestClient:
        client = _sign_in(web_app, username)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def live_server(web_app: FastAPI) -> Iterator[str]:
    """The app under uvicorn in a background thread; yields its base URL."""
    port = _free_port()
    config = uvicorn.Config(web_app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="molehunt-live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the live server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
