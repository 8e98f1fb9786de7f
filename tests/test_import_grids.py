"""data/importers/grids: users' grid polygons -> a new draft plan. Every bad input gets a clear
error (file, row, field) and leaves the store exactly as it was."""
import zipfile

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from data.bundle import DataError, make_bundle
from data.gpkg_store import GpkgStore
from data.importers.grids import import_grids, read_polygons
from fixtures_io import METRIC, X0, Y0, bundle_layers, grid_polygons, make_store
from geo.crs import wgs84_to_bd09, wgs84_to_gcj02
from minsheng.cli import main

EXPECTED = {f"b{k:02d}": gid for k, gid in zip(range(1, 17), ["g2-a", "g2-a", "g2-c", "g2-c"] * 2 + ["g2-b", "g2-b", "g2-d", "g2-d"] * 2)}


@pytest.fixture
def store(tmp_path):
    return make_store(tmp_path)


def assigned(store, plan_id):
    a = store.load().plan_assignments(plan_id)
    return dict(zip(a["building_id"], a["grid_id"]))


def refused(store, path, match, **kw):
    """Import must raise DataError matching `match` and leave the store unchanged."""
    before = store.version()
    with pytest.raises(DataError, match=match) as e:
        import_grids(store, path, **kw)
    assert store.version() == before
    return e.value


def test_geojson_becomes_a_draft_plan(store, tmp_path):
    before = store.version()
    path = tmp_path / "grids.geojson"
    grid_polygons().to_file(path, driver="GeoJSON")
    res = import_grids(store, path, plan_name="新方案", created_by="planner")
    assert store.version() != before and res.version == store.version()
    b = store.load()
    plan = b.plans.set_index("id").loc[res.plan_id]
    assert plan["status"] == "draft" and plan["name"] == "新方案" and plan["created_by"] == "planner"
    assert b.plans.set_index("id").loc["p1", "status"] == "adopted"  # the adopted plan untouched
    g = b.plan_grids(res.plan_id).set_index("id")
    assert g.loc["g1-w", "level"] == 1 and g.loc["g1-w", "parent_id"] == "c1"
    assert g.loc["g2-c", "parent_id"] == "g1-e" and g.loc["g2-a", "name"] == "新二级g2-a"
    assert g["code"].str.fullmatch(r"\d{20}").all()
    assert assigned(store, res.plan_id) == EXPECTED
    assert res.misfits.empty and res.datum == "wgs84"
    assert b.audit_log["action"].tolist() == ["import_grids"]


def test_parent_by_containment_when_no_parent_column(store, tmp_path):
    g = grid_polygons().drop(columns=["上级"])
    g.to_file(tmp_path / "g.gpkg", driver="GPKG")
    res = import_grids(store, tmp_path / "g.gpkg")
    p = dict(zip(res.grids["id"], res.grids["parent_id"]))
    assert p["g2-a"] == "g1-w" and p["g2-d"] == "g1-e" and p["g1-e"] == "c1"


def test_level2_only_copies_level1_of_adopted_plan(store, tmp_path):
    grid_polygons(level2_only=True).drop(columns=["级别"]).to_file(tmp_path / "l2.geojson")
    res = import_grids(store, tmp_path / "l2.geojson")
    assert any("grouped by the level-1 grid of plan" in w for w in res.warnings)
    l1 = res.grids[res.grids["level"] == 1]
    assert sorted(l1["id"]) == ["g1-e", "g1-w"] and (l1["plan_id"] == res.plan_id).all()
    assert dict(zip(res.grids["id"], res.grids["parent_id"]))["g2-b"] == "g1-w"


def test_level2_only_without_plan_makes_one_level1_per_community(tmp_path):
    store = make_store(tmp_path, with_plan=False)
    grid_polygons(level2_only=True).drop(columns=["级别"]).to_file(tmp_path / "l2.geojson")
    res = import_grids(store, tmp_path / "l2.geojson")
    l1 = res.grids[res.grids["level"] == 1]
    assert len(l1) == 1 and l1["parent_id"].iloc[0] == "c1"
    assert (res.grids.loc[res.grids["level"] == 2, "parent_id"] == l1["id"].iloc[0]).all()
    assert assigned(store, res.plan_id) == EXPECTED


def _write_shp(gdf, folder, name="grids"):
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.shp"
    gdf.to_file(path, driver="ESRI Shapefile", encoding="UTF-8")
    return path


def test_shapefile_and_zipped_shapefile(store, tmp_path):
    shp = _write_shp(grid_polygons().to_crs(4547), tmp_path / "shp")
    res = import_grids(store, shp)
    assert assigned(store, res.plan_id) == EXPECTED and res.source_crs == "EPSG:4547"
    zpath = tmp_path / "grids.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        for f in shp.parent.iterdir():
            z.write(f, f"网格/{f.name}")
    res2 = import_grids(store, zpath)
    assert assigned(store, res2.plan_id) == EXPECTED
    assert set(res2.grids["name"]) >= {"新一级g1-w", "新二级g2-d"}  # Chinese attributes survive


def test_zip_without_dbf_or_shapefile_is_refused(store, tmp_path):
    shp = _write_shp(grid_polygons(), tmp_path / "shp")
    z1 = tmp_path / "nodbf.zip"
    with zipfile.ZipFile(z1, "w") as z:
        for f in shp.parent.iterdir():
            if f.suffix != ".dbf":
                z.write(f, f.name)
    refused(store, z1, r"nodbf\.zip.*lacks \.dbf")
    z2 = tmp_path / "empty.zip"
    with zipfile.ZipFile(z2, "w") as z:
        z.writestr("readme.txt", "nothing here")
    refused(store, z2, r"no \.shp")
    (tmp_path / "bad.zip").write_bytes(b"PK not really")
    refused(store, tmp_path / "bad.zip", "not a valid zip")


@pytest.mark.parametrize("epsg", [4490, 4547, 2436, 4526, 3857])
def test_any_crs_is_brought_to_wgs84(store, tmp_path, epsg):
    g = grid_polygons().to_crs(epsg)
    g.to_file(tmp_path / "g.gpkg", driver="GPKG")
    res = import_grids(store, tmp_path / "g.gpkg")
    assert assigned(store, res.plan_id) == EXPECTED
    assert res.source_crs == f"EPSG:{epsg}"
    if epsg == 4490:
        assert any("CGCS2000" in w for w in res.warnings)
    minx, miny, maxx, maxy = res.grids.total_bounds
    assert 116.3 < minx < maxx < 116.4 and 39.9 < miny < maxy < 40.1


def _drop_prj(shp):
    shp.with_suffix(".prj").unlink()
    return shp


def test_no_crs_lonlat_by_range(store, tmp_path):
    shp = _drop_prj(_write_shp(grid_polygons(), tmp_path / "s"))
    res = import_grids(store, shp)
    assert assigned(store, res.plan_id) == EXPECTED
    assert any("declares no CRS" in w for w in res.warnings)


def test_no_crs_gauss_kruger_with_zone_prefix(store, tmp_path):
    shp = _drop_prj(_write_shp(grid_polygons().to_crs(4526), tmp_path / "s"))  # 3-degree zone 38, x = 38xxxxxx
    res = import_grids(store, shp)
    assert assigned(store, res.plan_id) == EXPECTED
    assert any("zone 38" in w and "EPSG:4526" in w for w in res.warnings)


def test_no_crs_projected_without_prefix_needs_crs(store, tmp_path):
    shp = _drop_prj(_write_shp(grid_polygons().to_crs(4547), tmp_path / "s"))
    e = refused(store, shp, r"no CRS.*crs='EPSG:4547'")
    assert e.file == str(shp)
    res = import_grids(store, shp, crs="EPSG:4547")
    assert assigned(store, res.plan_id) == EXPECTED


def _swap(gdf):
    return gdf.set_geometry(shapely.transform(gdf.geometry.values, lambda xy: xy[:, ::-1]))


def test_swapped_lat_lon_is_detected_and_fixed(store, tmp_path):
    shp = _drop_prj(_write_shp(_swap(grid_polygons()), tmp_path / "s"))
    res = import_grids(store, shp)
    assert any("swapped" in w for w in res.warnings)
    assert assigned(store, res.plan_id) == EXPECTED
    # also when the file declares WGS-84 (GeoJSON always does)
    _swap(grid_polygons()).to_file(tmp_path / "sw.geojson")
    res = import_grids(store, tmp_path / "sw.geojson")
    assert any("swapped" in w for w in res.warnings) and assigned(store, res.plan_id) == EXPECTED


def _shift(gdf, fn):
    return gdf.set_geometry(shapely.transform(gdf.geometry.values, lambda xy: np.column_stack(fn(xy[:, 0], xy[:, 1]))))


@pytest.mark.parametrize("datum,fn", [("gcj02", wgs84_to_gcj02), ("bd09", wgs84_to_bd09)])
def test_gcj02_bd09_declared_and_detected(store, tmp_path, datum, fn):
    _shift(grid_polygons(), fn).to_file(tmp_path / "m.geojson")
    res = import_grids(store, tmp_path / "m.geojson", datum=datum)
    assert res.datum == datum and assigned(store, res.plan_id) == EXPECTED and res.misfits.empty
    auto = import_grids(store, tmp_path / "m.geojson")  # datum="auto": best fit to the buildings
    assert auto.datum == datum and assigned(store, auto.plan_id) == EXPECTED
    assert any(datum.upper() in w for w in auto.warnings)
    # read as WGS-84 the buildings do not fit
    wrong = import_grids(store, tmp_path / "m.geojson", datum="wgs84", dry_run=True, allow_empty=True)
    assert len(wrong.misfits) > 0


def test_unknown_datum_is_refused(store, tmp_path):
    grid_polygons().to_file(tmp_path / "g.geojson")
    refused(store, tmp_path / "g.geojson", "unknown datum 'mars'", datum="mars")


def test_safe_repair_is_reported(store, tmp_path):
    g = grid_polygons(metric=True)
    x0, y0, x1, y1 = g.geometry.iloc[2].bounds  # g2-a with a zero-width spike on its top edge
    spiked = shapely.Polygon([(x0, y0), (x1, y0), (x1, y1), (x0 + 50, y1), (x0 + 50, y1 + 30), (x0 + 50, y1),
                              (x0, y1), (x0, y0)])
    assert not spiked.is_valid
    g.loc[2, "geometry"] = spiked
    g.to_crs(4326).to_file(tmp_path / "g.geojson")
    res = import_grids(store, tmp_path / "g.geojson")
    assert res.repaired_rows == [3] and any("repaired" in w and "3" in w for w in res.warnings)
    assert assigned(store, res.plan_id) == EXPECTED
    assert store.load().plan_grids(res.plan_id).geometry.is_valid.all()


def test_bowtie_is_refused_with_row_and_field(store, tmp_path):
    g = grid_polygons(metric=True)
    x0, y0, x1, y1 = g.geometry.iloc[3].bounds
    g.loc[3, "geometry"] = shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1), (x0, y0)])
    g.to_crs(4326).to_file(tmp_path / "bow.geojson")
    e = refused(store, tmp_path / "bow.geojson", r"bow\.geojson.*row 4.*field geometry.*Self-intersection")
    assert (e.row, e.field) == (4, "geometry")


def test_null_and_non_polygon_geometries_are_refused(store, tmp_path):
    g = grid_polygons()
    g.loc[1, "geometry"] = None
    g.to_file(tmp_path / "null.geojson")
    e = refused(store, tmp_path / "null.geojson", r"row 2.*field geometry.*no geometry")
    assert e.row == 2
    g = grid_polygons()
    g = gpd.GeoDataFrame(g.drop(columns="geometry"), geometry=g.geometry.representative_point(), crs=4326)
    g.to_file(tmp_path / "points.geojson")
    refused(store, tmp_path / "points.geojson", r"row 1.*expected a polygon, found a Point")


def test_empty_unreadable_and_featureless_files(store, tmp_path):
    (tmp_path / "empty.geojson").write_bytes(b"")
    refused(store, tmp_path / "empty.geojson", r"empty\.geojson: the file is empty")
    (tmp_path / "junk.geojson").write_text("这不是 GeoJSON", encoding="utf-8")
    refused(store, tmp_path / "junk.geojson", r"junk\.geojson: cannot read")
    (tmp_path / "none.geojson").write_text('{"type": "FeatureCollection", "features": []}')
    refused(store, tmp_path / "none.geojson", "no features")
    refused(store, tmp_path / "missing.geojson", "file not found")


def test_duplicate_and_empty_ids(store, tmp_path):
    g = grid_polygons()
    g.loc[5, "编号"] = "g2-a"
    g.to_file(tmp_path / "dup.geojson")
    e = refused(store, tmp_path / "dup.geojson", r"row 3.*field 编号.*'g2-a' is not unique \(rows 3, 6\)")
    assert e.field == "编号"
    g = grid_polygons()
    g.loc[4, "编号"] = None
    g.to_file(tmp_path / "noid.geojson")
    refused(store, tmp_path / "noid.geojson", r"row 5.*field 编号.*empty")


def test_bad_level_unknown_parent_and_no_level2(store, tmp_path):
    g = grid_polygons()
    g.loc[3, "级别"] = "三级"
    g.to_file(tmp_path / "lvl.geojson")
    refused(store, tmp_path / "lvl.geojson", r"row 4.*field 级别.*'三级' is neither 1")
    g = grid_polygons()
    g.loc[2, "上级"] = "g1-x"
    g.to_file(tmp_path / "par.geojson")
    refused(store, tmp_path / "par.geojson", r"row 3.*field 上级.*'g1-x' not found")
    g = grid_polygons()
    g["级别"] = "一级"
    g.to_file(tmp_path / "l1.geojson")
    refused(store, tmp_path / "l1.geojson", "no level-2 grids")


def test_column_mapping_by_argument(store, tmp_path):
    g = grid_polygons().rename(columns={"编号": "GID", "名称": "Label", "级别": "Tier", "上级": "Up"})
    g["Tier"] = g["Tier"].map({"一级": 1, "二级": 2})
    g["Leader"], g["Tel"] = "王建国", "13812345678"
    g.to_file(tmp_path / "g.geojson")
    res = import_grids(store, tmp_path / "g.geojson", id_col="GID", name_col="Label", level_col="Tier",
                       parent_col="Up", head_col="Leader", phone_col="Tel")
    gg = res.grids.set_index("id")
    assert gg.loc["g2-b", "name"] == "新二级g2-b" and gg.loc["g2-b", "parent_id"] == "g1-w"
    assert gg.loc["g2-b", "head_name"] == "王建国"
    refused(store, tmp_path / "g.geojson", r"column 'Nope' given for name is not in the file", name_col="Nope")


def test_misfits_are_reported_and_outside_buildings_left_unassigned(tmp_path):
    layers = bundle_layers()
    extra = gpd.GeoDataFrame({"id": ["bx", "by"], "name": ["外1号楼", "跨界楼"]},
                             geometry=gpd.GeoSeries([shapely.box(X0 + 600, Y0, X0 + 630, Y0 + 20),
                                                     shapely.box(X0 + 180, Y0 + 10, X0 + 220, Y0 + 30)],
                                                    crs=METRIC).to_crs(4326).values, crs=4326)
    layers["buildings"] = pd.concat([layers["buildings"], extra], ignore_index=True)
    store = GpkgStore(tmp_path / "p.gpkg")
    store.write_all(make_bundle(layers))
    grid_polygons().to_file(tmp_path / "g.geojson")
    res = import_grids(store, tmp_path / "g.geojson")
    st = dict(zip(res.misfits["building_id"], res.misfits["status"]))
    assert st == {"bx": "outside", "by": "split"}
    a = assigned(store, res.plan_id)
    assert "bx" not in a and a["by"] in {"g2-a", "g2-c"}
    assert "outside every grid 1, split 1" in res.summary()


def test_dry_run_writes_nothing(store, tmp_path):
    grid_polygons().to_file(tmp_path / "g.geojson")
    before = store.version()
    res = import_grids(store, tmp_path / "g.geojson", dry_run=True)
    assert store.version() == before and res.version == "" and len(res.assignments) == 16


def test_existing_plan_id_is_refused(store, tmp_path):
    grid_polygons().to_file(tmp_path / "g.geojson")
    refused(store, tmp_path / "g.geojson", "plan 'p1' already exists", plan_id="p1")


def test_gpkg_with_several_layers_needs_layer(store, tmp_path):
    g = grid_polygons()
    g.to_file(tmp_path / "m.gpkg", layer="a", driver="GPKG")
    g.to_file(tmp_path / "m.gpkg", layer="b", driver="GPKG")
    refused(store, tmp_path / "m.gpkg", "several polygon layers")
    assert len(read_polygons(tmp_path / "m.gpkg", layer="b")) == len(g)


def test_cli_import_grids(store, tmp_path, capsys):
    grid_polygons().to_file(tmp_path / "g.geojson")
    assert main(["import-grids", str(tmp_path / "g.geojson"), "--data", str(store.path), "--plan-id", "new"]) == 0
    assert "plan new: 2 level-1 and 4 level-2 grids, 16 buildings assigned" in capsys.readouterr().out
    before = store.version()
    (tmp_path / "bad.geojson").write_bytes(b"")
    assert main(["import-grids", str(tmp_path / "bad.geojson"), "--data", str(store.path)]) == 2
    assert "bad.geojson: the file is empty" in capsys.readouterr().err
    assert store.version() == before


def test_concurrent_change_is_refused(tmp_path):
    from data.store import ConflictError

    class Racing(GpkgStore):
        def load(self):
            b = super().load()
            GpkgStore(self.path).replace_layers({"plans": b.plans.assign(name="改名")})
            return b

    make_store(tmp_path)
    grid_polygons().to_file(tmp_path / "g.geojson")
    with pytest.raises(ConflictError):
        import_grids(Racing(tmp_path / "project.gpkg"), tmp_path / "g.geojson")
    b = GpkgStore(tmp_path / "project.gpkg").load()
    assert b.plans["id"].tolist() == ["p1"] and b.plans["name"].tolist() == ["改名"]


def test_level2_id_clashing_with_copied_level1_is_refused(store, tmp_path):
    g = grid_polygons(level2_only=True).drop(columns=["级别"])
    g.loc[1, "编号"] = "g1-w"
    g.to_file(tmp_path / "c.geojson")
    refused(store, tmp_path / "c.geojson", r"row 2, field 编号: grid id 'g1-w' is used twice")


# -- bad inputs, encodings, nesting and codes (issue 13) --------------------------------------
from data.importers.messages import Refusal  # noqa: E402


def test_threshold_crs_and_coordinates_are_checked(store, tmp_path):
    grid_polygons().to_file(tmp_path / "g.geojson")
    for bad in (5, 0, -0.1):
        refused(store, tmp_path / "g.geojson", r"field threshold: threshold .* is not a share between 0 and 1",
                threshold=bad)
    for crs in ("EPSG:999999", "not a crs"):
        refused(store, tmp_path / "g.geojson", r"field crs: unknown coordinate reference system", crs=crs)
    absurd = grid_polygons(metric=True).set_crs(None, allow_override=True).set_crs(4326, allow_override=True)
    absurd.to_file(tmp_path / "absurd.geojson")  # metres declared as degrees
    refused(store, tmp_path / "absurd.geojson", r"row 1, field geometry: read as EPSG:4326, the coordinates .* "
                                                  r"are not a place on Earth")
    (tmp_path / "table.csv").write_text("编号,名称\n1,一号网格\n", encoding="utf-8")
    refused(store, tmp_path / "table.csv", r"table\.csv: the file holds no geometry \(1 rows of plain table data\)")


def test_polygons_that_place_no_building_are_refused_unless_allowed(store, tmp_path):
    far = grid_polygons()
    far["geometry"] = shapely.transform(far.geometry.values, lambda xy: xy + [5.0, 0.0])  # ~430 km east
    far.to_file(tmp_path / "far.geojson")
    e = refused(store, tmp_path / "far.geojson", r"field geometry: the 4 level-2 grid\(s\) hold none of the "
                                                 r"project's 16 buildings \(about 4\d\d\.\d km away\)")
    assert isinstance(e, Refusal) and "没有包含项目中 16 个楼栋" in e.text("zh")
    res = import_grids(store, tmp_path / "far.geojson", allow_empty=True)
    assert len(res.assignments) == 0 and res.plan_id in set(store.load().plans["id"])


def test_gbk_shapefile_without_cpg_is_detected_and_overridable(store, tmp_path):
    folder = tmp_path / "gbk"
    folder.mkdir()
    path = folder / "grids.shp"
    grid_polygons().to_file(path, driver="ESRI Shapefile", encoding="GBK")
    for p in folder.glob("grids.cpg"):
        p.unlink()
    res = import_grids(store, path, dry_run=True)
    assert any("read as GB18030" in w for w in res.warnings)
    assert "新一级g1-w" in set(res.grids["name"])  # Chinese names and columns (名称, 级别) kept
    utf = tmp_path / "utf"
    utf.mkdir()
    grid_polygons().to_file(utf / "grids.shp", driver="ESRI Shapefile", encoding="UTF-8")
    (utf / "grids.cpg").unlink()
    assert any("read as UTF-8" in w for w in import_grids(store, utf / "grids.shp", dry_run=True).warnings)
    with pytest.raises(DataError):  # forced wrong: the level column (级别) is then not found
        import_grids(store, path, encoding="latin-1", dry_run=True)


def test_reimported_sample_level2_grids_pass_check(tmp_path):
    """The sample's own level-2 grids drawn elsewhere (name and polygon only) imported as a new
    plan: codes that `check` accepts (was: 9 bad_code), level-1 grids that contain their level-2
    grids; moved 25 m east, level-2 grids still nest in their level-1 grids (was: 26 not_nested)."""
    import shutil
    from geo.coverage import audit_bundle
    from minsheng.settings import sample_path
    for shift in (0.0, 0.0003):
        path = tmp_path / f"s{shift}.gpkg"
        shutil.copyfile(sample_path(), path)
        store = GpkgStore(path)
        b = store.load()
        g = b.plan_grids(b.adopted_plan_id())
        g = g[g["level"] == 2][["name", "geometry"]].copy()
        g["geometry"] = shapely.transform(g.geometry.values, lambda xy: xy + [shift, 0.0])
        g.to_file(tmp_path / "l2.geojson")
        res = import_grids(store, tmp_path / "l2.geojson")
        after = store.load()
        problems = audit_bundle(after, res.plan_id).problems
        kinds = {p.kind for p in problems}
        assert not kinds & {"bad_code", "invalid_geometry"}, kinds
        level = dict(zip(res.grids["id"], res.grids["level"]))
        assert not [p for p in problems if p.kind == "not_nested" and level.get(p.ids[0]) == 2]
        if shift == 0.0:
            assert not kinds & {"not_nested", "gap"}, kinds
