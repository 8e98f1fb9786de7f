"""Issue 12, fail closed: malformed callback inputs, oversized bodies and odd upload names get a
clear 4xx answer in the UI language (never a 500, never a traceback)."""
import json

import pytest

from app import create_app
from callbacks import ids
from data.importers.upload import safe_name, uploaded_file
from minsheng.settings import Settings
from tests.dash_client import call
from tests.test_app import params
from tests.test_import_ui import login, setup, upload_grids  # noqa: F401  (fixture)


@pytest.fixture(scope="module")
def app():
    return create_app(Settings(secret_key="test-secret-key-0123456789abcdefgh"))


@pytest.fixture(scope="module")
def bundle(app):
    return app.server.config["MINSHENG_CONTEXT"].bundle()


def panel_error(app, bundle, lang="zh", output=ids.PANEL + ".children", focus=False, **kw):
    p = params(bundle, lang=lang, **kw) + ([(ids.FOCUS, "data", None)] if focus else [])
    r = call(app, output, p, expect=400)
    return json.loads(r.data)["error"]


@pytest.mark.parametrize("kw,zh,en", [
    ({"view": "nope"}, "未知视图", "unknown view"),
    ({"view": {"x": 1}}, "未知视图", "unknown view"),
    ({"view": "circle", "minutes": "ten"}, "步行时间（分钟）", "walking minutes"),
    ({"view": "circle", "minutes": -5}, "步行时间（分钟）", "walking minutes"),
    ({"view": "circle", "minutes": 1e9}, "步行时间（分钟）", "walking minutes"),
    ({"view": "circle", "speed": "fast"}, "步行速度", "walking speed"),
    ({"selected": {"id": "G1"}}, "网格", "grid"),
    ({"selected": ["G1"]}, "网格", "grid"),
    ({"level": "x"}, "网格级别", "grid level"),
    ({"plan": {"a": 1}}, "网格方案", "Plan"),
    ({"plan": "no-such-plan"}, "未知网格方案", "unknown plan"),
    ({"layers": [{"a": 1}]}, "选项", "selection"),
])
@pytest.mark.parametrize("output", [ids.PANEL + ".children", ids.MAP + ".figure"])
def test_malformed_callback_inputs_are_400_in_the_ui_language(app, bundle, kw, zh, en, output):
    focus = output.startswith(ids.MAP)
    msg = panel_error(app, bundle, "zh", output, focus, **kw)
    assert msg.startswith("请求无效：") and zh in msg
    msg = panel_error(app, bundle, "en", output, focus, **kw)
    assert msg.startswith("Bad request: ") and en in msg


def test_unexpected_error_is_a_generic_400(app):
    c = app.server.test_client()
    r = c.post("/_dash-update-component", data=b"{not json", content_type="application/json")
    assert r.status_code == 400 and "error" in r.get_json()
    r = c.post("/_dash-update-component", json={"output": "nope.children", "outputs": {"id": "nope", "property": "x"},
                                                "inputs": [], "changedPropIds": [], "state": []})
    assert r.status_code == 400 and "Traceback" not in r.get_data(as_text=True)


def test_request_size_limits(tmp_path):
    app = create_app(Settings(secret_key="test-secret-key-0123456789abcdefgh", max_request_mb=1, max_anonymous_request_kb=64))
    c = app.server.test_client()
    assert app.server.config["MAX_CONTENT_LENGTH"] == 2**20
    body = b'{"output": "' + b"x" * (200 * 2**10) + b'"}'
    r = c.post("/_dash-update-component", data=body, content_type="application/json")
    assert r.status_code == 413 and "64 KiB" in r.get_json()["error"] and "请求过大" in r.get_json()["error"]
    r = c.post("/_dash-update-component?lang=en", data=body, content_type="application/json")
    assert r.status_code == 413 and "too large" in r.get_json()["error"]


def test_request_size_limit_for_signed_in_users(setup):  # noqa: F811
    app, path = setup
    app.server.config["MAX_CONTENT_LENGTH"] = 2**20
    c = login(app, "plan")
    r = c.post("/_dash-update-component", data=b"x" * (2 * 2**20), content_type="application/json")
    assert r.status_code == 413 and "1 MiB" in r.get_json()["error"]


@pytest.mark.parametrize("name", ["..", ".", "../../x.geojson", "a" * 400 + ".geojson", "网格边界" * 80 + ".geojson",
                                  "C:\\Users\\x\\grids.geojson", "bad\x00name.geojson", ""])
def test_upload_names_are_sanitised(name):
    safe = safe_name(name)
    assert "/" not in safe and "\\" not in safe and not safe.startswith(".") and len(safe.encode()) <= 180
    assert safe.endswith(".geojson") or safe == "upload"
    with uploaded_file(name, b"{}") as p:
        assert p.read_bytes() == b"{}" and p.name == safe


@pytest.mark.parametrize("name", ["..", "a" * 400 + ".geojson", "网格边界" * 80 + ".geojson"])
def test_upload_with_odd_names_is_answered_not_500(setup, name):  # noqa: F811
    app, path = setup
    c = login(app, "plan")
    out = upload_grids(app, c, name, b"not a geojson file")
    text = json.dumps(out, ensure_ascii=False)
    assert "导入失败" in text or "import" in text.lower()
