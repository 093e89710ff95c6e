"""Web users: argon2id hashes, refused sign-ins, sessions kept only as hashes, expiry."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from molehunt import audit
from molehunt.cli import app
from molehunt.config import Settings
from molehunt.investigate.users import (
    UserError,
    add_user,
    check_password,
    disable_user,
    end_session,
    list_users,
    new_session,
    session_user,
    set_user,
)
from molehunt.store import Store

PASSWORD = "a long enough password"


def test_passwords_are_stored_as_argon2id_hashes(store: Store) -> None:
    add_user(store, "alice", PASSWORD, "investigator", "red")
    stored = store.query("SELECT password_hash FROM web_users WHERE username = 'alice'")
    assert stored[0]["password_hash"].startswith("$argon2id$")
    assert PASSWORD not in stored[0]["password_hash"]


@pytest.mark.parametrize(
    ("username", "password", "disabled"),
    [
        ("alice", "the wrong password", False),
        ("nobody", PASSWORD, False),
        ("alice", PASSWORD, True),
    ],
    ids=["wrong password", "unknown user", "disabled user"],
)
def test_refused_sign_ins_give_none(
    store: Store, username: str, password: str, disabled: bool
) -> None:
    add_user(store, "alice", PASSWORD, "analyst", "red")
    if disabled:
        disable_user(store, "alice")
    assert check_password(store, username, password) is None


def test_the_right_password_gives_the_user(store: Store) -> None:
    add_user(store, "alice", PASSWORD, "auditor", "blue")
    user = check_password(store, "alice", PASSWORD)
    assert user is not None
    assert (user.username, user.role, user.team, user.disabled) == (
        "alice",
        "auditor",
        "blue",
        False,
    )


def test_tokens_are_stored_only_hashed(settings: Settings) -> None:
    with Store.open(settings.db) as store:
        user = add_user(store, "alice", PASSWORD, "analyst", "red")
        token, csrf = new_session(store, user)
        assert session_user(store, token) == (user, csrf)
        store.con.execute("CHECKPOINT")
    raw = Path(settings.db).read_bytes()
    assert token.encode() not in raw
    assert csrf.encode() in raw  # the CSRF token is no secret on its own: it is stored as is
    assert len(token) >= 43  # 32 random bytes


def test_sessions_expire(store: Store) -> None:
    user = add_user(store, "alice", PASSWORD, "analyst", "red")
    start = datetime(2026, 5, 1, 9, tzinfo=UTC)
    token, _ = new_session(store, user, timedelta(hours=8), now=start)
    assert session_user(store, token, now=start + timedelta(hours=7, minutes=59)) is not None
    assert session_user(store, token, now=start + timedelta(hours=8)) is None


def test_sign_out_and_disabling_end_sessions(store: Store) -> None:
    user = add_user(store, "alice", PASSWORD, "investigator", "red")
    first, _ = new_session(store, user)
    second, _ = new_session(store, user)
    assert end_session(store, first)
    assert session_user(store, first) is None
    assert session_user(store, second) is not None
    disable_user(store, "alice")
    assert session_user(store, second) is None


def test_a_changed_role_ends_sessions_granted_under_the_old_one(store: Store) -> None:
    user = add_user(store, "alice", PASSWORD, "investigator", "red")
    token, _ = new_session(store, user)
    changed = set_user(store, "alice", role="analyst", team="blue")
    assert (changed.role, changed.team) == ("analyst", "blue")
    assert session_user(store, token) is None


@pytest.mark.parametrize(
    ("username", "password", "role", "team", "message"),
    [
        ("bob", PASSWORD, "boss", "red", "unknown role"),
        ("bob", "short", "analyst", "red", "at least 8"),
        ("b o b", PASSWORD, "analyst", "red", "without spaces"),
        ("", PASSWORD, "analyst", "red", "1 to 64"),
        ("alice", PASSWORD, "analyst", "red", "exists"),
    ],
)
def test_bad_users_are_refused(
    store: Store, username: str, password: str, role: str, team: str, message: str
) -> None:
    add_user(store, "alice", PASSWORD, "analyst", "red")
    with pytest.raises(UserError, match=message):
        add_user(store, username, password, role, team)
    assert [u.username for u in list_users(store)] == ["alice"]


def test_user_verbs_of_the_command_line(settings: Settings, run: CliRunner) -> None:
    base = ["--db", str(settings.db), "--key-file", str(settings.key_file)]
    added = run.invoke(
        app,
        [*base, "user", "add", "carol", "--role", "auditor", "--team", "red", "--password-stdin"],
        input=f"{PASSWORD}\n",
    )
    assert added.exit_code == 0, added.output
    bad_role = run.invoke(
        app,
        [*base, "user", "add", "dan", "--role", "boss", "--team", "red", "--password-stdin"],
        input=f"{PASSWORD}\n",
    )
    assert bad_role.exit_code != 0
    listed = run.invoke(app, [*base, "user", "list", "--format", "json"])
    assert [(u["username"], u["role"], u["disabled"]) for u in json.loads(listed.output)] == [
        ("carol", "auditor", False)
    ]
    assert run.invoke(app, [*base, "user", "disable", "carol"]).exit_code == 0
    with Store.open(settings.db) as store:
        assert check_password(store, "carol", PASSWORD) is None
        actions = [r["action"] for r in audit.entries(store)]
    assert actions[:3] == ["user change", "users", "user add"]  # the web's rows
