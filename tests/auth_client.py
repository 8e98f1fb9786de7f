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
