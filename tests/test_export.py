"""data/exporters: GeoPackage/GeoJSON, Excel, offline HTML, PNG/PDF; masking by default."""
import json
import re
import shutil

import geopandas as gpd
import openpyxl
import pandas as pd
import pyogrio
import pytest

from data.bundle import DataError
from data.exporters import record_export
from data.exporters import image as image_mod
from data.exporters.excel import export_excel, grid_tables
from data.exporters.gis import export_gis
from data.exporters.html import LAYER_NAMES, export_html
from data.schema import ATTRIBUTION, SYNTHETIC_NOTICE_ZH
from fixtures_io import make_store
from minsheng.cli import main
from minsheng.settings import sample_path

HAS_CHROMIUM = any(shutil.which(c) for c in image_mod.CANDIDATES)


@pytest.fixture
def store(tmp_path):
    return make_store(tmp_path)


@pytest.fixture
def bundle(store):
    return store.load()


def _has(html, text):
    """Text in the page, either as HTML or inside the layer control's JSON (\\uXXXX escapes)."""
    return text in html or json.dumps(text)[1:-1] in html


def _no_cdn(html):
    return not re.search(r'<(?:script|link)[^>]+(?:src|href)="https?://', html)


def test_html_is_offline_with_layers_legend_attribution(bundle, tmp_path):
    p = export_html(bundle, tmp_path / "map.html")
    html = p.read_text(encoding="utf-8")
    assert _no_cdn(html) and "Leaflet 1.9.4" in html and "data:image/png;base64," in html
    assert ATTRIBUTION.replace("©", "&copy;") in html or ATTRIBUTION in html
    for name in ("社区", "一级网格", "二级网格", "楼栋（按网格着色）", "服务点: 党群服务中心", "服务点: 卫生服务站", "图例"):
        assert _has(html, name), name
    assert not _has(html, "王建国") and "13812345678" not in html and _has(html, "王**")
    assert SYNTHETIC_NOTICE_ZH in html
    full = export_html(bundle, tmp_path / "full.html", allow_personal=True, lang="en").read_text(encoding="utf-8")
    assert _has(full, "王建国") and _has(full, LAYER_NAMES["en"]["level2"])


def test_html_with_online_tiles_keeps_them(bundle, tmp_path):
    html = export_html(bundle, tmp_path / "t.html", tiles="OpenStreetMap").read_text(encoding="utf-8")
    assert "tile.openstreetmap.org" in html and _no_cdn(html)


def test_excel_tables_and_masking(bundle, tmp_path):
    p = export_excel(bundle, tmp_path / "t.xlsx")
    wb = openpyxl.load_workbook(p, read_only=True)
    assert wb.sheetnames == ["说明", "社区汇总", "一级网格", "二级网格"]
    readme = "\n".join(str(c) for row in wb["说明"].iter_rows(values_only=True) for c in row if c)
    assert ATTRIBUTION in readme and SYNTHETIC_NOTICE_ZH in readme
    l2 = pd.read_excel(p, sheet_name="二级网格")
    assert len(l2) == 4 and l2["户数"].sum() == 48 and l2["楼栋数"].sum() == 16
    assert set(l2["负责人"]) == {"李**"} and "低保" not in l2.columns  # sensitive group omitted
    assert l2.set_index("编号").loc["g2-a", "上级"] == "一级g1-w"
    l1 = pd.read_excel(p, sheet_name="一级网格")
    assert len(l1) == 2 and l1["户数"].sum() == 48
    comm = pd.read_excel(p, sheet_name="社区汇总")
    assert comm["户数"].tolist() == [48] and comm["一级网格数"].tolist() == [2] and comm["二级网格数"].tolist() == [4]
    full = grid_tables(bundle, allow_personal=True, lang="en")
    assert "Low-income (dibao)" in full["Level-2 grids"].columns
    assert set(full["Level-2 grids"]["Head"]) == {"李四"}


def test_excel_counts_orphans_in_readme(store, tmp_path):
    from data.importers.households import import_households
    (tmp_path / "l.csv").write_text("户号,地址\nX1,99号楼1单元1\n", encoding="utf-8")
    import_households(store, tmp_path / "l.csv")
    t = grid_tables(store.load())
    readme = dict(zip(t["说明"].iloc[:, 0], t["说明"].iloc[:, 1]))
    assert readme["无楼栋住户 Households without building"] == 1
    assert "真实" in readme["住户数据 Households"]  # no longer all synthetic


def test_unknown_plan_is_refused(bundle, tmp_path):
    with pytest.raises(DataError, match=r"no plan 'nope' \(plans: p1\)"):
        export_excel(bundle, tmp_path / "x.xlsx", "nope")
    assert not (tmp_path / "x.xlsx").exists()


def test_gpkg_export_layers_and_masking(bundle, tmp_path):
    [p] = export_gis(bundle, tmp_path / "o.gpkg", ["communities", "grids", "buildings", "households", "assignments"])
    names = [n for n, _ in pyogrio.list_layers(p)]
    assert names == ["communities", "grids", "buildings", "households", "assignments"]
    hh = pyogrio.read_dataframe(p, layer="households")
    assert set(hh["head_name"]) == {"张**"} and not hh["tags"].str.contains("low_income").any()
    b = gpd.read_file(p, layer="buildings")
    assert b.crs.to_epsg() == 4326 and b.set_index("id").loc["b01", "grid_id"] == "g2-a"
    g = gpd.read_file(p, layer="grids")
    assert set(g["head_name"]) == {"王**", "李**"}
    [p2] = export_gis(bundle, tmp_path / "full.gpkg", ["households"], allow_personal=True)
    hh2 = pyogrio.read_dataframe(p2, layer="households")
    assert "张三丰" in set(hh2["head_name"]) and hh2["tags"].str.contains("low_income").any()


def test_geojson_export(bundle, tmp_path):
    [one] = export_gis(bundle, tmp_path / "grids.geojson", ["grids"])
    g = gpd.read_file(one)
    assert len(g) == 6 and set(g["head_name"]) == {"王**", "李**"}
    many = export_gis(bundle, tmp_path / "all.geojson")
    assert [p.name for p in many] == ["all.communities.geojson", "all.grids.geojson", "all.buildings.geojson",
                                      "all.service_points.geojson"]
    with pytest.raises(DataError, match="GeoJSON holds map layers only; export households as gpkg or xlsx"):
        export_gis(bundle, tmp_path / "h.geojson", ["households"])
    with pytest.raises(DataError, match="unknown layer 'roads'"):
        export_gis(bundle, tmp_path / "r.gpkg", ["roads"])
    with pytest.raises(DataError, match="format must be gpkg or geojson"):
        export_gis(bundle, tmp_path / "r.kml")


def test_record_export_only_for_personal(store, tmp_path):
    before = store.version()
    assert record_export(store, fmt="xlsx", out=tmp_path / "a.xlsx") is None
    assert store.version() == before
    record_export(store, fmt="xlsx", out=tmp_path / "a.xlsx", user="admin", allow_personal=True, plan_id="p1")
    log = store.load().audit_log
    assert log["action"].tolist() == ["export_personal"] and log["user"].tolist() == ["admin"]


def test_missing_chromium_is_a_clear_error(bundle, tmp_path, monkeypatch):
    monkeypatch.setattr(image_mod, "CANDIDATES", ("/nonexistent/chromium",))
    monkeypatch.delenv("MINSHENG_CHROMIUM", raising=False)
    with pytest.raises(image_mod.ChromiumMissing, match="PNG/PDF export needs Chromium"):
        image_mod.export_image(bundle, tmp_path / "m.png")
    assert not (tmp_path / "m.png").exists()
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["export", "--data", str(tmp_path / "project.gpkg"), "--out", str(tmp_path / "m.pdf")]) == 2


@pytest.mark.skipif(not HAS_CHROMIUM, reason="needs headless Chromium")
def test_png_and_pdf(bundle, tmp_path):
    png = image_mod.export_image(bundle, tmp_path / "m.png", width=800, height=600)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5_000
    pdf = image_mod.export_image(bundle, tmp_path / "m.pdf")
    assert pdf.read_bytes()[:5] == b"%PDF-"


def test_cli_export_formats(store, tmp_path, capsys):
    d = str(store.path)
    for name in ("m.html", "t.xlsx", "l.gpkg"):
        assert main(["export", "--data", d, "--out", str(tmp_path / name)]) == 0
        assert (tmp_path / name).exists()
    assert main(["export", "--data", d, "--format", "geojson", "--layers", "grids", "--out", str(tmp_path / "g.json")]) == 0
    before = store.version()
    assert main(["export", "--data", d, "--out", str(tmp_path / "p.xlsx"), "--allow-personal", "--user", "lead"]) == 0
    # the audit row is appended; the dataset itself (and so its version) is unchanged
    assert store.version() == before and store.load().audit_log["action"].tolist() == ["export_personal"]
    assert main(["export", "--data", d, "--plan", "zzz", "--out", str(tmp_path / "z.xlsx")]) == 2
    assert "no plan 'zzz'" in capsys.readouterr().err


# -- the shipped sample ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def sample():
    from data.gpkg_store import GpkgStore
    if not sample_path().exists():
        pytest.skip("shipped sample not built")
    return GpkgStore(sample_path()).load()


def test_sample_html(sample, tmp_path):
    html = export_html(sample, tmp_path / "s.html").read_text(encoding="utf-8")
    assert _no_cdn(html) and ATTRIBUTION in html
    for name in LAYER_NAMES["zh"].values():
        assert _has(html, name), name
    names = set(sample.grids["head_name"].dropna())
    assert names and not any(_has(html, n) for n in names)


def test_sample_xlsx_one_row_per_grid(sample, tmp_path):
    p = export_excel(sample, tmp_path / "s.xlsx")
    wb = openpyxl.load_workbook(p, read_only=True)
    plan = sample.adopted_plan_id()
    g = sample.plan_grids(plan)
    assert wb["二级网格"].max_row - 1 == int((g["level"] == 2).sum())
    assert wb["一级网格"].max_row - 1 == int((g["level"] == 1).sum())
    assert wb["社区汇总"].max_row - 1 == len(sample.communities)
    l2 = pd.read_excel(p, sheet_name="二级网格")
    assert l2["编号"].is_unique and l2["户数"].sum() <= len(sample.households)
    readme = "\n".join(str(c) for row in wb["说明"].iter_rows(values_only=True) for c in row if c)
    assert ATTRIBUTION in readme and SYNTHETIC_NOTICE_ZH in readme
