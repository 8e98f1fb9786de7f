"""Benchmark: the joint-meeting pack (minsheng pack) for a 10 % district.

    python benchmarks/bench_pack.py [--grids 2000 --buildings 30000 --households 300000 --runs 1]

Target (issue 16): PDF + PPTX for a 10 % district (about 270 communities) in under 60 s, with
progress shown. The synthetic city (benchmarks/synthetic_city.py) gets a draft plan that moves
the buildings of every 50th level-2 grid into its neighbour, so the plan-change pages have
content. Reports the median of the runs per phase (audit, circle, community pages, PDF via
headless Chromium, PPTX) and the page count; writes JSON to benchmarks/results/.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGET_S = 60.0


def city_bundle(grids: int, buildings: int, households: int, seed: int = 0):
    import pandas as pd
    from benchmarks.synthetic_city import make_city
    from data.bundle import make_bundle
    layers = make_city(grids, buildings, households, seed=seed)
    plans = pd.concat([layers["plans"], pd.DataFrame([{"id": "P2", "name": "调整草案", "status": "draft",
                                                       "version": 1, "created_at": "2026-11-01T00:00:00Z",
                                                       "created_by": "bench"}])])
    a2 = layers["assignments"].assign(plan_id="P2")
    l2 = [f"G{i}" for i in range(0, grids - 1, 50)]
    a2.loc[a2["grid_id"].isin(l2), "grid_id"] = a2.loc[a2["grid_id"].isin(l2), "grid_id"].map(
        lambda g: f"G{int(g[1:]) + 1}")
    layers.update(plans=plans, grids=pd.concat([layers["grids"], layers["grids"].assign(plan_id="P2")],
                                               ignore_index=True),
                  assignments=pd.concat([layers["assignments"], a2], ignore_index=True))
    return make_bundle(layers)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--grids", type=int, default=2000)
    p.add_argument("--buildings", type=int, default=30_000)
    p.add_argument("--households", type=int, default=300_000)
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keep", help="directory to keep the last run's PDF and PPTX in")
    a = p.parse_args(argv)
    from data.bundle import make_bundle
    from data.exporters.pack import make_pack
    from data.gpkg_store import GpkgStore
    from minsheng.settings import Settings

    t = time.perf_counter()
    bundle = city_bundle(a.grids, a.buildings, a.households, a.seed)
    gen_s = time.perf_counter() - t
    n_comm = len(bundle.communities)
    print(f"10 % district: {n_comm} communities, {a.grids} level-2 grids, {a.buildings} buildings, "
          f"{a.households} households (generated in {gen_s:.1f} s)")

    def progress(done, total, what):
        print(f"\r  {done}/{total} {what:<24}", end="", file=sys.stderr, flush=True)

    runs, pages, sizes = [], 0, {}
    for _ in range(a.runs):
        with tempfile.TemporaryDirectory() as d:
            out = Path(a.keep) if a.keep else Path(d)
            snaps = GpkgStore(Path(d) / "snapshots.gpkg")  # the freeze is measured too (one insert)
            snaps.write_all(make_bundle({}))
            res = make_pack(bundle, Settings(), "2026Q4", out, store=snaps, progress=progress)
            print(file=sys.stderr)
            runs.append(res["seconds"])
            pages = len(res["pack"].pages)
            sizes = {k: v.stat().st_size for k, v in res["files"].items()}
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    result = {"benchmark": "pack", "communities": n_comm, "grids": a.grids, "buildings": a.buildings,
              "households": a.households, "pages": pages, "bytes": sizes, "runs": a.runs,
              "median_s": {k: round(v, 2) for k, v in med.items()}, "target_s": TARGET_S,
              "meets_target": med["all"] < TARGET_S, "cpus": os.cpu_count(), "python": platform.python_version()}
    print(f"{'phase':<14}{'median s':>10}")
    for k in ("audit", "circle", "communities", "total", "pdf", "pptx", "all"):
        if k in med:
            print(f"{k if k != 'total' else 'pages built':<14}{med[k]:>10.2f}")
    print(f"{pages} pages; PDF {sizes.get('pdf', 0) / 1e6:.1f} MB, PPTX {sizes.get('pptx', 0) / 1e6:.1f} MB; "
          f"target < {TARGET_S:.0f} s: {'OK' if result['meets_target'] else 'MISSED'}")
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_pack.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
    return result


if __name__ == "__main__":
    main()
