"""The key that signs the session cookie (which holds only a random session token and the
login form's CSRF token; sessions themselves live in the store).

Rules (checked by create_app before anything is served):
- MINSHENG_SECRET_KEY (settings.secret_key) set: used when at least MIN_LENGTH characters and not
  a known default. A short or default key is refused whenever anyone can sign in (the store
  has users, or require_login); otherwise it is ignored and a random key used instead.
- not set, GeoPackage: a random key generated on first run and kept in ``<project>.secret-key``
  beside the project file, mode 0600 (a key file readable by others is refused).
- not set, PostGIS: refused whenever anyone can sign in (several servers share one database:
  they must share one key); otherwise a random key for this process.
The shipped default of older versions ("dev-only-change-me") is never used, so a cookie signed
with it is never accepted.
"""
from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

MIN_LENGTH = 32
KNOWN_DEFAULTS = frozenset({"dev-only-change-me", "change-me", "changeme", "secret", "dev", "test"})
SUFFIX = ".secret-key"


class InsecureSecret(RuntimeError):
    """The app must not start with this secret key (the message says what to do)."""


def key_file(project: Path) -> Path:
    project = Path(project)
    return project.with_name(project.name + SUFFIX)


def resolve(settings, *, anyone_can_sign_in: bool) -> str:
    """The secret key to sign cookies with, or InsecureSecret."""
    key = settings.secret_key or ""
    if key:
        bad = ("is a published default" if key in KNOWN_DEFAULTS else
               f"is shorter than {MIN_LENGTH} characters" if len(key) < MIN_LENGTH else "")
        if not bad:
            return key
        if anyone_can_sign_in:
            raise InsecureSecret(f"MINSHENG_SECRET_KEY {bad}; set it to a long random value, e.g. "
                                 f"python -c 'import secrets; print(secrets.token_hex(32))'")
    if settings.dsn:
        if anyone_can_sign_in:
            raise InsecureSecret("a PostGIS deployment needs MINSHENG_SECRET_KEY (the same long random value for "
                                 "every server process), e.g. python -c 'import secrets; print(secrets.token_hex(32))'")
        return secrets.token_hex(32)
    try:
        return load_or_create(key_file(settings.data_path))
    except OSError as e:
        if anyone_can_sign_in:
            raise InsecureSecret(f"cannot keep a secret key beside the project ({e.strerror}: "
                                 f"{key_file(settings.data_path)}); set MINSHENG_SECRET_KEY") from None
        return secrets.token_hex(32)


def load_or_create(path: Path) -> str:
    """Read the key file, creating it (0600, atomically: never half-written) on first use."""
    path = Path(path)
    if not path.exists():
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32) + "\n")
            try:
                os.link(tmp, path)   # fails if another process created it first: theirs wins
            except FileExistsError:
                pass
        finally:
            tmp.unlink(missing_ok=True)
    st = path.stat()
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InsecureSecret(f"{path} can be read by other users; run chmod 600 {path}")
    key = path.read_text(encoding="ascii").strip()
    if len(key) < MIN_LENGTH or key in KNOWN_DEFAULTS:
        raise InsecureSecret(f"{path} holds no usable key (at least {MIN_LENGTH} characters); delete it to "
                             f"generate a new one")
    return key
