"""``POST /local/cli``: the command line's read verbs, for loopback clients holding the
token ``serve`` wrote beside the store (the whole path, with a real server process,
is in tests/test_serve_reads.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from molehunt import audit
from molehunt.investigate.local import PATH, TOKEN_HEADER
from molehunt.store import Store

TOKEN = "a-token-for-this-test"


@pytest.fixture
def local(web_app: FastAPI) -> Iterator[TestClient]:
    """A client on the loopback address, while the app has a token."""
    web_app.state.local_token = TOKEN
    try:
        with TestClient(web_app, client=("127.0.0.1", 40000)) as client:
            yield client
    finally:
        web_app.state.local_token = None


def _ask(client: TestClient, token: str, **body: Any) -> Any:
    return client.post(PATH, json=body, headers={TOKEN_HEADER: token})


def test_the_right_token_runs_a_read_verb_audited_as_the_cli_user(
    local: TestClient, web_store: Store
) -> None:
    answer = _ask(local, TOKEN, verb="timeline", ask={"person": "E001"}, user="ops")
    assert answer.status_code == 200, answer.text
    assert {e["detector"] for e in answer.json()["answer"]} >= {"departed_account"}
    last = audit.entries(web_store, 1)[0]
    assert (last["actor"], last["action"], last["target"]) == ("cli:ops", "timeline", "E001")


def test_a_wrong_token_is_a_403_with_an_audit_row(local: TestClient, web_store: Store) -> None:
    answer = _ask(local, TOKEN[:-1] + "x", verb="risk", ask={}, user="ops")
    assert answer.status_code == 403
    last = audit.entries(web_store, 1)[0]
    assert (last["actor"], last["action"]) == ("anonymous", "refused")
    assert "wrong token" in last["target"]


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"verb": "detect", "ask": {}}, "not a read verb"),
        ({"verb": "init", "ask": {}}, "not a read verb"),
        ({"verb": "risk", "ask": {"top": 0}}, "invalid ask"),
        ({"verb": "risk", "ask": {"sql": "DROP TABLE audit_log"}}, "invalid ask"),
    ],
)
def test_only_allow_listed_reads_with_checked_asks(
    local: TestClient, body: dict[str, Any], why: str
) -> None:
    answer = _ask(local, TOKEN, **body, user="ops")
    assert answer.status_code == 400
    assert why in answer.json()["detail"]


def test_not_for_other_addresses_nor_sessions(
    web_app: FastAPI, app_client: Callable[[str], TestClient]
) -> None:
    web_app.state.local_token = TOKEN
    try:
        for client in (TestClient(web_app), app_client("admin"), app_client("investigator")):
            answer = _ask(client, TOKEN, verb="risk", ask={}, user="ops")
            assert answer.status_code == 404
    finally:
        web_app.state.local_token = None


def test_no_token_no_endpoint(web_app: FastAPI) -> None:
    """An app that ``serve`` did not start (no endpoint file) answers nothing there."""
    with TestClient(web_app, client=("127.0.0.1", 40000)) as client:
        assert _ask(client, "", verb="risk", ask={}, user="ops").status_code == 404


def test_a_refusal_of_the_service_is_a_400_with_one_audit_row(
    local: TestClient, web_store: Store
) -> None:
    """The service checks and audits the ask (here: two of ip, account, host); the
    endpoint adds no second row."""
    before = len(audit.entries(web_store))
    ask = {"at": "2026-05-06T10:00:00+08:00", "ip": "10.0.1.1", "account": "li.na"}
    answer = _ask(local, TOKEN, verb="who", ask=ask, user="ops")
    assert answer.status_code == 400
    assert "exactly one of ip, account, host" in answer.json()["detail"]
    rows = audit.entries(web_store)
    assert len(rows) == before + 1
    assert (rows[0]["actor"], rows[0]["action"]) == ("cli:ops", "refused")
