"""Issue 12, output encoding: user-controlled strings are escaped in the HTML export (folium puts
tooltip properties into innerHTML) and formula-leading cells are text in the xlsx and CSV exports."""
import csv
import io

import openpyxl
import pytest

from tests.auth_client import login as auth_login

from app import create_app
from data.exporters.common import neutralise_cell, neutralise_frame
from data.exporters.excel import export_excel
from data.exporters.html import export_html
from fixtures_hostile import FORMULAS, PASSWORD, add_users, hostile_store
from minsheng.settings import Settings


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    path = tmp_path_factory.mktemp("hostile") / "h.gpkg"
    hostile_store(path)
    add_users(path)
    return path


@pytest.fixture(scope="module")
def bundle(project):
    from data.gpkg_store import GpkgStore
    return GpkgStore(project).load()


@pytest.mark.parametrize("personal", [False, True])
def test_html_export_escapes_every_user_string(bundle, tmp_path, personal):
    raw = export_html(bundle, tmp_path / "m.html", allow_personal=personal).read_text(encoding="utf-8")
    # JSON in the page may spell <, >, & as \\u003c, \\u003e, \\u0026: JavaScript reads them as the characters
    text = raw.replace("\\u003c", "<").replace("\\u003e", ">").replace("\\u0026", "&")
    assert "<img src=x" not in text and "<script>window.__xss" not in text
    assert "&lt;img src=x onerror=" in text and "&lt;script&gt;window.__xss" in text  # shown as text


def test_neutralise_cell():
    for f in FORMULAS:
        assert neutralise_cell(f) == "'" + f
    for v in ("张三", "3号楼", 5, -1.5, None, "a=b", "13812345678"):
        assert neutralise_cell(v) == v
    df = neutralise_frame(__import__("pandas").DataFrame({"a": ["=1", "x"], "n": [-1, 2]}))
    assert df["a"].tolist() == ["'=1", "x"] and df["n"].tolist() == [-1, 2]


@pytest.mark.parametrize("personal", [False, True])
def test_xlsx_export_has_no_formulas(bundle, tmp_path, personal):
    path = export_excel(bundle, tmp_path / "t.xlsx", allow_personal=personal)
    wb = openpyxl.load_workbook(path)
    seen = set()
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    seen.add(cell.value)
    assert FORMULAS[0] in seen  # the grid's name kept exactly, as text
    if personal:
        assert FORMULAS[1] in seen


def test_household_csv_cells_are_text(project):
    app = create_app(Settings(data=str(project), secret_key="test-secret-key-0123456789abcdefgh"))
    c = app.server.test_client()
    assert auth_login(c, "admin", PASSWORD)[1].status_code == 302
    r = c.get("/export/households/p1/g2-a.csv")
    assert r.status_code == 200
    rows = list(csv.reader(io.StringIO(r.data.decode("utf-8-sig"))))[1:]
    assert rows
    for row in rows:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), row
    heads = {row[6] for row in rows}
    assert heads & {"'" + f for f in FORMULAS}
    assert {row[3] for row in rows} == {"'=1+2"}


@pytest.mark.browser
def test_html_export_runs_no_script_in_a_real_browser(bundle, tmp_path):
    """Open the exported map in headless Chromium, open every tooltip: no injected script runs and
    the hostile names are shown as text."""
    from browser import chrome, quit_chrome
    path = export_html(bundle, tmp_path / "m.html", allow_personal=True)
    d = chrome(1200, 800)
    try:
        d.get(path.as_uri())
        opened = d.execute_script("""
            var n = 0, texts = [];
            Object.keys(window).filter(function (k) { return k.indexOf('map_') === 0; }).forEach(function (k) {
              window[k].eachLayer(function (g) {
                if (!(g.getTooltip && g.getTooltip() && g.eachLayer)) { return; }
                g.eachLayer(function (sub) {   // folium binds one tooltip per GeoJson layer
                  var at = sub.getBounds ? sub.getBounds().getCenter() : sub.getLatLng();
                  sub.fire('mouseover', {latlng: at}, true);   // as the mouse does: the group's tooltip opens
                  var el = g.getTooltip().getElement();
                  if (el) { texts.push(el.textContent); n++; }
                });
              });
            });
            return [n, texts.join('\\n')];""")
        import time
        time.sleep(0.5)  # let any injected <img onerror> fire (not a timed assertion)
        n, texts = opened
        assert n > 20
        assert d.execute_script("return window.__xss || 0") == 0
        assert "<img src=x onerror=" in texts and "<script>window.__xss" in texts  # visible as text
        assert not d.find_elements("css selector", ".leaflet-tooltip img, .leaflet-tooltip script")
    finally:
        quit_chrome(d)


@pytest.mark.parametrize("kind", [pytest.param("gpkg"), pytest.param("postgis", marks=pytest.mark.postgis)])
def test_ledger_formulas_stored_on_either_store_come_out_as_text(kind, tmp_path, request):
    """The finding on both stores: ledger cells such as =HYPERLINK(...) or =cmd|... stored in the
    project come out of the household CSV as text, not live formulas."""
    from tests.auth_client import KEY, PASSWORD as PW, login, project_store
    store, kw = project_store(kind, tmp_path, request)
    b = store.load()
    plan = b.adopted_plan_id()
    a = b.plan_assignments(plan)
    grid = str(a["grid_id"].iloc[0])
    blds = set(a.loc[a["grid_id"] == grid, "building_id"])
    row = b.households[b.households["building_id"].isin(blds)].head(1).copy()
    row["head_name"], row["phone"], row["room"] = FORMULAS[0], "=cmd|' /C calc'!A0", "@SUM(1+1)"
    store.upsert_households(row)
    app = create_app(Settings(secret_key=KEY, **kw), store=store)
    c = login(app, "admin", PW)[0]
    r = c.get(f"/export/households/{plan}/{grid}.csv")
    assert r.status_code == 200
    rows = list(csv.reader(io.StringIO(r.data.decode("utf-8-sig"))))[1:]
    assert rows and all(not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for x in rows for cell in x)
    mine = next(x for x in rows if x[0] == str(row["id"].iloc[0]))
    assert mine[6] == "'" + FORMULAS[0] and mine[7] == "'=cmd|' /C calc'!A0" and mine[3] == "'@SUM(1+1)"
