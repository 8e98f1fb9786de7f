"""Store benchmark (issue: one transactional data layer), both stores, sample and district.

    python benchmarks/bench_store.py [--scale sample|district|both] [--stores gpkg,postgis]

For each (scale, store) a fresh process opens the project like the dashboard does and
measures, medians over repeated runs in that one process:

  app ready          create_app() (read model loaded), seconds
  login              POST /login through the Flask test client (one user row, one audit row)
  audit append       store.append_audit
  plan save          move 50 buildings of a draft and save (claim, replay, derive, write changed rows)
  grid panel         the panel callback for one level-2 grid (aggregates, no household rows)
  grid households    store.grid_households for one level-2 grid (on demand, through an index)
  RSS                resident memory of the process after all of the above

The district is benchmarks/synthetic_city.py at 300,000 buildings, 3,000,000 households and
20,000 level-2 grids; its GeoPackage is built once and kept in benchmarks/results/ (git-ignored).
PostGIS runs in a throwaway cluster on 127.0.0.1 (tests/pg.py). Results: a table on stdout and
benchmarks/results/bench_store.json.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT))
PASSWORD = "bench password 1"

DISTRICT = {"n_grids": 20_000, "n_buildings": 300_000, "n_households": 3_000_000}


def district_gpkg() -> Path:
    """The district as a GeoPackage, built once (a few minutes) and reused."""
    from benchmarks.district import district_gpkg as build
    return build(1.0)


CHILD = r'''
import json, os, statistics, sys, time, resource
sys.path.insert(0, {root!r})
t0 = time.perf_counter()
from app import create_app
from minsheng.settings import Settings
settings = Settings(data={data!r}, dsn={dsn!r}, secret_key="b" * 40)
app = create_app(settings)
ready = time.perf_counter() - t0
ctx = app.server.config["MINSHENG_CONTEXT"]
store = ctx.store
from minsheng.auth import hash_password
from data import auth_store
if auth_store.get_user(store, "bench") is None:
    auth_store.add_user(store, "bench", hash_password({pw!r}), "planner")

def med(fn, n):
    out = []
    for _ in range(n):
        t = time.perf_counter(); fn(); out.append(time.perf_counter() - t)
    return statistics.median(out) * 1000

client = app.server.test_client()
from tests.auth_client import csrf_of
def login():
    c = app.server.test_client()
    token = csrf_of(c)
    r = c.post("/login", data={{"username": "bench", "password": {pw!r}, "csrf": token}})
    assert r.status_code == 302, r.status_code
res = {{"app_ready_s": ready}}
res["login_ms"] = med(login, 15)
from minsheng.auth import verify_password
stored = auth_store.get_user(store, "bench")["password_hash"]
res["scrypt_ms"] = med(lambda: verify_password({pw!r}, stored), 15)  # the deliberate cost of the hash
res["audit_append_ms"] = med(lambda: store.append_audit("bench", "bench", "session", ""), 30)
b = ctx.bundle()
plan_id = b.adopted_plan_id()
g = b.plan_grids(plan_id)
l2 = g[g["level"] == 2]
gid = str(l2["id"].iloc[len(l2) // 2])
from tests.dash_client import call
from tests.test_app import params
from callbacks import ids
res["grid_panel_ms"] = med(lambda: call(app, ids.PANEL + ".children", params(b, selected=gid, plan=plan_id),
                                        client=client), 15)
res["grid_households_ms"] = med(lambda: store.grid_households(plan_id, gid), 15)
res["grid_households_rows"] = int(len(store.grid_households(plan_id, gid)))
# plan save: move 50 buildings of one level-1 grid between its level-2 grids, on a draft
from data.plans import copy_plan_to_draft, save_edits
draft = copy_plan_to_draft(store, plan_id, "bench draft", "bench")
b = ctx.bundle()
a = b.plan_assignments(draft)
parent = l2.set_index("id")["parent_id"]
sibs = [x for x in l2["id"] if parent[x] == parent[gid] and x != gid]
times = []
for i in range(3):
    v = store.plan_version(draft)
    src, dst = (gid, sibs[0]) if i % 2 == 0 else (sibs[0], gid)
    pool = a.loc[a["grid_id"] == src, "building_id"].tolist()
    cur = store.plan_frames(draft, geometry=False)[1]
    pool = cur.loc[cur["grid_id"] == src, "building_id"].tolist()
    moving = pool[:min(50, max(len(pool) - 1, 1))]
    edits = [["move_buildings", {{"building_ids": moving, "to_grid_id": dst, "empty": "keep"}}]]
    t = time.perf_counter()
    save_edits(store, draft, v, edits, "bench", bundle=ctx.bundle())
    times.append(time.perf_counter() - t)
res["plan_save_ms"] = statistics.median(times) * 1000
res["plan_save_moved"] = len(moving)
ctx.bundle()
with open("/proc/self/status") as f:
    rss = [l for l in f if l.startswith("VmRSS")][0].split()[1]
res["rss_mb"] = int(rss) / 1024
res["households"] = int(ctx.bundle().building_stats["households"].sum())
print("RESULT " + json.dumps(res))
'''


def measure(data: str, dsn: str) -> dict:
    code = CHILD.format(root=str(ROOT), data=data, dsn=dsn, pw=PASSWORD)
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "MINSHENG_DATA")}
    env["MINSHENG_HOME"] = tempfile.mkdtemp(prefix="bench-home-")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env)
    line = [x for x in r.stdout.splitlines() if x.startswith("RESULT ")]
    if r.returncode or not line:
        raise RuntimeError(f"benchmark process failed:\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}")
    return json.loads(line[0][7:])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--scale", choices=["sample", "district", "both"], default="both")
    p.add_argument("--stores", default="gpkg,postgis")
    a = p.parse_args(argv)
    from minsheng.settings import sample_path
    stores = a.stores.split(",")
    scales = ["sample", "district"] if a.scale == "both" else [a.scale]
    work = Path(tempfile.mkdtemp(prefix="bench-store-"))
    rows = []
    cluster = None
    try:
        if "postgis" in stores:
            from tests.pg import PgCluster
            cluster = PgCluster.start()
        for scale in scales:
            src = sample_path() if scale == "sample" else district_gpkg()
            for kind in stores:
                if kind == "gpkg":
                    path = work / f"{scale}.gpkg"
                    shutil.copyfile(src, path)
                    res = measure(str(path), "")
                else:
                    from data.gpkg_store import GpkgStore
                    from data.postgis_store import PostgisStore
                    dsn = cluster.new_database()
                    t0 = time.perf_counter()
                    with PostgisStore(dsn) as pg:
                        pg.write_all(GpkgStore(src).load())
                    print(f"loaded {scale} into PostGIS in {time.perf_counter() - t0:.0f} s", file=sys.stderr,
                          flush=True)
                    res = measure("", dsn)
                res.update(scale=scale, store=kind)
                rows.append(res)
                print(json.dumps(res), file=sys.stderr, flush=True)
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(work, ignore_errors=True)
    cols = [("app_ready_s", "app ready s", "{:.2f}"), ("login_ms", "login ms", "{:.1f}"),
            ("scrypt_ms", "of it scrypt", "{:.1f}"),
            ("audit_append_ms", "audit ms", "{:.1f}"), ("plan_save_ms", "save 50 ms", "{:.0f}"),
            ("grid_panel_ms", "panel ms", "{:.1f}"), ("grid_households_ms", "grid hh ms", "{:.1f}"),
            ("rss_mb", "RSS MB", "{:.0f}")]
    print(f"{'scale':<9}{'store':<9}" + "".join(f"{h:>13}" for _, h, _ in cols))
    for r in rows:
        print(f"{r['scale']:<9}{r['store']:<9}" + "".join(f"{f.format(r[k]):>13}" for k, _, f in cols))
    by = {(r["scale"], r["store"]): r for r in rows}
    for kind in stores:
        if ("sample", kind) in by and ("district", kind) in by:
            ratio = by[("district", kind)]["audit_append_ms"] / by[("sample", kind)]["audit_append_ms"]
            print(f"{kind}: audit append district / sample = {ratio:.2f}x (target <= 3x)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "bench_store.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
