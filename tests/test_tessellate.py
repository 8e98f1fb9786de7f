"""geo/tessellate: building cells partition their extent; derived grids nest without gaps/overlaps."""
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings, strategies as st

from geo.crs import metric_crs
from geo.tessellate import building_cells, derive_grid_boundaries, dissolve_cells, polygonal

LON, LAT = 116.35, 40.0
DX, DY = 1 / 85_300, 1 / 111_000  # ~1 m in degrees near lat 40


def box_m(x0, y0, x1, y1):
    """A box given in metres east/north of (LON, LAT), in EPSG:4326."""
    return shapely.box(LON + x0 * DX, LAT + y0 * DY, LON + x1 * DX, LAT + y1 * DY)


def buildings_at(xy, size=10.0):
    xy = np.asarray(xy, float)
    geoms = [box_m(x - size / 2, y - size / 2, x + size / 2, y + size / 2) for x, y in xy]
    return gpd.GeoDataFrame({"id": [f"b{i}" for i in range(len(xy))]}, geometry=geoms, crs=4326)


def metric_areas(geoms):
    s = gpd.GeoSeries(geoms, crs=4326)
    return s.to_crs(metric_crs(s)).area.to_numpy()


def areas(geoms):
    """Planar areas in the storage CRS (deg²): exact for partition checks (reprojection would
    bend straight edges differently depending on their vertices)."""
    return shapely.area(np.asarray(geoms, dtype=object))


def test_cells_partition_extent_and_contain_their_building_point():
    extent = box_m(0, 0, 300, 200)
    b = buildings_at([(50, 50), (150, 60), (250, 150), (60, 160), (200, 100)])
    cells = building_cells(b, extent)
    assert list(cells.index) == list(b.index) and cells.crs == b.crs
    assert shapely.is_valid(cells.values).all()
    total = areas([extent])[0]
    assert areas(cells.values).sum() == pytest.approx(total, rel=1e-9)
    assert areas([shapely.union_all(cells.values)])[0] == pytest.approx(total, rel=1e-9)
    pts = b.geometry.representative_point().values
    assert shapely.contains(cells.values, pts).all()


def test_cells_follow_metric_not_degree_distance():
    # two buildings 100 m apart east-west: the boundary must be at 50 m, not skewed by degrees
    extent = box_m(0, 0, 100, 100)
    b = buildings_at([(20, 50), (80, 50)])
    cells = building_cells(b, extent)
    a = metric_areas(cells.values)
    assert a[0] == pytest.approx(a[1], rel=1e-6)


def test_duplicate_points_and_empty_geometry_get_empty_cells():
    extent = box_m(0, 0, 100, 100)
    b = buildings_at([(20, 20), (20, 20), (80, 80)])
    b.loc[3] = ["b3", None]
    cells = building_cells(b, extent)
    assert not cells.iloc[0].is_empty and cells.iloc[1].is_empty and cells.iloc[3].is_empty
    assert areas(cells.values).sum() == pytest.approx(areas([extent])[0], rel=1e-9)


def test_single_building_gets_whole_extent_and_concave_extent_is_respected():
    l_shape = shapely.union_all([box_m(0, 0, 100, 30), box_m(0, 0, 30, 100)])
    cells = building_cells(buildings_at([(15, 15)]), l_shape)
    assert cells.iloc[0].equals(l_shape) or cells.iloc[0].symmetric_difference(l_shape).area < 1e-15
    cells = building_cells(buildings_at([(15, 90), (90, 15)]), l_shape)
    assert areas(cells.values).sum() == pytest.approx(areas([l_shape])[0], rel=1e-9)


def test_polygonal_drops_lines_and_points():
    gc = shapely.GeometryCollection([shapely.box(0, 0, 1, 1), shapely.LineString([(1, 1), (2, 2)]),
                                     shapely.Point(5, 5)])
    out = polygonal([gc, shapely.LineString([(0, 0), (1, 0)]), None, shapely.box(0, 0, 2, 2)])
    assert shapely.get_type_id(out).tolist() == [6, 6, 6, 3]
    assert out[0].area == 1 and out[1].is_empty and out[2].is_empty


def test_dissolve_cells_unions_per_group_and_keeps_requested_empty_groups():
    cells = gpd.GeoSeries([shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1), shapely.box(5, 5, 6, 6)], crs=4326)
    out = dissolve_cells(cells, ["a", "a", "b"], keys=["a", "b", "c"])
    assert list(out.index) == ["a", "b", "c"]
    assert (shapely.get_type_id(out.geometry.values) == 6).all()
    assert out.geometry["a"].area == pytest.approx(2) and out.geometry["c"].is_empty
    assert shapely.get_num_geometries(out.geometry["a"]) == 1


def _plan(n_comm, xy, l2_of_building, l1_of_l2, comm_of_l1, width=400.0):
    """Communities side by side (width x 300 m); grids table; assignments."""
    communities = gpd.GeoDataFrame({"id": [f"c{i}" for i in range(n_comm)], "code": [f"{i + 1:03d}" for i in range(n_comm)]},
                                   geometry=[box_m(i * width, 0, (i + 1) * width, 300) for i in range(n_comm)], crs=4326)
    b = buildings_at(xy, size=4.0)
    n2, n1 = len(l1_of_l2), len(comm_of_l1)
    grids = pd.DataFrame({
        "id": [f"g1_{j}" for j in range(n1)] + [f"g2_{k}" for k in range(n2)],
        "level": [1] * n1 + [2] * n2,
        "parent_id": [f"c{c}" for c in comm_of_l1] + [f"g1_{j}" for j in l1_of_l2],
    })
    assignments = pd.DataFrame({"building_id": b["id"], "grid_id": [f"g2_{k}" for k in l2_of_building]})
    return grids, assignments, b, communities


@st.composite
def plans(draw):
    n_comm = draw(st.integers(1, 2))
    n1_per = draw(st.integers(1, 3))
    comm_of_l1 = [c for c in range(n_comm) for _ in range(n1_per)]
    l1_of_l2 = [j for j in range(len(comm_of_l1)) for _ in range(draw(st.integers(1, 2)))]
    n = draw(st.integers(len(l1_of_l2), 25))
    l2_of_building = list(range(len(l1_of_l2))) + draw(
        st.lists(st.integers(0, len(l1_of_l2) - 1), min_size=n - len(l1_of_l2), max_size=n - len(l1_of_l2)))
    # building positions inside its community (grid 5 m lattice so duplicates can happen)
    xs = draw(st.lists(st.integers(1, 79), min_size=n, max_size=n))
    ys = draw(st.lists(st.integers(1, 59), min_size=n, max_size=n))
    comm = [comm_of_l1[l1_of_l2[k]] for k in l2_of_building]
    xy = [(c * 400 + x * 5, y * 5) for c, x, y in zip(comm, xs, ys)]
    return _plan(n_comm, xy, l2_of_building, l1_of_l2, comm_of_l1)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plans())
def test_derived_boundaries_nest_without_gaps_or_overlaps(plan):
    grids, assignments, b, communities = plan
    out = derive_grid_boundaries(grids, assignments, b, communities)
    assert list(out["id"]) == list(grids["id"]) and out.crs == b.crs
    assert shapely.is_valid(out.geometry.values).all()
    assert (shapely.get_type_id(out.geometry.values) == 6).all()
    area = dict(zip(out["id"], areas(out.geometry.values)))
    geom = dict(zip(out["id"], out.geometry.values))
    tol = 1e-9 * areas(communities.geometry.values).sum()  # float noise only
    comm_area = dict(zip(communities["id"], areas(communities.geometry.values)))
    for level, parents in ((1, communities.set_index("id").geometry.to_dict()), (2, geom)):
        kids = out[out["level"] == level]
        for pid, g in kids.groupby("parent_id"):
            parent_area = comm_area[pid] if level == 1 else area[pid]
            # no gap: children's union covers the parent; no overlap: their areas add up
            union_area = areas([shapely.union_all(g.geometry.values)])[0]
            assert abs(union_area - parent_area) < tol
            assert abs(sum(area[i] for i in g["id"]) - parent_area) < tol
            # nested: nothing outside the parent
            outside = areas(shapely.difference(g.geometry.values, parents[pid]))
            assert (outside < tol).all()
    # every building representative point lies in its own level-2 grid
    pts = b.geometry.representative_point().values
    own = np.array([geom[g] for g in assignments["grid_id"]], dtype=object)
    dup = pd.Series([p.wkb for p in pts]).duplicated().to_numpy()
    assert shapely.covers(own[~dup], pts[~dup]).all()


def test_unassigned_buildings_leave_no_hole_and_unknown_grids_are_ignored():
    grids, assignments, b, communities = _plan(1, [(50, 50), (300, 200), (200, 100)], [0, 1, 1], [0, 0], [0])
    assignments.loc[2, "grid_id"] = "nope"
    out = derive_grid_boundaries(grids, assignments, b, communities)
    l1 = out.set_index("id").geometry["g1_0"]
    assert areas([l1])[0] == pytest.approx(areas(communities.geometry.values)[0], rel=1e-9)


def test_grid_without_buildings_gets_empty_multipolygon():
    grids, assignments, b, communities = _plan(1, [(50, 50)], [0], [0, 0], [0])
    out = derive_grid_boundaries(grids, assignments, b, communities).set_index("id")
    assert out.geometry["g2_1"].is_empty and out.geometry["g2_1"].geom_type == "MultiPolygon"
