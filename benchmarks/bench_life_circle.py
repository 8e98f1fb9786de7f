"""Life circles at district scale: tier-by-tier compliance, siting, and the gate effect.

(a) On the tiled district network of bench_service_circle.py (~300k nodes, ~30k buildings),
    with the city's service points re-typed at random over every type the requirement
    catalogue lists (so every requirement has points): the single-type kernel (one unbounded
    super-source Dijkstra + per-building distances) against tier compliance for every
    building, tier by tier, under each walking profile. Target: each tier within 2x of the
    single-type kernel.
(b) Siting: add k=5 points over 2,000 candidate buildings (MCLP via spopt + CBC), demand =
    every building weighted by households. Target < 30 s.
(c) The gate effect on the shipped sample: shares of households meeting each tier with the
    compounds open vs closed (crossed only at their OSM gates).

    python benchmarks/bench_life_circle.py [--runs 3] [--tiles 11x12]
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_service_circle import build_city, median_time  # noqa: E402

from geo.life_circle import building_stats, building_tiers, compliance, compliance_shares, profile_edges  # noqa: E402
from geo.network import build_walk_graph, snap  # noqa: E402
from geo.service_circle import nearest_distances  # noqa: E402
from geo.siting import site  # noqa: E402
from minsheng.settings import Settings  # noqa: E402


def district(a, cat):
    src, crs, edges, buildings, points = build_city(*(int(x) for x in a.tiles.split("x")), a.nodes, a.points)
    types = sorted({x for r in cat.requirements for x in r.types})
    rng = np.random.default_rng(11)
    points = points.assign(type=rng.choice(types, len(points)))
    return src, crs, edges, buildings, points, types


def bench_tiers(a, cat, settings):
    src, crs, edges, buildings, points, types = district(a, cat)
    g = build_walk_graph(edges, crs=crs)
    bs, ps = snap(g, buildings.geometry), snap(g, points.geometry)
    ptype = points["type"].to_numpy()
    sample_types = types[: a.kernel_types]

    def kernel(i):
        ty = sample_types[i % len(sample_types)]
        return nearest_distances(g, ps.take(np.flatnonzero(ptype == ty)), bs)
    rows = []
    base = settings.walk_speed_m_min
    kernel_times = []
    for prof in cat.profiles:
        gp = g  # the tiled network carries no highway tags, so the wheelchair graph is the same
        for tier in cat.tiers:
            reqs = cat.requirements_of(tier.key)
            tk, tt = [], []
            for r in range(a.runs):  # alternate kernel and tier runs: the machine is shared, load drifts
                t0 = time.perf_counter()
                kernel(r)
                tk.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                tab = compliance(gp, buildings, bs, points, ps, cat, prof, base, [tier.key])
                tt.append(time.perf_counter() - t0)
            bt = building_tiers(tab)
            k_med, t_med = float(np.median(tk)), float(np.median(tt))
            kernel_times.append(k_med)
            rows.append({"profile": prof.key, "tier": tier.key, "requirements": len(reqs),
                         "distinct_type_sets": len({tuple(sorted(r.types)) for r in reqs}),
                         "reach_m": tier.reach_m * prof.speed_m_min / base, "kernel_s": k_med, "median_s": t_med,
                         "ratio_to_kernel": t_med / k_med, "buildings_ok": int(bt["ok"].sum())})
    t_kernel = float(np.median(kernel_times))
    t_all, _ = median_time(lambda: compliance(g, buildings, bs, points, ps, cat, cat.profiles[0], base), a.runs)
    info = {"base": src, "nodes": g.n_nodes, "edges": g.n_edges, "buildings": len(buildings),
            "points": len(points), "types": len(types), "kernel_median_s": t_kernel,
            "kernel_types_timed": len(sample_types), "all_tiers_general_s": t_all}
    return info, rows, (g, buildings, bs, points, ps)


def bench_siting(a, world):
    g, buildings, bs, points, ps = world
    rng = np.random.default_rng(5)
    w = rng.poisson(22, len(buildings)).astype(float)         # households per building (sample mean ~22)
    cand = np.sort(rng.choice(len(buildings), a.candidates, replace=False))
    existing = np.flatnonzero(points["type"].to_numpy() == "clinic")
    t, res = median_time(lambda: site(g, bs, w, ps.take(existing), bs.take(cand), a.k, a.reach), a.runs)
    return {"k": a.k, "candidates": a.candidates, "demand": len(buildings), "reach_m": a.reach,
            "existing_points": len(existing), "median_s": t, "status": res.status,
            "model_rows": res.model_rows, "model_cols": res.model_cols, "backend": res.backend,
            "share_before": res.share_before, "share_after": res.share_after}


def bench_gates(settings):
    from data.gpkg_store import GpkgStore
    from data.importers.osm_gates import from_bundle
    from geo.crs import metric_crs
    from geo.gates import compound_zones, gate_network, snap_zoned
    from geo.life_circle import scopes
    from data.catalogue import key_groups
    b = GpkgStore(settings.data_path).load()
    cat = settings.life_circles()
    cg = from_bundle(b)
    closed = tuple(cg.compounds.loc[cg.compounds["closed"], "id"])
    shut = tuple(cg.gates.loc[cg.gates["closed"] & (cg.gates["compound_id"] != ""), "id"])
    crs = metric_crs(b.walk_edges)
    groups = [g.key for g in key_groups()]
    st = building_stats(b.households, groups)
    sc = scopes(b.assignments, b.grids, b.communities)
    out = {}
    for name, cl in (("open", ()), ("closed", closed)):
        tables = {}
        for prof in cat.profiles:
            e = profile_edges(b.walk_edges, prof)
            if cl:
                ge = gate_network(e, cg.compounds, cg.gates, cl, shut, crs=crs)
                g = build_walk_graph(ge.edges, crs=crs)
                bs = snap_zoned(g, b.buildings.geometry, compound_zones(b.buildings.geometry, cg.compounds, cl, crs=crs), ge)
                ps = snap_zoned(g, b.service_points.geometry,
                                compound_zones(b.service_points.geometry, cg.compounds, cl, crs=crs), ge)
            else:
                g = build_walk_graph(e, crs=crs)
                bs, ps = snap(g, b.buildings.geometry), snap(g, b.service_points.geometry)
            tables[prof.key] = compliance(g, b.buildings, bs, b.service_points, ps, cat, prof,
                                          settings.walk_speed_m_min)
        sh = compliance_shares(tables, st, sc, cat, [g for g in groups if any(g in p.groups for p in cat.profiles)])
        sh = sh[sh["scope"] == "all"]
        out[name] = {(r.group, r.tier): r.share for r in sh.itertuples()}
        req = tables["general"].merge(st, on="building_id")
        out[name + "_req"] = (req.assign(ok=req["households"] * req["within"]).groupby("requirement")
                              [["ok", "households"]].sum().pipe(lambda d: d["ok"] / d["households"]).to_dict())
        if cl:
            out["cuts"], out["gates_used"] = len(ge.cuts), int(ge.crossings["gate_id"].nunique())
    out["closed_compounds"], out["buildings_inside"] = len(closed), int((compound_zones(
        b.buildings.geometry, cg.compounds, closed, crs=crs) != "").sum())
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiles", default="11x12")
    ap.add_argument("--nodes", type=int, default=300_000)
    ap.add_argument("--points", type=int, default=2_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--kernel-types", type=int, default=4)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--candidates", type=int, default=2_000)
    ap.add_argument("--reach", type=float, default=500)
    a = ap.parse_args(argv)
    settings = Settings()
    cat = settings.life_circles()
    info, rows, world = bench_tiers(a, cat, settings)
    print(f"district from {info['base']}: {info['nodes']:,} nodes, {info['edges']:,} edges, "
          f"{info['buildings']:,} buildings, {info['points']:,} points over {info['types']} types")
    print(f"single-type kernel (unbounded), median over all pairs: {info['kernel_median_s']:.3f} s; "
          f"each tier timed alternately with a kernel run (ratio = tier / kernel of the same pair)")
    df = pd.DataFrame(rows)
    print(df.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    print(f"all tiers, general profile, one call: {info['all_tiers_general_s']:.3f} s")
    s = bench_siting(a, world)
    print(f"siting k={s['k']} over {s['candidates']:,} candidates, {s['demand']:,} demand buildings, "
          f"reach {s['reach_m']:.0f} m: {s['median_s']:.2f} s ({s['status']}, {s['backend']} backend; model {s['model_rows']} rows x "
          f"{s['model_cols']} cols); share {s['share_before']:.1%} -> {s['share_after']:.1%}")
    gates = bench_gates(settings)
    print(f"\ngate effect on the sample ({gates['closed_compounds']} closed compounds, {gates['buildings_inside']} "
          f"buildings inside, {gates['gates_used']} gates used, {gates['cuts']} streets cut by walls):")
    keys = sorted(gates["open"], key=lambda k: (k[0] != "all", k[0], [t.key for t in cat.tiers].index(k[1])))
    print(f"{'group':<24}{'tier':<8}{'open':>8}{'closed':>8}{'change pp':>11}")
    for k in keys:
        o, c = gates["open"][k], gates["closed"].get(k, np.nan)
        print(f"{k[0]:<24}{k[1]:<8}{o:>8.1%}{c:>8.1%}{100 * (c - o):>11.1f}")
    print(f"\n{'requirement (general)':<24}{'open':>8}{'closed':>8}{'change pp':>11}")
    for r, o in gates["open_req"].items():
        c = gates["closed_req"][r]
        print(f"{r:<24}{o:>8.1%}{c:>8.1%}{100 * (c - o):>11.1f}")
    out = ROOT / "benchmarks" / "results" / "bench_life_circle.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"district": info, "tiers": rows, "siting": s,
                               "gates": {k: {f"{a_}|{b_}": v for (a_, b_), v in gates[k].items()}
                                         for k in ("open", "closed")},
                               "gates_requirements": {k: gates[k] for k in ("open_req", "closed_req")},
                               "python": platform.python_version()}, indent=2, default=float))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
