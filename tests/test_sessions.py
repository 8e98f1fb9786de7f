"""Sessions, secrets and sign-in as an attacker would try them, on the GeoPackage and on PostGIS.

Each test is one finding of issue 12 (the access half) that failed before and passes now:
forged cookies, sessions surviving logout / removal / password change, no throttling,
passwords in the audit log, NUL user names, fail-open logins, open redirects, prefix-matched
open paths, the callback graph public on a closed dashboard, headers, CSRF, Secure cookies."""
import io
import os
import stat

import flask
import pytest
from flask.sessions import SecureCookieSessionInterface

from app import create_app, main as app_main
from callbacks import ids
from data import auth_store
from minsheng.cli import main
from minsheng.secret_key import InsecureSecret, key_file
from minsheng.settings import Settings
from tests.dash_client import call
from tests.auth_client import KEY, PASSWORD, csrf_of, login, logout, project_store, store_params

OLD_DEFAULT = "dev-only-change-me"


@pytest.fixture(params=store_params())
def kind(request):
    return request.param


@pytest.fixture
def proj(kind, tmp_path, request):
    return project_store(kind, tmp_path, request)


def app_for(proj, **kw):
    store, skw = proj
    return create_app(Settings(**{"secret_key": KEY, **skw, **kw}), store=store)


def signed_in(client) -> bool:
    """GET /logout shows the sign-out form to a signed-in user and sends anyone else home."""
    r = client.get("/logout")
    return r.status_code == 200 and 'id="logout-submit"' in r.get_data(as_text=True)


def forge(payload: dict, key: str) -> str:
    a = flask.Flask("forge")
    a.secret_key = key
    return SecureCookieSessionInterface().get_signing_serializer(a).dumps(payload)


def cli(argv, stdin=""):
    import sys
    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        return main(argv)
    finally:
        sys.stdin = old


def store_args(proj):
    skw = proj[1]
    return ["--dsn", skw["dsn"]] if "dsn" in skw else ["--data", skw["data"]]


def audit(proj, n=50):
    return auth_store.audit_tail(proj[0], n)


# -- 1. secrets ------------------------------------------------------------------------------
def test_refuses_default_or_short_key_when_anyone_can_sign_in(proj, kind):
    store, skw = proj   # the store has users: anyone can sign in
    for key in (OLD_DEFAULT, "short-key-123"):
        with pytest.raises(InsecureSecret):
            create_app(Settings(secret_key=key, **skw), store=store)
    if kind == "postgis":  # no key at all: several servers share the database, so one key must be set
        with pytest.raises(InsecureSecret, match="MINSHENG_SECRET_KEY"):
            create_app(Settings(**skw), store=store)


def test_app_main_exits_with_a_message(proj, capsys, monkeypatch):
    monkeypatch.setenv("MINSHENG_SECRET_KEY", OLD_DEFAULT)
    skw = proj[1]
    argv = ["--dsn", skw["dsn"]] if "dsn" in skw else ["--data", skw["data"]]
    assert app_main(argv) == 2
    assert "refusing to start" in capsys.readouterr().err


def test_generated_key_file_beside_geopackage(tmp_path):
    store, skw = project_store("gpkg", tmp_path, None)
    kf = key_file(store.path)
    assert not kf.exists()
    a = create_app(Settings(**skw), store=store)
    assert kf.exists() and stat.S_IMODE(kf.stat().st_mode) == 0o600
    key = a.server.secret_key
    assert len(key) >= 32 and key != OLD_DEFAULT and key in kf.read_text()
    assert create_app(Settings(**skw), store=store).server.secret_key == key  # kept across restarts
    os.chmod(kf, 0o644)
    with pytest.raises(InsecureSecret, match="chmod 600"):
        create_app(Settings(**skw), store=store)


def test_cookie_signed_with_old_default_key_is_never_accepted(proj):
    a = app_for(proj, secret_key="") if "data" in proj[1] else app_for(proj)  # GeoPackage: generated key
    c = a.server.test_client()
    for payload in ({"user": "admin"}, {"sid": "x" * 43, "user": "admin"}):
        c.set_cookie("session", forge(payload, OLD_DEFAULT))
        assert not signed_in(c)
        assert c.get("/export/grids.xlsx?personal=1").status_code == 403
    # even a cookie signed with the real key but holding no live session token gives nothing
    c.set_cookie("session", forge({"user": "admin", "sid": "made-up-token"}, a.server.secret_key))
    assert not signed_in(c)


# -- 2. server-side sessions -------------------------------------------------------------------
def test_captured_cookie_dies_at_logout(proj):
    a = app_for(proj)
    c, r = login(a, "admin", PASSWORD)
    assert r.status_code == 302 and signed_in(c)
    captured = c.get_cookie("session").value
    assert logout(c).status_code == 302
    thief = a.server.test_client()
    thief.set_cookie("session", captured)
    assert not signed_in(thief)
    assert auth_store.count_sessions(proj[0], "admin") == 0
    assert list(audit(proj, 1)["action"]) == ["logout"]


def test_logout_everywhere(proj):
    a = app_for(proj)
    c1, _ = login(a, "admin", PASSWORD)
    c2, _ = login(a, "admin", PASSWORD)
    v, _ = login(a, "view", PASSWORD)
    assert signed_in(c1) and signed_in(c2) and auth_store.count_sessions(proj[0], "admin") == 2
    assert logout(c1, everywhere=True).status_code == 302
    assert not signed_in(c1) and not signed_in(c2)
    assert signed_in(v)  # other users keep theirs


def test_user_removal_ends_sessions_on_the_running_server(proj):
    a = app_for(proj)
    c, _ = login(a, "view", PASSWORD)
    assert signed_in(c)
    assert cli(["users", "remove", *store_args(proj), "--username", "view"]) == 0
    assert not signed_in(c)
    assert login(a, "view", PASSWORD)[1].status_code == 401
    assert auth_store.get_user(proj[0], "view") is None
    assert list(audit(proj, 2)["action"])[1] == "user_removed"


def test_password_change_ends_sessions(proj):
    a = app_for(proj)
    c, _ = login(a, "view", PASSWORD)
    assert signed_in(c)
    assert cli(["users", "passwd", *store_args(proj), "--username", "view", "--password-stdin"],
               "another good password\n") == 0
    assert not signed_in(c)
    assert login(a, "view", PASSWORD)[1].status_code == 401
    assert login(a, "view", "another good password")[1].status_code == 302
    assert cli(["users", "passwd", *store_args(proj), "--username", "nobody", "--password-stdin"], "x" * 9) == 2


def test_idle_and_absolute_timeouts(proj):
    store = proj[0]
    t0 = 1_000_000.0
    kw = {"idle_s": 600, "absolute_s": 3600}
    auth_store.create_session(store, "view", "tok-idle", now=t0)
    assert auth_store.session_user(store, "tok-idle", now=t0 + 599, **kw)["username"] == "view"  # touched
    assert auth_store.session_user(store, "tok-idle", now=t0 + 599 + 599, **kw) is not None
    assert auth_store.session_user(store, "tok-idle", now=t0 + 599 + 599 + 601, **kw) is None   # idle too long
    assert auth_store.session_user(store, "tok-idle", now=t0 + 1200, **kw) is None   # and it was deleted
    auth_store.create_session(store, "view", "tok-abs", now=t0)
    now = t0
    while now + 500 < t0 + 3600:
        now += 500
        assert auth_store.session_user(store, "tok-abs", now=now, **kw) is not None
    assert auth_store.session_user(store, "tok-abs", now=t0 + 3601, **kw) is None  # absolute limit, though active
    assert auth_store.count_sessions(store, "view") == 0


def test_only_a_hash_of_the_token_is_stored(proj):
    a = app_for(proj)
    c, _ = login(a, "view", PASSWORD)
    session = SecureCookieSessionInterface().get_signing_serializer(a.server).loads(c.get_cookie("session").value)
    token = session["sid"]
    store = proj[0]
    with auth_store._read(store) as x:
        rows = x.q("SELECT token_hash FROM sessions").fetchall()
    assert [r[0] for r in rows] == [auth_store.token_hash(token)] and token not in str(rows)


# -- 2. throttling and the failed-login audit rows ---------------------------------------------
def test_account_locked_after_five_failures(proj):
    a = app_for(proj)
    for _ in range(5):
        assert login(a, "admin", "wrong password")[1].status_code == 401
    c, r = login(a, "admin", PASSWORD)   # the right password, but locked now
    assert r.status_code == 429 and "分钟后再试" in r.get_data(as_text=True) and not signed_in(c)
    r = login(a, "admin", PASSWORD, query="?lang=en")[1]
    assert r.status_code == 429 and "try again in 15 minutes" in r.get_data(as_text=True)
    assert login(a, "view", PASSWORD)[1].status_code == 302  # another account from the same address is fine
    actions = list(audit(proj, 4)["action"])
    assert actions[:3] == ["login", "login_throttled", "login_throttled"]


def test_address_locked_after_many_failures(proj):
    a = app_for(proj)
    here = a.server.test_client()
    here.environ_base["REMOTE_ADDR"] = "10.0.0.7"
    for i in range(20):
        assert login(here, f"guess{i}", "whatever1")[1].status_code == 401
    assert login(here, "view", PASSWORD)[1].status_code == 429
    there = a.server.test_client()
    there.environ_base["REMOTE_ADDR"] = "10.0.0.8"
    assert login(there, "view", PASSWORD)[1].status_code == 302


def test_address_behind_a_trusted_proxy(tmp_path):
    a = app_for(project_store("gpkg", tmp_path, None), trusted_proxies=1)
    here = a.server.test_client()
    here.environ_base["HTTP_X_FORWARDED_FOR"] = "203.0.113.5"
    for i in range(20):
        assert login(here, f"guess{i}", "whatever1")[1].status_code == 401
    assert login(here, "view", PASSWORD)[1].status_code == 429
    there = a.server.test_client()   # same proxy (127.0.0.1), another browser behind it
    there.environ_base["HTTP_X_FORWARDED_FOR"] = "203.0.113.6"
    assert login(there, "view", PASSWORD)[1].status_code == 302


def test_failed_login_rows_hold_no_typed_password(proj):
    a = app_for(proj)
    typed = {"correct horse 9": auth_store.INVALID_USER,   # a password typed into the user box
             "Tr0ub4dor": auth_store.UNKNOWN_USER,          # well-formed, but no such account
             "admin": "admin"}
    for name, expected in typed.items():
        assert login(a, name, "wrong password")[1].status_code in (400, 401)
        row = audit(proj, 1).iloc[0]
        assert (row["user"], row["action"]) == (expected, "login_failed"), name
    text = audit(proj, 10).to_string()
    assert "correct horse" not in text and "Tr0ub4dor" not in text and "wrong password" not in text


@pytest.mark.parametrize("name", ["ad\x00min", "a" * 5000, "admin\n", "<script>"])
def test_malformed_user_names_get_a_clear_answer_and_a_row(proj, name):
    a = app_for(proj)
    before = len(audit(proj, 1000))
    r = login(a, name, PASSWORD)[1]
    assert r.status_code == 400 and "用户名无效" in r.get_data(as_text=True)
    log = audit(proj, 1000)
    assert len(log) == before + 1
    assert (log.iloc[0]["user"], log.iloc[0]["action"]) == (auth_store.INVALID_USER, "login_failed")


# -- 6. fail closed ----------------------------------------------------------------------------
def _break_audit_log(proj, kind):
    store = proj[0]
    if kind == "gpkg":
        import sqlite3
        with sqlite3.connect(store.path) as conn:
            conn.execute("CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log "
                         "BEGIN SELECT RAISE(ABORT, 'audit log full'); END")
    else:
        with store.connection() as conn:
            conn.execute("CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS "
                         "$$BEGIN RAISE EXCEPTION 'audit log full'; END$$")
            conn.execute("CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log "
                         "FOR EACH ROW EXECUTE FUNCTION refuse_audit()")


def test_no_session_without_its_audit_row(proj, kind):
    a = app_for(proj)
    admin, r = login(a, "admin", PASSWORD)
    assert r.status_code == 302
    _break_audit_log(proj, kind)
    b = a.server.config["MINSHENG_CONTEXT"].bundle()
    grid = b.plan_grids(b.adopted_plan_id())["id"].iloc[-1]
    r = admin.get(f"/export/households/{b.adopted_plan_id()}/{grid}.csv")  # no personal data without its row
    assert r.status_code == 503 and "审计日志" in r.get_json()["error"]
    assert auth_store.count_sessions(proj[0], "admin") == 1
    c, r = login(a, "admin", PASSWORD)
    assert r.status_code == 503 and "审计日志" in r.get_data(as_text=True)
    assert auth_store.count_sessions(proj[0], "admin") == 1   # only the earlier one
    assert not signed_in(c)
    assert c.get("/export/grids.xlsx?personal=1").status_code == 403   # refused, though not recorded
    b = a.server.config["MINSHENG_CONTEXT"].bundle()
    grid = b.plan_grids(b.adopted_plan_id())["id"].iloc[-1]
    assert c.get(f"/export/households/{b.adopted_plan_id()}/{grid}.csv").status_code == 403


def test_a_login_reads_no_dataset(proj, monkeypatch):
    a = app_for(proj)
    store = proj[0]
    before = len(audit(proj, 1000))

    def no_load(*a, **k):
        raise AssertionError("the dataset was loaded during sign-in")
    monkeypatch.setattr(store, "load", no_load)
    c, r = login(a, "admin", PASSWORD)
    assert r.status_code == 302
    assert len(audit(proj, 1000)) == before + 1 and auth_store.count_sessions(store, "admin") == 1


# -- 6. redirects, open paths, headers, CSRF, Secure cookies ------------------------------------
@pytest.mark.parametrize("nxt", ["/\t/evil.example", "//evil.example", "/\\evil.example", "https://evil.example",
                                 "/\n/evil.example", "/%09/evil.example", "javascript:alert(1)", " /x"])
def test_no_open_redirect(tmp_path, nxt):
    a = app_for(project_store("gpkg", tmp_path, None))
    from urllib.parse import urlencode
    r = login(a, "admin", PASSWORD, query="?" + urlencode({"next": nxt}))[1]
    assert r.status_code == 302
    loc = r.headers["Location"]
    assert loc in ("/", "/%09/evil.example"), loc   # the encoded tab stays a path on this site


def test_next_keeps_a_local_path(tmp_path):
    a = app_for(project_store("gpkg", tmp_path, None))
    r = login(a, "admin", PASSWORD, query="?next=/present%3Fslide%3D2")[1]
    assert r.headers["Location"] == "/present?slide=2"


CLOSED_PATHS = ["/", "/present", "/loginx/abc", "/login/../present", "/login/", "/logout/x", "/assets/../_dash-layout",
                "/assets/./style.css", "/assets//style.css", "/_dash-layout", "/_dash-dependencies",
                "/_dash-update-component", "/export/map.html", "/export/grids.xlsx", "/export/households/P1/x.csv",
                "/_reload-hash", "/anything"]


def test_closed_dashboard_serves_nothing_but_login_and_static(tmp_path):
    a = app_for(project_store("gpkg", tmp_path, None), require_login=True)
    anon = a.server.test_client()
    for path in CLOSED_PATHS:
        r = anon.get(path)
        assert r.status_code in (302, 401), (path, r.status_code)
        if r.status_code == 302:
            assert r.headers["Location"].startswith("/login?"), path
        assert b"_dash-config" not in r.data and b"callback" not in r.data.lower(), path
    assert anon.post("/_dash-update-component", json={}).status_code == 401
    for path in ("/login", "/assets/style.css", "/_favicon.ico"):
        assert anon.get(path).status_code == 200, path
    # every route of the app, every method it takes: nothing but the open paths answers 200
    for rule in a.server.url_map.iter_rules():
        path = str(rule.rule).replace("<path:path>", "x").replace("<plan_id>", "P1").replace("<grid_id>", "g")
        path = path.replace("<fmt>", "html").replace("<path:filename>", "style.css").replace("<string:path>", "x")
        if path in ("/login", "/logout", "/_favicon.ico") or path.startswith(("/assets/", "/_dash-component-suites/")):
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            r = anon.open(path, method=method)
            assert r.status_code in (302, 401), (method, path, r.status_code)


def test_every_callback_needs_a_session_on_a_closed_dashboard(tmp_path):
    a = app_for(project_store("gpkg", tmp_path, None), require_login=True)
    anon = a.server.test_client()
    for output in list(a.callback_map):
        body = {"output": output, "outputs": [], "inputs": [], "changedPropIds": [], "state": []}
        assert anon.post("/_dash-update-component", json=body).status_code == 401, output


def test_security_headers(tmp_path):
    a = app_for(project_store("gpkg", tmp_path, None))
    c = a.server.test_client()
    for path in ("/", "/login", "/assets/style.css", "/_dash-layout"):
        h = c.get(path).headers
        assert h["X-Frame-Options"] == "DENY" and "frame-ancestors 'none'" in h["Content-Security-Policy"], path
        assert h["X-Content-Type-Options"] == "nosniff" and h["Referrer-Policy"] == "same-origin", path
    assert c.get("/login").headers["Cache-Control"] == "no-store"
    r = login(a, "admin", PASSWORD)[1]
    assert "Secure" not in r.headers["Set-Cookie"] and "HttpOnly" in r.headers["Set-Cookie"]


def test_secure_cookie_setting(tmp_path):
    a = app_for(project_store("gpkg", tmp_path, None), secure_cookies=True)
    c = a.server.test_client()
    c.environ_base["wsgi.url_scheme"] = "https"
    token = csrf_of(c)
    r = c.post("/login", data={"username": "admin", "password": PASSWORD, "csrf": token})
    assert r.status_code == 302
    cookie = r.headers["Set-Cookie"]
    assert "Secure" in cookie and cookie.startswith("__Host-session=") and "SameSite=Lax" in cookie
    assert r.headers["Strict-Transport-Security"].startswith("max-age=")


def test_csrf_tokens_on_forms(tmp_path):
    proj = project_store("gpkg", tmp_path, None)
    a = app_for(proj)
    c = a.server.test_client()
    csrf_of(c)
    for data in ({"username": "admin", "password": PASSWORD},
                 {"username": "admin", "password": PASSWORD, "csrf": "forged" * 8}):
        r = c.post("/login", data=data)
        assert r.status_code == 400 and "表单已过期" in r.get_data(as_text=True)
        assert not signed_in(c)
    c, _ = login(a, "admin", PASSWORD)
    assert c.post("/logout", data={}).status_code == 400 and signed_in(c)     # forged sign-out refused
    r = c.post("/_dash-update-component", json={}, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403                                               # cross-site callback refused
    r = c.post("/_dash-update-component", data="{}", content_type="text/plain")
    assert r.status_code == 400                                               # a form-like body is not a callback
    page = str(call(a, f"{ids.PAGE}.children", [(ids.URL, "search", ""), (ids.URL, "pathname", "/")], client=c))
    assert "logout-form" in page and "'name': 'csrf'" in page


# -- the stores stay what they were ----------------------------------------------------------
def test_geopackage_stays_valid_with_session_tables(tmp_path):
    import sqlite3

    import pyogrio
    proj = project_store("gpkg", tmp_path, None)
    a = app_for(proj)
    assert login(a, "admin", "wrong password")[1].status_code == 401
    assert login(a, "admin", PASSWORD)[1].status_code == 302
    path = proj[0].path
    with sqlite3.connect(path) as conn:
        contents = dict(conn.execute("SELECT table_name, data_type FROM gpkg_contents").fetchall())
        assert contents["sessions"] == contents["login_failures"] == "attributes"
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA application_id").fetchone()[0] == 0x47504B47  # 'GPKG'
    layers = dict(pyogrio.list_layers(path))
    assert "sessions" in layers and "login_failures" in layers
    assert len(pyogrio.read_dataframe(path, layer="sessions", read_geometry=False)) == 1
    b = proj[0].load()   # the dataset reads as before
    assert len(b.households) == 5400 and len(b.buildings) == 239


@pytest.mark.postgis
def test_postgis_migration_4_creates_the_session_tables(tmp_path, request):
    store, _ = project_store("postgis", tmp_path, request)
    info = store.schema_info()
    assert 4 in info["migrations"]
    assert any("sessions_username" in d for d in info["indexes"].get("sessions", []))
    assert store.migrate() == []   # idempotent


def test_users_cli_list_and_bad_names(tmp_path, capsys):
    proj = project_store("gpkg", tmp_path, None)
    args = store_args(proj)
    assert cli(["users", "list", *args]) == 0
    assert capsys.readouterr().out.splitlines() == ["admin\tadmin\t", "view\tviewer\t"]
    for bad in ("has space", "x" * 65, "nul\x00", ""):
        assert cli(["users", "add", *args, "--username", bad, "--password-stdin"], PASSWORD + "\n") == 2, bad
    assert cli(["users", "remove", *args, "--username", "nobody"]) == 2
    assert cli(["users", "add", *args, "--username", "王网格", "--password-stdin"], PASSWORD + "\n") == 0
    a = app_for(proj)
    assert login(a, "王网格", PASSWORD)[1].status_code == 302   # CJK user names are user names


def test_a_job_without_a_request_finds_its_user_from_the_cookies_dash_hands_it(proj):
    """A Celery worker runs a background job with no request: the job sees the cookies of the
    request that started it (dash callback_context), and only a live server-side session makes
    it the user: after logout, or with a forged cookie, it is anonymous."""
    from dash._callback_context import context_value
    from dash._utils import AttributeDict
    from callbacks.auth import current_user
    a = app_for(proj)
    ctx = a.server.config["MINSHENG_CONTEXT"]
    c, r = login(a, "admin", PASSWORD)
    assert r.status_code == 302
    cookie = c.get_cookie("session").value

    def as_job(cookies):
        token = context_value.set(AttributeDict(cookies=cookies))
        try:
            assert not flask.has_request_context()
            return current_user(ctx)
        finally:
            context_value.reset(token)
    assert as_job({"session": cookie}).username == "admin"
    assert as_job({}).anonymous
    assert as_job({"session": forge({"sid": "made-up"}, KEY)}).anonymous
    assert as_job({"session": forge({"sid": "x"}, "another-key-0123456789abcdefghijkl")}).anonymous
    assert logout(c).status_code == 302
    assert as_job({"session": cookie}).anonymous
