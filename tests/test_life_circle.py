"""Life circles: tiers not inclusive, walking profiles, gated compounds, path explanation, siting."""
from __future__ import annotations

import itertools

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from data.bundle import DataError
from data.catalogue import LifeCircleCatalogue, Requirement, Tier, WalkProfile, life_circles
from geo.explain import explain
from geo.gates import compound_zones, gate_network, snap_zoned
from geo.life_circle import (building_stats, building_tiers, compliance, compliance_shares, profile_edges,
                             requirement_failures)
from geo.network import build_walk_graph, snap
from geo.service_circle import nearest_distances
from geo.siting import site

CRS = "EPSG:32650"
X0, Y0 = 440_000.0, 4_428_000.0


def P(x, y):
    return shapely.Point(X0 + x, Y0 + y)


def L(*pts):
    return shapely.LineString([(X0 + x, Y0 + y) for x, y in pts])


def edges(rows):
    """rows: (u, v, [(x, y), ...], highway)"""
    return gpd.GeoDataFrame({"u": [r[0] for r in rows], "v": [r[1] for r in rows],
                             "highway": [r[3] if len(r) > 3 else "footway" for r in rows]},
                            geometry=[L(*r[2]) for r in rows], crs=CRS).assign(length_m=lambda d: d.length)


def box(x0, y0, x1, y1):
    return shapely.box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def gdf(**cols):
    geom = cols.pop("geometry")
    return gpd.GeoDataFrame(cols, geometry=geom, crs=CRS)


TIERS = (Tier("5min", "五分钟", "5 min", 5, 300, 1), Tier("15min", "十五分钟", "15 min", 15, 800, 3))
REQS = (Requirement("5min", "health_station", "卫生服务站", "health station", ("clinic",), ("gb",)),
        Requirement("15min", "health_center", "卫生服务中心", "health centre", ("health_center",), ("gb",)))
PROFILES = (WalkProfile("general", "一般", "General", 80, (), ()),
            WalkProfile("elderly", "老年", "Elderly", 60, (), ("empty_nest_elderly",)),
            WalkProfile("wheelchair", "轮椅", "Wheelchair", 60, ("steps",), ("disabled",)))
CAT = LifeCircleCatalogue(TIERS, REQS, PROFILES, ("gb",))


def street_line(n=11, step=100.0):
    """A straight street of n nodes, step metres apart, along y = 0."""
    return edges([(i, i + 1, [(i * step, 0), ((i + 1) * step, 0)]) for i in range(n - 1)])


# -- tiers ------------------------------------------------------------------

def test_shipped_catalogue_has_the_standard_tiers_and_the_complete_community_five():
    cat = life_circles()
    assert [t.key for t in cat.tiers] == ["block", "5min", "10min", "15min"]
    assert [(t.minutes, t.reach_m) for t in cat.tiers[1:]] == [(5, 300), (10, 500), (15, 800)]
    five = [r.key for r in cat.requirements if "complete_community" in r.standards]
    assert five == ["community_station", "kindergarten", "nursery", "elderly_station", "health_station"]
    assert all(r.tier == "5min" for r in cat.requirements if r.key in five)
    # the Shanghai rule set is off by default and adds 0-3 childcare at 10 minutes when switched on
    assert "childcare_0_3" not in [r.key for r in cat.requirements]
    sh = life_circles(standards=("shanghai",))
    assert [(r.tier, r.key) for r in sh.requirements] == [("5min", "elderly_station"), ("10min", "childcare_0_3")]


def test_override_directory_replaces_requirements_and_bad_rows_name_row_and_field(tmp_path):
    (tmp_path / "life_circle_requirements.csv").write_text(
        "tier,key,zh,en,types,standards\n5min,clinic5,卫生站,Clinic,clinic,local\n", encoding="utf-8")
    cat = life_circles(str(tmp_path), ("local",))
    assert [r.key for r in cat.requirements] == ["clinic5"] and len(cat.tiers) == 4
    (tmp_path / "life_circle_requirements.csv").write_text(
        "tier,key,zh,en,types,standards\n5min,a,甲,A,clinic,local\n5min,b,乙,B,no_such_type,local\n", encoding="utf-8")
    with pytest.raises(DataError) as e:
        life_circles(str(tmp_path), ("local",))
    assert e.value.row == 2 and e.value.field == "types" and "no_such_type" in str(e.value)


def test_tiers_are_not_inclusive():
    """A health centre (15-minute tier) 50 m away does not meet the 5-minute health-station
    requirement; a clinic 600 m away meets neither the 5-minute tier (too far) nor the 15-minute
    one (wrong type)."""
    e = street_line()
    g = build_walk_graph(e, crs=CRS)
    b = gdf(id=["b"], geometry=[P(100, 5)])
    pts = gdf(id=["c", "h"], type=["clinic", "health_center"], geometry=[P(700, 0), P(150, 0)])
    tab = compliance(g, b, snap(g, b.geometry), pts, snap(g, pts.geometry), CAT, PROFILES[0], 80)
    r = tab.set_index("requirement")
    # distances are searched only as far as the tier reaches: beyond it walk_m is inf
    assert not r.at["health_station", "within"] and r.at["health_station", "walk_m"] == np.inf
    assert r.at["health_center", "within"] and r.at["health_center", "walk_m"] == pytest.approx(55)
    bt = building_tiers(tab).set_index("tier")
    assert bt.at["15min", "ok"] and not bt.at["5min", "ok"] and bt.at["5min", "failed"] == "health_station"


# -- profiles ---------------------------------------------------------------

def test_group_speeds_and_shares_under_each_groups_own_profile():
    """A building 255 m from a clinic meets the 5-minute tier at the adult pace (300 m) but not at
    the elderly pace (300 m x 60/80 = 225 m); a building 205 m away meets both."""
    g = build_walk_graph(street_line(), crs=CRS)
    b = gdf(id=["far", "near"], geometry=[P(250, 5), P(200, 5)])
    pts = gdf(id=["c", "h"], type=["clinic", "health_center"], geometry=[P(0, 0), P(0, 0)])
    bs, ps = snap(g, b.geometry), snap(g, pts.geometry)
    tables = {p.key: compliance(g, b, bs, pts, ps, CAT, p, 80) for p in PROFILES[:2]}
    el = tables["elderly"].set_index(["building_id", "requirement"])
    assert el.at[("far", "health_station"), "threshold_m"] == pytest.approx(225)
    assert not el.at[("far", "health_station"), "within"] and el.at[("near", "health_station"), "within"]
    assert tables["general"].set_index(["building_id", "requirement"]).at[("far", "health_station"), "within"]
    hh = pd.DataFrame({"id": ["h1", "h2", "h3", "h4"], "building_id": ["far", "far", "far", "near"],
                       "persons": [2, 3, 1, 4],
                       "tags": [["empty_nest_elderly"], [], ["empty_nest_elderly"], ["empty_nest_elderly"]]})
    stats = building_stats(hh, ["empty_nest_elderly"])
    assert stats.set_index("building_id").loc["far", ["households", "persons", "empty_nest_elderly"]].tolist() == [3, 6, 2]
    sc = pd.DataFrame({"building_id": ["far", "near"], "grid": ["g1", "g1"]})
    sh = compliance_shares(tables, stats, sc, CAT, groups=["empty_nest_elderly"])
    five = sh[(sh["scope"] == "grid") & (sh["tier"] == "5min")].set_index("group")
    assert five.at["all", "households_ok"] == 4 and five.at["all", "share_persons"] == 1.0   # adults: both
    assert five.at["empty_nest_elderly", "profile"] == "elderly"
    assert five.at["empty_nest_elderly", "households"] == 3 and five.at["empty_nest_elderly", "households_ok"] == 1
    fails = requirement_failures(tables["elderly"], stats, sc)
    assert fails[["scope_id", "requirement", "households_failing", "buildings_failing"]].values.tolist() == \
        [["g1", "health_station", 3, 1]]


def test_wheelchair_profile_avoids_steps():
    """Steps give a 40 m short cut; the wheelchair graph goes round (240 m)."""
    e = edges([(0, 1, [(0, 0), (0, 40)], "steps"), (0, 2, [(0, 0), (100, 0)]), (2, 3, [(100, 0), (100, 40)]),
               (3, 1, [(100, 40), (0, 40)])])
    b = gdf(id=["b"], geometry=[P(0, 0)])
    pt = gdf(id=["c"], type=["clinic"], geometry=[P(0, 40)])
    d = {}
    for prof in PROFILES[::2]:
        g = build_walk_graph(profile_edges(e, prof), crs=CRS)
        d[prof.key] = nearest_distances(g, snap(g, pt.geometry), snap(g, b.geometry))[0]
    assert d["general"] == pytest.approx(40) and d["wheelchair"] == pytest.approx(240)


# -- gated compounds ----------------------------------------------------------

def compound_world():
    """Compound (0,0)-(100,100) with a building at (50,55). Inside paths lead south through a
    gate at (50,0) to the street y=-20, and east through the wall at (100,50) to the street
    x=250. The clinic is on the east street at (250,60)."""
    e = edges([(1, 2, [(-50, -20), (50, -20)], "residential"), (2, 3, [(50, -20), (250, -20)], "residential"),
               (3, 4, [(250, -20), (250, 50)], "residential"), (4, 5, [(250, 50), (250, 200)], "residential"),
               (6, 2, [(50, 50), (50, -20)], "service"), (6, 4, [(50, 50), (250, 50)], "footway")])
    compounds = gdf(id=["c1"], name=["小区"], geometry=[box(0, 0, 100, 100)])
    gates = gdf(id=["gate-s"], compound_id=["c1"], geometry=[P(50, 0)])
    b = gdf(id=["in", "out"], geometry=[box(45, 52, 55, 58), box(150, -40, 160, -30)])
    pts = gdf(id=["clinic"], type=["clinic"], geometry=[P(250, 60)])
    return e, compounds, gates, b, pts


def gated_distance(closed=("c1",), closed_gates=()):
    e, compounds, gates, b, pts = compound_world()
    ge = gate_network(e, compounds, gates, closed, closed_gates, crs=CRS)
    g = build_walk_graph(ge.edges, crs=CRS)
    bs = snap_zoned(g, b.geometry, compound_zones(b.geometry, compounds, ge.closed, crs=CRS), ge)
    ps = snap_zoned(g, pts.geometry, compound_zones(pts.geometry, compounds, ge.closed, crs=CRS), ge)
    return g, ge, bs, ps, nearest_distances(g, ps, bs)


def test_closed_compound_is_left_only_through_its_gate():
    _, _, _, _, open_d = gated_distance(closed=())
    g, ge, bs, ps, closed_d = gated_distance()
    # open: 5 m from the footprint, straight east through the wall 200 m, 10 m up the street
    assert open_d[0] == pytest.approx(215, abs=1)
    # closed: 5 m, 70 m south through the gate, 200 m east, 80 m north
    assert closed_d[0] == pytest.approx(355, abs=1)
    assert len(ge.cuts) == 1 and ge.crossings["gate_id"].tolist() == ["gate-s"]
    assert open_d[1] == pytest.approx(closed_d[1])          # a building outside is not affected
    ex = explain(g, ps, bs.take([0]), 300)
    assert ex.status == "beyond" and ex.walk_m == pytest.approx(closed_d[0])
    assert ex.path.distance(P(50, 0)) < 1 and ex.path.distance(P(100, 50)) > 20
    # every gate shut: the building is cut off
    _, _, _, _, shut = gated_distance(closed_gates=("gate-s",))
    assert not np.isfinite(shut[0]) and np.isfinite(shut[1])


def test_compound_without_inside_paths_walks_to_its_gate():
    e, compounds, gates, b, pts = compound_world()
    e = e[~e["u"].eq(6)]                                    # no mapped paths inside
    ge = gate_network(e, compounds, gates, ("c1",), (), crs=CRS)
    g = build_walk_graph(ge.edges, crs=CRS)
    bs = snap_zoned(g, b.geometry, compound_zones(b.geometry, compounds, ge.closed, crs=CRS), ge)
    assert bs.edge[0] >= 0 and bs.offset[0] == pytest.approx(55 + 20, abs=1)   # footprint -> gate -> street


# -- why outside --------------------------------------------------------------

def test_path_explanation_follows_the_streets_and_names_cut_off_parts():
    e = street_line(6)
    e = pd.concat([e, edges([(100, 101, [(0, 500), (100, 500)])])], ignore_index=True)  # a detached path
    g = build_walk_graph(e, crs=CRS)
    pts = gdf(id=["a", "b"], type=["clinic"] * 2, geometry=[P(0, 10), P(480, 0)])
    b = gdf(id=["x", "y"], geometry=[P(120, 5), P(50, 505)])
    ps, bs = snap(g, pts.geometry), snap(g, b.geometry)
    ex = explain(g, ps, bs.take([0]), 100)
    assert ex.status == "beyond" and ex.source == 0 and ex.walk_m == pytest.approx(5 + 120 + 10)
    assert ex.shortfall_m == pytest.approx(35)
    # the path runs between the snapped points (the 5 m and 10 m offsets are not drawn)
    assert ex.path.length == pytest.approx(ex.walk_m - 15, abs=0.5)
    assert ex.path.coords[0] == pytest.approx((X0 + 120, Y0)) and ex.path.coords[-1] == pytest.approx((X0, Y0))
    assert explain(g, ps, bs.take([0]), 200).status == "within"
    cut = explain(g, ps, bs.take([1]), 100)
    assert cut.status == "unreachable" and cut.path is None and cut.component_nodes == 2
    assert cut.component != g.largest


# -- siting -----------------------------------------------------------------

def test_siting_finds_the_known_optimum_with_existing_points_fixed():
    """Street 0..800 m, demand at every 100 m. An existing point at 800 covers 700-800. Reach
    150 m: a point covers its node and both neighbours. The best two new points are 100 m
    (0-200: 5+1) and 400 m (300-500: 6+6+6): 24 more households."""
    g = build_walk_graph(street_line(9), crs=CRS)
    xs = np.arange(9) * 100.0
    w = np.array([5, 0, 1, 6, 6, 6, 0, 0, 9], float)
    dem = snap(g, gpd.GeoSeries([P(x, 0) for x in xs], crs=CRS))
    cand = snap(g, gpd.GeoSeries([P(x, 0) for x in xs], crs=CRS))
    existing = snap(g, gpd.GeoSeries([P(800, 0)], crs=CRS))
    res = site(g, dem, w, existing, cand, 2, 150)
    assert res.chosen.tolist() == [1, 4]
    assert res.covered_before == 9 and res.covered_after == 9 + 24 and res.weight_total == w.sum()
    # the brute-force optimum agrees
    cover = np.abs(xs[:, None] - xs[None, :]) <= 150
    done = cover[:, 8]
    best = max(itertools.combinations(range(9), 2), key=lambda c: (w * (cover[:, list(c)].any(1) & ~done)).sum())
    assert (w * (cover[:, list(best)].any(1) & ~done)).sum() == 24
    assert sorted(res.gain_by_choice.tolist()) == [6, 18]


def test_requirement_distances_match_one_search_per_type():
    """Sets searched together in one bounded call give the per-type distances (within the limit)."""
    from geo.life_circle import requirement_distances
    e = pd.concat([street_line(), edges([(20, 21, [(0, 300), (100, 300)])])], ignore_index=True)
    g = build_walk_graph(e, crs=CRS)
    pts = gdf(id=["a", "b", "c"], type=["clinic", "market", "clinic"], geometry=[P(0, 3), P(620, 4), P(90, 300)])
    b = gdf(id=list("vwxyz"), geometry=[P(50, 5), P(400, 5), P(990, 2), P(10, 305), P(700, 1)])
    ps, bs = snap(g, pts.geometry), snap(g, b.geometry)
    d = requirement_distances(g, ps, pts["type"], bs, [("clinic",), ("market",), ("clinic", "market")],
                              [500, 500, 500])
    for row, types in zip(d, [("clinic",), ("market",), ("clinic", "market")]):
        ref = nearest_distances(g, ps.take(np.flatnonzero(pts["type"].isin(types).to_numpy())), bs)
        assert np.allclose(np.where(ref <= 500, ref, np.inf), row)
    assert d[0, 3] == pytest.approx(5 + 80)      # the detached path reaches its own clinic only


def test_windowed_coverage_matrix_matches_full_distances():
    """The per-chunk window search finds exactly the pairs the full network search finds."""
    from geo.siting import coverage_matrix
    rng = np.random.default_rng(3)
    rows = []
    for i in range(6):           # a 6 x 6 street grid, 100 m blocks
        for j in range(6):
            n = i * 6 + j
            if j < 5:
                rows.append((n, n + 1, [(j * 100, i * 100), ((j + 1) * 100, i * 100)]))
            if i < 5:
                rows.append((n, n + 6, [(j * 100, i * 100), (j * 100, (i + 1) * 100)]))
    g = build_walk_graph(edges(rows), crs=CRS)
    xy = rng.uniform(0, 500, (40, 2))
    pts = snap(g, gpd.GeoSeries([P(x, y) for x, y in xy], crs=CRS))
    A = coverage_matrix(g, pts, pts, 180, chunk=5).toarray()
    for j in range(40):
        d = nearest_distances(g, pts.take([j]), pts)
        assert np.array_equal(A[:, j], d <= 180 + 1e-9)


def test_spopt_and_sparse_backends_agree():
    """The sparse PuLP model used for large instances is spopt's MCLP: same optimum."""
    rng = np.random.default_rng(8)
    rows = []
    for i in range(5):
        for j in range(5):
            n = i * 5 + j
            if j < 4:
                rows.append((n, n + 1, [(j * 120, i * 120), ((j + 1) * 120, i * 120)]))
            if i < 4:
                rows.append((n, n + 5, [(j * 120, i * 120), (j * 120, (i + 1) * 120)]))
    g = build_walk_graph(edges(rows), crs=CRS)
    xy = rng.uniform(0, 480, (60, 2))
    dem = snap(g, gpd.GeoSeries([P(x, y) for x, y in xy], crs=CRS))
    w = rng.integers(1, 30, 60).astype(float)
    existing = snap(g, gpd.GeoSeries([P(0, 0)], crs=CRS))
    a = site(g, dem, w, existing, dem, 3, 150, backend="spopt")
    b = site(g, dem, w, existing, dem, 3, 150, backend="sparse")
    assert a.backend == "spopt" and b.backend == "sparse" and a.status == b.status == "Optimal"
    assert a.covered_after == b.covered_after > a.covered_before


def test_sample_osm_compounds_and_gates():
    """The shipped extract: landuse=residential compounds, barrier=gate/entrance nodes on their
    boundaries; compounds with a gate start closed, emergency entrances start shut."""
    from importlib import resources
    from data.importers.osm_gates import read_compounds_and_gates
    path = resources.files("data").joinpath("samples", "source", "beijing_haidian_xueqing.osm")
    cg = read_compounds_and_gates(str(path))
    assert len(cg.compounds) == 10 and "石科院生活区" in set(cg.compounds["name"])
    assert set(cg.gates["kind"]) >= {"gate", "lift_gate", "entrance"}
    on = cg.gates[cg.gates["compound_id"] != ""]
    assert set(on["compound_id"]) == set(cg.compounds.loc[cg.compounds["closed"], "id"])
    assert cg.gates.loc[cg.gates["entrance"] == "emergency", "closed"].all()
    with pytest.raises(DataError):
        read_compounds_and_gates("/no/such/file.osm")


def test_gate_no_street_passes_is_linked_through_the_wall():
    """A gate added where no mapped path crosses the wall (east side, 20 m from where the footway
    is cut) links the nearest inside path, through the gate, to the nearest street outside."""
    e, compounds, _, b, pts = compound_world()
    gates = gdf(id=["gate-s", "gate-e"], compound_id=["c1", "c1"], geometry=[P(50, 0), P(100, 70)])

    def dist(shut):
        ge = gate_network(e, compounds, gates, ("c1",), shut, crs=CRS)
        g = build_walk_graph(ge.edges, crs=CRS)
        bs = snap_zoned(g, b.geometry, compound_zones(b.geometry, compounds, ge.closed, crs=CRS), ge)
        ps = snap_zoned(g, pts.geometry, compound_zones(pts.geometry, compounds, ge.closed, crs=CRS), ge)
        return ge, nearest_distances(g, ps, bs)

    ge, d = dist(())
    assert ge.links["gate_id"].tolist() == ["gate-e"] and ge.crossings["gate_id"].tolist() == ["gate-s"]
    # 5 m, 46 m east inside to (96, 50), 20.4 m to the gate, 20 m to the footway outside, 150 m, 10 m
    assert d[0] == pytest.approx(5 + 46 + np.hypot(4, 20) + 20 + 150 + 10, abs=0.5)
    _, d_e_shut = dist(("gate-e",))
    assert d_e_shut[0] == pytest.approx(355, abs=1) and ge.links is not None
    _, none = dist(("gate-e", "gate-s"))
    assert not np.isfinite(none[0]) and none[1] == pytest.approx(d[1])


def test_nearest_boundary_point_snaps_a_click_onto_the_compound():
    from geo.gates import nearest_boundary_point
    _, compounds, _, _, _ = compound_world()
    c4326 = compounds.to_crs(4326)
    click = gpd.GeoSeries([P(108, 40)], crs=CRS).to_crs(4326).iloc[0]
    cid, on, d = nearest_boundary_point(c4326, click, crs=CRS)
    back = gpd.GeoSeries([on], crs=4326).to_crs(CRS).iloc[0]
    assert cid == "c1" and d == pytest.approx(8, abs=0.01)
    assert back.x - X0 == pytest.approx(100, abs=0.01) and back.y - Y0 == pytest.approx(40, abs=0.01)
    assert nearest_boundary_point(c4326, click, crs=CRS, max_m=5) is None
    assert nearest_boundary_point(c4326, click, crs=CRS, compound_id="other") is None


def _max_flow_served(cover, w, open_, chosen, cap):
    """Weight served by the chosen points under a capacity: a max flow (integer weights)."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import maximum_flow
    nd, nc = cover.shape[0], len(chosen)
    src, sink = nd + nc, nd + nc + 1
    rows, cols, caps = [], [], []
    for i in range(nd):
        if open_[i] and w[i] > 0:
            rows.append(src), cols.append(i), caps.append(int(w[i]))
            for jj, j in enumerate(chosen):
                if cover[i, j]:
                    rows.append(i), cols.append(nd + jj), caps.append(10 ** 6)
    for jj in range(nc):
        rows.append(nd + jj), cols.append(sink), caps.append(int(cap))
    m = csr_matrix((caps, (rows, cols)), shape=(nd + nc + 2, nd + nc + 2))
    return maximum_flow(m, src, sink).flow_value


def test_capacitated_siting_finds_the_known_optimum():
    """The street of the test above, each new point serving at most 10 households. Open demand
    (24 households) lies at 0 (5), 200 (1) and 300-500 (6 each). Uncapacitated, 100 + 400 is best
    (24); with capacity 10 that pair serves only 6 + 10 = 16, while two points over 200-500 share
    its 19 households: the optimum is 19, checked by max flow over every pair."""
    from geo.siting import score
    g = build_walk_graph(street_line(9), crs=CRS)
    xs = np.arange(9) * 100.0
    w = np.array([5, 0, 1, 6, 6, 6, 0, 0, 9], float)
    dem = snap(g, gpd.GeoSeries([P(x, 0) for x in xs], crs=CRS))
    existing = snap(g, gpd.GeoSeries([P(800, 0)], crs=CRS))
    res = site(g, dem, w, existing, dem, 2, 150, capacity=10)
    assert res.backend == "capacitated" and res.status == "Optimal" and res.capacity == 10
    assert res.covered_before == 9 and res.covered_after == pytest.approx(9 + 19)
    cover = np.abs(xs[:, None] - xs[None, :]) <= 150
    open_ = ~cover[:, 8]
    best = max(_max_flow_served(cover, w, open_, list(c), 10) for c in itertools.combinations(range(9), 2))
    assert best == 19
    assert _max_flow_served(cover, w, open_, res.chosen.tolist(), 10) == 19
    assert res.gain_by_choice.sum() == pytest.approx(19) and (res.gain_by_choice <= 10 + 1e-6).all()
    assert res.served[8] == 0 and res.before[8] and 0 < res.served[4] <= 1
    # the uncapacitated pair scored with the capacity serves 16: re-scoring follows the capacity
    assert score(g, dem, w, existing, dem, [1, 4], 150, capacity=10).covered_after == pytest.approx(9 + 16)
    assert site(g, dem, w, existing, dem, 2, 150, capacity=1000).covered_after == pytest.approx(9 + 24)


def test_moving_a_proposed_point_rescores():
    """score() of the solved points gives the solver's figures; moving one point elsewhere gives
    that point's coverage, in the order the user's points are listed."""
    from geo.siting import score
    g = build_walk_graph(street_line(9), crs=CRS)
    xs = np.arange(9) * 100.0
    w = np.array([5, 0, 1, 6, 6, 6, 0, 0, 9], float)
    dem = snap(g, gpd.GeoSeries([P(x, 0) for x in xs], crs=CRS))
    existing = snap(g, gpd.GeoSeries([P(800, 0)], crs=CRS))
    best = site(g, dem, w, existing, dem, 2, 150)
    same = score(g, dem, w, existing, dem, best.chosen, 150)
    assert same.covered_after == best.covered_after and same.gain_by_choice.tolist() == best.gain_by_choice.tolist()
    moved = score(g, dem, w, existing, dem, [6, 1], 150)       # 400 m -> 600 m: covers 500 only
    assert moved.chosen.tolist() == [6, 1] and moved.gain_by_choice.tolist() == [6, 6]
    assert moved.covered_after == 9 + 12 and moved.covered_before == best.covered_before
    assert moved.newly_covered.tolist() == [0, 2, 5]
