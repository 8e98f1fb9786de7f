"""Sign in through the real login form (GET for the CSRF token, then POST), as a browser does."""
import re

CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(client, path="/login") -> str:
    r = client.get(path)
    m = CSRF_RE.search(r.get_data(as_text=True))
    assert m, f"no CSRF token on {path} (status {r.status_code})"
    return m.group(1)


def login(app_or_client, user, password, *, query="", client=None):
    """(client, response) after posting the login form; ``query`` e.g. "?next=/x"."""
    c = client or (app_or_client.server.test_client() if hasattr(app_or_client, "server") else app_or_client)
    token = csrf_of(c)
    r = c.post("/login" + query, data={"username": user, "password": password, "csrf": token})
    return c, r


def logout(client, everywhere=False):
    token = csrf_of(client, "/logout")
    return client.post("/logout", data={"csrf": token, **({"everywhere": "1"} if everywhere else {})})


PASSWORD = "correct horse 9"
KEY = "test-secret-key-0123456789abcdefgh"


def project_store(kind: str, tmp_path, request, users=(("admin", "admin", None), ("view", "viewer", None))):
    """(store, Settings kwargs) of a fresh copy of the shipped sample on `kind` ("gpkg" or
    "postgis"), with the given (username, role, grid) accounts (password PASSWORD).
    A grid of None for a grid_worker means the first level-2 grid of the adopted plan."""
    import shutil

    from data import auth_store
    from minsheng.auth import hash_password
    from minsheng.settings import sample_path
    if kind == "gpkg":
        from data.gpkg_store import GpkgStore
        path = tmp_path / "p.gpkg"
        shutil.copyfile(sample_path(), path)
        store, kw = GpkgStore(path), {"data": str(path)}
    else:
        from data.postgis_store import PostgisStore
        from minsheng.cli import main
        dsn = request.getfixturevalue("pg_cluster").new_database()
        assert main(["load", "--data", str(sample_path()), "--dsn", dsn]) == 0
        store, kw = PostgisStore(dsn), {"dsn": dsn}
    h = hash_password(PASSWORD)
    for name, role, grid in users:
        auth_store.add_user(store, name, h, role, grid)
    return store, kw



def store_params():
    import pytest
    return [pytest.param("gpkg"), pytest.param("postgis", marks=pytest.mark.postgis)]
