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

    @property
    def personal_scope(self) -> str:
        """Whose personal data this user may see: "all" (admin), "own_grid" (a grid worker:
        the households of buildings in their grid of the ADOPTED plan, resolved on the server
        by callbacks.auth.visible_households), or "" (aggregates only)."""
        if self.can("all_personal"):
            return "all"
        return "own_grid" if self.can("own_grid_personal") and self.grid_id else ""


ANONYMOUS = User()


def adopted_plan_id(plans) -> str | None:
    """The id of the plan whose status is 'adopted' (never a fallback to a draft), or None.
    A grid worker's personal-data right follows their grid in this plan only."""
    ad = plans[plans["status"] == "adopted"]
    return str(ad["id"].iloc[0]) if len(ad) else None


def user_from_row(row: dict | None) -> User | None:
    """A User from a ``users`` row (data.auth_store.get_user / session_user)."""
    if not row:
        return None
    role = str(row.get("role") or "viewer")
    return User(str(row["username"]), role if role in ROLES else "viewer", row.get("grid_id") or None,
                str(row.get("display_name") or ""))


DUMMY_HASH = "scrypt$16384$8$1$" + "00" * 16 + "$" + "00" * 32


def authenticate(row: dict | None, password: str) -> User | None:
    """The user of ``row`` when ``password`` matches its hash; the same scrypt work is done
    whether or not the account exists (no timing hint)."""
    if not row:
        verify_password(password or "x", DUMMY_HASH)
        return None
    return user_from_row(row) if verify_password(password, row.get("password_hash")) else None
