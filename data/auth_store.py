"""Accounts, server-side sessions and login throttling, stored in the project's own store.

Every function takes the store object: a GpkgStore (``.path``: a GeoPackage, i.e. an SQLite
file, used through the stdlib ``sqlite3`` module with a busy timeout) or a PostgisStore
(``.connection()``: a pooled psycopg connection; tables from migration 4 "sessions" in data/migrations).
Each write is one short transaction that also writes its audit row: a session exists only
together with the audit row of its login (fail closed). Nothing here reads the dataset.

Tables (besides the contract's ``users`` and ``audit_log``):

    sessions        token_hash (SHA-256 of the random cookie token; the token itself is never
                    stored), username, created, last_seen (Unix seconds)
    login_failures  ts (Unix seconds), username (an existing account or NULL), client (address)

In a GeoPackage both are registered in gpkg_contents as data_type 'attributes' with an
``fid INTEGER PRIMARY KEY AUTOINCREMENT`` column, so the file stays a valid GeoPackage.

Usernames: 1-64 letters (any script), digits, ``_ . @ -``. Anything else (a NUL, a space, an
over-long string - typically a password typed into the user box) is never queried and never
written to the audit log: a failed login records the account name only when that account
exists, else a fixed placeholder.
"""
from __future__ import annotations

import contextlib
import hashlib
import re
import sqlite3
import time
from dataclasses import dataclass

import pandas as pd

USERNAME_RE = re.compile(r"[\w.@-]{1,64}")
UNKNOWN_USER = "(unknown user)"     # failed login for a well-formed name that is no account
INVALID_USER = "(invalid user name)"  # failed login for a malformed name (never recorded as typed)
BUSY_TIMEOUT_S = 5.0
TOUCH_EVERY_S = 60.0                 # last_seen is written at most once a minute per session
USER_COLUMNS = ("username", "password_hash", "role", "grid_id", "display_name")
AUDIT_COLUMNS = ("ts", "user", "action", "object", "detail")

GPKG_TABLES = {
    "sessions": ("CREATE TABLE IF NOT EXISTS sessions (fid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, "
                 "token_hash TEXT NOT NULL UNIQUE, username TEXT NOT NULL, created REAL NOT NULL, "
                 "last_seen REAL NOT NULL)",
                 "CREATE INDEX IF NOT EXISTS sessions_username ON sessions (username)"),
    "login_failures": ("CREATE TABLE IF NOT EXISTS login_failures (fid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, "
                       "ts REAL NOT NULL, username TEXT, client TEXT)",
                       "CREATE INDEX IF NOT EXISTS login_failures_username ON login_failures (username, ts)",
                       "CREATE INDEX IF NOT EXISTS login_failures_client ON login_failures (client, ts)"),
    "users": ('CREATE TABLE IF NOT EXISTS users (fid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, username TEXT, '
              'password_hash TEXT, role TEXT, grid_id TEXT, display_name TEXT)',),
    "audit_log": ('CREATE TABLE IF NOT EXISTS audit_log (fid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, ts TEXT, '
                  '"user" TEXT, action TEXT, object TEXT, detail TEXT)',),
}

class AuthStoreError(RuntimeError):
    """The accounts/sessions tables could not be read or written (nothing was changed)."""


class UserError(ValueError):
    """A refused account operation (unknown or existing user, malformed name)."""


@dataclass(frozen=True)
class Throttle:
    """Login throttling: `max_failures` failed sign-ins of one account (or `max_failures_client`
    from one address) within `window_s` lock further attempts for `lockout_s` after the last one."""
    max_failures: int = 5
    max_failures_client: int = 20
    window_s: float = 15 * 60
    lockout_s: float = 15 * 60

    @classmethod
    def from_settings(cls, s) -> "Throttle":
        return cls(s.login_max_failures, s.login_max_failures_client, s.login_window_minutes * 60,
                   s.login_lockout_minutes * 60)


def valid_username(name) -> bool:
    return isinstance(name, str) and USERNAME_RE.fullmatch(name) is not None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def utc_iso(now: float | None = None) -> str:
    from datetime import datetime, timezone
    return datetime.fromtimestamp(time.time() if now is None else now, timezone.utc).isoformat(
        timespec="milliseconds")


# -- backends -----------------------------------------------------------------------------
def _is_pg(store) -> bool:
    return hasattr(store, "connection") and not hasattr(store, "path")


class _Exec:
    """One connection in one transaction; SQL is written with %s placeholders."""

    def __init__(self, conn, pg: bool):
        self.conn, self.pg = conn, pg

    def q(self, sql: str, params=()):
        return self.conn.execute(sql if self.pg else sql.replace("%s", "?"), tuple(params))

    def audit(self, user, action, object, detail="", now=None):
        self.q('INSERT INTO audit_log (ts, "user", action, object, detail) VALUES (%s, %s, %s, %s, %s)',
               (utc_iso(now), str(user), str(action), str(object), "" if detail is None else str(detail)))


def _db_errors(store) -> tuple:
    if _is_pg(store):
        import psycopg
        return (psycopg.Error, ConnectionError)
    return (sqlite3.Error, OSError)


def _sqlite(store) -> sqlite3.Connection:
    path = store.path
    if not path.exists():
        raise AuthStoreError(f"{path}: file not found")
    conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    return conn


def _gpkg_writer_lock(store):
    """The GeoPackage store's writer lock (its whole-file writes must not overwrite ours)."""
    lock = getattr(store, "_lock", None)
    return lock() if callable(lock) else contextlib.nullcontext()


def _gpkg_ensure(conn) -> None:
    have = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    for name, ddl in GPKG_TABLES.items():
        if name in have:
            continue
        for stmt in ddl:
            conn.execute(stmt)
        if "gpkg_contents" in have:
            conn.execute("INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, description, "
                         "last_change, srs_id) VALUES (?, 'attributes', ?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), 0)",
                         (name, name, "Minsheng Map: " + name))


@contextlib.contextmanager
def _write(store):
    """One short write transaction (BEGIN IMMEDIATE on SQLite); AuthStoreError on failure."""
    errors = _db_errors(store)
    try:
        if _is_pg(store):
            with store.connection() as conn, conn.transaction():
                yield _Exec(conn, True)
            return
        with _gpkg_writer_lock(store):
            conn = _sqlite(store)
            try:
                conn.execute("BEGIN IMMEDIATE")
                _gpkg_ensure(conn)
                yield _Exec(conn, False)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            finally:
                conn.close()
    except errors as e:
        raise AuthStoreError(f"accounts store: {type(e).__name__}: {_first_line(e)}") from e


@contextlib.contextmanager
def _read(store):
    errors = _db_errors(store)
    try:
        if _is_pg(store):
            with store.connection() as conn:
                yield _Exec(conn, True)
            return
        conn = _sqlite(store)
        try:
            yield _Exec(conn, False)
        finally:
            conn.close()
    except errors as e:
        if not _is_pg(store) and "no such table" in str(e):
            raise _MissingTable from None
        raise AuthStoreError(f"accounts store: {type(e).__name__}: {_first_line(e)}") from e


class _MissingTable(Exception):
    """A GeoPackage without the table: nothing stored yet."""


def _first_line(e) -> str:
    s = str(e).strip()
    return s.splitlines()[0] if s else ""


def _user(row) -> dict | None:
    return dict(zip(USER_COLUMNS, row)) if row else None


# -- accounts ------------------------------------------------------------------------------
def get_user(store, username: str) -> dict | None:
    """One row of ``users`` (username, password_hash, role, grid_id, display_name), or None.
    A malformed name is never sent to the database."""
    if not valid_username(username):
        return None
    try:
        with _read(store) as x:
            return _user(x.q("SELECT username, password_hash, role, grid_id, display_name FROM users "
                             "WHERE username = %s LIMIT 1", (username,)).fetchone())
    except _MissingTable:
        return None


def list_users(store) -> list[dict]:
    """Every account without its password hash, ordered by name."""
    try:
        with _read(store) as x:
            rows = x.q("SELECT username, role, grid_id, display_name FROM users ORDER BY username").fetchall()
    except _MissingTable:
        return []
    return [dict(zip(("username", "role", "grid_id", "display_name"), r)) for r in rows]


def has_users(store) -> bool:
    try:
        with _read(store) as x:
            return x.q("SELECT 1 FROM users LIMIT 1").fetchone() is not None
    except _MissingTable:
        return False


def add_user(store, username: str, password_hash: str, role: str, grid_id: str | None = None,
             display_name: str = "", *, by: str = "cli") -> None:
    if not valid_username(username):
        raise UserError(f"user name must be 1-64 letters, digits or _ . @ - (got {len(str(username))} characters)")
    with _write(store) as x:
        if x.q("SELECT 1 FROM users WHERE username = %s", (username,)).fetchone():
            raise UserError(f"user {username!r} exists already")
        x.q("INSERT INTO users (username, password_hash, role, grid_id, display_name) VALUES (%s, %s, %s, %s, %s)",
            (username, password_hash, role, grid_id or None, display_name or ""))
        x.audit(by, "user_added", f"user:{username}", f"role={role}")


def set_password(store, username: str, password_hash: str, *, by: str = "cli") -> int:
    """New password hash; every session of the user ends in the same transaction. Returns
    the number of sessions ended."""
    with _write(store) as x:
        if not valid_username(username) or not x.q("UPDATE users SET password_hash = %s WHERE username = %s",
                                                   (password_hash, username)).rowcount:
            raise UserError(f"no user {username!r}")
        n = x.q("DELETE FROM sessions WHERE username = %s", (username,)).rowcount
        x.audit(by, "password_changed", f"user:{username}", f"sessions_ended={n}")
    return n


def remove_user(store, username: str, *, by: str = "cli") -> int:
    """Remove the account and end its sessions (one transaction). Returns sessions ended."""
    with _write(store) as x:
        if not valid_username(username) or not x.q("DELETE FROM users WHERE username = %s", (username,)).rowcount:
            raise UserError(f"no user {username!r}")
        n = x.q("DELETE FROM sessions WHERE username = %s", (username,)).rowcount
        x.q("DELETE FROM login_failures WHERE username = %s", (username,))
        x.audit(by, "user_removed", f"user:{username}", f"sessions_ended={n}")
    return n


# -- sessions ------------------------------------------------------------------------------
def create_session(store, username: str, token: str, *, detail: str = "", now: float | None = None) -> None:
    """Store a new session (hash of ``token``) and its "login" audit row in ONE transaction;
    the account's failed-login count is reset. Raises AuthStoreError (and nothing exists)
    when either write fails."""
    now = time.time() if now is None else now
    with _write(store) as x:
        x.q("INSERT INTO sessions (token_hash, username, created, last_seen) VALUES (%s, %s, %s, %s)",
            (token_hash(token), username, now, now))
        x.q("DELETE FROM login_failures WHERE username = %s", (username,))
        x.audit(username, "login", "session", detail, now)


def session_user(store, token: str, *, idle_s: float, absolute_s: float, now: float | None = None) -> dict | None:
    """The user row of a live session, or None (unknown, revoked, idle too long, too old, or
    the account is gone). Expired sessions are deleted; last_seen is refreshed at most once
    every TOUCH_EVERY_S."""
    if not token or not isinstance(token, str) or len(token) > 256:
        return None
    now = time.time() if now is None else now
    h = token_hash(token)
    try:
        with _read(store) as x:
            row = x.q("SELECT s.created, s.last_seen, u.username, u.password_hash, u.role, u.grid_id, "
                      "u.display_name FROM sessions s JOIN users u ON u.username = s.username "
                      "WHERE s.token_hash = %s LIMIT 1", (h,)).fetchone()
    except _MissingTable:
        return None
    if row is None:
        return None
    created, last_seen = float(row[0]), float(row[1])
    if now - last_seen > idle_s or now - created > absolute_s:
        delete_session(store, token)
        return None
    if now - last_seen > TOUCH_EVERY_S:
        with _write(store) as x:
            x.q("UPDATE sessions SET last_seen = %s WHERE token_hash = %s", (now, h))
    return _user(row[2:])


def delete_session(store, token: str, *, audit: tuple | None = None) -> bool:
    """End one session; ``audit`` = (user, action, object, detail) written in the same transaction."""
    with _write(store) as x:
        n = x.q("DELETE FROM sessions WHERE token_hash = %s", (token_hash(token),)).rowcount
        if audit:
            x.audit(*audit)
    return bool(n)


def delete_user_sessions(store, username: str, *, audit: tuple | None = None) -> int:
    """End every session of a user (logout everywhere); returns how many."""
    with _write(store) as x:
        n = x.q("DELETE FROM sessions WHERE username = %s", (username,)).rowcount
        if audit:
            x.audit(*audit)
    return n


def count_sessions(store, username: str) -> int:
    try:
        with _read(store) as x:
            return int(x.q("SELECT count(*) FROM sessions WHERE username = %s", (username,)).fetchone()[0])
    except _MissingTable:
        return 0


# -- login throttling ----------------------------------------------------------------------
def failed_login_name(username, account: dict | None) -> str:
    """What a failed-login audit row records: the account name when it exists, else a fixed
    placeholder (never what was typed: it may be a password typed into the user box)."""
    if account is not None:
        return account["username"]
    return UNKNOWN_USER if valid_username(username) else INVALID_USER


def record_failed_login(store, logged_name: str, account: str | None, client: str, *, throttle: Throttle,
                        action: str = "login_failed", now: float | None = None) -> None:
    """One failure row (counted for the account, if any, and the address) and its audit row,
    in one transaction; failures older than the throttle window are dropped."""
    now = time.time() if now is None else now
    with _write(store) as x:
        x.q("DELETE FROM login_failures WHERE ts < %s", (now - throttle.window_s - throttle.lockout_s,))
        x.q("INSERT INTO login_failures (ts, username, client) VALUES (%s, %s, %s)", (now, account, client))
        x.audit(logged_name, action, "session", "", now)


def record_throttled(store, logged_name: str, *, now: float | None = None) -> None:
    with _write(store) as x:
        x.audit(logged_name, "login_throttled", "session", "", now)


def locked_for(store, account: str | None, client: str, *, throttle: Throttle, now: float | None = None) -> float:
    """Seconds until the next sign-in attempt is allowed for this account and address (0: now)."""
    now = time.time() if now is None else now
    since = now - throttle.window_s - throttle.lockout_s
    wait = 0.0
    try:
        with _read(store) as x:
            checks = [("client", client, throttle.max_failures_client)]
            if account:
                checks.append(("username", account, throttle.max_failures))
            for col, value, limit in checks:
                ts = [float(r[0]) for r in x.q(
                    f"SELECT ts FROM login_failures WHERE {col} = %s AND ts > %s ORDER BY ts DESC LIMIT %s",
                    (value, since, int(limit))).fetchall()]
                if len(ts) >= limit and ts[0] - ts[-1] <= throttle.window_s:
                    wait = max(wait, ts[0] + throttle.lockout_s - now)
    except _MissingTable:
        return 0.0
    return max(wait, 0.0)


# -- audit log -----------------------------------------------------------------------------
def append_audit(store, user: str, action: str, object: str, detail: str = "", *, now: float | None = None) -> None:
    """One audit row in its own short transaction (no personal data in ``detail``)."""
    with _write(store) as x:
        x.audit(user, action, object, detail, now)


def audit_tail(store, n: int = 200) -> pd.DataFrame:
    """The newest ``n`` audit rows, newest first (the store's audit_rows: read directly, so the
    admin view sees every login and export at once)."""
    try:
        return store.audit_rows(limit=int(n))
    except _db_errors(store) as e:
        raise AuthStoreError(f"accounts store: {type(e).__name__}: {_first_line(e)}") from e
