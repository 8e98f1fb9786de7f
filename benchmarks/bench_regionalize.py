"""Regionalisation on the shipped sample: geo/regionalize vs PySAL spopt (max-p with a
households floor, SKATER with the same number of regions), per community, on the same
road-aware building-cell graph. Reports balance (share of level-2 grids within band, CV of
households), contiguity (all regions connected, count of split regions, judged on the cell
adjacency), main-road adjacencies inside regions, and median time over repeats.

    python benchmarks/bench_regionalize.py [--repeats 3]

spopt/libpysal are optional (benchmark only); without them only ours is reported."""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from data.gpkg_store import GpkgStore  # noqa: E402
from geo.plan import plan_from_bundle  # noqa: E402
from geo.regionalize import building_graph, evaluate, partition  # noqa: E402
from minsheng.settings import Settings, sample_path  # noqa: E402


def per_community(g, fn):
    labels = np.full(g.n, None, dtype=object)
    for c in np.unique(g.community):
        nodes = np.flatnonzero(g.community == c)
        lab = fn(nodes)
        labels[nodes] = [f"{c}-{x}" for x in lab]
    return labels


def ours(g, lo, hi):
    return lambda nodes: partition(g.adjacency[nodes][:, nodes], g.xy[nodes], g.weight[nodes], lo, hi,
                                   crossing=g.crossing[nodes][:, nodes])


def _w(g, nodes):
    from libpysal.weights import W
    a = g.adjacency[nodes][:, nodes].tocsr()
    neigh = {i: [int(j) for j in a.indices[a.indptr[i]:a.indptr[i + 1]]] for i in range(len(nodes))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return W(neigh, silence_warnings=True)


def _frame(g, nodes):
    import geopandas as gpd
    xy = g.xy[nodes]
    return gpd.GeoDataFrame({"x": (xy[:, 0] - xy[:, 0].mean()) / 100, "y": (xy[:, 1] - xy[:, 1].mean()) / 100,
                             "hh": g.weight[nodes]}, geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]))


def maxp(g, lo):
    from spopt.region import MaxPHeuristic

    def run(nodes):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = MaxPHeuristic(_frame(g, nodes), _w(g, nodes), ["x", "y"], "hh", lo, top_n=2, max_iterations_construction=50)
            m.solve()
        return np.asarray(m.labels_)
    return run


def skater(g, k_of):
    from spopt.region import Skater

    def run(nodes):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            k = min(k_of[g.community[nodes[0]]], len(nodes))
            m = Skater(_frame(g, nodes), _w(g, nodes), ["x", "y"], n_clusters=k, floor=1, islands="increase")
            m.solve()
        return np.asarray(m.labels_)
    return run


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    s = Settings()
    lo, hi = s.band_level2.low, s.band_level2.high
    b = GpkgStore(sample_path()).load()
    base = plan_from_bundle(b, "P1")
    t = time.perf_counter()
    g = building_graph(b.buildings, b.households, b.communities, b.walk_edges, community_of=base.community_of_building())
    graph_s = time.perf_counter() - t
    methods = {"minsheng regionalize": ours(g, lo, hi)}
    try:
        import spopt  # noqa: F401
        methods["spopt max-p (floor 80 hh)"] = maxp(g, lo)
    except ImportError:
        print("spopt not installed: pip install spopt libpysal (benchmark only)")
    rows = []
    k_of = {}
    for name, fn in list(methods.items()):
        times, labels = [], None
        for _ in range(args.repeats):
            t = time.perf_counter()
            labels = per_community(g, fn)
            times.append(time.perf_counter() - t)
        ev = evaluate(g, labels, lo, hi)
        rows.append({"method": name, "seconds_median": round(float(np.median(times)), 3), **ev})
        if name.startswith("minsheng"):
            k_of = pd.Series(labels).groupby(g.community).nunique().to_dict()
            if "spopt max-p (floor 80 hh)" in methods:
                methods_sk = skater(g, k_of)
                times2 = []
                for _ in range(args.repeats):
                    t = time.perf_counter()
                    l2 = per_community(g, methods_sk)
                    times2.append(time.perf_counter() - t)
                rows.append({"method": "spopt SKATER (same k)", "seconds_median": round(float(np.median(times2)), 3),
                             **evaluate(g, l2, lo, hi)})
    rows.append({"method": "sample plan P1 (gridgen)", "seconds_median": None,
                 **evaluate(g, base.building_grid().reindex(g.ids).to_numpy(), lo, hi)})
    df = pd.DataFrame(rows)
    cols = ["method", "regions", "share_in_band", "cv", "min", "max", "contiguous", "split_regions",
            "cut_main_roads", "seconds_median"]
    print(f"sample: {g.n} buildings, {int(g.weight.sum())} households, band {lo}-{hi}; graph built in {graph_s:.3f} s")
    print(df[cols].to_string(index=False))
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_regionalize.json").write_text(json.dumps({"band": [lo, hi], "graph_seconds": graph_s,
                                                            "rows": rows}, ensure_ascii=False, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
