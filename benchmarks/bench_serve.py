"""Benchmark: the map and panel callbacks under load, gunicorn vs Flask's development server.

    python benchmarks/bench_serve.py [--clients 8] [--requests 240] [--seconds 60] [--workers 2 --threads 4]

Loopback only (127.0.0.1) and bounded: each (server, callback) phase stops after --requests
requests or --seconds, whichever comes first. The server is `minsheng serve` on the shipped
sample in a child process: gunicorn (--workers x --threads, gthread) and `--dev` (Werkzeug,
threaded). --clients threads post Dash callback requests as the browser does, cycling through
the overview, coverage and service-circle views and every level-2 grid as the selected grid
(so panels are computed, and cached figures reused, as in real use). Warm-up requests (one per
view and grid) are not counted. Prints requests/s, p50 and p95 per phase and writes
benchmarks/results/bench_serve.json.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
HOST = "127.0.0.1"
VIEWS = ("overview", "coverage", "circle")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def payloads():
    """(name, body) of every request the clients cycle through."""
    from callbacks import ids
    from data.gpkg_store import GpkgStore
    from minsheng.settings import sample_path
    b = GpkgStore(sample_path()).load()
    plan = b.adopted_plan_id()
    g = b.plan_grids(plan)
    grids = list(g.loc[g["level"] == 2, "id"])
    stypes = sorted(set(b.service_points["type"]))
    layers = ["communities", "level1", "level2", "buildings", "streets", "services"]

    def inputs(view, grid):
        vals = [(ids.VIEW, "value", view), (ids.LAYERS, "value", layers), (ids.STYPES, "value", stypes),
                (ids.PLAN, "value", plan), (ids.LANG, "data", "zh"), (ids.SELECTED_GRID, "data", grid),
                (ids.COV_LEVEL, "value", 2), (ids.CIRCLE_TYPE, "value", "elderly_care"),
                (ids.CIRCLE_MINUTES, "value", 10), (ids.CIRCLE_SPEED, "value", 80),
                (ids.PLANNER_STATE, "data", None), (ids.PLANNER_SELECTION, "data", []),
                (ids.PLANNER_COMPARE, "value", None)]
        return [{"id": i, "property": p, "value": v} for i, p, v in vals]

    def body(output, view, grid, extra=()):
        oid, prop = output.split(".")
        ins = inputs(view, grid) + list(extra)
        return json.dumps({"output": output, "outputs": {"id": oid, "property": prop}, "inputs": ins,
                           "changedPropIds": [f"{ids.SELECTED_GRID}.data"], "state": []}).encode()

    out = {"map": [], "panel": []}
    for view in VIEWS:
        for grid in grids:
            out["map"].append(body(f"{ids.MAP}.figure", view, grid, [{"id": ids.FOCUS, "property": "data",
                                                                       "value": None}]))
            out["panel"].append(body(f"{ids.PANEL}.children", view, grid))
    return out


def post(port: int, body: bytes) -> float:
    t0 = time.perf_counter()
    c = http.client.HTTPConnection(HOST, port, timeout=120)
    try:
        c.request("POST", "/_dash-update-component", body, {"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        if r.status != 200:
            raise RuntimeError(f"HTTP {r.status}")
    finally:
        c.close()
    return time.perf_counter() - t0


def load(port: int, bodies: list, clients: int, max_requests: int, max_seconds: float) -> dict:
    lock = threading.Lock()
    state = {"next": 0, "lat": [], "errors": 0}
    t_end = time.perf_counter() + max_seconds

    def client():
        while True:
            with lock:
                k = state["next"]
                if k >= max_requests or time.perf_counter() > t_end:
                    return
                state["next"] += 1
            try:
                dt = post(port, bodies[k % len(bodies)])
            except Exception:  # noqa: BLE001  counted, not fatal
                with lock:
                    state["errors"] += 1
                continue
            with lock:
                state["lat"].append(dt)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    lat = sorted(state["lat"])
    q = statistics.quantiles(lat, n=20) if len(lat) >= 20 else [float("nan")] * 19
    return {"requests": len(lat), "errors": state["errors"], "seconds": round(wall, 2),
            "req_per_s": round(len(lat) / wall, 2) if wall else 0.0,
            "p50_ms": round(1000 * statistics.median(lat), 1) if lat else None, "p95_ms": round(1000 * q[18], 1)}


def start(kind: str, port: int, workers: int, threads: int):
    args = ["--dev"] if kind == "dev" else ["--workers", str(workers), "--threads", str(threads)]
    env = dict(os.environ, MINSHENG_SECRET_KEY="bench-secret-key-0123456789abcdef")
    p = subprocess.Popen([sys.executable, "-m", "minsheng.cli", "serve", "--host", HOST, "--port", str(port), *args],
                         cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            c = http.client.HTTPConnection(HOST, port, timeout=5)
            c.request("GET", "/healthz")
            if c.getresponse().status == 200:
                return p
        except OSError:
            time.sleep(0.5)
        if p.poll() is not None:
            break
    p.kill()
    raise RuntimeError(f"{kind} server did not start")


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=240, help="per phase (server x callback)")
    ap.add_argument("--seconds", type=float, default=60, help="per phase")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=4)
    a = ap.parse_args(argv)
    bodies = payloads()
    results = {"clients": a.clients, "gunicorn": f"{a.workers}x{a.threads} gthread", "cpus": os.cpu_count(),
               "phases": []}
    for kind in ("gunicorn", "dev"):
        port = free_port()
        proc = start(kind, port, a.workers, a.threads)
        try:
            for name in ("map", "panel"):
                warm = bodies[name][::max(1, len(bodies[name]) // 30)]
                # warm every worker (they each keep their own per-version cache)
                load(port, warm * max(1, a.workers), a.clients, len(warm) * max(1, a.workers), a.seconds)
                r = load(port, bodies[name], a.clients, a.requests, a.seconds)
                r.update(server=kind, callback=name)
                results["phases"].append(r)
                print(f"{kind:9s} {name:6s} {r['req_per_s']:7.1f} req/s  p50 {r['p50_ms']:7.1f} ms  "
                      f"p95 {r['p95_ms']:7.1f} ms  ({r['requests']} requests, {r['errors']} errors, "
                      f"{r['seconds']} s)", flush=True)
        finally:
            proc.terminate()
            proc.wait(30)
    by = {(r["server"], r["callback"]): r for r in results["phases"]}
    for name in ("map", "panel"):
        g, d = by[("gunicorn", name)], by[("dev", name)]
        ratio = g["req_per_s"] / d["req_per_s"] if d["req_per_s"] else float("nan")
        results[f"{name}_throughput_ratio"] = round(ratio, 2)
        print(f"{name}: gunicorn / dev server throughput {ratio:.2f}x")
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_serve.json").write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
