"""Benchmark: the sample-area targets of DESIGN.md, plus import-osm per extract.

    python benchmarks/bench_app.py [--runs 7] [--extracts DIR]

- app ready: create_app() on the shipped sample (load + layout), median of runs;
  reference: reading the sample GeoPackage alone (GpkgStore.load), same run.
- map interaction: server time of the map callback and of the grid panel callback over
  HTTP (Flask test client), first call (cold, parameters not yet cached) and repeated (warm).
- ten-minute coverage: walking distance from every building to the nearest service point of
  every type (geo.service_circle.service_distances, graph built once), median; reference:
  one plain scipy multi-source Dijkstra from the nearest nodes of one type's points.
- import-osm: every `*/map.osm` under --extracts (default: ../shared/data when present, else
  the shipped sample source), median of 3.
Targets: ready < 3 s, interaction < 150 ms, coverage < 0.5 s. Writes benchmarks/results/bench_app.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def timed(fn, runs):
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out), out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--extracts", default=None)
    a = p.parse_args(argv)

    import numpy as np
    from scipy.sparse import csgraph

    from app import create_app
    from callbacks import ids
    from data.gpkg_store import GpkgStore
    from geo.network import build_walk_graph
    from geo.service_circle import CircleParams, service_distances
    from minsheng.settings import Settings, sample_path
    from tests.dash_client import call
    from tests.test_app import params

    res = {}
    res["sample_load_s"], _ = timed(lambda: GpkgStore(sample_path()).load(), a.runs)
    res["app_ready_s"], _ = timed(lambda: create_app(Settings()), a.runs)

    app = create_app(Settings())
    b = app.server.config["MINSHENG_CONTEXT"].bundle()
    g2 = b.plan_grids(b.adopted_plan_id())
    gids = list(g2.loc[g2["level"] == 2, "id"])
    layer_sets = [["communities", "level1", "level2", "buildings", "streets", "services"][:k] for k in range(1, 7)]
    cold = []
    for layers in layer_sets:  # each a new parameter set: computed, not cached
        t0 = time.perf_counter()
        call(app, f"{ids.MAP}.figure", params(b, layers=layers) + [(ids.FOCUS, "data", None)])
        cold.append(time.perf_counter() - t0)
    res["map_cold_ms"] = 1000 * statistics.median(cold)
    res["map_warm_ms"] = 1000 * timed(lambda: call(app, f"{ids.MAP}.figure", params(b) + [(ids.FOCUS, "data", None)]),
                                      a.runs)[0]
    panel = []
    for gid in gids[:a.runs * 2]:
        t0 = time.perf_counter()
        call(app, f"{ids.PANEL}.children", params(b, selected=gid))
        panel.append(time.perf_counter() - t0)
    res["grid_panel_ms"] = 1000 * statistics.median(panel)
    res["circle_view_cold_ms"] = 1000 * timed(lambda: call(
        app, f"{ids.MAP}.figure", params(b, view="circle", stype="clinic", minutes=15) + [(ids.FOCUS, "data", None)]),
        1)[0]

    graph = build_walk_graph(b.walk_edges)
    prm = CircleParams(minutes=10)
    res["coverage_all_types_s"], _ = timed(lambda: service_distances(graph, b.buildings, b.service_points, prm),
                                           a.runs)
    # reference: one plain multi-source Dijkstra per type from each point's nearest edge end (no offsets)
    from geo.network import snap
    ps = snap(graph, b.service_points.geometry)
    ok = ps.edge >= 0
    nearest = np.where(ps.to_u <= ps.to_v, graph.u[np.maximum(ps.edge, 0)], graph.v[np.maximum(ps.edge, 0)])
    tp = b.service_points["type"].to_numpy()

    def ref():
        for t in sorted(set(tp)):
            csgraph.dijkstra(graph.matrix, indices=np.unique(nearest[ok & (tp == t)]), min_only=True)
    res["coverage_reference_s"], _ = timed(ref, a.runs)
    res["coverage_ratio"] = res["coverage_all_types_s"] / res["coverage_reference_s"]

    from minsheng.commands.import_osm import build
    shared = Path(a.extracts) if a.extracts else ROOT.parent / "shared" / "data"
    files = sorted(shared.glob("*/map.osm")) if shared.exists() else []
    files = files or [ROOT / "data" / "samples" / "source" / "beijing_haidian_xueqing.osm"]
    res["import_osm_s"] = {}
    for f in files:
        name = f.parent.name if f.name == "map.osm" else f.stem
        res["import_osm_s"][name], _ = timed(lambda: build(f), 3)

    print(f"{'measure':34s} {'median':>10s}  target")
    print(f"{'sample GeoPackage load':34s} {res['sample_load_s']:9.2f}s")
    print(f"{'app ready (create_app)':34s} {res['app_ready_s']:9.2f}s  < 3 s")
    print(f"{'map callback, cold':34s} {res['map_cold_ms']:8.0f}ms  < 150 ms")
    print(f"{'map callback, cached':34s} {res['map_warm_ms']:8.0f}ms")
    print(f"{'grid panel callback':34s} {res['grid_panel_ms']:8.0f}ms  < 150 ms")
    print(f"{'circle view, first call':34s} {res['circle_view_cold_ms']:8.0f}ms")
    print(f"{'10-min coverage, all types':34s} {res['coverage_all_types_s']:9.3f}s  < 0.5 s")
    if "coverage_ratio" in res:
        print(f"{'  plain scipy reference':34s} {res['coverage_reference_s']:9.3f}s  ratio {res['coverage_ratio']:.2f}")
    for k, v in res["import_osm_s"].items():
        print(f"{'import-osm ' + k:34s} {v:9.2f}s")
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_app.json").write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main()
