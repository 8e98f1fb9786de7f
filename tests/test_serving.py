"""Issue 12, production serving: `minsheng serve` runs gunicorn (the development server only with
--dev), /healthz, and the deployment settings file (TOML)."""
import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest

from app import create_app, gunicorn_options
from minsheng.settings import Band, Settings, SettingsError, from_env, read_settings_file
from tests.browser import free_port

TOML = """
[store]
data = "{data}"
[server]
port = 9000
workers = 3
threads = 8
require_login = true
secret_file = "{secret}"
max_request_mb = 20
[bands]
level1 = [200, 600]
level2 = [50, 250]
[codes]
county = "110105"
[codes.streets]
"学院路街道" = "021"
[codes.communities]
"C1" = "007"
[walking]
speed_m_min = 75
elderly_speed_m_min = 55
[catalogues]
service_types = "service_types.csv"
"""


def test_settings_file(tmp_path, monkeypatch):
    secret = tmp_path / "secret"
    secret.write_text("s" * 40 + "\n")
    f = tmp_path / "minsheng.toml"
    f.write_text(TOML.format(data="/srv/p.gpkg", secret=secret), encoding="utf-8")
    (tmp_path / "service_types.csv").write_text("key,zh\nclinic,社区卫生站\n", encoding="utf-8")
    s = from_env(settings_file=str(f))
    assert s.data == "/srv/p.gpkg" and s.port == 9000 and s.workers == 3 and s.threads == 8 and s.require_login
    assert s.secret_key == "s" * 40 and s.max_request_mb == 20
    assert s.band(1) == Band(200, 600) and s.band(2) == Band(50, 250) and s.band(0) == Settings().band(0)
    assert s.county_code == "110105" and s.street_code_for("学院路街道") == "021" and s.street_code_for("x") == "012"
    assert s.community_code_for("C1") == "007" and s.walk_speed_m_min == 75 and s.elderly_speed_m_min == 55
    assert dict(s.catalogues) == {"service_types": str(tmp_path / "service_types.csv")}  # beside the file
    monkeypatch.setenv("MINSHENG_SETTINGS", str(f))
    monkeypatch.setenv("MINSHENG_DATA", "/other.gpkg")
    assert from_env().data == "/other.gpkg" and from_env(port=1234).port == 1234  # env, then flags win


@pytest.mark.parametrize("text,match", [
    ("[store]\nfile = 'x'", r"\[store\] file: .*unknown key"),
    ("[bands]\nlevel2 = [300, 80]", r"\[bands\] level2: .*a band is"),
    ("[bands]\nlevel3 = [1, 2]", r"\[bands\] level3: .*unknown key"),
    ("[codes.streets]\n'x' = '12'", r"codes are 3-digit"),
    ("[server]\nport = 'eighty'", r"\[server\] port: .* must be a whole number from 1 to 65535"),
    ("[codes]\nstreet = 12", r"\[codes\] street: .* must be 3 digits"),
    ("[walking]\nspeed_m_min = -80", r"\[walking\] speed_m_min: .* must be a number above 0"),
    ("[catalogues]\nservice_types = 'nope.csv'", r"\[catalogues\] service_types: .* file not found"),
    ("[catalogues]\nbuildings = 'x.csv'", r"\[catalogues\] buildings: .* unknown catalogue"),
    ("[nope]\na = 1", r"\[nope\]: .*unknown section"),
    ("[store\n", r"不是有效的 TOML / not valid TOML"),
    ("[server]\nsecret_file = '/no/such/secret'", r"secret_file /no/such/secret"),
])
def test_settings_file_errors(tmp_path, text, match):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(SettingsError, match=match):
        read_settings_file(f)


def test_healthz():
    app = create_app(Settings(secret_key="test-secret-key-0123456789abcdefgh", require_login=True))
    c = app.server.test_client()
    r = c.get("/healthz")
    assert r.status_code == 200  # no session needed, even on a closed dashboard
    body = r.get_json()
    ctx = app.server.config["MINSHENG_CONTEXT"]
    assert body["status"] == "ok" and body["dataset_version"] == ctx.store.version() and body["current"]

    def down():
        raise OSError("database is down")
    ctx.store.version = down
    r = c.get("/healthz")
    assert r.status_code == 503 and r.get_json()["status"] == "unavailable" and "down" not in r.get_data(as_text=True)


def test_gunicorn_options():
    o = gunicorn_options(Settings(workers=3, threads=6, port=8123))
    assert o["workers"] == 3 and o["threads"] == 6 and o["worker_class"] == "gthread" and o["bind"] == "127.0.0.1:8123"
    assert o["preload_app"] is False


def _serve(args, port):
    env = dict(os.environ, MINSHENG_SECRET_KEY="test-secret-key-0123456789abcdefgh")
    p = subprocess.Popen([sys.executable, "-m", "minsheng.cli", "serve", "--port", str(port), *args],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                return p, r.headers.get("Server", ""), json.loads(r.read())
        except OSError:
            if p.poll() is not None:
                break
            time.sleep(0.5)
    p.kill()
    pytest.fail("server did not answer /healthz: " + (p.stdout.read() if p.stdout else ""))


@pytest.mark.parametrize("args,server", [(["--workers", "1", "--threads", "2"], "gunicorn"), (["--dev"], "Werkzeug")])
def test_serve_runs_gunicorn_by_default(args, server):
    port = free_port()
    p, header, body = _serve(args, port)
    try:
        assert header.startswith(server) and body["status"] == "ok"
    finally:
        p.terminate()
        p.wait(30)
