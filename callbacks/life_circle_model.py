"""Cached life-circle results for the dashboard: the routed network per (closed compounds, shut
gates, walking profile), tier compliance, path explanations and siting scenarios. The
computing is in geo/; this module only picks inputs and caches per dataset version."""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from geo.crs import metric_crs
from geo.explain import explain
from geo.gates import GatedEdges, compound_zones, gate_network, snap_zoned
from geo.life_circle import (building_tiers, compliance, compliance_shares, profile_edges,
                             requirement_failures, scopes)
from geo.network import Snap, WalkGraph, build_walk_graph, snap
from geo.service_circle import nearest_distances


@dataclass(frozen=True, eq=False)
class Net:
    graph: WalkGraph
    bsnap: Snap
    psnap: Snap
    gated: GatedEdges | None


def catalogue(ctx):
    return ctx.settings.life_circles()


def compounds_gates(ctx):
    """The dataset's compounds and gates (store layers of the read model)."""
    from data.importers.osm_gates import from_bundle
    return from_bundle(ctx.bundle())


def default_closed(ctx) -> tuple[tuple, tuple]:
    """(closed compound ids, shut gate ids) as stored: what the gate controls start from."""
    cg = compounds_gates(ctx)
    return (tuple(cg.compounds.loc[cg.compounds["closed"], "id"]),
            tuple(cg.gates.loc[cg.gates["closed"] & (cg.gates["compound_id"].fillna("") != ""), "id"]))


def network(ctx, closed: tuple = (), shut: tuple = (), profile: str = "general") -> Net:
    def build():
        b = ctx.bundle()
        prof = catalogue(ctx).profile(profile)
        crs = metric_crs(b.walk_edges)
        edges = profile_edges(b.walk_edges, prof)
        if not closed:
            g = build_walk_graph(edges, crs=crs)
            return Net(g, snap(g, b.buildings.geometry), snap(g, b.service_points.geometry), None)
        cg = compounds_gates(ctx)
        ge = gate_network(edges, cg.compounds, cg.gates, closed, shut, crs=crs)
        g = build_walk_graph(ge.edges, crs=crs)
        bz = compound_zones(b.buildings.geometry, cg.compounds, ge.closed, crs=crs)
        pz = compound_zones(b.service_points.geometry, cg.compounds, ge.closed, crs=crs)
        return Net(g, snap_zoned(g, b.buildings.geometry, bz, ge), snap_zoned(g, b.service_points.geometry, pz, ge),
                   ge)
    return ctx.cached("network", (tuple(sorted(closed)), tuple(sorted(shut)), profile), build)


def stats(ctx) -> pd.DataFrame:
    """Per-building households and key-group counts of the read model (geo/stats.py)."""
    return ctx.bundle().building_stats


def tier_tables(ctx, closed=(), shut=()) -> dict:
    """Requirement table per walking profile (every building, every tier)."""
    b = ctx.bundle()
    cat = catalogue(ctx)
    base = ctx.settings.walk_speed_m_min

    def one(p):
        net = network(ctx, closed, shut, p.key)
        return ctx.cached("tier_table", (tuple(sorted(closed)), tuple(sorted(shut)), p.key), lambda: compliance(
            net.graph, b.buildings, net.bsnap, b.service_points, net.psnap, cat, p, base))
    return {p.key: one(p) for p in cat.profiles}


def visible_groups(ctx):
    return ctx.settings.catalogue().public_keys


def shares(ctx, plan_id, closed=(), shut=()) -> pd.DataFrame:
    b = ctx.bundle()
    groups = [g for g in visible_groups(ctx) if any(g in p.groups for p in catalogue(ctx).profiles)]
    return ctx.cached("lc_shares", (plan_id, tuple(sorted(closed)), tuple(sorted(shut))), lambda: compliance_shares(
        tier_tables(ctx, closed, shut), stats(ctx), scopes(b.plan_assignments(plan_id), b.plan_grids(plan_id),
                                                           b.communities), catalogue(ctx), groups))


def failures(ctx, plan_id, profile="general", closed=(), shut=(), scope="grid") -> pd.DataFrame:
    b = ctx.bundle()
    return ctx.cached("lc_failures", (plan_id, profile, tuple(sorted(closed)), tuple(sorted(shut)), scope),
                      lambda: requirement_failures(tier_tables(ctx, closed, shut)[profile], stats(ctx), scopes(
                          b.plan_assignments(plan_id), b.plan_grids(plan_id), b.communities), scope))


def building_state(ctx, tier, profile="general", closed=(), shut=()) -> pd.DataFrame:
    t = tier_tables(ctx, closed, shut)[profile]
    bt = ctx.cached("lc_building_tiers", (profile, tuple(sorted(closed)), tuple(sorted(shut))),
                    lambda: building_tiers(t))
    return bt[bt["tier"] == tier]


# -- why outside -------------------------------------------------------------

def explanation(ctx, building_id, stype, reach_m, closed=(), shut=()):
    """(PathExplanation, open-network distance or None, the building's closed compound id or '')."""
    b = ctx.bundle()
    net = network(ctx, closed, shut)
    idx = np.flatnonzero(b.buildings["id"].to_numpy() == building_id)
    if not len(idx):
        return None
    i = int(idx[0])
    pts = np.flatnonzero(b.service_points["type"].to_numpy() == stype)
    ex = explain(net.graph, net.psnap.take(pts), net.bsnap.take([i]), reach_m)
    open_d, comp = None, ""
    if closed:
        o = network(ctx, (), ())
        open_d = float(nearest_distances(o.graph, o.psnap.take(pts), o.bsnap.take([i]))[0])
        cg = compounds_gates(ctx)
        comp = compound_zones(b.buildings.geometry.iloc[[i]], cg.compounds, closed, crs=net.graph.crs)[0]
    return ex, open_d, comp


# -- siting -------------------------------------------------------------------

MAX_NEW_POINTS = 20
MAX_CAPACITY = 1_000_000


def parse_scenario(ctx, raw) -> dict | None:
    """The siting scenario a client sent (JSON): {stype, k, weight, capacity (None = no limit),
    points (candidate building ids once the user moved or reloaded them; None = solve)},
    normalised; None for anything malformed (never an error: the view then shows no scenario)."""
    try:
        s = json.loads(raw) if isinstance(raw, str) and raw else None
    except ValueError:
        return None
    if not isinstance(s, dict):
        return None
    k, stype, weight = s.get("k"), s.get("stype"), s.get("weight") or "households"
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_NEW_POINTS:
        return None
    if not isinstance(stype, str) or not isinstance(weight, str) or len(stype) > 64:
        return None
    if weight != "households" and weight not in visible_groups(ctx):
        return None  # weights are households or a key group an aggregate may show (never a sensitive one)
    cap = s.get("capacity")
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or not 1 <= cap <= MAX_CAPACITY):
        return None
    pts = s.get("points")
    if pts is not None and (not isinstance(pts, list) or len(pts) > MAX_NEW_POINTS
                            or not all(isinstance(x, str) and len(x) <= 64 for x in pts)):
        return None
    out = {"stype": stype, "k": k, "weight": weight, "capacity": cap}
    if pts is not None:
        out["points"] = list(pts)
    if isinstance(s.get("name"), str):
        out["name"] = s["name"][:80]
    return out


def dump_scenario(s: dict) -> str:
    return json.dumps({k: v for k, v in s.items() if v is not None}, sort_keys=True, ensure_ascii=False,
                      separators=(",", ":"))


def site_weights(ctx, weight) -> np.ndarray:
    """Demand per building: households, or the households of one key group."""
    b = ctx.bundle()
    st = stats(ctx).set_index("building_id")
    col = "households" if weight in ("", "households", None) else weight
    return b.buildings["id"].map(st[col] if col in st else pd.Series(dtype=float)).fillna(0).to_numpy(float)


def scenario(ctx, stype, reach_m, k, weight, closed=(), shut=(), capacity=None, points=None):
    """Siting result for 'add k points of stype', candidates = every building (its footprint's
    point), demand = buildings weighted by households or by one key group's households; at most
    ``capacity`` of that weight per new point. With ``points`` (candidate building ids: a
    scenario the user adjusted or reloaded) those points are scored instead of solved for;
    ids no longer in the dataset are left out. Returns (SitingResult, weights)."""
    from geo.siting import score, site
    b = ctx.bundle()
    cap = None if capacity in (None, "") else float(capacity)

    def run():
        net = network(ctx, closed, shut)
        w = site_weights(ctx, weight)
        pts = np.flatnonzero(b.service_points["type"].to_numpy() == stype)
        existing = net.psnap.take(pts)
        if points is not None:
            pos = pd.Index(b.buildings["id"].astype(str))
            idx = [int(pos.get_loc(x)) for x in points if x in pos]
            res = score(net.graph, net.bsnap, w, existing, net.bsnap, idx, float(reach_m), capacity=cap)
        else:
            res = site(net.graph, net.bsnap, w, existing, net.bsnap, int(k), float(reach_m), capacity=cap)
        return res, w
    return ctx.cached("siting", (stype, float(reach_m), int(k), weight or "households", tuple(sorted(closed)),
                                 tuple(sorted(shut)), cap, None if points is None else tuple(points)), run)


def scenario_figures(ctx, res) -> dict:
    """Today vs the scenario: households and persons within reach (a building the new points
    serve only in part, under a capacity, counts by the share served), and their shares."""
    b = ctx.bundle()
    st = stats(ctx).set_index("building_id")
    hh = b.buildings["id"].map(st["households"]).fillna(0).to_numpy(float)
    pp = b.buildings["id"].map(st["persons"]).fillna(0).to_numpy(float)
    before = res.before.astype(float) if res.before is not None else np.zeros(len(hh))
    after = np.clip(before + (res.served if res.served is not None else 0.0), 0, 1)
    out = {}
    for key, v in (("households", hh), ("persons", pp)):
        tot = float(v.sum())
        out[key] = {"total": tot, "before": float((v * before).sum()), "after": float((v * after).sum())}
        out[key]["share_before"] = out[key]["before"] / tot if tot else float("nan")
        out[key]["share_after"] = out[key]["after"] / tot if tot else float("nan")
    return out
