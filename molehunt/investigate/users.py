"""Web users and their sessions: argon2id passwords, tokens stored only as SHA-256.

A library over the store (no web framework here), used by the web app and the
``molehunt user`` verbs. A session token is handed to the browser (cookie) or
API client (bearer) once; the store keeps its SHA-256, so a copy of the store
file signs nobody in.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from molehunt.errors import Conflict, InvalidInput, NotFound
from molehunt.models import User as User  # re-exported: users.User
from molehunt.store import Store

ROLES = ("analyst", "investigator", "auditor", "admin")
SESSION_TTL = timedelta(hours=8)

_hasher = PasswordHasher()  # argon2id with the library's current recommended cost
# Unknown users are checked against this, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


#: At most this many argon2 checks at once: each takes a core for a tenth of a second,
#: and a flood of sign-ins must leave the other requests some CPU (readers never wait
#: for a check; only sign-ins queue here).
_CHECKS = threading.BoundedSemaphore(2)


class UserError(InvalidInput):
    """A user cannot be added or changed as asked."""


class UnknownUserError(NotFound, UserError):
    """No user of that name."""


class UserExistsError(Conflict, UserError):
    """The user name is taken."""


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}; one of: {', '.join(ROLES)}")


#: Names the audit trail already uses for someone else: an unsigned request
#: (``anonymous``), the system's own rows, and operating-system users (the actor of
#: every CLI row, see :func:`molehunt.audit.actor`) are added by :func:`reserved_names`.
RESERVED = frozenset({"anonymous", "root", "system", "unknown", "nobody", "daemon"})


def reserved_names() -> frozenset[str]:
    """User names a web user may not take: :data:`RESERVED`, this machine's
    operating-system users and the one running molehunt."""
    import getpass
    import pwd
    from contextlib import suppress

    names = set(RESERVED)
    with suppress(OSError):  # no user database
        names.update(p.pw_name for p in pwd.getpwall())
    with suppress(KeyError, OSError):  # a bare container
        names.add(getpass.getuser())
    return frozenset(n.casefold() for n in names)


def _check_name(username: str, team: str) -> None:
    if not username or len(username) > 64 or not username.isprintable() or " " in username:
        raise UserError("a user name is 1 to 64 printable characters without spaces")
    if not team or len(team) > 64 or not team.isprintable():
        raise UserError("a team is 1 to 64 printable characters")


def _user(row: tuple[object, ...]) -> User:
    username, role, team, disabled, created_at = row
    assert isinstance(created_at, datetime)
    return User(str(username), str(role), str(team), bool(disabled), created_at)


_COLUMNS = "username, role, team, disabled, created_at"


def get_user(store: Store, username: str) -> User | None:
    rows = store.con.execute(
        f"SELECT {_COLUMNS} FROM web_users WHERE username = ?", [username]
    ).fetchall()
    return _user(rows[0]) if rows else None


def add_user(store: Store, username: str, password: str, role: str, team: str) -> User:
    """Add a user; the password is kept only as an argon2id hash."""
    _check_role(role)
    _check_name(username, team)
    if len(password) < 8:
        raise UserError("a password has at least 8 characters")
    if username.casefold() in reserved_names():
        raise UserError(
            f"{username!r} is reserved: the audit trail uses it for anonymous requests, "
            "the system or an operating-system user; choose another name"
        )
    if get_user(store, username) is not None:
        raise UserExistsError(f"user {username!r} exists")
    now = datetime.now(UTC)
    with store.transaction() as con:
        con.execute(
            "INSERT INTO web_users VALUES (?, ?, ?, ?, false, ?)",
            [username, role, team, _hasher.hash(password), now],
        )
    user = get_user(store, username)
    assert user is not None
    return user


def set_user(
    store: Store,
    username: str,
    *,
    role: str | None = None,
    team: str | None = None,
    disabled: bool | None = None,
) -> User:
    """Change a user's role, team or disabled flag; disabling ends their sessions."""
    user = get_user(store, username)
    if user is None:
        raise UnknownUserError(f"no user {username!r}")
    if role is not None:
        _check_role(role)
    if team is not None:
        _check_name(username, team)
    with store.transaction() as con:
        con.execute(
            "UPDATE web_users SET role = coalesce(?, role), team = coalesce(?, team), "
            "disabled = coalesce(?, disabled) WHERE username = ?",
            [role, team, disabled, username],
        )
        if disabled or (role is not None and role != user.role):
            # A changed role must not ride on a session granted under the old one.
            con.execute("DELETE FROM web_sessions WHERE username = ?", [username])
    changed = get_user(store, username)
    assert changed is not None
    return changed


def set_password(store: Store, username: str, password: str) -> User:
    """A new password; the user's sessions end."""
    user = get_user(store, username)
    if user is None:
        raise UnknownUserError(f"no user {username!r}")
    if len(password) < 8:
        raise UserError("a password has at least 8 characters")
    with store.transaction() as con:
        con.execute(
            "UPDATE web_users SET password_hash = ? WHERE username = ?",
            [_hasher.hash(password), username],
        )
        con.execute("DELETE FROM web_sessions WHERE username = ?", [username])
    return user


def disable_user(store: Store, username: str) -> User:
    return set_user(store, username, disabled=True)


def list_users(store: Store) -> list[User]:
    rows = store.con.execute(f"SELECT {_COLUMNS} FROM web_users ORDER BY username").fetchall()
    return [_user(r) for r in rows]


def check_password(store: Store, username: str, password: str) -> User | None:
    """The user when the password is theirs and they are enabled; else None."""
    rows = store.con.execute(
        "SELECT password_hash FROM web_users WHERE username = ?", [username]
    ).fetchall()
    stored = str(rows[0][0]) if rows else _DUMMY_HASH
    try:
        with _CHECKS:
            _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if not rows:
        return None
    user = get_user(store, username)
    if user is None or user.disabled:
        return None
    return user


def new_session(
    store: Store, user: User, ttl: timedelta = SESSION_TTL, *, now: datetime | None = None
) -> tuple[str, str]:
    """A fresh (token, csrf) pair; only the token's SHA-256 is stored."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    start = (now or datetime.now(UTC)).astimezone(UTC)
    with store.transaction() as con:
        con.execute("DELETE FROM web_sessions WHERE expires_at <= ?", [start])
        con.execute(
            "INSERT INTO web_sessions VALUES (?, ?, ?, ?, ?)",
            [_token_hash(token), user.username, csrf, start, start + ttl],
        )
    return token, csrf


def session_user(
    store: Store, token: str, *, now: datetime | None = None
) -> tuple[User, str] | None:
    """(user, csrf) of a live session of an enabled user; None otherwise."""
    when = (now or datetime.now(UTC)).astimezone(UTC)
    rows = store.con.execute(
        f"SELECT {', '.join('u.' + c.strip() for c in _COLUMNS.split(','))}, s.csrf "
        "FROM web_sessions s JOIN web_users u USING (username) "
        "WHERE s.token_hash = ? AND s.expires_at > ? AND NOT u.disabled",
        [_token_hash(token), when],
    ).fetchall()
    if not rows:
        return None
    return _user(rows[0][:5]), str(rows[0][5])


def end_session(store: Store, token: str) -> bool:
    """Sign out: the token no longer works. True when there was such a session."""
    digest = _token_hash(token)
    with store.transaction() as con:
        found = con.execute(
            "SELECT count(*) FROM web_sessions WHERE token_hash = ?", [digest]
        ).fetchall()
        con.execute("DELETE FROM web_sessions WHERE token_hash = ?", [digest])
    return bool(found[0][0])


# -- lockouts ------------------------------------------------------------------------


def lock_user(store: Store, username: str, failures: int) -> bool:
    """Lock ``username`` out after ``failures`` wrong passwords in a row (kept across
    restarts); True when there is such a user and they were not locked yet."""
    if get_user(store, username) is None or is_locked(store, username):
        return False
    with store.transaction() as con:
        con.execute(
            "INSERT INTO web_lockouts VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            [username, failures, datetime.now(UTC)],
        )
    return True


def is_locked(store: Store, username: str) -> bool:
    rows = store.con.execute(
        "SELECT count(*) FROM web_lockouts WHERE username = ?", [username]
    ).fetchall()
    return bool(rows[0][0])


def locked_users(store: Store) -> dict[str, datetime]:
    """Locked-out users and since when."""
    rows = store.con.execute("SELECT username, locked_at FROM web_lockouts").fetchall()
    return {str(name): when for name, when in rows}


def unlock_user(store: Store, username: str) -> bool:
    """Lift a lockout (an admin's action); True when the user was locked."""
    if get_user(store, username) is None:
        raise UnknownUserError(f"no user {username!r}")
    with store.transaction() as con:
        found = con.execute(
            "SELECT count(*) FROM web_lockouts WHERE username = ?", [username]
        ).fetchall()
        con.execute("DELETE FROM web_lockouts WHERE username = ?", [username])
    return bool(found[0][0])
