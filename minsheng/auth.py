"""Users, roles and what each role may see. Passwords hashed with scrypt; no I/O here.

Roles (DESIGN.md, Trust):
    viewer       aggregates only (the default for anonymous visitors of an open dashboard)
    grid_worker  aggregates + the households of their own grid (names, phones, sensitive tags)
    planner      aggregates + draft plans (edit, save, propose); no personal data
    admin        everything: personal data of every grid, users, the audit log
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

ROLES = ("viewer", "grid_worker", "planner", "admin")
PERMISSIONS = {
    "viewer": frozenset({"view"}),
    "grid_worker": frozenset({"view", "own_grid_personal"}),
    "planner": frozenset({"view", "plan"}),
    "admin": frozenset({"view", "plan", "own_grid_personal", "all_personal", "users", "audit"}),
}
_N, _R, _P = 2 ** 14, 8, 1


def hash_password(password: str, salt: bytes | None = None) -> str:
    if not password or len(password) < 8:
        raise ValueError("password must have at least 8 characters")
    salt = salt or secrets.token_bytes(16)
    dk = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${dk.hex()}"


def verify_password(password: str, stored: str | None) -> bool:
    try:
        algo, n, r, p, salt, dk = (stored or "").split("$")
        if algo != "scrypt":
            return False
        got = hashlib.scrypt((password or "").encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(bytes.fromhex(dk)))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got.hex(), dk)


@dataclass(frozen=True)
class User:
    username: str = ""
    role: str = "viewer"
    grid_id: str | None = None   # grid workers: their level-2 (or level-1) grid
    display_name: str = ""

    @property
    def anonymous(self) -> bool:
        return not self.username

    def can(self, permission: str) -> bool:
        return permission in PERMISSIONS.get(self.role, frozenset())

    def may_see_personal(self, grid_id: str | None, parents: dict | None = None) -> bool:
        """Names, phones and sensitive tags of households in grid_id (a level-2 grid)."""
        if self.can("all_personal"):
            return True
        if not (self.can("own_grid_personal") and self.grid_id and grid_id):
            return False
        if grid_id == self.grid_id:
            return True
        return bool(parents) and parents.get(grid_id) == self.grid_id  # worker of the level-1 parent


ANONYMOUS = User()


def user_from_row(row: dict | None) -> User | None:
    """A User from one ``users`` row (store.get_user), or None."""
    if not row:
        return None
    return User(str(row["username"]), str(row["role"]), row.get("grid_id") or None,
                str(row.get("display_name") or ""))


def find_user(users, username: str) -> User | None:
    """users: DataFrame (username, password_hash, role, grid_id, display_name)."""
    row = users[users["username"] == username]
    if not len(row):
        return None
    return user_from_row(row.iloc[0].to_dict())


def authenticate(row: dict | None, password: str) -> User | None:
    """Check ``password`` against one users row (store.get_user(username)); the same work
    whether or not the user exists."""
    if not row:
        verify_password(password, "scrypt$16384$8$1$00$00")
        return None
    if not verify_password(password, row.get("password_hash")):
        return None
    return user_from_row(row)
