"""Login and roles, tried against every endpoint that can show personal data (server-side)."""
import io
import shutil

import pytest

from app import create_app
from callbacks import ids
from data.auth_store import audit_tail
from data.gpkg_store import GpkgStore
from minsheng.auth import User, hash_password, verify_password
from minsheng.cli import main
from minsheng.settings import Settings, sample_path
from tests import auth_client
from tests.dash_client import call
from tests.test_app import params

PASSWORD = "correct horse 9"


def test_password_hashing():
    h = hash_password(PASSWORD)
    assert h.startswith("scrypt$") and PASSWORD not in h
    assert verify_password(PASSWORD, h) and not verify_password("wrong password", h)
    assert hash_password(PASSWORD) != h  # salted
    assert not verify_password(PASSWORD, "garbage")
    with pytest.raises(ValueError):
        hash_password("short")


@pytest.fixture(scope="module")
def project(tmp_path_factory, monkeypatch_module):
    path = tmp_path_factory.mktemp("roles") / "p.gpkg"
    shutil.copyfile(sample_path(), path)
    b = GpkgStore(path).load()
    g2 = b.plan_grids(b.adopted_plan_id())
    own, other = list(g2.loc[g2["level"] == 2, "id"][:2])
    for user, role, grid in (("admin", "admin", None), ("plan", "planner", None), ("worker", "grid_worker", own),
                             ("view", "viewer", None)):
        monkeypatch_module.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
        argv = ["users", "add", "--data", str(path), "--username", user, "--role", role, "--password-stdin"]
        assert main(argv + (["--grid", grid] if grid else [])) == 0
    return path, own, other


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.fixture(scope="module")
def app(project):
    return create_app(Settings(data=str(project[0]), secret_key="test-secret-key-0123456789abcdefgh"))


def login(app, user, password=PASSWORD):
    return auth_client.login(app, user, password)


def panel(app, client, grid):
    b = app.server.config["MINSHENG_CONTEXT"].store.load()
    return str(call(app, f"{ids.PANEL}.children", params(b, selected=grid), client=client))


def test_users_cli_refuses_bad_input(project, monkeypatch, capsys):
    path, own, _ = project
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    before = GpkgStore(path).version()
    assert main(["users", "add", "--data", str(path), "--username", "x", "--password-stdin"]) == 2
    assert main(["users", "add", "--data", str(path), "--username", "y", "--role", "grid_worker",
                 "--grid", "nope", "--password-stdin"]) == 2
    assert main(["users", "add", "--data", str(path), "--username", "admin", "--password-stdin"]) == 2
    assert "password" in capsys.readouterr().err
    assert GpkgStore(path).version() == before


def test_login_and_audit(app, project):
    c, r = login(app, "admin", "wrong password")
    assert r.status_code == 401 and "不正确" in r.get_data(as_text=True)
    c, r = login(app, "admin")
    assert r.status_code == 302
    log = audit_tail(GpkgStore(project[0]), 2).iloc[::-1]
    assert list(log["action"]) == ["login_failed", "login"]
    assert PASSWORD not in " ".join(log["detail"].astype(str))
    page = str(call(app, f"{ids.PAGE}.children", [(ids.URL, "search", ""), (ids.URL, "pathname", "/")], client=c))
    assert "管理员" in page and "退出" in page


@pytest.mark.parametrize("user,own_ok,other_ok", [
    (None, False, False), ("view", False, False), ("plan", False, False), ("worker", True, False),
    ("admin", True, True)])
def test_ledger_panel_by_role(app, project, user, own_ok, other_ok):
    _, own, other = project
    client = login(app, user)[0] if user else app.server.test_client()
    b = app.server.config["MINSHENG_CONTEXT"].store.load()
    a = b.plan_assignments(b.adopted_plan_id())
    for grid, ok in ((own, own_ok), (other, other_ok)):
        hh = b.households[b.households["building_id"].isin(a.loc[a["grid_id"] == grid, "building_id"])]
        text = panel(app, client, grid)
        names_shown = any(n in text for n in hh["head_name"].head(20))
        phones_shown = any(p in text for p in hh["phone"].head(20))
        assert names_shown == ok and phones_shown == ok, (user, grid)
        assert ("住户台账" in text) == ok


@pytest.mark.parametrize("user,own_status,other_status", [
    (None, 403, 403), ("view", 403, 403), ("plan", 403, 403), ("worker", 200, 403), ("admin", 200, 200)])
def test_ledger_export_by_role(app, project, user, own_status, other_status):
    path, own, other = project
    client = login(app, user)[0] if user else app.server.test_client()
    plan = GpkgStore(path).load().adopted_plan_id()
    for grid, status in ((own, own_status), (other, other_status)):
        r = client.get(f"/export/households/{plan}/{grid}.csv")
        assert r.status_code == status, (user, grid)
        if status == 200:
            text = r.get_data(as_text=True)
            assert "户主" in text and text.count("\n") > 5
    log = audit_tail(GpkgStore(path), 1000)
    if own_status == 200:
        assert ((log["action"] == "export_personal") & (log["user"] == user)).any()
    if 403 in (own_status, other_status):
        assert ((log["action"] == "export_refused") & (log["user"] == (user or "anonymous"))).any()


@pytest.mark.parametrize("user,allowed", [(None, False), ("view", False), ("plan", False), ("worker", False),
                                          ("admin", True)])
def test_audit_view_admin_only(app, user, allowed):
    client = login(app, user)[0] if user else app.server.test_client()
    b = app.server.config["MINSHENG_CONTEXT"].store.load()
    text = str(call(app, f"{ids.PANEL}.children", params(b, view="admin"), client=client))
    assert ("audit-table" in text) == allowed and ("无权限" in text) != allowed
    page = str(call(app, f"{ids.PAGE}.children", [(ids.URL, "search", ""), (ids.URL, "pathname", "/")], client=client))
    assert ("'value': 'admin'" in page or '"admin"' in page) == allowed


def test_require_login_guards_every_callback(project):
    app = create_app(Settings(data=str(project[0]), require_login=True, secret_key="k" * 32))
    anon = app.server.test_client()
    assert anon.get("/").status_code == 302
    b = app.server.config["MINSHENG_CONTEXT"].store.load()
    r = call(app, f"{ids.PANEL}.children", params(b), client=anon, expect=401)
    assert r.status_code == 401
    assert anon.get("/login").status_code == 200
    c, r = login(app, "view")
    assert c.get("/").status_code == 200
    assert call(app, f"{ids.PANEL}.children", params(b), client=c)


def test_user_permissions_matrix():
    assert User("w", "grid_worker", "C001-01-01").personal_scope == "own_grid"
    assert User("w", "grid_worker", None).personal_scope == ""
    assert User("p", "planner").personal_scope == "" and User("p", "planner").can("plan")
    assert User("a", "admin").personal_scope == "all" and not User().can("plan")
    assert User().personal_scope == "" and User("v", "viewer").personal_scope == ""
