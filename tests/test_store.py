"""One store test suite, run against both stores (GeoPackage and PostGIS)."""
from __future__ import annotations

import json
import threading
import time

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box

from data.bundle import Bundle, DataError, content_version, make_bundle
from data.gpkg_store import GpkgStore
from data.schema import LAYERS
from data.store import ConflictError, Store

CRS = "EPSG:4326"


def sample_layers() -> dict:
    """A tiny hand-made dataset touching every contract layer (audit_log left empty)."""
    x0, y0 = 116.33, 40.01
    d = 0.001
    communities = gpd.GeoDataFrame(
        {"id": ["c1"], "code": ["110108012001"], "name": ["学清苑社区"], "street": ["清河街道"]},
        geometry=[MultiPolygon([box(x0, y0, x0 + 4 * d, y0 + 2 * d)])], crs=CRS)
    plans = pd.DataFrame({"id": ["p1", "p2"], "name": ["现行方案", "草案 B"], "status": ["adopted", "draft"],
                          "version": [1, 3], "created_at": ["2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"],
                          "created_by": ["admin", "planner"]})
    grids = gpd.GeoDataFrame(
        {"id": ["g1", "g1-1", "g1-2", "g1", "g1-1"], "plan_id": ["p1", "p1", "p1", "p2", "p2"],
         "level": [1, 2, 2, 1, 2], "parent_id": ["c1", "g1", "g1", "c1", "g1"],
         "code": ["10011101080120010100", "10011101080120010101", "10011101080120010102",
                  "10011101080120010100", "10011101080120010101"],
         "name": ["第一网格", "第一网格-1", "第一网格-2", "第一网格", "第一网格-1"],
         "head_name": ["王芳", "李强", None, "王芳", ""], "head_phone": ["13800000001", None, None, "", None]},
        geometry=[MultiPolygon([box(x0, y0, x0 + 4 * d, y0 + 2 * d)]),
                  MultiPolygon([box(x0, y0, x0 + 2 * d, y0 + 2 * d)]),
                  MultiPolygon([box(x0 + 2 * d, y0, x0 + 4 * d, y0 + 2 * d)]),
                  MultiPolygon([box(x0, y0, x0 + 4 * d, y0 + 2 * d)]),
                  MultiPolygon([box(x0, y0, x0 + 4 * d, y0 + 2 * d)])], crs=CRS)
    ring = Polygon([(x0 + 0.1 * d, y0 + 0.1 * d), (x0 + 0.9 * d, y0 + 0.1 * d), (x0 + 0.9 * d, y0 + 0.9 * d),
                    (x0 + 0.1 * d, y0 + 0.9 * d)],
                   holes=[[(x0 + 0.4 * d, y0 + 0.4 * d), (x0 + 0.6 * d, y0 + 0.4 * d), (x0 + 0.6 * d, y0 + 0.6 * d)]])
    buildings = gpd.GeoDataFrame(
        {"id": ["b1", "b2", "b3"], "code": ["B001", "B002", "B003"], "name": ["1号楼", "2号楼", None],
         "address": ["学清路8号", "学清路10号\t(东门)", None], "compound": ["学清苑", "学清苑", ""],
         "floors": [6, 18, None], "units": [3, 2, 1], "floors_estimated": [False, True, False],
         "kind": ["residential", "residential", "apartments"], "osm_id": ["w123", None, "w9999999999"]},
        geometry=[MultiPolygon([ring]),
                  MultiPolygon([box(x0 + 2.1 * d, y0 + 0.1 * d, x0 + 2.5 * d, y0 + 0.5 * d),
                                box(x0 + 2.6 * d, y0 + 0.1 * d, x0 + 2.9 * d, y0 + 0.5 * d)]),
                  MultiPolygon([box(x0 + 3.1 * d, y0 + 1.1 * d, x0 + 3.5123456789012345 * d, y0 + 1.5 * d)])],
        crs=CRS)
    assignments = pd.DataFrame({"plan_id": ["p1", "p1", "p1", "p2", "p2", "p2"],
                                "building_id": ["b1", "b2", "b3", "b1", "b2", "b3"],
                                "grid_id": ["g1-1", "g1-2", "g1-2", "g1-1", "g1-1", "g1-1"]})
    households = pd.DataFrame({
        "id": ["h1", "h2", "h3", "h4", "h5"], "building_id": ["b1", "b1", "b2", "b3", None],
        "unit": [1, 2, 1, None, 1], "room": ["101", "0201", "1801", "", None], "persons": [2, 1, 4, 3, None],
        "tags": [["empty_nest", "party_member"], [], ["disabled"], ["低保", "veteran"], []],
        "head_name": ["张伟", "刘洋", None, "陈静", "赵敏"], "phone": ["13900000001", "", None, "13900000004", None],
        "synthetic": [True, True, False, True, False]})
    service_points = gpd.GeoDataFrame(
        {"id": ["s1", "s2"], "name": ["学清苑社区党群服务中心", "卫生服务站"], "type": ["party_mass_center", "clinic"],
         "capacity": [200, None], "osm_id": ["n1", None]},
        geometry=[Point(x0 + d, y0 + d), Point(x0 + 3.3 * d, y0 + 0.3 * d)], crs=CRS)
    walk_edges = gpd.GeoDataFrame(
        {"u": [1, 2, 2, 3_000_000_000], "v": [2, 3, 3, 1], "length_m": [85.12345678901234, 40.0, 40.0, 0.1],
         "highway": ["residential", "footway", "footway", None], "name": ["学清路", None, None, "小路"]},
        geometry=[LineString([(x0, y0), (x0 + d, y0)]), LineString([(x0 + d, y0), (x0 + d, y0 + d)]),
                  LineString([(x0 + d, y0), (x0 + d, y0 + d)]), LineString([(x0, y0 + d), (x0, y0)])], crs=CRS)
    meta = pd.DataFrame({"key": ["name", "synthetic_notice"], "value": ["学清苑 sample", "住户数据为合成数据"]})
    compounds = gpd.GeoDataFrame(
        {"id": ["w1", "w2"], "name": ["学清苑", None], "access": [None, "private"], "walled": [True, False],
         "closed": [True, False]},
        geometry=[MultiPolygon([box(x0, y0, x0 + 2 * d, y0 + 2 * d)]),
                  MultiPolygon([box(x0 + 3 * d, y0 + d, x0 + 4 * d, y0 + 2 * d)])], crs=CRS)
    gates = gpd.GeoDataFrame(
        {"id": ["n10", "n11", "n12"], "compound_id": ["w1", "w1", ""], "kind": ["gate", "entrance", "lift_gate"],
         "entrance": [None, "emergency", None], "access": [None, None, "no"], "name": ["南门", None, "西门"],
         "closed": [False, True, True]},
        geometry=[Point(x0 + d, y0), Point(x0 + 2 * d, y0 + d), Point(x0 + 2.5 * d, y0)], crs=CRS)
    return {"communities": communities, "plans": plans, "grids": grids, "buildings": buildings,
            "assignments": assignments, "households": households, "service_points": service_points,
            "walk_edges": walk_edges, "meta": meta, "compounds": compounds, "gates": gates}


def layer_versions(bundle: Bundle) -> dict[str, str]:
    return {name: content_version({name: df}) for name, df in bundle.layers.items()}


@pytest.fixture(params=["gpkg", pytest.param("postgis", marks=pytest.mark.postgis)])
def store(request, tmp_path):
    if request.param == "gpkg":
        yield GpkgStore(tmp_path / "project.gpkg")
        return
    from data.postgis_store import PostgisStore
    s = PostgisStore(request.getfixturevalue("pg_dsn"))
    yield s
    s.close()


@pytest.fixture
def loaded(store):
    """The store holding the sample dataset, and the bundle that was written."""
    b = make_bundle(sample_layers())
    store.write_all(b)
    return store, b


def other_store(store):
    """A second, independent handle on the same data (own connections for PostGIS)."""
    return type(store)(store.dsn) if hasattr(store, "dsn") else type(store)(store.path)


# -- round trips ------------------------------------------------------------------------
def test_is_a_store(store):
    assert isinstance(store, Store)


def test_round_trip_every_layer(loaded):
    store, b = loaded
    back = store.load()
    assert set(back.layers) == {layer.name for layer in LAYERS}
    assert layer_versions(back) == layer_versions(b)
    for layer in LAYERS:
        got, want = back.layers[layer.name], b.layers[layer.name]
        assert list(got.columns) == list(want.columns), layer.name
        assert len(got) == len(want), layer.name
        if layer.geometry:
            assert got.crs.equals(CRS)
            assert shapely.equals_exact(got.geometry.values, want.geometry.values, tolerance=0).all()
            pd.testing.assert_frame_equal(pd.DataFrame(got.drop(columns="geometry")),
                                          pd.DataFrame(want.drop(columns="geometry")), check_dtype=True)
        else:
            pd.testing.assert_frame_equal(got, want, check_dtype=True)
    assert back.version == store.version()


def test_round_trip_values(loaded):
    store, _ = loaded
    back = store.load()
    hh = back.households.set_index("id")
    assert hh.loc["h1", "tags"] == ["empty_nest", "party_member"]
    assert hh.loc["h2", "tags"] == [] and hh.loc["h5", "tags"] == []
    assert hh.loc["h4", "tags"] == ["低保", "veteran"]
    assert hh.loc["h1", "head_name"] == "张伟"
    assert hh.loc["h2", "phone"] == "" and pd.isna(hh.loc["h3", "phone"])
    assert pd.isna(hh.loc["h4", "unit"]) and hh.loc["h3", "persons"] == 4
    assert hh["synthetic"].tolist() == [True, True, False, True, False]
    b = back.buildings.set_index("id")
    assert b.loc["b2", "address"] == "学清路10号\t(东门)"
    assert b.loc["b1", "geometry"].geoms[0].interiors[0].coords[0] == (116.33 + 0.0004, 40.01 + 0.0004)
    assert back.walk_edges["u"].tolist() == [1, 2, 2, 3_000_000_000]  # parallel edges and ids > 2^31 kept
    assert back.walk_edges["length_m"].iloc[0] == 85.12345678901234
    assert back.service_points.geom_type.tolist() == ["Point", "Point"]
    assert back.walk_edges.geom_type.unique().tolist() == ["LineString"]
    assert back.buildings.geom_type.unique().tolist() == ["MultiPolygon"]
    assert back.meta_dict["synthetic_notice"] == "住户数据为合成数据"
    assert back.adopted_plan_id() == "p1"


def test_empty_dataset_round_trip(store):
    empty = make_bundle({})
    store.write_all(empty)
    back = store.load()
    assert layer_versions(back) == layer_versions(empty)
    for layer in LAYERS:
        assert len(back.layers[layer.name]) == 0
        assert list(back.layers[layer.name].columns) == list(empty.layers[layer.name].columns)
        assert back.layers[layer.name].dtypes.astype(str).tolist() == \
            empty.layers[layer.name].dtypes.astype(str).tolist(), layer.name


def test_polygons_are_stored_as_multipolygons(store):
    layers = sample_layers()
    b = layers["buildings"]
    layers["buildings"] = gpd.GeoDataFrame(b.drop(columns="geometry"), crs=CRS,
                                           geometry=[box(0, 0, 1, 1), b.geometry.iloc[1], box(2, 2, 3, 3)])
    store.write_all(make_bundle(layers))
    back = store.load().buildings
    assert back.geom_type.tolist() == ["MultiPolygon"] * 3
    assert back.geometry.iloc[0].equals(box(0, 0, 1, 1))


def test_version_changes_on_every_write(loaded):
    store, b = loaded
    v1 = store.version()
    v2 = store.replace_layers({"meta": pd.DataFrame({"key": ["k"], "value": ["v"]})}, expected_version=v1)
    assert v2 == store.version() != v1


# -- failed writes change nothing -----------------------------------------------------------
def test_write_all_bad_value_names_layer_row_field_and_keeps_data(loaded):
    store, b = loaded
    before_version, before = store.version(), layer_versions(store.load())
    layers = sample_layers()
    layers["buildings"] = layers["buildings"].iloc[:0]  # would empty a layer if it got written
    hh = layers["households"].copy()
    hh["persons"] = hh["persons"].astype(object)
    hh.loc[2, "persons"] = "三口"
    layers["households"] = hh
    bad = Bundle(layers, "x", "test")  # not conformed: the store must check
    with pytest.raises(DataError) as e:
        store.write_all(bad)
    assert (e.value.layer, e.value.row, e.value.field) == ("households", 3, "persons")
    assert "三口" in str(e.value)  # the offending value (not personal data here) is shown for conform errors
    assert store.version() == before_version
    assert layer_versions(store.load()) == before


def test_replace_layers_stale_version_conflicts_and_changes_nothing(loaded):
    store, b = loaded
    v1 = store.version()
    other = other_store(store)
    v2 = other.replace_layers({"meta": pd.DataFrame({"key": ["k"], "value": ["first"]})}, expected_version=v1)
    before = layer_versions(store.load())
    with pytest.raises(ConflictError, match="changed since it was loaded"):
        store.replace_layers({"meta": pd.DataFrame({"key": ["k"], "value": ["second"]}),
                              "households": b.households.iloc[:1]}, expected_version=v1)
    assert store.version() == v2
    after = store.load()
    assert layer_versions(after) == before
    assert after.meta["value"].tolist() == ["first"]
    getattr(other, "close", lambda: None)()


def test_replace_layers_keeps_other_layers(loaded):
    store, b = loaded
    new_sp = b.service_points.iloc[:1]
    store.replace_layers({"service_points": new_sp}, expected_version=store.version())
    back = store.load()
    assert back.service_points["id"].tolist() == ["s1"]
    for name in ("buildings", "households", "grids", "assignments", "walk_edges"):
        assert content_version({name: back.layers[name]}) == content_version({name: b.layers[name]}), name


# -- plans and audit -----------------------------------------------------------------------
def test_save_plan_optimistic_locking(loaded):
    store, b = loaded
    grids = b.plan_grids("p1")
    grids = grids[grids["id"] != "g1-2"].copy()
    assignments = b.plan_assignments("p1").assign(grid_id="g1-1")
    assert store.save_plan("p1", grids, assignments, 1, "planner_a") == 2
    back = store.load()
    assert back.plans.set_index("id").loc["p1", "version"] == 2
    assert back.plans.set_index("id").loc["p2", "version"] == 3  # other plan untouched
    assert sorted(back.plan_grids("p1")["id"]) == ["g1", "g1-1"]
    assert set(back.plan_assignments("p1")["grid_id"]) == {"g1-1"}
    assert content_version({"g": back.plan_grids("p2")}) == content_version({"g": b.plan_grids("p2")})
    assert content_version({"a": back.plan_assignments("p2")}) == content_version({"a": b.plan_assignments("p2")})
    # a second save based on version 1 is stale
    before = layer_versions(back)
    with pytest.raises(ConflictError, match="expected version 1, found 2"):
        store.save_plan("p1", b.plan_grids("p1"), b.plan_assignments("p1"), 1, "planner_b")
    after = store.load()
    assert layer_versions(after) == before
    audit = after.audit_log
    assert audit["action"].tolist() == ["save_plan"]
    assert audit["user"].tolist() == ["planner_a"] and audit["object"].tolist() == ["plan:p1"]
    assert "version 2" in audit["detail"].iloc[0] and audit["ts"].iloc[0].startswith("20")
    assert store.save_plan("p1", b.plan_grids("p1"), b.plan_assignments("p1"), 2, "planner_b") == 3


def test_save_plan_unknown_plan_and_foreign_rows(loaded):
    store, b = loaded
    with pytest.raises(DataError, match="unknown plan"):
        store.save_plan("nope", b.plan_grids("p1").iloc[:0], b.plan_assignments("p1").iloc[:0], 1, "u")
    with pytest.raises(DataError) as e:
        store.save_plan("p1", b.grids, b.plan_assignments("p1"), 1, "u")  # holds p2's grids too
    assert (e.value.layer, e.value.field, e.value.row) == ("grids", "plan_id", 4)


def test_save_plan_fills_missing_plan_id(loaded):
    store, b = loaded
    grids = b.plan_grids("p1").drop(columns="plan_id")
    assignments = b.plan_assignments("p1").drop(columns="plan_id")
    assert store.save_plan("p1", grids, assignments, 1, "u") == 2
    back = store.load()
    assert len(back.plan_grids("p1")) == 3 and len(back.plan_assignments("p1")) == 3


def test_compounds_and_gates_round_trip(loaded):
    store, _ = loaded
    back = store.load()
    c = back.compounds.set_index("id")
    assert c["closed"].tolist() == [True, False] and c["walled"].tolist() == [True, False]
    assert c.loc["w1", "name"] == "学清苑" and pd.isna(c.loc["w2", "name"]) and c.loc["w2", "access"] == "private"
    assert back.compounds.geom_type.tolist() == ["MultiPolygon"] * 2
    g = back.gates.set_index("id")
    assert g["compound_id"].tolist() == ["w1", "w1", ""] and g["closed"].tolist() == [False, True, True]
    assert g.loc["n11", "entrance"] == "emergency" and g.loc["n10", "name"] == "南门"
    assert g.loc["n12", "geometry"].equals(Point(116.33 + 0.0025, 40.01))
    rm = store.read_model()                     # the dashboard's read model has both layers
    assert len(rm.compounds) == 2 and len(rm.gates) == 3


def test_gate_edits_are_transactions_with_audit_and_version(loaded):
    store, b = loaded
    x0, y0, d = 116.33, 40.01, 0.001
    v0 = store.version()
    lv0 = store.read_model().layer_versions
    gid, v1 = store.add_gate("w2", Point(x0 + 3.5 * d, y0 + d), "planner1")
    assert gid == "G1" and v1 == store.version() != v0
    rm = store.read_model()
    assert rm.gates.set_index("id").loc["G1", "compound_id"] == "w2"
    assert not rm.gates.set_index("id").loc["G1", "closed"]
    assert rm.compounds.set_index("id").loc["w2", "closed"]          # a compound with a gate is closed
    assert rm.layer_versions["gates"] != lv0.get("gates") and rm.layer_versions["compounds"] != lv0.get("compounds")
    assert rm.layer_versions["buildings"] == lv0.get("buildings")    # nothing else re-read
    v2 = store.move_gate("n10", Point(x0 + 1.5 * d, y0), "planner1")
    assert v2 != v1
    g = store.load().gates.set_index("id")
    assert g.loc["n10", "geometry"].distance(Point(x0 + 1.5 * d, y0)) < 1e-7 and g.loc["n10", "compound_id"] == "w1"
    assert store.load().gates["id"].tolist() == ["n10", "n11", "n12", "G1"]   # moved in place: order kept
    store.set_gate_closed("n10", True, "planner1")
    assert store.load().gates.set_index("id").loc["n10", "closed"]
    store.set_gate_closed("n10", False, "planner1")
    assert not store.load().gates.set_index("id").loc["n10", "closed"]
    log = store.load().audit_log
    assert log["action"].tolist() == ["add_gate", "move_gate", "close_gate", "open_gate"]
    assert log["object"].tolist() == ["gate:G1", "gate:n10", "gate:n10", "gate:n10"]
    assert '"from": [116.331, 40.01]' in log["detail"].iloc[1] and set(log["user"]) == {"planner1"}
    # refused edits change nothing
    v = store.version()
    with pytest.raises(DataError):
        store.move_gate("nope", Point(x0, y0), "planner1")
    with pytest.raises(DataError):
        store.add_gate("no-such-compound", Point(x0, y0), "planner1")
    with pytest.raises(DataError):
        store.set_gate_closed("nope", True, "planner1")
    with pytest.raises(DataError):
        store.add_gate("w1", Point(float("nan"), y0), "planner1")
    with pytest.raises(ConflictError):
        store.set_gate_closed("n10", True, "planner1", expected_version=v0)
    assert store.version() == v and len(store.load().audit_log) == 4
    for name in ("buildings", "households", "plans"):
        assert content_version({name: store.load().layers[name]}) == content_version({name: b.layers[name]})


def test_scenarios_save_list_reload(loaded):
    store, _ = loaded
    v = store.version()
    assert store.scenarios().empty and store.scenario("S1") is None
    sid = store.save_scenario({"name": " 东区新增两处 ", "service_type": "clinic", "k": 2, "weight": "households",
                               "capacity": 150, "minutes": 10.0, "speed": 80.0, "closed": ["w1"], "shut": [],
                               "points": ["b3", "b1"], "covered_before": 3.0, "covered_after": 9.5,
                               "weight_total": 10.0}, "planner1", now="2026-03-01T08:00:00Z")
    sid2 = store.save_scenario({"name": "老人", "service_type": "elderly_care", "k": 1, "weight": "empty_nest",
                                "points": ["b2"]}, "admin")
    assert (sid, sid2) == ("S1", "S2")
    assert store.version() == v                      # not part of the dataset: no version bump
    listed = store.scenarios()
    assert listed["id"].tolist() == ["S1", "S2"] and listed["name"].tolist() == ["东区新增两处", "老人"]
    s1 = store.scenario("S1")
    assert s1["points"] == ["b3", "b1"] and s1["closed"] == ["w1"] and s1["shut"] == []
    assert s1["capacity"] == 150 and s1["k"] == 2 and s1["covered_after"] == 9.5 and s1["minutes"] == 10.0
    assert s1["created_by"] == "planner1" and s1["created_at"] == "2026-03-01T08:00:00Z"
    s2 = store.scenario("S2")
    assert s2["capacity"] is None and s2["minutes"] is None and s2["points"] == ["b2"]
    log = store.load().audit_log
    assert log["action"].tolist() == ["save_scenario"] * 2 and log["object"].tolist() == ["scenario:S1", "scenario:S2"]
    with pytest.raises(DataError):
        store.save_scenario({"name": "  ", "service_type": "clinic", "k": 1}, "planner1")
    assert len(store.scenarios()) == 2
    # a whole-project copy carries the scenarios; a store opened afresh lists them
    assert other_store(store).scenarios()["id"].tolist() == ["S1", "S2"]
    assert store.load().scenarios["points"].tolist() == [["b3", "b1"], ["b2"]]


def test_append_audit(loaded):
    store, b = loaded
    store.append_audit("admin", "export_households", "grid:g1-1", "excel, 2 rows")
    store.append_audit("viewer", "login", "session", "")
    back = store.load()
    assert back.audit_log["action"].tolist() == ["export_households", "login"]
    assert back.audit_log["user"].tolist() == ["admin", "viewer"]
    assert back.audit_log["detail"].tolist() == ["excel, 2 rows", ""]
    # everything else intact
    for name in ("buildings", "households", "plans"):
        assert content_version({name: back.layers[name]}) == content_version({name: b.layers[name]})


# -- quarter snapshots: write-once, with their audit row, on both stores ----------------------
def _raw(store, sql):
    """Run SQL around the store's API, as another tool or a careless script would."""
    if hasattr(store, "dsn"):
        import psycopg
        with psycopg.connect(store.dsn, autocommit=True) as c:
            c.execute(sql)
    else:
        import sqlite3
        c = sqlite3.connect(store.path, isolation_level=None)
        try:
            c.execute(sql)
        finally:
            c.close()


def test_quarter_snapshot_freeze_read_back_and_write_once(loaded):
    from data.store import QuarterFrozen
    store, b = loaded
    v = store.version()
    assert store.quarter_list() == [] and store.quarter_snapshot("2026Q3") is None
    payload = {"plan_id": "p1", "version": v, "totals": {"households": 5, "workload": 12.5},
               "communities": {"c1": {"households": 5, "name_zh": "学清苑"}}, "grids": {"g1-1": {"band": "ok"}}}
    stored = store.freeze_quarter("2026q3", payload, "planner")
    assert stored == dict(payload, quarter="2026Q3")
    assert store.quarter_snapshot("2026Q3") == stored and store.quarter_list() == ["2026Q3"]
    row = store.quarter_snapshots()[0]
    assert (row["quarter"], row["created_by"], row["plan_id"], row["version"]) == ("2026Q3", "planner", "p1", v)
    assert store.version() == v  # not part of the dataset: no version bump, no read-model refresh
    log = store.audit_rows()
    assert log["action"].tolist() == ["freeze_quarter"] and log["object"].tolist() == ["quarter:2026Q3"]
    assert json.loads(log["detail"].iloc[0]) == {"plan_id": "p1", "version": v, "communities": 1, "grids": 1}
    # a second freeze is refused and changes nothing: not the row, not the audit log
    before = store.quarter_snapshots()
    with pytest.raises(QuarterFrozen) as e:
        store.freeze_quarter("2026Q3", dict(payload, totals={"households": 999}), "someone")
    assert e.value.quarter == "2026Q3" and "write-once" in str(e.value)
    assert "2026Q3 已存档" in e.value.text("zh") and "2026Q3 was frozen before" in e.value.text("en")
    assert store.quarter_snapshots() == before and len(store.audit_rows()) == 1
    # ... and the database itself refuses to change or remove a frozen quarter
    for sql in ("UPDATE quarter_snapshots SET payload = '{}'", "DELETE FROM quarter_snapshots"):
        with pytest.raises(Exception, match="write-once"):
            _raw(store, sql)
    assert store.quarter_snapshots() == before
    with pytest.raises(DataError) as bad:
        store.freeze_quarter("2026-3", payload, "planner")
    assert bad.value.field == "quarter" and store.quarter_list() == ["2026Q3"]
    store.freeze_quarter("2026Q4", {"totals": {}}, "planner")
    assert store.quarter_list() == ["2026Q3", "2026Q4"]
    assert [r["quarter"] for r in store.quarter_snapshots(["2026Q4"])] == ["2026Q4"]
    # whole-dataset writes (an import, a project copy) keep the history
    store.write_all(b)
    assert store.quarter_snapshots()[:1] == before


def test_concurrent_freezes_of_one_quarter_exactly_one_wins(loaded):
    from data.store import QuarterFrozen
    store, _ = loaded
    handles = [other_store(store) for _ in range(3)]
    for h in handles:
        h.version()
    res = _race(3, lambda i: handles[i].freeze_quarter("2026Q2", {"n": i}, f"u{i}"))
    wins = [r for r in res if isinstance(r, dict)]
    assert len(wins) == 1 and sum(isinstance(r, QuarterFrozen) for r in res) == 2, res
    assert store.quarter_snapshot("2026Q2") == wins[0]
    assert len(store.audit_rows(action="freeze_quarter")) == 1
    for h in handles:
        getattr(h, "close", lambda: None)()


def test_gpkg_reading_snapshots_never_writes_and_the_table_is_registered(tmp_path):
    import sqlite3

    import pyogrio
    store = GpkgStore(tmp_path / "p.gpkg")
    store.write_all(make_bundle(sample_layers()))
    store.checkpoint()
    before = store.path.read_bytes()
    assert store.quarter_list() == [] and store.quarter_snapshot("2026Q1") is None
    assert store.quarter_snapshots() == []
    assert store.path.read_bytes() == before  # no table made by a read (the shipped sample stays as it is)
    store.freeze_quarter("2026Q1", {"totals": {"households": 5}}, "admin")
    with sqlite3.connect(store.path) as conn:
        contents = dict(conn.execute("SELECT table_name, data_type FROM gpkg_contents").fetchall())
        assert contents["quarter_snapshots"] == "attributes"
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    layers = dict(pyogrio.list_layers(store.path))
    assert "quarter_snapshots" in layers
    assert pyogrio.read_dataframe(store.path, layer="quarter_snapshots")["quarter"].tolist() == ["2026Q1"]
    assert len(store.load().households) == 5


@pytest.mark.postgis
def test_snapshots_follow_the_project_between_stores(tmp_path, pg_dsn):
    """minsheng load copies the frozen quarters along (both directions); a quarter the target
    has frozen is kept there."""
    from data.postgis_store import PostgisStore
    from minsheng.cli import main
    gpkg = GpkgStore(tmp_path / "p.gpkg")
    gpkg.write_all(make_bundle(sample_layers()))
    gpkg.freeze_quarter("2026Q1", {"totals": {"households": 5}}, "alice")
    gpkg.freeze_quarter("2026Q2", {"totals": {"households": 6}}, "bob")
    assert main(["load", "--data", str(gpkg.path), "--dsn", pg_dsn]) == 0
    with PostgisStore(pg_dsn) as pg:
        assert pg.quarter_snapshots() == gpkg.quarter_snapshots()  # created_at/created_by kept
        assert pg.audit_rows(action="import_snapshot")["object"].tolist() == ["quarter:2026Q2", "quarter:2026Q1"]
        pg.freeze_quarter("2026Q3", {"totals": {"households": 7}}, "carol")
    back = tmp_path / "back.gpkg"
    assert main(["load", "--dsn", pg_dsn, "--out", str(back)]) == 0
    assert GpkgStore(back).quarter_list() == ["2026Q1", "2026Q2", "2026Q3"]
    assert main(["load", "--data", str(back), "--dsn", pg_dsn]) == 0  # again: nothing doubled, nothing changed
    with PostgisStore(pg_dsn) as pg:
        assert pg.quarter_snapshots() == GpkgStore(back).quarter_snapshots()


@pytest.mark.postgis
def test_pg_migration_5_and_a_forked_child_opens_its_own_pool(pg_store):
    import os
    from data.migrations import MIGRATIONS
    assert any(n == 5 and "CREATE TABLE quarter_snapshots" in sql for n, _, sql in MIGRATIONS)
    store = pg_store
    store.write_all(make_bundle(sample_layers()))
    v = store.version()

    def backend():
        with store.connection() as c:
            return int(c.execute("SELECT pg_backend_pid()").fetchone()[0])
    parent = backend()  # the parent's pool is open, its connection idle
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # a background job's process: its own connections, the parent's left alone
        code = 1
        try:
            store.freeze_quarter("2026Q1", {"totals": {}}, "job")
            os.write(w, str(backend()).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    child = int(os.read(r, 64).decode() or 0)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert child and child != parent  # not the parent's session on a shared socket
    assert store.version() == v and store.quarter_list() == ["2026Q1"]  # the parent's pool still works
    assert 5 in store.schema_info()["migrations"]


def _race(n, fn):
    """Run fn(i) in n threads released at the same moment; return results/exceptions."""
    barrier = threading.Barrier(n)
    out = [None] * n

    def run(i):
        barrier.wait()
        try:
            out[i] = fn(i)
        except Exception as e:  # noqa: BLE001 - collected for the assertions
            out[i] = e
    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


def test_concurrent_save_plan_exactly_one_wins(loaded):
    store, b = loaded
    handles = [other_store(store) for _ in range(2)]  # separate connections / file handles
    for h in handles:
        h.version()  # warm up (pool, migrations) so that the two saves really overlap
    grids = b.plan_grids("p1")
    assignments = [b.plan_assignments("p1").assign(grid_id=g) for g in ("g1-1", "g1-2")]
    res = _race(2, lambda i: handles[i].save_plan("p1", grids, assignments[i], 1, f"planner_{i}"))
    wins = [r for r in res if r == 2]
    conflicts = [r for r in res if isinstance(r, ConflictError)]
    assert len(wins) == 1 and len(conflicts) == 1, res
    winner = res.index(2)
    back = store.load()
    assert back.plans.set_index("id").loc["p1", "version"] == 2
    assert set(back.plan_assignments("p1")["grid_id"]) == {("g1-1", "g1-2")[winner]}  # no lost/mixed update
    assert back.audit_log["user"].tolist() == [f"planner_{winner}"]
    for h in handles:
        getattr(h, "close", lambda: None)()


def test_concurrent_replace_layers_exactly_one_wins(loaded):
    store, b = loaded
    v = store.version()
    handles = [other_store(store) for _ in range(2)]
    for h in handles:
        h.version()  # warm up (pool, migrations) so that the two saves really overlap
    metas = [pd.DataFrame({"key": ["writer"], "value": [str(i)]}) for i in range(2)]
    # PostGIS: stay inside the transaction a while after writing, so the other save
    # must contend for the version lock rather than start after this one committed
    kw = {"progress": lambda name, n: time.sleep(0.3)} if not isinstance(store, GpkgStore) else {}
    res = _race(2, lambda i: handles[i].replace_layers({"meta": metas[i]}, expected_version=v, **kw))
    conflicts = [r for r in res if isinstance(r, ConflictError)]
    wins = [i for i, r in enumerate(res) if isinstance(r, str)]
    assert len(conflicts) == 1 and len(wins) == 1, res
    assert store.load().meta["value"].tolist() == [str(wins[0])]
    assert store.version() == res[wins[0]]
    for h in handles:
        getattr(h, "close", lambda: None)()


# -- PostGIS only ------------------------------------------------------------------------
@pytest.fixture
def pg_store(pg_dsn):
    from data.postgis_store import PostgisStore
    s = PostgisStore(pg_dsn)
    yield s
    s.close()


@pytest.mark.postgis
def test_pg_schema_migrations_geometry_and_indexes(pg_store, pg_dsn):
    from data.migrations import MIGRATIONS
    from data.postgis_store import PostgisStore
    assert pg_store.migrate() == [n for n, _, _ in MIGRATIONS]  # first use applies all, in order
    assert pg_store.migrate() == []  # idempotent
    with PostgisStore(pg_dsn) as again:
        assert again.migrate() == []
    info = pg_store.schema_info()
    assert info["migrations"] == [n for n, _, _ in MIGRATIONS]
    for layer in LAYERS:
        if layer.geometry:
            assert info["geometry_columns"][layer.name] == (layer.geometry.upper(), 4326)
            assert any("USING gist (geom)" in d for d in info["indexes"][layer.name]), layer.name
    idx = {t: " ".join(ds) for t, ds in info["indexes"].items()}
    assert "(plan_id, id)" in idx["grids"]
    assert "(building_id)" in idx["assignments"] and "(plan_id, grid_id)" in idx["assignments"]
    assert "(plan_id, building_id)" in idx["assignments"]
    assert "(building_id)" in idx["households"]


@pytest.mark.postgis
def test_pg_fresh_database_loads_empty(pg_store):
    b = pg_store.load()
    assert all(len(df) == 0 for df in b.layers.values())
    assert b.version == pg_store.version() and b.version.endswith("-0")
    assert pg_store.counts() == {layer.name: 0 for layer in LAYERS}


@pytest.mark.postgis
@pytest.mark.parametrize("layer,field,edit", [
    ("households", "id", lambda df: df.assign(id=["h1", "h2", "h1", "h4", "h5"])),           # duplicate key
    ("assignments", "plan_id,building_id", lambda df: df.assign(building_id=["b1", "b1", "b3", "b1", "b2", "b3"])),
    ("buildings", "geometry", lambda df: df.set_geometry([df.geometry.iloc[0], Point(0, 0), df.geometry.iloc[2]])),
])
def test_pg_bad_rows_refused_before_writing(pg_store, layer, field, edit):
    store = pg_store
    store.write_all(make_bundle(sample_layers()))
    before, v = layer_versions(store.load()), store.version()
    layers = sample_layers()
    layers[layer] = edit(layers[layer])
    with pytest.raises(DataError) as e:
        store.write_all(Bundle(layers, "", ""))
    assert (e.value.layer, e.value.field) == (layer, field)
    assert e.value.row == {"households": 3, "assignments": 2, "buildings": 2}[layer]
    assert store.version() == v and layer_versions(store.load()) == before


@pytest.mark.postgis
def test_pg_constraint_violation_in_database_rolls_back(pg_store):
    """A refusal only the database sees (CHECK constraint) mid-transaction: nothing changes."""
    store = pg_store
    store.write_all(make_bundle(sample_layers()))
    before, v = layer_versions(store.load()), store.version()
    layers = sample_layers()
    layers["plans"] = layers["plans"].assign(status=["adopted", "半成品"])
    with pytest.raises(DataError) as e:
        store.replace_layers({"buildings": layers["buildings"].iloc[:1], "plans": layers["plans"]},
                             expected_version=v)
    assert (e.value.layer, e.value.row) == ("plans", 2)
    assert "constraint" in str(e.value) and "半成品" not in str(e.value)  # no row contents in messages
    assert store.version() == v and layer_versions(store.load()) == before


@pytest.mark.postgis
def test_pg_version_is_monotonic_and_pool_reopens(pg_store):
    store = pg_store
    numbers = []
    for i in range(3):
        store.replace_layers({"meta": pd.DataFrame({"key": ["i"], "value": [str(i)]})})
        numbers.append(int(store.version().rsplit("-", 1)[1]))
        store.close()  # closable; the next call opens a new pool
    assert numbers == sorted(numbers) and len(set(numbers)) == 3
    store.append_audit("admin", "login", "session")
    assert int(store.version().rsplit("-", 1)[1]) == numbers[-1]  # audit rows do not bump the version


@pytest.mark.postgis
def test_pg_load_sees_one_snapshot_while_writers_run(pg_store, pg_dsn):
    from data.postgis_store import PostgisStore
    store = pg_store
    base = sample_layers()
    store.write_all(make_bundle({**base, "meta": base["meta"].iloc[:1], "households": base["households"].iloc[:1]}))
    writer = PostgisStore(pg_dsn)
    stop = threading.Event()

    def write_loop():
        i = 0
        while not stop.is_set():
            n = 1 + i % 3  # meta and households always written with equal sizes
            writer.replace_layers({"meta": pd.DataFrame({"key": [f"k{j}" for j in range(n)], "value": ["v"] * n}),
                                   "households": base["households"].iloc[:n]})
            i += 1
    t = threading.Thread(target=write_loop)
    t.start()
    try:
        for _ in range(15):
            b = store.load()
            assert len(b.meta) == len(b.households) > 0  # both layers from the same committed write
    finally:
        stop.set()
        t.join(30)
        writer.close()


@pytest.mark.postgis
def test_pg_dsn_password_is_not_shown():
    from data.postgis_store import PostgisStore, _redact
    assert "s3cret" not in repr(PostgisStore("postgresql://me:s3cret@db:5432/x"))
    assert "s3cret" not in _redact("host=db password=s3cret dbname=x")


@pytest.mark.postgis
def test_pg_aggregates_match_pandas(pg_store):
    from data.catalogue import key_groups
    from geo.coverage import grid_table
    from geo.validate import plan_index
    store = pg_store
    b = make_bundle(sample_layers())
    store.write_all(b)
    keys = ("empty_nest_elderly", "party_member", "disabled", "veteran", "低保")
    grids = b.plan_grids("p1")
    table = grid_table(grids, b.households, plan_index(grids, b.communities, b.buildings, b.plan_assignments("p1")),
                       tag_keys=list(keys)).set_index("id")
    s = store.grid_summary("p1", "g1-2", keys)
    want = table.loc["g1-2"]
    assert s["buildings"] == 2 and s["households"] == int(want["households"]) == 2
    assert s["persons"] == int(want["persons"]) == 7
    assert all(s[k] == int(want[k]) for k in keys)
    assert s["disabled"] == 1 and s["veteran"] == 1 and s["低保"] == 1 and s["party_member"] == 0
    cov = store.households_per_grid("p1")
    assert cov.to_dict("index") == {"g1-1": {"buildings": 1, "households": 2, "persons": 3},
                                    "g1-2": {"buildings": 2, "households": 2, "persons": 7}}
    assert store.grid_summary("p1", "nope", tuple(k.key for k in key_groups()))["households"] == 0


def test_missing_postgres_fails_clearly_unless_skip_is_set(tmp_path):
    """CI contract: without PostgreSQL/PostGIS the PostGIS tests FAIL, unless MINSHENG_SKIP_POSTGIS=1."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    (tmp_path / "conftest.py").write_text(
        f"import sys\nsys.path.insert(0, {str(root)!r})\nfrom tests.pg import pg_cluster, pg_dsn  # noqa\n")
    (tmp_path / "test_x.py").write_text("def test_x(pg_dsn):\n    assert pg_dsn\n")
    env = {**os.environ, "MINSHENG_PG_BINDIR": str(tmp_path / "nowhere")}
    env.pop("MINSHENG_SKIP_POSTGIS", None)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(tmp_path)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode != 0 and "PostgreSQL server binaries" in r.stdout and "MINSHENG_SKIP_POSTGIS" in r.stdout
    r = subprocess.run(cmd, env={**env, "MINSHENG_SKIP_POSTGIS": "1"}, capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0 and "1 skipped" in r.stdout


def test_gpkg_of_an_earlier_version_gets_empty_compounds_gates_and_scenarios(tmp_path):
    """A project written before compounds, gates and scenarios were layers is upgraded when
    opened: the three layers are added empty (GDAL-made, in gpkg_contents), nothing else changes."""
    import sqlite3
    path = tmp_path / "old.gpkg"
    GpkgStore(path).write_all(make_bundle(sample_layers()))
    with sqlite3.connect(path) as c:
        for t in ("compounds", "gates", "scenarios"):
            for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?", (t,)).fetchall():
                c.execute(f'DROP TRIGGER "{r[0]}"')
            c.execute(f'DROP TABLE IF EXISTS "rtree_{t}_geom"')     # the R-tree and its shadow tables
            c.execute(f'DROP TABLE "{t}"')
            for meta in ("gpkg_contents", "gpkg_geometry_columns"):
                c.execute(f"DELETE FROM {meta} WHERE table_name = ?", (t,))
            c.execute("DELETE FROM gpkg_extensions WHERE table_name = ?", (t,))
    store = GpkgStore(path)
    rm = store.read_model()
    assert rm.compounds.empty and rm.gates.empty and store.scenarios().empty
    assert len(rm.buildings) == 3
    with sqlite3.connect(path) as c:
        kinds = dict(c.execute("SELECT table_name, data_type FROM gpkg_contents").fetchall())
    assert kinds["compounds"] == kinds["gates"] == "features" and kinds["scenarios"] == "attributes"
    assert store.save_scenario({"name": "x", "service_type": "clinic", "k": 1}, "u") == "S1"
    # the added layers are real GeoPackage layers: written through the store, read back by GDAL
    layers = sample_layers()
    store.replace_layers({"compounds": layers["compounds"], "gates": layers["gates"]})
    store.add_gate("w2", Point(116.3335, 40.011), "u")
    store.move_gate("n10", Point(116.3312, 40.01), "u")
    with sqlite3.connect(path) as c:
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert c.execute("SELECT count(*) FROM rtree_gates_geom").fetchone()[0] == 4
    import pyogrio
    g = pyogrio.read_dataframe(path, layer="gates")
    assert g["id"].tolist() == ["n10", "n11", "n12", "G1"] and g.crs.to_epsg() == 4326
