"""Synthetic district projects (GeoPackage) at a fraction of the full district, built once and
reused by the benchmarks: 1.0 = 300,000 buildings, 3,000,000 households, 20,000 level-2 grids,
with a footway lattice and service points of every type (benchmarks/synthetic_city.py).

    python -m benchmarks.district 0.1 1.0     # build (a few minutes at 1.0) and print the paths
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
FULL = {"n_grids": 20_000, "n_buildings": 300_000, "n_households": 3_000_000}


def district_gpkg(fraction: float = 1.0) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    tag = "district_300k" if fraction == 1.0 else f"district_{int(round(fraction * 100))}pct"
    path = RESULTS / f"{tag}.gpkg"
    if path.exists():
        return path
    sys.path.insert(0, str(ROOT))
    from benchmarks.synthetic_city import make_city
    from data.bundle import make_bundle
    from data.gpkg_store import GpkgStore
    t0 = time.perf_counter()
    layers = make_city(**{k: max(1, int(v * fraction)) for k, v in FULL.items()}, with_streets=True)
    layers["plans"] = layers["plans"].assign(status="adopted")
    tmp = path.with_suffix(".building.gpkg")
    tmp.unlink(missing_ok=True)
    GpkgStore(tmp).write_all(make_bundle(layers))
    GpkgStore(tmp).checkpoint()
    os.replace(tmp, path)
    print(f"built {path} in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return path


if __name__ == "__main__":
    for arg in sys.argv[1:] or ["1.0"]:
        print(district_gpkg(float(arg)))
