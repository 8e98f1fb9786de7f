"""Dashboard export routes: every format, download names, the current-view bbox, personal data
only for admins (403 otherwise, audited), Chromium missing -> 503, and the header menu."""
import io
import json
import shutil
from urllib.parse import unquote

import pytest

from app import create_app
from callbacks import exports, ids
from data.gpkg_store import GpkgStore
from data.schema import ATTRIBUTION
from minsheng.auth import User
from minsheng.cli import main
from minsheng.settings import Settings, sample_path
from tests import auth_client

PASSWORD = "correct horse 9"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    path = tmp_path_factory.mktemp("exports") / "p.gpkg"
    shutil.copyfile(sample_path(), path)
    b = GpkgStore(path).load()
    g2 = b.plan_grids(b.adopted_plan_id())
    own = g2.loc[g2["level"] == 2, "id"].iloc[0]
    mp = pytest.MonkeyPatch()
    for user, role, grid in (("admin", "admin", None), ("plan", "planner", None), ("worker", "grid_worker", own),
                             ("view", "viewer", None)):
        mp.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
        argv = ["users", "add", "--data", str(path), "--username", user, "--role", role, "--password-stdin"]
        assert main(argv + (["--grid", grid] if grid else [])) == 0
    mp.undo()
    return path


@pytest.fixture(scope="module")
def app(project):
    return create_app(Settings(data=str(project), secret_key="test-secret-key-0123456789abcdefgh"))


@pytest.fixture(scope="module")
def bundle(app):
    return app.server.config["MINSHENG_CONTEXT"].bundle()


def client_for(app, user=None):
    c = app.server.test_client()
    if user:
        assert auth_client.login(c, user, PASSWORD)[1].status_code == 302
    return c


def audit(project):
    return GpkgStore(project).load().audit_log


def test_download_name_and_disposition():
    from datetime import date
    name = exports.download_name("zh", "P1", "xlsx", today=date(2026, 11, 23))
    assert name == "民生地图-P1-2026-11-23.xlsx"
    cd = exports.content_disposition(name)
    assert cd.startswith("attachment; ") and 'filename="minsheng-map-P1-2026-11-23.xlsx"' in cd
    assert unquote(cd.split("filename*=UTF-8''")[1]) == name
    assert exports.download_name("en", "P2", "gpkg", today=date(2026, 1, 2)) == "Minsheng-Map-P2-2026-01-02.gpkg"


def _filename(r) -> str:
    return unquote(r.headers["Content-Disposition"].split("filename*=UTF-8''")[1])


def test_html_offline_with_attribution(app, bundle):
    r = app.server.test_client().get("/export/map.html")
    assert r.status_code == 200 and r.mimetype == "text/html"
    text = r.get_data(as_text=True)
    assert ATTRIBUTION in text and "合成数据" in text and "L.map" in text
    for host in ("cdn.jsdelivr", "cdnjs", "unpkg.com", "code.jquery", "bootstrapcdn", "netdna"):
        assert host not in text, host
    import re
    assert not re.search(r'<script[^>]+src="https?://|<link[^>]+href="https?://', text)  # nothing fetched
    name = _filename(r)
    assert name.startswith(f"民生地图-{bundle.adopted_plan_id()}-") and name.endswith(".html")
    en = app.server.test_client().get("/export/map.html?lang=en&bbox=116.345,39.999,116.350,40.003")
    assert en.status_code == 200 and "Legend" in en.get_data(as_text=True)
    assert "116.345" in en.get_data(as_text=True)  # opens on the requested view
    assert _filename(en).startswith("Minsheng-Map-")


def test_xlsx_one_row_per_grid(app, bundle):
    import openpyxl
    r = app.server.test_client().get("/export/grids.xlsx")
    assert r.status_code == 200
    assert r.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert r.data[:2] == b"PK" and _filename(r).endswith(".xlsx")
    wb = openpyxl.load_workbook(io.BytesIO(r.data), read_only=True)
    g = bundle.plan_grids(bundle.adopted_plan_id())
    assert wb["二级网格"].max_row - 1 == int((g["level"] == 2).sum())
    assert wb["一级网格"].max_row - 1 == int((g["level"] == 1).sum())
    en = openpyxl.load_workbook(io.BytesIO(app.server.test_client().get("/export/grids.xlsx?lang=en").data),
                                read_only=True)
    assert "Level-2 grids" in en.sheetnames


def test_gpkg_and_geojson(app, bundle, tmp_path):
    import pyogrio
    r = app.server.test_client().get("/export/project.gpkg")
    assert r.status_code == 200 and r.mimetype == "application/geopackage+sqlite3"
    assert r.data[:16] == b"SQLite format 3\x00"
    f = tmp_path / "x.gpkg"
    f.write_bytes(r.data)
    layers = {row[0] for row in pyogrio.list_layers(f)}
    assert {"communities", "grids", "buildings", "service_points"} <= layers
    grids = pyogrio.read_dataframe(f, layer="grids")
    assert len(grids) == len(bundle.plan_grids(bundle.adopted_plan_id()))
    assert set(grids["head_name"].dropna()).isdisjoint(set(bundle.grids["head_name"].dropna()))  # masked
    r = app.server.test_client().get("/export/project.geojson")
    assert r.status_code == 200 and r.mimetype == "application/geo+json"
    fc = json.loads(r.data)
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == len(bundle.plan_grids(bundle.adopted_plan_id()))
    assert "grids" in _filename(r)
    r = app.server.test_client().get("/export/project.geojson?layer=buildings")
    assert len(json.loads(r.data)["features"]) == len(bundle.buildings)
    assert app.server.test_client().get("/export/project.geojson?layer=households").status_code == 400


def test_png_and_pdf(app):
    c = app.server.test_client()
    r = c.get("/export/map.png?width=800&height=600&bbox=116.344,39.998,116.352,40.004")
    assert r.status_code == 200 and r.mimetype == "image/png"
    assert r.data[:8] == b"\x89PNG\r\n\x1a\n" and len(r.data) > 20_000
    r = c.get("/export/map.pdf?width=800&height=600&lang=en")
    assert r.status_code == 200 and r.mimetype == "application/pdf" and r.data[:5] == b"%PDF-"
    assert len(r.data) > 10_000 and _filename(r).endswith(".pdf")


def test_bad_requests(app):
    c = app.server.test_client()
    assert c.get("/export/map.html?plan=NOPE").status_code == 404
    assert c.get("/export/map.html?bbox=1,2,3").status_code == 400
    assert c.get("/export/map.png?bbox=120,50,110,40").status_code == 400
    assert c.get("/export/map.svg").status_code == 404
    assert c.get("/export/project.shp").status_code == 404


def test_chromium_missing_is_503(app, monkeypatch):
    from data.exporters import image

    def missing(chromium=None):
        raise image.ChromiumMissing("no chromium here")
    monkeypatch.setattr(image, "find_chromium", missing)
    r = app.server.test_client().get("/export/map.png")
    assert r.status_code == 503
    assert "Chromium" in r.get_data(as_text=True) and "HTML" in r.get_data(as_text=True)
    r = app.server.test_client().get("/export/map.pdf?lang=en")
    assert r.status_code == 503 and "not installed" in r.get_data(as_text=True)


@pytest.mark.parametrize("user", [None, "view", "plan", "worker"])
def test_personal_refused_unless_admin(app, project, user):
    c = client_for(app, user)
    before = len(audit(project))
    for path in ("/export/grids.xlsx", "/export/project.gpkg", "/export/map.html", "/export/project.geojson"):
        r = c.get(path + "?personal=1")
        assert r.status_code == 403, (user, path)
        assert "管理员" in r.get_data(as_text=True)
    log = audit(project)
    new = log.iloc[before:]
    assert len(new) == 4 and set(new["action"]) == {"export_refused"}
    assert set(new["user"]) == {user or "anonymous"}
    assert c.get("/export/grids.xlsx").status_code == 200  # masked exports stay open


def test_admin_personal_export_is_audited(app, project, bundle):
    import openpyxl
    c = client_for(app, "admin")
    heads = set(bundle.plan_grids(bundle.adopted_plan_id())["head_name"].dropna())
    masked = openpyxl.load_workbook(io.BytesIO(c.get("/export/grids.xlsx").data), read_only=True)
    masked_text = " ".join(str(v) for row in masked["二级网格"].iter_rows(values_only=True) for v in row)
    assert not any(h in masked_text for h in heads)
    before = len(audit(project))
    r = c.get("/export/grids.xlsx?personal=1")
    assert r.status_code == 200
    wb = openpyxl.load_workbook(io.BytesIO(r.data), read_only=True)
    text = " ".join(str(v) for row in wb["二级网格"].iter_rows(values_only=True) for v in row)
    assert any(h in text for h in heads)
    log = audit(project)
    row = log.iloc[before:]
    assert len(row) == 1 and row["action"].iloc[0] == "export_personal" and row["user"].iloc[0] == "admin"
    assert row["object"].iloc[0] == bundle.adopted_plan_id() and "xlsx" in row["detail"].iloc[0]
    detail = " ".join(log["detail"].astype(str))
    assert not any(h in detail for h in heads)  # the audit log never holds the exported data


def test_login_required_guards_exports(project):
    app = create_app(Settings(data=str(project), require_login=True, secret_key="k" * 32))
    assert app.server.test_client().get("/export/grids.xlsx").status_code == 401
    assert client_for(app, "view").get("/export/grids.xlsx").status_code == 200


def test_menu_links(app):
    def hrefs(c):
        kids = getattr(c, "children", None)
        kids = kids if isinstance(kids, list) else [kids] if kids is not None and not isinstance(kids, str) else []
        return ([c.href] if getattr(c, "href", None) else []) + [h for k in kids for h in hrefs(k)]
    def ids_of(c):
        kids = getattr(c, "children", None)
        kids = kids if isinstance(kids, list) else [kids] if kids is not None and not isinstance(kids, str) else []
        own = getattr(c, "id", None)
        return ([own] if isinstance(own, str) else []) + [i for k in kids for i in ids_of(k)]
    viewer = hrefs(exports.menu("zh", User("v", "viewer")))
    assert "/present?lang=zh" in viewer
    for path in ("/export/map.html", "/export/grids.xlsx", "/export/project.gpkg", "/export/project.geojson"):
        assert any(h.startswith(path) for h in viewer), path
    # PNG/PDF: buttons starting background jobs (tests/test_background_jobs.py), not links blocking a request
    from callbacks import ids
    assert {ids.EXPORT_PNG, ids.EXPORT_PDF, ids.EXPORT_CANCEL, ids.EXPORT_DOWNLOAD} <= set(
        ids_of(exports.menu("zh", User("v", "viewer"))))
    assert not any(h.startswith("/export/map.p") for h in viewer)
    assert not any("personal=1" in h for h in viewer)
    admin = hrefs(exports.menu("en", User("a", "admin")))
    assert any("personal=1" in h for h in admin) and "/present?lang=en" in admin
    c = app.server.test_client()
    for h in viewer:
        if "/export/map.p" not in h:  # the Chromium renders are covered above
            assert c.get(h).status_code == 200, h


def test_pack_route_and_menu(app, project):
    from pptx import Presentation
    viewer = client_for(app, "view")
    r = viewer.get("/export/pack.pptx?quarter=2026Q4")
    assert r.status_code == 200 and r.mimetype.endswith("presentationml.presentation")
    assert "2026Q4" in unquote(r.headers["Content-Disposition"])
    prs = Presentation(io.BytesIO(r.data))
    assert len(prs.slides) >= 8
    store = GpkgStore(project)
    assert "2026Q4" not in store.quarter_list()  # a viewer does not freeze the quarter
    planner = client_for(app, "plan")
    assert planner.get("/export/pack.pptx?quarter=2026Q4").status_code == 200
    assert "2026Q4" in store.quarter_list()
    frozen = store.quarter_snapshots(["2026Q4"])
    assert planner.get("/export/pack.pptx?quarter=2026Q4").status_code == 200  # made again, not re-frozen
    assert store.quarter_snapshots(["2026Q4"]) == frozen
    assert viewer.get("/export/pack.pptx?quarter=26-4").status_code == 400
    assert viewer.get("/export/pack.pptx?quarter=2026Q4&personal=1").status_code == 403
    assert viewer.get("/export/pack.docx").status_code == 404
    menu = str(exports.menu("zh", User("v", "viewer")))
    assert "pack-button" in menu and "联席会议材料" in menu


# -- the dashboard's pack: a background job with progress, cancel and a download ----------------
PACK_IDS = (ids.PACK_BUTTON, ids.PACK_PROGRESS, ids.PACK_PROGRESS_LABEL, ids.PACK_CANCEL, ids.PACK_DOWNLOAD,
            ids.PACK_QUARTER, ids.PACK_FORMAT)


def _component_ids(c) -> set:
    out = set()
    i = getattr(c, "id", None)
    if i is not None:
        out.add(i if isinstance(i, str) else json.dumps(i, sort_keys=True))
    kids = getattr(c, "children", None)
    for k in (kids if isinstance(kids, (list, tuple)) else [kids]):
        if k is not None and not isinstance(k, (str, int, float)):
            out |= _component_ids(k)
    return out


def test_pack_controls_in_the_menu_for_allowed_roles_only():
    personal = json.dumps({"type": ids.PACK_PERSONAL, "key": "personal"}, sort_keys=True)
    for role in ("viewer", "grid_worker", "planner", "admin"):
        got = _component_ids(exports.menu("en", User("u", role)))
        assert set(PACK_IDS) <= got, role
        assert (personal in got) == (role == "admin"), role  # exact figures: admins only
    assert set(PACK_IDS) <= _component_ids(exports.menu("zh", None))  # an open dashboard's visitor: a viewer
    for nobody in (User("x", "nobody"), User("y", "")):   # a role without the view permission
        assert not set(PACK_IDS) & _component_ids(exports.menu("zh", nobody))
    zh, en = str(exports.menu("zh", User("p", "planner"))), str(exports.menu("en", User("p", "planner")))
    assert "取消生成" in zh and "存档" in zh and "Cancel" not in zh and "Generate" not in zh
    assert "Cancel" in en and "freezes this quarter" in en and "生成" not in en


def test_pack_is_a_background_callback_with_progress_and_cancel(app):
    spec = [v for k, v in list(app.callback_map.items()) if ids.PACK_DOWNLOAD in k]
    assert len(spec) == 1
    bg = spec[0].get("background") or {}
    assert bg.get("progress") and bg.get("cancel"), spec[0]


class FakeProgress:
    def __init__(self):
        self.calls = []

    def __call__(self, value):
        self.calls.append(tuple(value))


def test_pack_job_reports_progress_and_produces_the_file(app, project):
    import base64

    from pptx import Presentation

    from callbacks.pack_view import run_job
    ctx = app.server.config["MINSHENG_CONTEXT"]
    store = GpkgStore(project)
    assert "2027Q1" not in store.quarter_list()
    progress = FakeProgress()
    data, message = run_job(ctx, User("plan", "planner"), progress, "2027q1", "pptx", "zh", False)
    values = [int(v) for v, _ in progress.calls]
    assert len(values) > 10 and values == sorted(values) and values[0] < values[-1] == 100
    labels = [lbl for _, lbl in progress.calls]
    assert labels[0].startswith("正在整理材料：") and "PPTX" in labels[-1]
    prs = Presentation(io.BytesIO(base64.b64decode(data["content"])))
    n = len(prs.slides)
    assert labels[-1] == f"正在写入 PPTX：第 {n}/{n} 页"
    pages = [lbl for lbl in labels if "页" in lbl]
    assert len(pages) == n + 1  # page 0 of n, then every page written
    assert data["filename"] == "联席会议材料-2027Q1.pptx" and data["base64"] and "presentation" in data["type"]
    text = str(message)
    assert f"共 {n} 页" in text and "2027Q1 的数据已存档" in text
    assert store.quarter_list()[-1] == "2027Q1"  # a planner freezes the quarter
    frozen = store.quarter_snapshots(["2027Q1"])
    again = FakeProgress()
    data2, message2 = run_job(ctx, User("plan", "planner"), again, "2027Q1", "pdf", "en", False)
    assert base64.b64decode(data2["content"])[:4] == b"%PDF" and "joint-meeting-pack-2027Q1.pdf" == data2["filename"]
    assert "2027Q1 was frozen before" in str(message2) and store.quarter_snapshots(["2027Q1"]) == frozen
    assert [int(v) for v, _ in again.calls] == sorted(int(v) for v, _ in again.calls)


def test_pack_job_refusals_are_worded_and_audited(app, project):
    from callbacks.pack_view import run_job
    ctx = app.server.config["MINSHENG_CONTEXT"]
    before = len(audit(project))
    data, msg = run_job(ctx, User("view", "viewer"), FakeProgress(), "2027Q2", "pdf", "en", True)
    assert data is None and "pack-error" in str(msg)
    log = audit(project).iloc[before:]
    assert log["action"].tolist() == ["export_refused"] and log["user"].tolist() == ["view"]
    data, msg = run_job(ctx, User("view", "viewer"), FakeProgress(), "26/4", "pdf", "zh", False)
    assert data is None and "季度格式应为 2026Q4" in str(msg)
    data, msg = run_job(ctx, User("x", "nobody"), FakeProgress(), "2027Q2", "pdf", "zh", False)
    assert data is None and "无权限" in str(msg)
    assert "2027Q2" not in GpkgStore(project).quarter_list()


def test_pack_job_failure_is_a_message_not_a_traceback(app, monkeypatch, caplog):
    from callbacks.pack_view import run_job

    def broken(*a, **k):
        raise RuntimeError("secret cell value 张三")
    monkeypatch.setattr("data.exporters.pack.make_pack", broken)
    ctx = app.server.config["MINSHENG_CONTEXT"]
    data, msg = run_job(ctx, User("plan", "planner"), FakeProgress(), "2027Q3", "pptx", "zh", False)
    assert data is None and "材料生成失败" in str(msg) and "Traceback" not in str(msg)
    assert "RuntimeError" in caplog.text and "张三" not in caplog.text  # the log names the error, not its data


@pytest.mark.parametrize("kind", auth_client.store_params())
def test_pack_button_runs_as_a_job_and_answers_with_the_download(kind, tmp_path, request):
    """Through HTTP as the browser does it, on both stores: the request answers at once with a
    job handle; the job (a forked worker process of the diskcache manager, with its own store
    connections) reports progress, freezes the quarter in the store and ends with the file."""
    import base64
    import time

    from tests.dash_client import end_id
    store, kw = auth_client.project_store(kind, tmp_path, request)
    app = create_app(Settings(**kw, secret_key=auth_client.KEY, task_dir=str(tmp_path / "jobs")))

    def log_rows():
        return store.audit_rows(limit=100_000).iloc[::-1].reset_index(drop=True)  # oldest first
    c = client_for(app, "admin")
    payload = {"output": f"..{ids.PACK_DOWNLOAD}.data...{ids.PACK_RESULT}.children..",
               "outputs": [{"id": ids.PACK_DOWNLOAD, "property": "data"},
                           {"id": ids.PACK_RESULT, "property": "children"}],
               "inputs": [{"id": ids.PACK_BUTTON, "property": "n_clicks", "value": 1}],
               "changedPropIds": [f"{ids.PACK_BUTTON}.n_clicks"],
               "state": [{"id": ids.PACK_QUARTER, "property": "value", "value": "2025Q4"},
                         {"id": ids.PACK_FORMAT, "property": "value", "value": "pptx"},
                         [{"id": {"type": ids.PACK_PERSONAL, "key": "personal"}, "property": "value",
                           "value": ["yes"]}],
                         {"id": ids.LANG, "property": "data", "value": "en"}]}
    q = {"endId": end_id(c)}
    before = len(log_rows())
    first = c.post("/_dash-update-component", json=payload, query_string=q).get_json()
    assert "cacheKey" in first and "job" in first and "response" not in first
    assert first["cancel"] == [{"id": ids.PACK_CANCEL, "property": "n_clicks"}]
    q.update(cacheKey=first["cacheKey"], job=first["job"])
    answer, seen, deadline = None, [], time.monotonic() + 180
    while answer is None and time.monotonic() < deadline:
        b = c.post("/_dash-update-component", json=payload, query_string=q).get_json()
        if "progress" in b:
            seen.append((int(b["progress"][f"{ids.PACK_PROGRESS}.value"]),
                         b["progress"][f"{ids.PACK_PROGRESS_LABEL}.children"]))
        answer = b.get("response")
        time.sleep(0.05)
    assert answer is not None
    assert [v for v, _ in seen] == sorted(v for v, _ in seen) and all(0 <= v <= 100 for v, _ in seen)
    assert all(lbl.startswith(("Building the pages", "Writing the PPTX")) for _, lbl in seen)
    dl = answer[ids.PACK_DOWNLOAD]["data"]
    assert dl["filename"] == "joint-meeting-pack-2025Q4.pptx" and base64.b64decode(dl["content"])[:2] == b"PK"
    assert "Pack ready" in json.dumps(answer[ids.PACK_RESULT], ensure_ascii=False)
    log = log_rows().iloc[before:]
    assert log["action"].tolist() == ["freeze_quarter", "export_personal"]  # the personal pack is on record
    assert log["user"].tolist() == ["admin", "admin"] and "pack-pptx" in log["detail"].iloc[1]
    assert store.quarter_list() == ["2025Q4"]
    assert app.server.config["MINSHENG_CONTEXT"].store.quarter_snapshot("2025Q4")["quarter"] == "2025Q4"
    getattr(store, "close", lambda: None)()
