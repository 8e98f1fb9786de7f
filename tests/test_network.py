"""geo/network: graph building, orientation, components, snapping onto edges."""
import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, Point, Polygon

from geo.network import build_walk_graph, snap, snap_component

UTM = "EPSG:32650"
X0, Y0 = 440000.0, 4428000.0  # Beijing, UTM 50N


def lattice_edges(n=5, step=100.0, flip_every=3, extra=()):
    """n x n lattice of `step` m edges, node id = row * n + col; every `flip_every`-th
    geometry is drawn v -> u. Returned in EPSG:4326 like the data contract."""
    rows = []
    for r in range(n):
        for c in range(n):
            for dr, dc in ((0, 1), (1, 0)):
                if r + dr < n and c + dc < n:
                    rows.append((r * n + c, (r + dr) * n + c + dc, (c * step, r * step),
                                 ((c + dc) * step, (r + dr) * step)))
    rows += list(extra)
    geoms, us, vs = [], [], []
    for i, (u, v, a, b) in enumerate(rows):
        a, b = (X0 + a[0], Y0 + a[1]), (X0 + b[0], Y0 + b[1])
        geoms.append(LineString([b, a] if i % flip_every == 0 else [a, b]))
        us.append(u)
        vs.append(v)
    g = gpd.GeoDataFrame({"u": us, "v": vs}, geometry=geoms, crs=UTM)
    g["length_m"] = g.length
    return g.to_crs(4326)


def pts(*xy, crs=UTM):
    return gpd.GeoSeries([Point(X0 + x, Y0 + y) for x, y in xy], crs=crs)


def test_lattice_graph_shape_and_symmetry():
    g = build_walk_graph(lattice_edges())
    assert g.crs == UTM
    assert g.n_nodes == 25 and g.n_edges == 40
    assert (g.matrix != g.matrix.T).nnz == 0
    assert np.allclose(g.matrix.data, 100.0, atol=1e-3)
    rep = g.report()
    assert rep["components"] == 1 and rep["nodes_outside_largest"] == 0


def test_orientation_recovered_from_geometry():
    e = lattice_edges(flip_every=3)
    g = build_walk_graph(e)
    expected = (np.arange(len(e)) % 3) == 0
    assert (g.flipped == expected).all()
    # node coordinates match the lattice
    ids = g.node_ids
    assert np.allclose(g.node_xy[:, 0] - X0, (ids % 5) * 100, atol=1e-3)
    assert np.allclose(g.node_xy[:, 1] - Y0, (ids // 5) * 100, atol=1e-3)


def test_orientation_when_every_geometry_is_reversed_including_dead_ends():
    # a path 0-1-2 plus a dead end 2-3; all geometries drawn v -> u
    xy = {0: (0, 0), 1: (100, 0), 2: (200, 0), 3: (200, 50)}
    pairs = [(0, 1), (1, 2), (2, 3)]
    e = gpd.GeoDataFrame({"u": [a for a, _ in pairs], "v": [b for _, b in pairs], "length_m": [100, 100, 50]},
                         geometry=[LineString([(X0 + xy[b][0], Y0 + xy[b][1]), (X0 + xy[a][0], Y0 + xy[a][1])])
                                   for a, b in pairs], crs=UTM).to_crs(4326)
    g = build_walk_graph(e)
    assert g.flipped.all()
    s = snap(g, pts((200, 40)))
    assert s.edge[0] == 2 and s.to_u[0] == pytest.approx(40, abs=0.01) and s.to_v[0] == pytest.approx(10, abs=0.01)


def test_parallel_edges_keep_shortest_and_self_loops_dropped():
    extra = [(0, 1, (0, 0), (100, 0)), (2, 2, (200, 0), (200, 0))]
    e = lattice_edges(extra=extra)
    e.loc[len(e) - 2, "length_m"] = 60.0
    g = build_walk_graph(e)
    assert g.matrix[0, 1] == pytest.approx(60.0) and g.matrix[1, 0] == pytest.approx(60.0)
    assert g.matrix.diagonal().sum() == 0


def test_disconnected_parts_are_reported():
    far = [(100, 101, (2000, 0), (2100, 0)), (101, 102, (2100, 0), (2100, 100))]
    g = build_walk_graph(lattice_edges(extra=far))
    rep = g.report()
    assert rep["components"] == 2 and rep["largest_nodes"] == 25
    assert rep["nodes_outside_largest"] == 3 and rep["edges_outside_largest"] == 2
    comps = g.components()
    assert comps["nodes"].tolist() == [25, 3] and comps["is_largest"].tolist() == [True, False]
    s = snap(g, pts((50, 10), (2050, 10)))
    c = snap_component(g, s)
    assert c[0] == g.largest and c[1] != g.largest


def test_snap_onto_edge_not_node():
    g = build_walk_graph(lattice_edges())
    s = snap(g, pts((150, 30), (0, 0), (430, 310)))
    assert s.ok.all()
    # (150, 30) -> middle of the edge (100,0)-(200,0)
    e = s.edge[0]
    assert {g.node_ids[g.u[e]], g.node_ids[g.v[e]]} == {1, 2}
    assert s.offset[0] == pytest.approx(30, abs=0.01)
    assert s.to_u[0] == pytest.approx(50, abs=0.01) and s.to_v[0] == pytest.approx(50, abs=0.01)
    assert s.offset[1] == pytest.approx(0, abs=1e-6)
    assert min(s.to_u[1], s.to_v[1]) == pytest.approx(0, abs=1e-6)
    # (430, 310) -> edge between nodes (400,300) and (400,400) at 10 m from (400,300)
    e = s.edge[2]
    assert s.offset[2] == pytest.approx(30, abs=0.01)
    to = {g.node_ids[g.u[e]]: s.to_u[2], g.node_ids[g.v[e]]: s.to_v[2]}
    assert to[3 * 5 + 4] == pytest.approx(10, abs=0.01) and to[4 * 5 + 4] == pytest.approx(90, abs=0.01)


def test_snap_polygons_by_anchor_and_footprint_and_empty():
    g = build_walk_graph(lattice_edges())
    sq = Polygon([(X0 + 120, Y0 + 20), (X0 + 180, Y0 + 20), (X0 + 180, Y0 + 60), (X0 + 120, Y0 + 60)])
    crossing = Polygon([(X0 + 120, Y0 - 10), (X0 + 180, Y0 - 10), (X0 + 180, Y0 + 30), (X0 + 120, Y0 + 30)])
    geoms = gpd.GeoSeries([sq, crossing, Polygon()], crs=UTM).to_crs(4326)
    rep = snap(g, geoms, anchor="representative")
    foot = snap(g, geoms, anchor="footprint")
    assert 20 < rep.offset[0] <= 50 and foot.offset[0] == pytest.approx(20, abs=0.01)
    assert foot.offset[1] == pytest.approx(0, abs=1e-6)
    assert rep.edge[2] == -1 and not np.isfinite(rep.offset[2]) and foot.edge[2] == -1
    with pytest.raises(ValueError):
        snap(g, geoms, anchor="door")


def test_snap_restricted_to_edges():
    far = [(100, 101, (2000, 0), (2100, 0))]
    g = build_walk_graph(lattice_edges(extra=far))
    largest = np.flatnonzero(g.edge_component == g.largest)
    s = snap(g, pts((2050, 0)), edges=largest)
    assert g.edge_component[s.edge[0]] == g.largest
    assert s.offset[0] == pytest.approx(np.hypot(2050 - 400, 0), abs=0.01)


def test_length_falls_back_to_geometry_when_missing():
    e = lattice_edges()
    e.loc[0, "length_m"] = np.nan
    e.loc[1, "length_m"] = 0
    g = build_walk_graph(e)
    assert g.length[0] == pytest.approx(100, abs=0.01) and g.length[1] == pytest.approx(100, abs=0.01)


def test_empty_network():
    e = lattice_edges().iloc[:0]
    g = build_walk_graph(e)
    assert g.n_nodes == 0 and g.report()["components"] == 0
    s = snap(g, pts((0, 0)))
    assert s.edge[0] == -1
    assert shapely.is_missing(s.point[0])
