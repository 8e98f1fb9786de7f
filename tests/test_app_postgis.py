"""The dashboard served from PostGIS: same map and panel as from the GeoPackage; saves audited there."""
import io

import pytest

from app import create_app
from callbacks import ids
from data.gpkg_store import GpkgStore
from data.postgis_store import PostgisStore
from minsheng.cli import main
from minsheng.settings import Settings, sample_path
from tests.dash_client import call
from tests.test_app import params
from tests import auth_client

pytestmark = pytest.mark.postgis


def test_dashboard_on_postgis(pg_dsn, monkeypatch):
    assert main(["load", "--data", str(sample_path()), "--dsn", pg_dsn]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse 9\n"))
    assert main(["users", "add", "--dsn", pg_dsn, "--username", "admin", "--role", "admin", "--password-stdin"]) == 0
    app = create_app(Settings(dsn=pg_dsn, require_login=True, secret_key="s" * 32))
    gp = create_app(Settings(secret_key="g" * 32))  # the working copy of the sample on GeoPackage
    from data import auth_store
    from minsheng.auth import hash_password
    gstore = gp.server.config["MINSHENG_CONTEXT"].store
    if auth_store.get_user(gstore, "admin") is None:
        auth_store.add_user(gstore, "admin", hash_password("correct horse 9"), "admin")
    c = app.server.test_client()
    assert auth_client.login(c, "admin", "correct horse 9")[1].status_code == 302
    gc = gp.server.test_client()
    assert auth_client.login(gc, "admin", "correct horse 9")[1].status_code == 302
    b = app.server.config["MINSHENG_CONTEXT"].bundle()
    assert isinstance(app.server.config["MINSHENG_CONTEXT"].store, PostgisStore)
    g = b.plan_grids(b.adopted_plan_id())
    gid = g.loc[g["level"] == 2, "id"].iloc[0]
    pg_panel = call(app, f"{ids.PANEL}.children", params(b, selected=gid), client=c)
    gp_panel = call(gp, f"{ids.PANEL}.children", params(GpkgStore(sample_path()).load(), selected=gid), client=gc)
    anon = call(gp, f"{ids.PANEL}.children", params(GpkgStore(sample_path()).load(), selected=gid))
    # the same admin panel from both stores: title, facts, key-group counts and the ledger agree
    assert pg_panel[:4] == gp_panel[:4]
    assert "住户台账" in str(pg_panel[4:]) and "住户台账" in str(gp_panel[4:])
    assert "住户台账" not in str(anon[4:])  # an anonymous visitor gets a notice instead
    fig = call(app, f"{ids.MAP}.figure", params(b) + [(ids.FOCUS, "data", None)], client=c)
    assert len(fig["data"]) > 5
    log = PostgisStore(pg_dsn).load().audit_log
    assert "login" in set(log["action"])
