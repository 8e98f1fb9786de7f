"""Benchmark: the cost of signing in and of the per-request session check, GeoPackage vs PostGIS.

    python benchmarks/bench_login.py [--runs 20] [--no-postgis]

A sign-in reads one user row, checks the throttle, verifies the scrypt hash and writes the
session row and its audit row in one transaction (data/auth_store.py); no dataset is read.
Reported: median of a full POST /login through the Flask test client, of the scrypt check
alone (the reference: what a sign-in must cost at least), and of one authorised request's
session lookup (auth_store.session_user). Writes JSON to benchmarks/results/.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _median(f, runs: int) -> float:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        f()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def bench_store(kind: str, store, settings_kw: dict, runs: int) -> dict:
    from app import create_app
    from data import auth_store
    from minsheng.auth import hash_password, verify_password
    from minsheng.settings import Settings
    from tests.auth_client import KEY, PASSWORD, login
    h = hash_password(PASSWORD)
    auth_store.add_user(store, "bench", h, "viewer")
    app = create_app(Settings(secret_key=KEY, **settings_kw), store=store)
    login_s = _median(lambda: login(app, "bench", PASSWORD), runs)
    scrypt_s = _median(lambda: verify_password(PASSWORD, h), runs)
    auth_store.create_session(store, "bench", "bench-token")
    lookup_s = _median(lambda: auth_store.session_user(store, "bench-token", idle_s=1800, absolute_s=43200), runs * 5)
    return {"store": kind, "login_ms": login_s * 1e3, "scrypt_ms": scrypt_s * 1e3,
            "login_minus_scrypt_ms": (login_s - scrypt_s) * 1e3, "session_lookup_ms": lookup_s * 1e3}


def main(argv=None) -> list:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--no-postgis", action="store_true")
    a = p.parse_args(argv)
    from data.gpkg_store import GpkgStore
    from minsheng.settings import sample_path
    results = []
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "p.gpkg"
        shutil.copyfile(sample_path(), path)
        results.append(bench_store("gpkg", GpkgStore(path), {"data": str(path)}, a.runs))
    if not a.no_postgis:
        from data.postgis_store import PostgisStore
        from minsheng.cli import main as cli
        from tests.pg import PgCluster
        with PgCluster.start() as cluster:
            dsn = cluster.new_database()
            assert cli(["load", "--data", str(sample_path()), "--dsn", dsn]) == 0
            store = PostgisStore(dsn)
            try:
                results.append(bench_store("postgis", store, {"dsn": dsn}, a.runs))
            finally:
                store.close()
    print(f"{'store':8} {'login ms':>9} {'scrypt ms':>10} {'login-scrypt':>13} {'session lookup ms':>18}")
    for r in results:
        print(f"{r['store']:8} {r['login_ms']:9.1f} {r['scrypt_ms']:10.1f} {r['login_minus_scrypt_ms']:13.1f} "
              f"{r['session_lookup_ms']:18.2f}")
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_login.json").write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
