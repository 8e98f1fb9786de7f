"""Dashboard imports over HTTP: grid polygons (planner) and a household ledger (admin); bad
files are reported with the file name and leave the project unchanged; roles enforced."""
import base64
import io
import json
import shutil

import pandas as pd
import pytest

from app import create_app
from callbacks import ids
from data.gpkg_store import GpkgStore
from minsheng.cli import main
from minsheng.settings import Settings, sample_path
from tests.dash_client import call, post
from tests.test_app import params
from tests import auth_client

PASSWORD = "correct horse 9"


@pytest.fixture
def setup(tmp_path, monkeypatch):
    path = tmp_path / "p.gpkg"
    shutil.copyfile(sample_path(), path)
    for user, role in (("plan", "planner"), ("admin", "admin"), ("view", "viewer")):
        monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
        assert main(["users", "add", "--data", str(path), "--username", user, "--role", role, "--password-stdin"]) == 0
    return create_app(Settings(data=str(path), secret_key="z" * 32)), path


def login(app, user):
    c = app.server.test_client()
    assert auth_client.login(c, user, PASSWORD)[1].status_code == 302
    return c


def data_url(content: bytes, mime="application/octet-stream") -> str:
    return f"data:{mime};base64," + base64.b64encode(content).decode()


def upload_grids(app, client, filename, content, datum="auto", allow_empty=(), lang="zh"):
    dup = next(k.split("plan.options@")[1].split(".")[0] for k in list(app.callback_map)
               if "import-grids-result" in k and "plan.options@" in k)
    r = post(client, {
        "output": f"..{ids.IMPORT_GRIDS_RESULT}.children...plan.options@{dup}..",
        "outputs": [{"id": ids.IMPORT_GRIDS_RESULT, "property": "children"},
                    {"id": ids.PLAN, "property": f"options@{dup}"}],
        "inputs": [{"id": ids.UPLOAD_GRIDS, "property": "contents", "value": data_url(content)}],
        "changedPropIds": [f"{ids.UPLOAD_GRIDS}.contents"],
        "state": [{"id": ids.UPLOAD_GRIDS, "property": "filename", "value": filename},
                  {"id": ids.IMPORT_DATUM, "property": "value", "value": datum},
                  {"id": ids.IMPORT_ALLOW_EMPTY, "property": "value", "value": allow_empty},
                  {"id": ids.LANG, "property": "data", "value": lang}]})
    assert r.status_code == 200, r.data[:300]
    return json.loads(r.data)["response"]


def grids_geojson(path) -> bytes:
    b = GpkgStore(path).load()
    g = b.plan_grids(b.adopted_plan_id())
    g = g[g["level"] == 2][["id", "name", "parent_id", "geometry"]].rename(columns={"parent_id": "parent"})
    return g.to_json().encode()


def test_planner_imports_grid_polygons(setup):
    app, path = setup
    c = login(app, "plan")
    plans_before = len(GpkgStore(path).load().plans)
    res = upload_grids(app, c, "我的网格.geojson", grids_geojson(path))
    text = str(res[ids.IMPORT_GRIDS_RESULT]["children"])
    b = GpkgStore(path).load()
    assert len(b.plans) == plans_before + 1
    new = b.plans["id"].iloc[-1]
    assert b.plans["status"].iloc[-1] == "draft" and new in text
    assert any(o["value"] == new for o in res[ids.PLAN]["options"])
    # the same polygons: every building lands in the grid it had
    a_old = b.plan_assignments(b.adopted_plan_id()).set_index("building_id")["grid_id"]
    a_new = b.plan_assignments(new).set_index("building_id")["grid_id"]
    assert (a_new.reindex(a_old.index) == a_old).mean() > 0.95
    assert "import_grids" in set(b.audit_log["action"])


def test_bad_grid_file_is_named_and_changes_nothing(setup):
    app, path = setup
    c = login(app, "plan")
    before = GpkgStore(path).load()
    res = upload_grids(app, c, "坏文件.geojson", b'{"type": "FeatureCollection", "features": [{"type": "Feature"')
    text = str(res[ids.IMPORT_GRIDS_RESULT]["children"])
    assert "坏文件.geojson" in text and "导入失败" in text
    after = GpkgStore(path).load()
    assert after.plans.equals(before.plans) and len(after.grids) == len(before.grids)


def test_viewer_cannot_import(setup):
    app, path = setup
    for client in (app.server.test_client(), login(app, "view")):
        res = upload_grids(app, client, "g.geojson", grids_geojson(path))
        assert "规划员" in str(res[ids.IMPORT_GRIDS_RESULT]["children"])
        b = GpkgStore(path).load()
        assert "import-forbidden" in str(call(app, f"{ids.PANEL}.children", params(b, view="import"), client=client))
    assert len(GpkgStore(path).load().plans) == 1


def test_household_ledger_upload_admin_only(setup):
    app, path = setup
    b = GpkgStore(path).load()
    code = b.buildings["code"].iloc[5]
    ledger = ("户编号,楼栋编码,单元,房号,人数,重点人群,户主,电话\n"
              f"X1,{code},1,9101,2,空巢老人,张三,13800000001\n"
              "X2,NO-SUCH-BUILDING,1,9102,3,,李四,13800000002\n").encode("gbk")
    panel_planner = str(call(app, f"{ids.PANEL}.children", params(b, view="import"), client=login(app, "plan")))
    assert ids.UPLOAD_HOUSEHOLDS not in panel_planner  # no ledger upload offered to planners ...
    r = post(login(app, "plan"), {
        "output": f"{ids.IMPORT_HOUSEHOLDS_RESULT}.children",
        "outputs": {"id": ids.IMPORT_HOUSEHOLDS_RESULT, "property": "children"},
        "inputs": [{"id": ids.UPLOAD_HOUSEHOLDS, "property": "contents", "value": data_url(ledger)}],
        "changedPropIds": [f"{ids.UPLOAD_HOUSEHOLDS}.contents"],
        "state": [{"id": ids.UPLOAD_HOUSEHOLDS, "property": "filename", "value": "台账.csv"},
                  {"id": ids.IMPORT_REPLACE_ROOMS, "property": "value", "value": []},
                  {"id": ids.LANG, "property": "data", "value": "zh"}]})
    assert "无权限" in r.get_data(as_text=True)  # ... and refused on the server
    before = len(GpkgStore(path).load().households)
    admin = login(app, "admin")
    out = call(app, f"{ids.IMPORT_HOUSEHOLDS_RESULT}.children",
               [(ids.UPLOAD_HOUSEHOLDS, "contents", data_url(ledger))],
               state=[(ids.UPLOAD_HOUSEHOLDS, "filename", "台账.csv"), (ids.IMPORT_REPLACE_ROOMS, "value", []),
                      (ids.LANG, "data", "zh")], client=admin)
    text = str(out)
    assert "1 户匹配到楼栋" in text and "1 户未匹配楼栋" in text
    unmatched = out[-1]["props"]["children"]  # the table of unmatched rows: data row 2, with a reason
    assert len(unmatched) == 1 and unmatched[0]["props"]["children"][0]["props"]["children"] == 2
    hh = GpkgStore(path).load().households
    assert len(hh) == before + 2 and "X2" in set(hh["id"])  # merged; the unmatched row kept, not dropped
    assert pd.isna(hh.set_index("id").loc["X2", "building_id"])
    assert "张三" not in text


def _ledger_call(app, client, ledger: bytes, replace=(), lang="zh"):
    return str(call(app, f"{ids.IMPORT_HOUSEHOLDS_RESULT}.children",
                    [(ids.UPLOAD_HOUSEHOLDS, "contents", data_url(ledger))],
                    state=[(ids.UPLOAD_HOUSEHOLDS, "filename", "台账.csv"), (ids.IMPORT_REPLACE_ROOMS, "value", list(replace)),
                           (ids.LANG, "data", lang)], client=client))


def test_import_refusals_and_warnings_in_the_ui_language(setup):
    """Polygons that place no building, and a second household for an occupied room: refused in
    the UI language (nothing changed), accepted with the matching option."""
    import geopandas as gpd
    import shapely
    app, path = setup
    c = login(app, "plan")
    far = gpd.read_file(io.BytesIO(grids_geojson(path)))
    far["geometry"] = shapely.transform(far.geometry.values, lambda xy: xy + [4.0, 0.0])  # ~340 km east
    before = len(GpkgStore(path).load().plans)
    zh = str(upload_grids(app, c, "远处.geojson", far.to_json().encode())[ids.IMPORT_GRIDS_RESULT]["children"])
    assert "远处.geojson" in zh and "没有包含项目中" in zh and "导入失败" in zh and "hold none" not in zh
    en = str(upload_grids(app, c, "far.geojson", far.to_json().encode(), lang="en")[ids.IMPORT_GRIDS_RESULT]["children"])
    assert "file far.geojson" in en and "hold none of the project's" in en and "没有" not in en
    assert len(GpkgStore(path).load().plans) == before
    ok = str(upload_grids(app, c, "远处.geojson", far.to_json().encode(), allow_empty=["yes"])
             [ids.IMPORT_GRIDS_RESULT]["children"])
    assert "草案方案" in ok and len(GpkgStore(path).load().plans) == before + 1

    b = GpkgStore(path).load()
    h = b.households.dropna(subset=["building_id", "room"]).iloc[0]
    code = b.buildings.set_index("id").loc[h["building_id"], "code"]
    unit = "" if pd.isna(h["unit"]) else int(h["unit"])
    ledger = f"户 号,楼栋编码,单元,房号,人数\nNEW1,{code},{unit},{h['room']},2\n".encode()
    admin = login(app, "admin")
    n = len(b.households)
    refused = _ledger_call(app, admin, ledger)
    assert "已登记住户" in refused and "替换同一房间的已有住户" in refused and "第 1 行" in refused
    assert len(GpkgStore(path).load().households) == n
    done = _ledger_call(app, admin, ledger, replace=["yes"])
    assert "其中按房间替换 1 户" in done and "表头“户 号”" in done
    hh = GpkgStore(path).load().households.set_index("id")
    assert "NEW1" in hh.index and h["id"] not in hh.index and len(hh) == n
