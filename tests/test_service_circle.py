"""geo/service_circle: distances, circle polygons, coverage shares; the `circle` command."""
import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely
from scipy.spatial import Delaunay
from shapely.geometry import LineString, Point, Polygon

from geo.network import build_walk_graph, snap, snap_component
from geo.service_circle import (CircleParams, circle_polygons, coverage_shares, nearest_distances,
                                reached_streets, service_distances, summary)

UTM = "EPSG:32650"
X0, Y0 = 440000.0, 4428000.0


def lattice_edges(n=5, step=100.0, extra=()):
    rows = [(r * n + c, (r + dr) * n + c + dc, (c * step, r * step), ((c + dc) * step, (r + dr) * step))
            for r in range(n) for c in range(n) for dr, dc in ((0, 1), (1, 0)) if r + dr < n and c + dc < n]
    rows += list(extra)
    geoms = [LineString([(X0 + b[0], Y0 + b[1]), (X0 + a[0], Y0 + a[1])] if i % 2 else
                        [(X0 + a[0], Y0 + a[1]), (X0 + b[0], Y0 + b[1])]) for i, (_, _, a, b) in enumerate(rows)]
    g = gpd.GeoDataFrame({"u": [r[0] for r in rows], "v": [r[1] for r in rows]}, geometry=geoms, crs=UTM)
    g["length_m"] = g.length
    return g.to_crs(4326)


def points(xy, crs=UTM, **cols):
    return gpd.GeoDataFrame(cols, geometry=[Point(X0 + x, Y0 + y) for x, y in xy], crs=crs).to_crs(4326)


def boxes(xy, half=5.0, **cols):
    geoms = [Polygon([(X0 + x - half, Y0 + y - half), (X0 + x + half, Y0 + y - half),
                      (X0 + x + half, Y0 + y + half), (X0 + x - half, Y0 + y + half)]) for x, y in xy]
    return gpd.GeoDataFrame(cols, geometry=geoms, crs=UTM).to_crs(4326)


def reference(graph, src, tgt):
    """networkx Dijkstra on a graph whose edges are split at every snapped point."""
    G = nx.MultiGraph()
    on_edge = {}
    for kind, s in (("s", src), ("t", tgt)):
        for j in np.flatnonzero(s.ok):
            on_edge.setdefault(int(s.edge[j]), []).append((s.to_u[j], (kind, j)))
            G.add_edge((kind, j), (kind + "p", j), weight=s.offset[j])
    for e in range(graph.n_edges):
        u, v, L = int(graph.u[e]), int(graph.v[e]), graph.length[e]
        if u == v:
            continue
        chain = [(0.0, u)] + sorted(on_edge.get(e, [])) + [(L, v)]
        for (pa, a), (pb, b) in zip(chain[:-1], chain[1:]):
            G.add_edge(a, b, weight=pb - pa)
    starts = [("sp", j) for j in np.flatnonzero(src.ok)]
    d = nx.multi_source_dijkstra_path_length(G, starts, weight="weight") if starts else {}
    return np.array([d.get(("tp", k), np.inf) for k in range(len(tgt))])


# -- distances -------------------------------------------------------------

def test_distance_with_offsets_on_lattice():
    g = build_walk_graph(lattice_edges())
    src = snap(g, points([(30, -15)]).geometry)      # on edge (0,0)-(100,0) at x=30, 15 m off
    tgt = snap(g, points([(250, 40), (0, 0), (430, 410)]).geometry)
    d = nearest_distances(g, src, tgt)
    assert d[0] == pytest.approx(15 + 220 + 40, abs=0.01)
    assert d[1] == pytest.approx(15 + 30, abs=0.01)
    assert d[2] == pytest.approx(15 + 70 + 700 + np.hypot(30, 10), abs=0.01)  # off the corner


def test_source_and_target_on_the_same_edge_walk_along_it():
    g = build_walk_graph(lattice_edges())
    src = snap(g, points([(120, -10)]).geometry)
    tgt = snap(g, points([(180, 10), (80, 10)]).geometry)
    d = nearest_distances(g, src, tgt)
    assert d[0] == pytest.approx(10 + 60 + 10, abs=0.01)   # not via the end nodes (120)
    assert d[1] == pytest.approx(10 + 20 + 20 + 10, abs=0.01)


def test_multiple_sources_take_the_nearest():
    g = build_walk_graph(lattice_edges())
    a, b = snap(g, points([(0, 0)]).geometry), snap(g, points([(400, 400)]).geometry)
    both = snap(g, points([(0, 0), (400, 400)]).geometry)
    tgt = snap(g, points([(x, y) for x in (0, 130, 260, 390) for y in (5, 200, 395)]).geometry)
    assert np.allclose(nearest_distances(g, both, tgt),
                       np.minimum(nearest_distances(g, a, tgt), nearest_distances(g, b, tgt)))


def test_unreachable_buildings_are_kept_with_inf():
    far = [(100, 101, (2000, 0), (2100, 0))]
    g = build_walk_graph(lattice_edges(extra=far))
    b = boxes([(50, 20), (2050, 20)], id=["near", "far"])
    sp = points([(0, 0)], id=["s1"], type=["clinic"])
    t = service_distances(g, b, sp, CircleParams(minutes=10), types=["clinic", "market"])
    assert len(t) == 4 and list(t.columns) == ["building_id", "service_type", "walk_m", "minutes", "within"]
    near = t[(t.building_id == "near") & (t.service_type == "clinic")].iloc[0]
    far_row = t[(t.building_id == "far") & (t.service_type == "clinic")].iloc[0]
    assert np.isfinite(near.walk_m) and near.within
    assert np.isinf(far_row.walk_m) and not far_row.within
    assert t[t.service_type == "market"].walk_m.isin([np.inf]).all()
    s = summary(t)
    assert s.set_index("service_type").loc["clinic", "unreachable"] == 1
    # restricting snapping to the largest component makes the far building reachable (long offset)
    t2 = service_distances(g, b, sp, CircleParams(largest_only=True), types=["clinic"])
    assert np.isfinite(t2.walk_m).all()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_agrees_with_networkx_on_random_graph(seed):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 1000, (60, 2))
    tri = Delaunay(xy).simplices
    pairs = {tuple(sorted((int(a), int(b)))) for t in tri for a, b in ((t[0], t[1]), (t[1], t[2]), (t[0], t[2]))}
    pairs = sorted(p for p in pairs if rng.random() > 0.25)          # thin it out: some dead ends / parts
    geoms = []
    for a, b in pairs:
        pa, pb = X0 + xy[a, 0], X0 + xy[b, 0]
        mid = ((pa + pb) / 2 + rng.normal(0, 20), Y0 + (xy[a, 1] + xy[b, 1]) / 2 + rng.normal(0, 20))
        line = [(pa, Y0 + xy[a, 1]), mid, (pb, Y0 + xy[b, 1])]
        geoms.append(LineString(line[::-1] if rng.random() < 0.5 else line))
    e = gpd.GeoDataFrame({"u": [a for a, _ in pairs], "v": [b for _, b in pairs]}, geometry=geoms, crs=UTM)
    e["length_m"] = e.length
    g = build_walk_graph(e.to_crs(4326))
    src = snap(g, points(rng.uniform(0, 1000, (5, 2))).geometry)
    tgt = snap(g, points(rng.uniform(0, 1000, (80, 2))).geometry)
    ours, ref = nearest_distances(g, src, tgt), reference(g, src, tgt)
    assert np.array_equal(np.isinf(ours), np.isinf(ref))
    assert np.allclose(ours[np.isfinite(ref)], ref[np.isfinite(ref)], atol=1e-6)


def test_table_minutes_and_within_follow_params():
    g = build_walk_graph(lattice_edges())
    b = boxes([(100, 20), (300, 20), (400, 380)], half=2, id=["a", "b", "c"])
    sp = points([(0, 0)], id=["s"], type=["clinic"])
    p = CircleParams(max_m=330, speed_m_min=60)
    t = service_distances(g, b, sp, p, building_snap=snap(g, b.geometry, anchor="centroid"))
    assert t.walk_m.round(2).tolist() == [120.0, 320.0, 400 + 380]
    assert np.allclose(t.minutes, t.walk_m / 60)
    assert t.within.tolist() == [True, True, False]
    t10 = service_distances(g, b, sp, CircleParams(minutes=3))          # 240 m at 80 m/min
    assert t10.within.tolist()[:2] == [True, False]


def test_params_presets_and_validation():
    assert CircleParams.gb50180(5).threshold_m() == 300
    assert CircleParams.gb50180(10).threshold_m() == 500
    assert CircleParams.gb50180(15).threshold_m() == 800
    assert CircleParams.gb50180(15, upper=True).threshold_m() == 1000
    p = CircleParams(minutes=10, minutes_by_type=(("kindergarten", 5.0),))
    assert p.threshold_m("kindergarten") == 400 and p.threshold_m("clinic") == 800
    assert p.elderly().threshold_m("clinic") == 600
    for bad in ({"minutes": 0}, {"speed_m_min": -1}, {"max_m": 0}, {"anchor": "door"}, {"street_width_m": np.inf}):
        with pytest.raises(ValueError):
            CircleParams(**bad)
    with pytest.raises(ValueError):
        CircleParams.gb50180(20)


# -- circle polygons ---------------------------------------------------------

def _covers(poly_gdf, xy):
    poly = poly_gdf.to_crs(UTM).geometry.iloc[0]
    return shapely.covers(poly, shapely.points(np.asarray(xy, float) + [X0, Y0]))


def test_circle_follows_streets_not_a_euclidean_disc():
    g = build_walk_graph(lattice_edges())
    sp = points([(0, 0)], id=["s"], type=["clinic"])
    c = circle_polygons(g, sp, CircleParams(max_m=250, street_width_m=10))
    assert len(c) == 1 and c.crs.to_epsg() == 4326
    inside = [(200, 0), (0, 200), (100, 100), (150, 100), (100, 150), (240, 0)]
    outside = [(300, 0), (200, 100), (100, 200), (150, 150), (0, 300)]  # (200,100) is 224 m away in a line
    assert _covers(c, inside).all()
    assert not _covers(c, outside).any()


def test_partial_edge_around_a_source_in_the_middle():
    e = gpd.GeoDataFrame({"u": [1], "v": [2], "length_m": [1000.0]},
                         geometry=[LineString([(X0 + 1000, Y0), (X0, Y0)])], crs=UTM).to_crs(4326)
    g = build_walk_graph(e)
    sp = points([(500, 20)], id=["s"], type=["park"])
    c = circle_polygons(g, sp, CircleParams(max_m=300, street_width_m=5))
    assert _covers(c, [(220, 0), (500, 0), (780, 0)]).all()
    assert not _covers(c, [(150, 0), (850, 0), (0, 0), (1000, 0)]).any()
    lines = reached_streets(g, snap(g, sp.geometry), 300)
    assert shapely.length(lines).sum() == pytest.approx(2 * 280, abs=0.5)


def test_reached_street_length_from_two_corners():
    g = build_walk_graph(lattice_edges())
    src = snap(g, points([(0, 0), (400, 400)]).geometry)
    lines = reached_streets(g, src, 150)
    # from each corner: two edges fully (200 m) plus 50 m along four more edges = 400 m
    assert shapely.union_all(lines).length == pytest.approx(800, abs=0.01)


def test_circle_polygons_per_point_and_empty_type():
    g = build_walk_graph(lattice_edges())
    sp = points([(0, 0), (400, 400)], id=["a", "b"], type=["clinic", "clinic"])
    per = circle_polygons(g, sp, CircleParams(max_m=100), by="point")
    assert per["id"].tolist() == ["a", "b"]
    assert not per.geometry.iloc[0].intersects(per.geometry.iloc[1])
    t = circle_polygons(g, sp, CircleParams(max_m=100), types=["clinic", "market"])
    assert t.service_type.tolist() == ["clinic", "market"] and t.geometry.iloc[1].is_empty
    with pytest.raises(ValueError):
        circle_polygons(g, sp, by="grid")


# -- coverage shares -----------------------------------------------------------

def test_coverage_shares_by_grid_community_and_key_group():
    table = pd.DataFrame({"building_id": ["b1", "b2", "b3"] * 2,
                          "service_type": ["elderly_care"] * 3 + ["clinic"] * 3,
                          "walk_m": [100, 900, np.inf, 100, 100, 100], "minutes": 0.0,
                          "within": [True, False, False, True, True, True]})
    assign = pd.DataFrame({"building_id": ["b1", "b2", "b3"], "grid_id": ["G1", "G1", "G2"]})
    grids = pd.DataFrame({"id": ["L1", "G1", "G2"], "level": [1, 2, 2], "parent_id": ["C1", "L1", "L1"]})
    hh = pd.DataFrame({"building_id": ["b1", "b1", "b2", "b2", "b3", "bX"],
                       "tags": [["empty_nest_elderly"], [], ["empty_nest_elderly", "disabled"],
                                ["empty_nest_elderly"], ["empty_nest_elderly"], []]})
    s = coverage_shares(table, assign, hh, grids).set_index(["scope", "scope_id", "service_type", "group"])
    row = s.loc[("all", "all", "elderly_care", "empty_nest_elderly")]
    assert (row.households, row.within) == (4, 1) and row.share == pytest.approx(0.25)
    row = s.loc[("all", "all", "elderly_care", "all")]
    assert (row.households, row.within) == (6, 2)       # bX has no building row: not covered
    assert s.loc[("grid", "G1", "elderly_care", "empty_nest_elderly")].share == pytest.approx(1 / 3)
    assert s.loc[("grid", "G2", "elderly_care", "empty_nest_elderly")].share == 0
    assert s.loc[("community", "C1", "clinic", "all")].share == 1.0
    assert s.loc[("grid_level1", "L1", "elderly_care", "disabled")].households == 1
    only = coverage_shares(table, assign, hh, groups=["disabled"])
    assert set(only["group"]) == {"all", "disabled"} and set(only["scope"]) == {"all", "grid"}


# -- command line -------------------------------------------------------------

@pytest.fixture
def tiny_project(tmp_path):
    from data.bundle import make_bundle
    from data.gpkg_store import GpkgStore
    far = [(100, 101, (2000, 0), (2100, 0))]
    b = boxes([(50, 20), (250, 220), (2050, 20)], half=5, id=["b1", "b2", "b3"])
    sp = points([(0, 0), (400, 400)], id=["s1", "s2"], type=["clinic", "market"], name=["c", "m"])
    hh = pd.DataFrame({"id": ["h1", "h2", "h3", "h4"], "building_id": ["b1", "b2", "b2", "b3"],
                       "tags": [["empty_nest_elderly"], [], [], []], "persons": [1, 2, 3, 1], "synthetic": True})
    path = tmp_path / "tiny.gpkg"
    GpkgStore(path).write_all(make_bundle({"walk_edges": lattice_edges(extra=far), "buildings": b,
                                           "service_points": sp, "households": hh}))
    return path


def test_cli_end_to_end(tiny_project, tmp_path, capsys):
    from minsheng.cli import main
    out = tmp_path / "circle.csv"
    assert main(["circle", "--data", str(tiny_project), "--minutes", "5", "--out", str(out)]) == 0
    t = pd.read_csv(out)
    assert len(t) == 6 and set(t.service_type) == {"clinic", "market"}
    assert list(t.columns) == ["building_id", "service_type", "walk_m", "minutes", "within"]
    b1 = t[(t.building_id == "b1") & (t.service_type == "clinic")].iloc[0]
    assert b1.walk_m == pytest.approx(50 + 20, abs=0.2) and b1.within
    b3 = t[t.building_id == "b3"]
    assert np.isinf(b3.walk_m).all() and not b3.within.any()
    text = capsys.readouterr().out
    assert "clinic" in text and "unreachable" in text and "connected parts" in text


def test_cli_type_and_bad_arguments(tiny_project, tmp_path, capsys):
    from minsheng.cli import main
    out = tmp_path / "c.csv"
    assert main(["circle", "--data", str(tiny_project), "--type", "clinic,elderly_care", "--out", str(out)]) == 0
    t = pd.read_csv(out)
    assert set(t.service_type) == {"clinic", "elderly_care"} and np.isinf(t[t.service_type == "elderly_care"].walk_m).all()
    assert "no service point of type elderly_care" in capsys.readouterr().out
    assert main(["circle", "--data", str(tiny_project), "--type", "nonsense"]) == 2
    assert "unknown service type nonsense" in capsys.readouterr().err
    assert main(["circle", "--data", str(tmp_path / "missing.gpkg")]) == 2
    assert "file not found" in capsys.readouterr().err
    assert main(["circle", "--data", str(tiny_project), "--elderly", "--speed", "70"]) == 2
    with pytest.raises(SystemExit) as e:
        main(["circle", "--data", str(tiny_project), "--minutes", "-1"])
    assert e.value.code == 2


# -- the shipped sample -------------------------------------------------------

@pytest.fixture(scope="module")
def sample():
    from data.gpkg_store import GpkgStore
    from minsheng.settings import sample_path
    if not sample_path().exists():
        pytest.skip("shipped sample not present")
    return GpkgStore(sample_path()).load()


def test_sample_every_building_every_type(sample):
    g = build_walk_graph(sample.walk_edges)
    sp, b = sample.service_points, sample.buildings
    t = service_distances(g, b, sp)
    types = sorted(set(sp["type"]))
    assert len(t) == len(b) * len(types)
    assert (t.groupby("service_type").building_id.nunique() == len(b)).all()
    bs, ps = snap(g, b.geometry), snap(g, sp.geometry)
    b_main = snap_component(g, bs) == g.largest
    p_main = snap_component(g, ps) == g.largest
    assert b_main.mean() > 0.8
    for typ in types:
        if p_main[sp["type"].to_numpy() == typ].any():
            assert np.isfinite(t[t.service_type == typ].walk_m.to_numpy()[b_main]).all(), typ
    assert (t.minutes >= 0).all() and not t.walk_m.isna().any()
    plan = sample.adopted_plan_id()
    s = coverage_shares(t, sample.plan_assignments(plan), sample.households, sample.plan_grids(plan))
    assert s.share.dropna().between(0, 1).all()
    assert {"all", "community", "grid_level1", "grid"} <= set(s.scope)
    # a few buildings against the networkx reference
    clinic = ps.take(np.flatnonzero(sp["type"].to_numpy() == "clinic"))
    pick = np.arange(0, len(b), max(1, len(b) // 12))
    ref = reference(g, clinic, bs.take(pick))
    ours = t[t.service_type == "clinic"].walk_m.to_numpy()[pick]
    assert np.array_equal(np.isinf(ours), np.isinf(ref))
    assert np.allclose(ours[np.isfinite(ref)], ref[np.isfinite(ref)], atol=1e-6)


def test_sample_circle_polygons_cover_within_buildings(sample):
    g = build_walk_graph(sample.walk_edges)
    sp, b = sample.service_points, sample.buildings
    p = CircleParams()
    c = circle_polygons(g, sp, p, types=["clinic"]).to_crs(g.crs)
    t = service_distances(g, b, sp, p, types=["clinic"])
    bs = snap(g, b.geometry)
    on_street = shapely.points(shapely.get_coordinates(bs.point[bs.ok]))
    covered = shapely.covers(c.geometry.iloc[0], on_street)
    assert covered[t.within.to_numpy()[bs.ok]].all()
    assert c.geometry.iloc[0].area < np.pi * 800 ** 2 * len(sp[sp["type"] == "clinic"])
