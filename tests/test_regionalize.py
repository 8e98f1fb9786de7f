"""geo/regionalize: contiguous, balanced proposals; min-moves; the CLI end to end."""
import json
import shutil

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from data.gpkg_store import GpkgStore
from geo.plan import merge_grids, plan_from_bundle, structure_problems
from geo.regionalize import building_graph, partition, propose_plan
from minsheng.settings import Band, Settings, sample_path

BANDS = Settings(band_level2=Band(80, 300), band_level1=Band(300, 800), band_community=Band(100, 10_000))


def lattice(n=10, seed=1):
    rng = np.random.default_rng(seed)
    x0, y0, d = 116.35, 40.0, 0.0005
    ids, geoms = [], []
    for i in range(n):
        for j in range(n):
            cx, cy = x0 + i * d, y0 + j * d
            ids.append(f"B{i:02d}{j:02d}")
            geoms.append(shapely.box(cx - d / 4, cy - d / 4, cx + d / 4, cy + d / 4))
    b = gpd.GeoDataFrame({"id": ids, "compound": None}, geometry=geoms, crs=4326)
    c = gpd.GeoDataFrame({"id": ["C1"], "code": ["001"], "name": ["格子社区"]},
                         geometry=[shapely.box(x0 - d / 2, y0 - d / 2, x0 + n * d - d / 2, y0 + n * d - d / 2)], crs=4326)
    per = rng.integers(5, 40, len(ids))
    hh = pd.DataFrame({"id": [f"H{k}" for k in range(int(per.sum()))], "building_id": np.repeat(ids, per),
                       "persons": 2, "tags": [[] for _ in range(int(per.sum()))]})
    # a main road through the middle (north-south)
    xm = x0 + (n / 2 - 0.5) * d
    e = gpd.GeoDataFrame({"u": [1], "v": [2], "length_m": [1.0], "highway": ["primary"], "name": ["主路"]},
                         geometry=[shapely.LineString([(xm, y0 - d), (xm, y0 + n * d)])], crs=4326)
    return b, c, hh, e


def test_lattice_proposal_contiguous_balanced_and_respects_road():
    b, c, hh, e = lattice()
    prop = propose_plan(b, hh, c, e, bands=BANDS)
    s = prop.stats["all"]
    assert s["contiguous"] and s["split_regions"] == 0
    assert s["share_in_band"] == 1.0
    assert s["cut_main_roads"] == 0  # the road can be respected: each half is connected
    assert structure_problems(prop.plan, b["id"]) == []
    lv1 = prop.plan.grids[prop.plan.grids["level"] == 1]
    assert len(lv1) >= 1 and prop.plan.grids["code"].notna().all() and prop.plan.grids["code"].is_unique


def test_partition_of_a_path():
    # a path of 12 nodes, weights 50: regions must be contiguous runs within 80..300
    n = 12
    i = np.arange(n - 1)
    import scipy.sparse as sp
    adj = sp.coo_matrix((np.ones(2 * (n - 1)), (np.r_[i, i + 1], np.r_[i + 1, i])), shape=(n, n)).tocsr()
    xy = np.column_stack([np.arange(n) * 10.0, np.zeros(n)])
    lab = partition(adj, xy, np.full(n, 50.0), 80, 300)
    load = np.bincount(lab, weights=np.full(n, 50.0))
    assert ((load >= 80) & (load <= 300)).all()
    for r in np.unique(lab):
        pos = np.flatnonzero(lab == r)
        assert (np.diff(pos) == 1).all()


@pytest.fixture(scope="module")
def sample():
    return GpkgStore(sample_path()).load()


def test_sample_proposal_and_min_moves(sample):
    b = sample
    base = plan_from_bundle(b, "P1")
    g = building_graph(b.buildings, b.households, b.communities, b.walk_edges,
                       community_of=base.community_of_building())
    fresh = propose_plan(b.buildings, b.households, b.communities, b.walk_edges, graph=g, start_from=base,
                         min_moves=False)
    s = fresh.stats["all"]
    assert structure_problems(fresh.plan, b.buildings["id"]) == []
    # the only unavoidable problems: one building alone above the band; communities whose
    # polygon has a detached piece with a few buildings (split regions <= pieces too small)
    assert fresh.infeasible and s["share_in_band"] >= 0.9
    assert s["split_regions"] <= 2
    # unbalance P1 by merging two grids, then min-moves repairs it with few moves
    bad = merge_grids(base, ["C002-02-01", "C002-02-02"])
    mm = propose_plan(b.buildings, b.households, b.communities, b.walk_edges, graph=g, start_from=bad)
    assert 0 < mm.moved < fresh.moved
    def excess(plan):
        load = plan.building_grid().reindex(g.ids).to_frame("g").assign(w=g.weight).groupby("g")["w"].sum()
        return float((np.maximum(0, 80 - load) + np.maximum(0, load - 300)).sum())
    assert excess(mm.plan) < excess(bad)
    assert set(mm.plan.grids["id"]) == set(bad.grids["id"])  # ids, names, heads kept


def test_cli_propose_and_diff(tmp_path, capsys):
    from minsheng.cli import main
    p = tmp_path / "p.gpkg"
    shutil.copyfile(sample_path(), p)
    assert main(["propose", "--data", str(p), "--community", "C002", "--out-plan", "自动"]) == 0
    out = capsys.readouterr().out
    assert "draft plan P2" in out and "in band" in out
    plans = GpkgStore(p).load().plans.set_index("id")
    assert plans.loc["P2", "status"] == "draft" and plans.loc["P1", "status"] == "adopted"
    assert main(["propose", "--data", str(p), "--from-plan", "P2", "--min-moves", "--out-plan", "少动"]) == 0
    capsys.readouterr()
    assert main(["diff", "--data", str(p), "P1", "P2", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["moved"] and all(m["from_grid"].startswith("C002") for m in d["moved"])
    assert set(d["balance"]) == {"a", "b"}
    assert main(["diff", "--data", str(p), "P1", "P2"]) == 0
    text = capsys.readouterr().out
    assert "buildings moved" in text
    heads = GpkgStore(p).load().grids["head_phone"].dropna()
    assert not any(h in text for h in heads)
    assert main(["diff", "--data", str(p), "P1", "P9"]) == 2
    assert sample_path().read_bytes() != p.read_bytes()
