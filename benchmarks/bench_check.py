"""Benchmark: the full grid coverage audit (geo.coverage.audit_plan) on a synthetic city.

    python benchmarks/bench_check.py [--grids 20000 --buildings 300000 --households 3000000 --runs 3]

Target (DESIGN.md): full coverage recomputed in under 10 s on 2 cores at city scale
(20,000 grids, 300,000 buildings, 3,000,000 households). Reports the median of the runs,
the breakdown (geometry checks vs table aggregation, and the geometry phases), and the
ratio to a reference computed in the same run: one plain geopandas sjoin of buildings into
level-2 grids (the least a coverage check has to do). Writes JSON to benchmarks/results/.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGET_S = 10.0


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--grids", type=int, default=20_000)
    p.add_argument("--buildings", type=int, default=300_000)
    p.add_argument("--households", type=int, default=3_000_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)

    import geopandas as gpd
    from benchmarks.synthetic_city import make_city
    from data.catalogue import key_groups
    from geo.coverage import audit_plan
    from minsheng.settings import Settings

    t = time.perf_counter()
    city = make_city(a.grids, a.buildings, a.households, seed=a.seed)
    gen_s = time.perf_counter() - t
    tags = [k.key for k in key_groups()]
    sizes = {k: len(v) for k, v in city.items()}

    runs = []
    for _ in range(a.runs):
        audit = audit_plan(city["grids"], city["communities"], city["buildings"], city["assignments"],
                           city["households"], bands=Settings(), tag_keys=tags)
        runs.append(audit.timings)
    ref = []
    l2 = city["grids"][city["grids"]["level"] == 2]
    for _ in range(a.runs):
        t = time.perf_counter()
        gpd.sjoin(city["buildings"][["id", "geometry"]], l2[["id", "geometry"]], predicate="within")
        ref.append(time.perf_counter() - t)

    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    ref_s = statistics.median(ref)
    result = {
        "benchmark": "check", "sizes": sizes, "generate_s": round(gen_s, 3), "runs": a.runs,
        "median_total_s": round(med["total"], 3), "target_s": TARGET_S, "meets_target": med["total"] < TARGET_S,
        "breakdown_median_s": {k: round(v, 3) for k, v in med.items()},
        "reference_sjoin_s": round(ref_s, 3), "ratio_to_reference": round(med["total"] / ref_s, 2),
        "problems": audit.counts_by_kind(), "cpus": os.cpu_count(), "python": platform.python_version(),
    }
    print(f"synthetic city: {sizes['grids']} grids ({a.grids} level-2), {sizes['communities']} communities, "
          f"{sizes['buildings']} buildings, {sizes['households']} households (generated in {gen_s:.1f} s)")
    print(f"{'phase':<22}{'median s':>10}")
    for k in ("project", "validity", "nesting_overlap", "gaps", "buildings", "households", "geometry", "tables",
              "total"):
        print(f"{k:<22}{med[k]:>10.3f}")
    print(f"{'reference sjoin':<22}{ref_s:>10.3f}   (audit = {med['total'] / ref_s:.1f}x reference)")
    print(f"target < {TARGET_S:.0f} s: {'OK' if result['meets_target'] else 'MISSED'}; problems: {result['problems']}")
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_check.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
    return result


if __name__ == "__main__":
    main()
