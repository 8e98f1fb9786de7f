"""PostGIS at city scale: bulk load time, and the dashboard's main queries in SQL vs pandas.

    python benchmarks/bench_postgis.py                  # 300k buildings, 3M households (~5-8 min)
    python benchmarks/bench_postgis.py --scale 0.05     # quick look
    python benchmarks/bench_postgis.py --dsn postgresql://...   # an existing (empty!) database

Without --dsn a throwaway cluster is started (tests/pg.py) and removed afterwards.
Queries (medians over --repeat runs):
  grid_panel   one level-2 grid: buildings, households, persons, key-group counts
  coverage     households and persons per grid for a plan
SQL runs against PostGIS (PostgisStore.grid_summary / households_per_grid); the pandas
reference computes the same from a Bundle loaded from a GeoPackage (geo/ledger.py).
Results: a table on stdout and JSON in benchmarks/results/.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def make_city_private(n_buildings: int, n_households: int, n_grids: int, seed: int = 7) -> dict:
    """A minimal synthetic city (contract layers): square buildings on a jittered lattice,
    level-2 grids of contiguous building blocks, households with key-group tags."""
    import geopandas as gpd
    import shapely
    from shapely.geometry import MultiPolygon
    from data.catalogue import key_groups
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n_buildings)))
    i = np.arange(n_buildings)
    x0, y0, step = 116.2, 39.8, 0.0004  # ~ 35 m lattice around Beijing
    cx = x0 + (i % side) * step + rng.uniform(-step / 8, step / 8, n_buildings)
    cy = y0 + (i // side) * step + rng.uniform(-step / 8, step / 8, n_buildings)
    h = step * rng.uniform(0.15, 0.3, n_buildings)
    polys = shapely.box(cx - h, cy - h, cx + h, cy + h)
    geoms = shapely.multipolygons(polys, indices=np.arange(n_buildings))
    bid = np.char.add("B", np.arange(n_buildings).astype(str)).astype(object)
    buildings = gpd.GeoDataFrame({
        "id": bid, "code": bid, "name": np.char.add(np.arange(n_buildings).astype(str), "号楼").astype(object),
        "address": None, "compound": np.char.add("小区", (i // 50).astype(str)).astype(object),
        "floors": rng.integers(3, 30, n_buildings), "units": rng.integers(1, 5, n_buildings),
        "floors_estimated": rng.random(n_buildings) < 0.3, "kind": "residential", "osm_id": None},
        geometry=geoms, crs="EPSG:4326")
    # grids: blocks of the lattice, ~n_buildings / n_grids buildings each
    per_side = max(1, int(np.sqrt(n_grids)))
    bx = np.minimum((i % side) * per_side // side, per_side - 1)
    by = np.minimum((i // side) * per_side // side, per_side - 1)
    g2 = by * per_side + bx
    gid2 = np.char.add("G2-", g2.astype(str)).astype(object)
    n2 = per_side * per_side
    ids2 = np.char.add("G2-", np.arange(n2).astype(str)).astype(object)
    parent2 = np.char.add("G1-", (np.arange(n2) // 8).astype(str)).astype(object)
    ids1 = np.unique(parent2)
    ext = pd.DataFrame({"g": g2, "x": cx, "y": cy}).groupby("g").agg(
        x0=("x", "min"), y0=("y", "min"), x1=("x", "max"), y1=("y", "max")).reindex(np.arange(n2))
    ext = ext.fillna({"x0": x0, "y0": y0, "x1": x0 + step, "y1": y0 + step})
    boxes2 = shapely.box(ext["x0"] - step / 2, ext["y0"] - step / 2, ext["x1"] + step / 2, ext["y1"] + step / 2)
    boxes1 = [shapely.union_all(boxes2[(np.arange(n2) // 8) == k]) for k in range(len(np.unique(parent2)))]
    to_multi = lambda g: shapely.multipolygons(np.asarray(g), indices=np.arange(len(g)))
    grid_geoms = np.concatenate([to_multi(shapely.envelope(boxes1)), to_multi(boxes2)])
    grid_geom = MultiPolygon([shapely.box(x0, y0, cx.max(), cy.max())])
    grids = gpd.GeoDataFrame({
        "id": np.concatenate([ids1, ids2]), "plan_id": "P1",
        "level": np.r_[np.ones(len(ids1), int), np.full(n2, 2)],
        "parent_id": np.concatenate([np.full(len(ids1), "C1", dtype=object), parent2]),
        "code": None, "name": np.concatenate([ids1, ids2]), "head_name": "网格长", "head_phone": None},
        geometry=grid_geoms, crs="EPSG:4326")
    assignments = pd.DataFrame({"plan_id": "P1", "building_id": bid, "grid_id": gid2})
    # households: spread over buildings
    hb = np.sort(rng.integers(0, n_buildings, n_households))
    keys = [g.key for g in key_groups()]
    share = np.array([g.synthetic_share for g in key_groups()])
    mat = rng.random((n_households, len(keys))) < share
    key_arr = np.array(keys, dtype=object)
    combos, inv = np.unique(np.packbits(mat, axis=1), axis=0, return_inverse=True)
    lists = [list(key_arr[np.unpackbits(c)[:len(keys)].astype(bool)]) for c in combos]
    tags = [list(lists[k]) for k in inv.ravel()]
    households = pd.DataFrame({
        "id": np.char.add("H", np.arange(n_households).astype(str)).astype(object),
        "building_id": bid[hb], "unit": rng.integers(1, 5, n_households),
        "room": rng.integers(101, 2999, n_households).astype(str).astype(object),
        "persons": rng.integers(1, 6, n_households), "tags": tags,
        "head_name": "合成", "phone": "19900000000", "synthetic": True})
    plans = pd.DataFrame({"id": ["P1"], "name": ["方案"], "status": ["adopted"], "version": [1],
                          "created_at": ["2026-01-01"], "created_by": ["bench"]})
    communities = gpd.GeoDataFrame({"id": ["C1"], "code": ["1"], "name": ["合成社区"], "street": ["街道"]},
                                   geometry=[grid_geom], crs="EPSG:4326")
    n_sp = max(1, n_buildings // 60)
    sp = gpd.GeoDataFrame({"id": np.char.add("S", np.arange(n_sp).astype(str)).astype(object), "name": "服务站",
                           "type": "clinic", "capacity": 100, "osm_id": None},
                          geometry=shapely.points(cx[:n_sp], cy[:n_sp]), crs="EPSG:4326")
    return {"plans": plans, "communities": communities, "grids": grids, "buildings": buildings,
            "assignments": assignments, "households": households, "service_points": sp}


def make_city(n_buildings: int, n_households: int, n_grids: int) -> tuple[dict, str]:
    """The shared generator (benchmarks/synthetic_city.py) when present, else the private one."""
    try:
        from benchmarks.synthetic_city import make_city as shared  # written by another engineer
        return shared(n_buildings=n_buildings, n_households=n_households, n_grids=n_grids), "shared"
    except (ImportError, TypeError):
        return make_city_private(n_buildings, n_households, n_grids), "private"


def median_ms(fn, repeat: int) -> tuple[float, object]:
    fn()  # warm-up (caches, plans)
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), out


def pandas_grid_panel(b, plan_id, grid_id, keys):
    a = b.assignments
    bids = a.loc[(a["plan_id"] == plan_id).to_numpy() & (a["grid_id"] == grid_id).to_numpy(), "building_id"]
    hh = b.households
    sel = hh[hh["building_id"].isin(bids).to_numpy()]
    ex = sel["tags"].explode()
    counts = ex[ex.isin(keys)].value_counts()
    return {"buildings": int(bids.nunique()), "households": len(sel), "persons": int(sel["persons"].sum()),
            **{k: int(counts.get(k, 0)) for k in keys}}


def pandas_coverage(b, plan_id):
    hh = b.households
    per_b = hh.groupby("building_id", sort=False)["persons"].agg(["size", "sum"])
    per_b.columns = ["households", "persons"]
    a = b.assignments
    a = a[(a["plan_id"] == plan_id).to_numpy()]
    m = a.merge(per_b, left_on="building_id", right_index=True, how="left")
    m["buildings"] = 1
    out = m.groupby("grid_id")[["buildings", "households", "persons"]].sum()
    return out.fillna(0).astype("int64").sort_index()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", type=float, default=1.0, help="fraction of 300k buildings / 3M households / 20k grids")
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--dsn", default="", help="an existing empty database (default: throwaway cluster)")
    p.add_argument("--no-gpkg-write", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    from data.bundle import make_bundle
    from data.catalogue import key_groups
    from data.gpkg_store import GpkgStore
    from data.postgis_store import PostgisStore

    nb, nh, ng = int(300_000 * args.scale), int(3_000_000 * args.scale), max(4, int(20_000 * args.scale))
    keys = tuple(g.key for g in key_groups())
    res: dict = {"benchmark": "postgis", "buildings": nb, "households": nh, "grids_level2_target": ng,
                 "repeat": args.repeat, "python": platform.python_version(), "machine": platform.machine()}
    t0 = time.perf_counter()

    def say(msg):
        print(f"[{time.perf_counter() - t0:6.1f}s] {msg}", file=sys.stderr, flush=True)

    t = time.perf_counter()
    layers, gen = make_city(nb, nh, ng)
    bundle = make_bundle(layers)
    res["generator"] = gen
    res["generate_s"] = round(time.perf_counter() - t, 2)
    say(f"city generated ({gen}): {len(bundle.buildings):,} buildings, {len(bundle.households):,} households, "
        f"{int((bundle.grids['level'] == 2).sum()):,} level-2 grids")

    cluster = None
    dsn = args.dsn
    if not dsn:
        from tests.pg import PgCluster
        cluster = PgCluster.start()
        dsn = cluster.new_database("bench")
    tmp = Path(tempfile.mkdtemp(prefix="minsheng-bench-"))
    try:
        with PostgisStore(dsn) as pg:
            pg.migrate()
            t = time.perf_counter()
            per_layer = {}
            last = [time.perf_counter()]

            def progress(name, n):
                now = time.perf_counter()
                per_layer[name] = round(now - last[0], 2)
                last[0] = now
            pg.write_all(bundle, progress=progress)
            res["postgis_write_all_s"] = round(time.perf_counter() - t, 2)
            res["postgis_write_per_layer_s"] = per_layer
            res["postgis_write_per_layer_note"] = ("the first layer's time includes validating every layer "
                                                   "(conform, keys, geometry types) before the transaction")
            say(f"PostGIS write_all: {res['postgis_write_all_s']} s  {per_layer}")
            with pg.connection() as conn:  # fresh statistics for the planner, as after any bulk load
                conn.execute("ANALYZE")
            t = time.perf_counter()
            pg_bundle = pg.load()
            res["postgis_load_s"] = round(time.perf_counter() - t, 2)
            say(f"PostGIS load (Bundle): {res['postgis_load_s']} s")
            del pg_bundle

            gpkg = tmp / "city.gpkg"
            t = time.perf_counter()
            GpkgStore(gpkg).write_all(bundle)
            res["gpkg_write_all_s"] = round(time.perf_counter() - t, 2)
            say(f"GeoPackage write_all: {res['gpkg_write_all_s']} s")
            t = time.perf_counter()
            gb = GpkgStore(gpkg).load()
            res["gpkg_load_s"] = round(time.perf_counter() - t, 2)
            say(f"GeoPackage load (Bundle): {res['gpkg_load_s']} s")
            del bundle

            plan = gb.adopted_plan_id()
            g2 = gb.grids[(gb.grids["level"] == 2).to_numpy()]["id"].tolist()
            grid_ids = [g2[i] for i in np.linspace(0, len(g2) - 1, 5).astype(int)]
            queries = {}
            # grid panel: median over repeat runs, cycling through 5 grids
            it = iter(range(10 ** 9))
            sql_ms, sql_out = median_ms(lambda: pg.grid_summary(plan, grid_ids[next(it) % 5], keys), args.repeat)
            it = iter(range(10 ** 9))
            pd_ms, pd_out = median_ms(lambda: pandas_grid_panel(gb, plan, grid_ids[next(it) % 5], keys), args.repeat)
            check = pg.grid_summary(plan, grid_ids[0], keys) == pandas_grid_panel(gb, plan, grid_ids[0], keys)
            queries["grid_panel"] = {"postgis_ms": round(sql_ms, 2), "pandas_ms": round(pd_ms, 2),
                                     "same_answer": bool(check)}
            say(f"grid panel: SQL {sql_ms:.1f} ms, pandas {pd_ms:.1f} ms, same answer: {check}")
            sql_ms, sql_out = median_ms(lambda: pg.households_per_grid(plan), args.repeat)
            pd_ms, pd_out = median_ms(lambda: pandas_coverage(gb, plan), args.repeat)
            check = sql_out.sort_index().equals(pd_out[sql_out.columns].sort_index())
            queries["coverage_by_grid"] = {"postgis_ms": round(sql_ms, 2), "pandas_ms": round(pd_ms, 2),
                                           "same_answer": bool(check), "grids": len(sql_out)}
            say(f"coverage by grid: SQL {sql_ms:.1f} ms, pandas {pd_ms:.1f} ms, same answer: {check}")
            res["queries"] = queries
    finally:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
        if cluster is not None:
            cluster.stop()
    res["total_s"] = round(time.perf_counter() - t0, 1)

    print(f"\nPostGIS benchmark: {nb:,} buildings, {nh:,} households (generator: {res['generator']})")
    print(f"{'step':<28}{'seconds':>10}")
    for k in ("generate_s", "postgis_write_all_s", "postgis_load_s", "gpkg_write_all_s", "gpkg_load_s"):
        print(f"{k[:-2]:<28}{res[k]:>10.2f}")
    print(f"\n{'query (median ms)':<22}{'PostGIS SQL':>12}{'pandas':>10}{'pandas/SQL':>12}{'same':>6}")
    for q, r in res["queries"].items():
        print(f"{q:<22}{r['postgis_ms']:>12.1f}{r['pandas_ms']:>10.1f}{r['pandas_ms'] / r['postgis_ms']:>12.2f}"
              f"{'yes' if r['same_answer'] else 'NO':>6}")
    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"postgis_{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(res, indent=2, ensure_ascii=False))
    print(f"\nwrote {out} (total {res['total_s']} s)")
    return 0 if all(r["same_answer"] for r in res["queries"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
