"""Grid generation and synthetic households on hand-made inputs."""
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from data.catalogue import KeyGroup
from geo.gridgen import GridTargets, cut, generate_plan, hilbert_index
from geo.synth import generate_households


def test_cut_balances_and_prefers_strong_boundaries():
    w = np.ones(100)
    strong = np.zeros(100, bool)
    strong[48] = True  # a block boundary close to the middle
    weak = np.zeros(100, bool)
    lab = cut(w, 2, strong, weak)
    assert (lab[:48] == 0).all() and (lab[48:] == 1).all()
    lab4 = cut(w, 4, np.zeros(100, bool), weak)
    assert np.bincount(lab4).tolist() == [25, 25, 25, 25]
    assert (np.diff(lab4) >= 0).all()  # contiguous in sequence


def test_hilbert_index_is_a_permutation_of_cells():
    x, y = np.meshgrid(np.arange(4), np.arange(4))
    h = hilbert_index(x.ravel().astype(float), y.ravel().astype(float), order=2)
    assert sorted(h.tolist()) == list(range(16))
    # consecutive cells along the curve are neighbours
    order = np.argsort(h)
    steps = np.abs(np.diff(x.ravel()[order])) + np.abs(np.diff(y.ravel()[order]))
    assert (steps == 1).all()


def _lattice_buildings(n=10):
    xs, ys = np.meshgrid(np.arange(n), np.arange(n))
    x0, y0 = 116.30 + xs.ravel() * 0.0006, 40.0 + ys.ravel() * 0.0005
    geom = shapely.box(x0, y0, x0 + 0.0002, y0 + 0.0002)
    return gpd.GeoDataFrame({"compound": [None] * len(geom)}, geometry=geom, crs=4326), shapely.box(116.2995, 39.9995, 116.3065, 40.0055)


def test_generate_plan_levels_nest_and_balance():
    b, extent = _lattice_buildings()
    edges = gpd.GeoDataFrame({"highway": ["primary"]}, geometry=[shapely.LineString([(116.3029, 39.99), (116.3029, 40.01)])],
                             crs=4326)
    hh = np.full(len(b), 30.0)
    lab = generate_plan(b, hh, edges, extent, GridTargets(community=1500, level1=500, level2=150))
    assert lab["community"].nunique() == 2
    per2 = pd.Series(hh).groupby([lab["community"], lab["level1"], lab["level2"]]).sum()
    assert per2.between(90, 210).all()
    # every (community, level1) pair belongs to exactly one community by construction
    assert lab.groupby(["community", "level1"]).ngroups == lab[["community", "level1"]].drop_duplicates().shape[0]
    # the primary road splits the lattice: communities do not straddle it where avoidable
    x = shapely.get_coordinates(b.geometry.centroid.values)[:, 0]
    west = x < 116.3029
    assert lab.loc[west, "community"].nunique() == 1 and lab.loc[~west, "community"].nunique() == 1


def test_synthetic_households_are_deterministic_and_labelled():
    b = pd.DataFrame({"id": ["a", "b"], "floors": [6, 2], "units": [2, 1]})
    cap = np.array([24, 0])
    groups = [KeyGroup("living_alone_elderly", "独居老人", "alone", False, 0.3),
              KeyGroup("empty_nest_elderly", "空巢老人", "empty", False, 0.3)]
    h1 = generate_households(b, cap, groups, seed=1)
    h2 = generate_households(b, cap, groups, seed=1)
    pd.testing.assert_frame_equal(h1, h2)
    assert h1["synthetic"].all() and set(h1["building_id"]) == {"a"}
    assert h1["id"].is_unique and 15 <= len(h1) <= 24
    alone = h1["tags"].map(lambda t: "living_alone_elderly" in t)
    assert (h1.loc[alone, "persons"] == 1).all()
    assert set(h1["unit"]) <= {1, 2}
    assert not h1["tags"].map(lambda t: {"living_alone_elderly", "empty_nest_elderly"} <= set(t)).any()
    h3 = generate_households(b, cap, groups, seed=2)
    assert not h1["persons"].equals(h3["persons"])
