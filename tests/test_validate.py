"""geo/validate + geo/coverage.audit_plan: a clean hand-made plan, and one broken plan per problem kind.

Plan (metres east/north of lon 116.35, lat 40.0):
  community C1 = [0,200]x[0,100]; level-1 A = west half, B = east half;
  level-2 A1 (south) / A2 (north) in A, B1 (south) / B2 (north) in B.
"""
import geopandas as gpd
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings

from geo.coverage import audit_plan
from geo.tessellate import derive_grid_boundaries
from geo.validate import KINDS, Tolerances, problems_frame, validate_plan

LON, LAT = 116.35, 40.0
DX, DY = 1 / 85_300, 1 / 111_000
P = "1001110108012"
BANDS = {0: (5, 20), 1: (3, 10), 2: (1, 5)}


def box_m(x0, y0, x1, y1):
    return shapely.box(LON + x0 * DX, LAT + y0 * DY, LON + x1 * DX, LAT + y1 * DY)


def clean_plan() -> dict:
    communities = gpd.GeoDataFrame({"id": ["C1"], "code": ["110108012001"], "name": ["学清社区"]},
                                   geometry=[box_m(0, 0, 200, 100)], crs=4326)
    grids = gpd.GeoDataFrame({
        "id": ["A", "B", "A1", "A2", "B1", "B2"], "plan_id": "P1",
        "level": [1, 1, 2, 2, 2, 2], "parent_id": ["C1", "C1", "A", "A", "B", "B"],
        "code": [P + "0010100", P + "0010200", P + "0010102", P + "0010101", P + "0010202", P + "0010201"],
        "name": ["A", "B", "A1", "A2", "B1", "B2"],
        "head_name": ["张三", "李四", "王五", "赵六", "钱七", "孙八"], "head_phone": "13800000000"},
        geometry=[box_m(0, 0, 100, 100), box_m(100, 0, 200, 100), box_m(0, 0, 100, 50), box_m(0, 50, 100, 100),
                  box_m(100, 0, 200, 50), box_m(100, 50, 200, 100)], crs=4326)
    buildings = gpd.GeoDataFrame({"id": ["b1", "b2", "b3", "b4", "b5"]}, geometry=[
        box_m(20, 10, 30, 20), box_m(60, 10, 70, 20), box_m(20, 60, 30, 70), box_m(120, 10, 130, 20),
        box_m(150, 60, 160, 70)], crs=4326)
    assignments = pd.DataFrame({"plan_id": "P1", "building_id": ["b1", "b2", "b3", "b4", "b5"],
                                "grid_id": ["A1", "A1", "A2", "B1", "B2"]})
    households = pd.DataFrame({
        "id": [f"h{i}" for i in range(1, 10)],
        "building_id": ["b1", "b1", "b1", "b2", "b3", "b3", "b4", "b5", "b5"],
        "persons": [1, 2, 3, 4, 2, 2, 1, 3, 1],
        "tags": [["empty_nest_elderly"], [], ["party_member", "empty_nest_elderly"], ["veteran"], [], [], [],
                 ["party_member"], []],
        "head_name": "某某", "phone": "13900000000"})
    return {"grids": grids, "communities": communities, "buildings": buildings, "assignments": assignments,
            "households": households}


def audit(plan, **kw):
    kw.setdefault("bands", BANDS)
    kw.setdefault("tag_keys", ["empty_nest_elderly", "party_member", "veteran"])
    return audit_plan(plan["grids"], plan["communities"], plan["buildings"], plan["assignments"],
                      plan["households"], **kw)


def kinds(a):
    return [p.kind for p in a.problems]


def only(a, kind):
    found = [p for p in a.problems if p.kind == kind]
    assert found, f"no {kind} in {kinds(a)}"
    return found


def set_geom(gdf, gid, geom):
    gdf = gdf.copy()
    gdf.loc[gdf["id"] == gid, "geometry"] = geom
    return gdf


def m2(geom):
    return float(gpd.GeoSeries([geom], crs=4326).to_crs(32650).area.iloc[0])


def test_clean_plan_has_no_problems():
    a = audit(clean_plan())
    assert a.ok and a.problems == ()
    assert a.to_dict()["ok"] is True


def test_invalid_geometry():
    plan = clean_plan()
    bowtie = shapely.Polygon([(LON + 20 * DX, LAT + 10 * DY), (LON + 30 * DX, LAT + 20 * DY),
                              (LON + 30 * DX, LAT + 10 * DY), (LON + 20 * DX, LAT + 20 * DY)])
    plan["buildings"] = set_geom(plan["buildings"], "b1", bowtie)
    plan["grids"] = set_geom(plan["grids"], "B2", None)
    a = audit(plan)
    inv = only(a, "invalid_geometry")
    assert {p.ids for p in inv} == {("b1",), ("B2",)}
    assert any("Self-intersection" in p.detail for p in inv)


def test_not_nested_outside_parent_and_unknown_parent():
    plan = clean_plan()
    plan["grids"] = set_geom(plan["grids"], "A1", box_m(0, -20, 100, 50))  # 2,000 m² south of A and C1
    g = plan["grids"]
    g.loc[g["id"] == "B2", "parent_id"] = "ZZ"
    a = audit(plan)
    nn = only(a, "not_nested")
    assert {p.ids for p in nn} == {("A1", "A"), ("B2",)}
    out = next(p for p in nn if p.ids == ("A1", "A"))
    assert m2(out.geometry) == pytest.approx(2000, rel=0.01)
    assert "outside its parent A" in out.detail
    # B2 no longer counts in B: B has a gap where B2 was
    assert ("B",) in {p.ids for p in only(a, "gap")}


def test_small_protrusion_within_tolerance_is_not_reported():
    plan = clean_plan()
    plan["grids"] = set_geom(plan["grids"], "A1", box_m(0, -0.005, 100, 50))  # 0.5 m² outside
    assert "not_nested" not in kinds(audit(plan))


def test_gap_reported_with_polygon_and_slivers_ignored():
    plan = clean_plan()
    plan["grids"] = set_geom(plan["grids"], "B1", box_m(100, 0, 190, 50))  # 500 m² hole in B
    gap = only(audit(plan), "gap")
    assert [p.ids for p in gap] == [("B",)]
    assert m2(gap[0].geometry) == pytest.approx(500, rel=0.01)
    assert "500 m²" in gap[0].detail
    sliver = clean_plan()
    sliver["grids"] = set_geom(sliver["grids"], "B1", box_m(100, 0, 199.95, 50))  # 2.5 m² but 5 cm wide
    assert "gap" not in kinds(audit(sliver))


def test_community_without_level1_grids_is_one_big_gap():
    plan = clean_plan()
    c2 = gpd.GeoDataFrame({"id": ["C2"], "code": ["110108012002"], "name": ["x"]},
                          geometry=[box_m(200, 0, 300, 100)], crs=4326)
    plan["communities"] = pd.concat([plan["communities"], c2], ignore_index=True)
    gap = only(audit(plan), "gap")
    assert [p.ids for p in gap] == [("C2",)] and "has no level-1 grids" in gap[0].detail


def test_overlap_between_grids_of_one_level():
    plan = clean_plan()
    plan["grids"] = set_geom(plan["grids"], "A2", box_m(0, 40, 100, 100))  # 1,000 m² over A1
    a = audit(plan)
    ov = only(a, "overlap")
    assert [p.ids for p in ov] == [("A1", "A2")]
    assert m2(ov[0].geometry) == pytest.approx(1000, rel=0.01)
    assert "gap" not in kinds(a) and "not_nested" not in kinds(a)


def test_unassigned_buildings():
    plan = clean_plan()
    a_ = plan["assignments"]
    plan["assignments"] = a_[a_["building_id"] != "b5"].copy()
    plan["assignments"].loc[plan["assignments"]["building_id"] == "b4", "grid_id"] = "nope"
    plan["assignments"] = pd.concat([plan["assignments"], pd.DataFrame(
        {"plan_id": ["P1"], "building_id": ["ghost"], "grid_id": ["A1"]})], ignore_index=True)
    a = audit(plan)
    un = {p.ids: p.detail for p in only(a, "unassigned_building")}
    assert set(un) == {("b5",), ("b4",), ("ghost",)}
    assert "lies in grid B2" in un[("b5",)] and "2 households" in un[("b5",)]
    assert "unknown grid nope" in un[("b4",)]
    assert "unknown building ghost" in un[("ghost",)]
    assert a.totals["households_unassigned_building"] == 3 and a.totals["households_in_grids"] == 6


def test_building_outside_every_grid_is_unassigned():
    plan = clean_plan()
    plan["buildings"] = set_geom(plan["buildings"], "b5", box_m(250, 60, 260, 70))
    un = only(audit(plan), "unassigned_building")
    assert [p.ids for p in un] == [("b5",)] and "outside every level-2 grid" in un[0].detail


def test_split_building_across_grids_and_assigned_twice():
    plan = clean_plan()
    plan["buildings"] = set_geom(plan["buildings"], "b2", box_m(90, 10, 110, 20))  # half in A1, half in B1
    plan["assignments"] = pd.concat([plan["assignments"], pd.DataFrame(
        {"plan_id": ["P1"], "building_id": ["b3"], "grid_id": ["B2"]})], ignore_index=True)
    a = audit(plan)
    sp = {p.ids: p for p in only(a, "split_building")}
    assert set(sp) == {("b2",), ("b3",)}
    assert "A1 50%" in sp[("b2",)].detail and "B1 50%" in sp[("b2",)].detail
    assert "assigned 2 times" in sp[("b3",)].detail
    # counted once, in its first grid
    assert a.grids.set_index("id").loc["A2", "buildings"] == 1


def test_small_overhang_is_not_a_split():
    plan = clean_plan()
    plan["buildings"] = set_geom(plan["buildings"], "b2", box_m(60, 10, 100.1, 20))  # 1 m² (0.25%) in B1
    assert "split_building" not in kinds(audit(plan))


def test_misplaced_building():
    plan = clean_plan()
    plan["assignments"].loc[plan["assignments"]["building_id"] == "b4", "grid_id"] = "A1"
    mp = only(audit(plan), "misplaced_building")
    assert [p.ids for p in mp] == [("b4", "A1", "B1")]


def test_orphan_households_are_reported_not_dropped():
    plan = clean_plan()
    extra = pd.DataFrame({"id": ["h10", "h11"], "building_id": ["ghost", "ghost"], "persons": [2, 5],
                          "tags": [[], []]})
    plan["households"] = pd.concat([plan["households"], extra], ignore_index=True)
    a = audit(plan)
    orphan = only(a, "orphan_household")
    # one problem per unknown building (what a user fixes), with its households and persons
    assert [p.ids for p in orphan] == [("ghost",)] and "2 households (7 persons)" in orphan[0].detail
    assert a.totals["households_orphan"] == 2 and a.totals["households"] == 11


def test_out_of_band_per_level_and_community():
    a = audit(clean_plan(), bands={0: (10, 20), 1: (4, 10), 2: (1, 3)})
    oob = {p.ids: p.detail for p in only(a, "out_of_band")}
    # community 9 < 10; B 3 < 4; A1 4 > 3
    assert set(oob) == {("C1",), ("B",), ("A1",)}
    assert "has 4 households, high" in oob[("A1",)] and "low" in oob[("C1",)]


def test_missing_head_never_prints_names():
    plan = clean_plan()
    plan["grids"].loc[plan["grids"]["id"] == "B", "head_name"] = None
    plan["grids"].loc[plan["grids"]["id"] == "A2", "head_name"] = "  "
    a = audit(plan)
    assert {p.ids for p in only(a, "missing_head")} == {("B",), ("A2",)}
    text = " ".join(p.detail for p in a.problems)
    assert "张三" not in text and "138" not in text


def test_bad_code_through_audit():
    plan = clean_plan()
    plan["grids"].loc[plan["grids"]["id"] == "B1", "code"] = P + "0010201"  # duplicate of B2
    plan["grids"].loc[plan["grids"]["id"] == "A2", "code"] = "123"
    a = audit(plan, code_prefix=P)
    bad = {p.ids for p in only(a, "bad_code")}
    assert bad == {("B1", "B2"), ("A2",)}
    assert [k for k in kinds(a) if k != "bad_code"] == []


def test_every_kind_is_exercised_and_ordered():
    assert set(KINDS) >= {"invalid_geometry", "not_nested", "gap", "overlap", "unassigned_building",
                          "split_building", "orphan_household", "out_of_band", "missing_head", "bad_code"}
    plan = clean_plan()
    plan["grids"] = set_geom(plan["grids"], "A2", box_m(0, 40, 100, 100))
    plan["grids"].loc[plan["grids"]["id"] == "B", "head_name"] = None
    a = audit(plan)
    order = [KINDS.index(k) for k in kinds(a)]
    assert order == sorted(order)
    pf = problems_frame(a.problems)
    assert list(pf.columns) == ["kind", "ids", "detail", "geometry"] and pf.crs.to_epsg() == 4326


def test_validate_plan_reports_timings():
    plan = clean_plan()
    t = {}
    assert validate_plan(plan["grids"], plan["communities"], plan["buildings"], plan["assignments"],
                         plan["households"], timings=t) == []
    assert {"project", "gaps", "buildings"} <= set(t)


# -- property: boundaries derived from assignments never have gaps or overlaps -----------------

from test_tessellate import plans  # noqa: E402  (hypothesis strategy of random plans)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plans())
def test_derived_plan_has_no_gap_overlap_or_nesting_problem(plan):
    grids, assignments, b, communities = plan
    g = derive_grid_boundaries(grids, assignments, b, communities)
    hh = pd.DataFrame({"id": ["h0"], "building_id": [b["id"].iloc[0]], "persons": [1], "tags": [[]]})
    problems = validate_plan(g, communities, b, assignments, hh, tolerances=Tolerances())
    assert not [p for p in problems if p.kind in ("gap", "overlap", "not_nested", "unassigned_building",
                                                   "orphan_household")], [p.detail for p in problems]
