"""Issue 12, long work: the PNG/PDF map export and the automatic grid proposal run as Dash
background callbacks (progress, cancel) like the imports; a cancelled job writes nothing and
leaves no private folder."""
import base64
import io
import json
import shutil
import time

import pytest

from app import create_app
from callbacks import ids
from data.gpkg_store import GpkgStore
from geo.codes import check_codes
from minsheng.cli import main
from minsheng.settings import Settings, sample_path
from tests import auth_client
from tests.dash_client import end_id, post

PASSWORD = "correct horse 9"


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    import tempfile
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


@pytest.fixture
def project(tmp_path, monkeypatch):
    path = tmp_path / "p.gpkg"
    shutil.copyfile(sample_path(), path)
    for user, role in (("plan", "planner"), ("view", "viewer")):
        monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
        assert main(["users", "add", "--data", str(path), "--username", user, "--role", role,
                     "--password-stdin"]) == 0
    return path


def make_app(path, tmp_path, **kw):
    return create_app(Settings(data=str(path), secret_key="z" * 32, task_dir=str(tmp_path / "jobs"), **kw))


def login(app, user):
    c = app.server.test_client()
    assert auth_client.login(c, user, PASSWORD)[1].status_code == 302
    return c


def _key(app, first_output):
    return next(k for k in list(app.callback_map) if first_output in k)


def export_payload(app, fmt, plan, relayout=None, lang="zh"):
    """fmt: png or pdf (the map; the joint-meeting pack's job is tested in test_export_routes.py)."""
    button = {"png": ids.EXPORT_PNG, "pdf": ids.EXPORT_PDF}
    return {"output": _key(app, f"{ids.EXPORT_DOWNLOAD}.data"),
            "outputs": [{"id": ids.EXPORT_DOWNLOAD, "property": "data"},
                        {"id": ids.EXPORT_MSG, "property": "children"}],
            "inputs": [{"id": b, "property": "n_clicks", "value": int(f == fmt)} for f, b in button.items()],
            "changedPropIds": [f"{button[fmt]}.n_clicks"],
            "state": [{"id": ids.PLAN, "property": "value", "value": plan},
                      {"id": ids.MAP, "property": "relayoutData", "value": relayout},
                      {"id": ids.LANG, "property": "data", "value": lang}]}


def propose_payload(app, plan, balance="households", lang="zh"):
    key = _key(app, f"{ids.PROPOSE_MSG}.children")
    dup = {p.split("@")[0]: p for p in key.strip(".").split("...")}
    return {"output": key,
            "outputs": [{"id": ids.PROPOSE_MSG, "property": "children"},
                        {"id": ids.PLAN, "property": dup["plan.options"].split(".", 1)[1]},
                        {"id": ids.PLAN, "property": dup["plan.value"].split(".", 1)[1]}],
            "inputs": [{"id": ids.BTN_PROPOSE, "property": "n_clicks", "value": 1}],
            "changedPropIds": [f"{ids.BTN_PROPOSE}.n_clicks"],
            "state": [{"id": ids.PLAN, "property": "value", "value": plan},
                      {"id": ids.PROPOSE_BALANCE, "property": "value", "value": balance},
                      {"id": ids.LANG, "property": "data", "value": lang}]}


def cancel(client, cancel_id, job):
    body = {"output": f"{cancel_id}.id", "outputs": {"id": cancel_id, "property": "id"},
            "inputs": [{"id": cancel_id, "property": "n_clicks", "value": 1}],
            "changedPropIds": [f"{cancel_id}.n_clicks"], "state": []}
    r = client.post("/_dash-update-component", json=body, query_string={"endId": end_id(client), "cancelJob": job})
    assert r.status_code in (200, 204)


def start(client, payload):
    r = client.post("/_dash-update-component", json=payload, query_string={"endId": end_id(client)})
    body = r.get_json()
    assert "cacheKey" in body and "job" in body and "response" not in body   # answered at once: a job
    return body


def poll(client, payload, body, timeout=180):
    """Poll a started job (its signed cacheKey/job) until it answers."""
    q = {"endId": end_id(client), "cacheKey": body["cacheKey"], "job": body["job"]}
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        b = client.post("/_dash-update-component", json=payload, query_string=q).get_json()
        seen += list((b.get("progress") or {}).values())
        if "response" in b:
            return b["response"], seen
        time.sleep(0.1)
    raise AssertionError("job did not finish")


def test_export_and_propose_are_background_callbacks_with_progress_and_cancel(project, tmp_path):
    app = make_app(project, tmp_path)
    for out, cancel_id in ((f"{ids.EXPORT_DOWNLOAD}.data", ids.EXPORT_CANCEL),
                           (f"{ids.PROPOSE_MSG}.children", ids.PROPOSE_CANCEL)):
        bg = app.callback_map[_key(app, out)].get("background") or {}
        assert bg.get("progress") and bg.get("cancel") == [{"id": cancel_id, "property": "n_clicks"}], out


def test_png_and_pdf_export_jobs_download_the_map(project, tmp_path, private_tmp):
    from data.exporters.image import ChromiumMissing, find_chromium
    try:
        find_chromium()
    except ChromiumMissing:
        pytest.skip("no Chromium")
    app = make_app(project, tmp_path)
    c = app.server.test_client()   # an anonymous visitor of the open dashboard, as the menu offers it
    plan = GpkgStore(project).read_model().adopted_plan_id()
    payload = export_payload(app, "png", plan)
    r, seen = poll(c, payload, start(c, payload))   # answered at once with a job, then polled
    assert set(seen) <= {"0", "1", "2", "3"}
    d = r[ids.EXPORT_DOWNLOAD]["data"]
    assert d["filename"].endswith(".png") and d["filename"].startswith("民生地图-") and d["base64"]
    assert base64.b64decode(d["content"])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "已生成" in json.dumps(r[ids.EXPORT_MSG], ensure_ascii=False)
    view = {"map._derived": {"coordinates": [[116.344, 40.004], [116.352, 40.004], [116.352, 39.998],
                                             [116.344, 39.998]]}}
    r = post(c, export_payload(app, "pdf", plan, view, lang="en")).get_json()["response"]
    d = r[ids.EXPORT_DOWNLOAD]["data"]
    assert d["filename"].startswith("Minsheng-Map-") and base64.b64decode(d["content"])[:5] == b"%PDF-"
    assert not list(private_tmp.glob("minsheng-*"))


def test_cancelled_export_job_leaves_no_folder(project, tmp_path, private_tmp, monkeypatch):
    def slow(bundle, settings, out, fmt, plan_id, **kw):
        out.write_bytes(b"half a map")
        time.sleep(120)
    monkeypatch.setattr("callbacks.exports.write_export", slow)
    app = make_app(project, tmp_path)
    c = app.server.test_client()
    job = start(c, export_payload(app, "png", None))["job"]
    deadline = time.monotonic() + 60
    while not list(private_tmp.glob("minsheng-export-*")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(list(private_tmp.glob("minsheng-export-*"))) == 1
    cancel(c, ids.EXPORT_CANCEL, job)
    assert not list(private_tmp.glob("minsheng-*"))


@pytest.mark.parametrize("kind", [pytest.param("gpkg"), pytest.param("postgis", marks=pytest.mark.postgis)])
def test_propose_job_saves_a_new_draft_with_checked_codes(kind, project, tmp_path, request):
    if kind == "gpkg":
        app = make_app(project, tmp_path, street_codes=(("学院路街道", "034"),))
        store = GpkgStore(project)
    else:   # the job is a forked process: it opens its own PostGIS connections
        from tests.auth_client import project_store
        store, kw = project_store("postgis", tmp_path, request, users=(("plan", "planner", None),
                                                                       ("view", "viewer", None)))
        app = create_app(Settings(secret_key="z" * 32, task_dir=str(tmp_path / "jobs"), **kw,
                                  street_codes=(("学院路街道", "034"),)), store=store)
    before = store.read_model()
    base = before.adopted_plan_id()
    r = post(login(app, "view"), propose_payload(app, base)).get_json()["response"]
    from minsheng.i18n import t
    assert t("planner_forbidden", "zh") in json.dumps(r, ensure_ascii=False)   # viewers are refused
    assert len(store.read_model().plans) == len(before.plans)
    c = login(app, "plan")
    r = post(c, propose_payload(app, base, balance="workload")).get_json()["response"]
    after = store.read_model()
    assert app.server.test_client().get("/healthz").status_code == 200   # the web process's connections work
    new = sorted(set(after.plans["id"]) - set(before.plans["id"]))
    assert len(new) == 1
    assert r[ids.PLAN]["value"] == new[0] and new[0] in json.dumps(r[ids.PROPOSE_MSG], ensure_ascii=False)
    assert any(o["value"] == new[0] for o in r[ids.PLAN]["options"])
    row = after.plans.set_index("id").loc[new[0]]
    assert row["status"] == "draft" and "自动划分" in row["name"]
    g = after.plan_grids(new[0])
    assert g["code"].astype(str).str[10:13].eq("034").all()     # the deployment's street code
    assert not check_codes(g["id"], g["level"], g["parent_id"], g["code"], prefix="1001110108034")
    assert after.plan_grids(base).equals(before.plan_grids(base))   # the chosen plan is unchanged


def test_cancelled_propose_job_writes_nothing(project, tmp_path, monkeypatch):
    import geo.regionalize as R
    real = R.propose_plan

    def slow(*a, **kw):
        time.sleep(120)
        return real(*a, **kw)
    monkeypatch.setattr(R, "propose_plan", slow)
    app = make_app(project, tmp_path)
    c = login(app, "plan")
    before = GpkgStore(project).read_model()
    body = start(c, propose_payload(app, before.adopted_plan_id()))
    time.sleep(2)   # the job is inside the (slow) proposal
    cancel(c, ids.PROPOSE_CANCEL, body["job"])
    time.sleep(1)
    after = GpkgStore(project).read_model()
    assert after.version == before.version and len(after.plans) == len(before.plans)
