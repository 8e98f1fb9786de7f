"""Life circles as GB 50180-2018 means them: tier by tier, each tier with its own facility list,
not inclusive (a requirement is met only by the service types it lists, within its tier's
distance), per building and household, per walking profile.

Distances: one bounded multi-source Dijkstra per distinct set of satisfying types (shared by
every requirement and tier that lists the same set), bounded by the largest distance any
profile needs from it. A profile measures tier distances as ``reach_m * speed / base_speed``
(the standard's distances are for an adult walking at base_speed; the elderly cover less in
the same minutes) on its own graph (e.g. the wheelchair graph has no steps).
"""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from scipy import sparse
from scipy.sparse import csgraph

from geo.network import Snap, WalkGraph
from geo.service_circle import source_edge_ends, target_distances

TIER_COLUMNS = ("building_id", "tier", "requirement", "walk_m", "within")


def building_stats(households: pd.DataFrame, groups=()) -> pd.DataFrame:
    """Per building: households, persons, synthetic, one count column per group (geo/stats.py;
    a stats frame passes through)."""
    from geo.stats import as_stats
    return as_stats(households, groups)


def threshold_m(reach_m: float, speed_m_min: float, base_speed_m_min: float) -> float:
    return float(reach_m) * float(speed_m_min) / float(base_speed_m_min)


def _super_sources(graph: WalkGraph, sources: list[Snap]):
    """The graph plus one virtual node per source set (indices n, n+1, ...), each joined to its
    points' edge ends. Virtual nodes have no incoming edges, so no path passes through one."""
    m, n, k = graph.matrix, graph.n_nodes, len(sources)
    rows, cols, ws = [], [], []
    for i, s in enumerate(sources):
        col, w = source_edge_ends(graph, s)
        rows.append(np.full(len(col), i))
        cols.append(col)
        ws.append(w)
    counts = np.bincount(np.concatenate(rows).astype(int), minlength=k) if k else np.zeros(0, int)
    indptr = np.concatenate([m.indptr, m.indptr[-1] + np.cumsum(counts)])
    return sparse.csr_matrix((np.concatenate([m.data, *ws]), np.concatenate([m.indices, *cols]), indptr),
                             shape=(n + k, n + k))


def requirement_distances(graph: WalkGraph, point_snap: Snap, point_types, building_snap: Snap,
                          type_sets, limits=None) -> np.ndarray:
    """Walking metres from every building to the nearest point of each type set, shape
    (len(type_sets), n_buildings); inf beyond the set's limit or unreachable.

    Identical sets are computed once; sets sharing a limit share one scipy Dijkstra call (one
    virtual source per set, bounded by the limit), so a tier costs about one bounded search."""
    ptype = np.asarray(point_types).astype(str)
    sets = [tuple(sorted(s)) for s in type_sets]
    limits = [np.inf] * len(sets) if limits is None else [float(x) for x in limits]
    lim = {}
    for s, m in zip(sets, limits):
        lim[s] = max(lim.get(s, 0.0), m)
    done = {}
    n = graph.n_nodes
    for limit in sorted(set(lim.values())):
        group = [s for s, m in lim.items() if m == limit]
        srcs = [point_snap.take(np.flatnonzero(np.isin(ptype, s))) for s in group]
        if n:
            a = _super_sources(graph, srcs)
            node_d = csgraph.dijkstra(a, directed=True, indices=np.arange(n, n + len(group)), limit=limit)[:, :n]
        for i, (s, src) in enumerate(zip(group, srcs)):
            done[s] = target_distances(graph, node_d[i], building_snap, src) if n else np.full(len(building_snap),
                                                                                              np.inf)
    out = np.empty((len(sets), len(building_snap)))
    for i, s in enumerate(sets):
        out[i] = done[s]
    return out


def tier_table(building_ids, catalogue, tiers, dist: np.ndarray, reqs, speed_m_min: float,
               base_speed_m_min: float) -> pd.DataFrame:
    """Tidy per (building, requirement): walk_m, within (at this profile's speed)."""
    th = np.array([threshold_m(catalogue.tier(r.tier).reach_m, speed_m_min, base_speed_m_min) for r in reqs])
    n = len(building_ids)
    return pd.DataFrame({
        "building_id": np.tile(np.asarray(building_ids), len(reqs)),
        "tier": np.repeat(np.array([r.tier for r in reqs], dtype=object), n),
        "requirement": np.repeat(np.array([r.key for r in reqs], dtype=object), n),
        "walk_m": dist.ravel(),
        "within": (dist <= th[:, None] + 1e-9).ravel(),
        "threshold_m": np.repeat(th, n),
    })


def compliance(graph: WalkGraph, buildings: gpd.GeoDataFrame, building_snap: Snap, service_points: pd.DataFrame,
               point_snap: Snap, catalogue, profile, base_speed_m_min: float, tiers=None) -> pd.DataFrame:
    """Tier-by-tier requirement table for every building under one walking profile."""
    tiers = [t.key for t in catalogue.tiers] if tiers is None else list(tiers)
    reqs = [r for r in catalogue.requirements if r.tier in tiers]
    limits = [threshold_m(catalogue.tier(r.tier).reach_m, profile.speed_m_min, base_speed_m_min) for r in reqs]
    dist = requirement_distances(graph, point_snap, service_points["type"], building_snap,
                                 [r.types for r in reqs], limits)
    ids = buildings["id"].to_numpy() if "id" in buildings else buildings.index.to_numpy()
    return tier_table(ids, catalogue, tiers, dist, reqs, profile.speed_m_min, base_speed_m_min)


def building_tiers(table: pd.DataFrame) -> pd.DataFrame:
    """Per (building, tier): requirements, met, failed (semicolon list), ok (all met)."""
    t = table.assign(failed_key=np.where(table["within"], "", table["requirement"]))
    g = t.groupby(["building_id", "tier"], sort=False)
    out = g.agg(requirements=("requirement", "size"), met=("within", "sum")).reset_index()
    out["ok"] = out["met"] == out["requirements"]
    fails = t[~t["within"]].groupby(["building_id", "tier"], sort=False)["requirement"].agg(";".join)
    out = out.merge(fails.rename("failed"), left_on=["building_id", "tier"], right_index=True, how="left")
    out["failed"] = out["failed"].fillna("")
    return out


def scopes(assignments: pd.DataFrame, grids: pd.DataFrame | None = None,
           communities: pd.DataFrame | None = None) -> pd.DataFrame:
    """building_id -> grid, grid_level1, community, street (as far as the frames tell)."""
    from geo.service_circle import _scopes
    a = _scopes(assignments, grids)
    if communities is not None and "community" in a and "street" in communities:
        a["street"] = a["community"].map(pd.DataFrame(communities).drop_duplicates("id").set_index("id")["street"])
    return a


SCOPES = ("grid", "grid_level1", "community", "street")


def _by_scope(per: pd.DataFrame, sc: pd.DataFrame, keys, values) -> pd.DataFrame:
    per = per.merge(sc, on="building_id", how="left")
    parts = [per.assign(scope="all", scope_id="all")]
    for s in [c for c in SCOPES if c in per.columns]:
        parts.append(per.dropna(subset=[s]).assign(scope=s, scope_id=lambda d, s=s: d[s]))
    return pd.concat(parts).groupby(["scope", "scope_id", *keys], sort=False)[values].sum().reset_index()


def compliance_shares(tables: dict, stats: pd.DataFrame, sc: pd.DataFrame, catalogue,
                      groups=(), general: str | None = None) -> pd.DataFrame:
    """Shares of households (and persons, for everyone) meeting each tier, by scope.

    tables: profile key -> requirement table (compliance()); everyone is measured under
    ``general`` (default: the first profile), each key group in ``groups`` under its own
    profile (catalogue.profile_of_group). Columns: scope, scope_id, tier, group, profile,
    households, households_ok, persons, persons_ok, share, share_persons.
    """
    general = general or catalogue.profiles[0].key
    st = stats.set_index("building_id")
    out = []
    for group in ("all", *groups):
        prof = general if group == "all" else catalogue.profile_of_group(group).key
        bt = building_tiers(tables[prof])
        hh = bt["building_id"].map(st["households"] if group == "all" else st.get(group, pd.Series(dtype=float)))
        bt["households"] = hh.fillna(0).astype(int)
        bt["households_ok"] = bt["households"] * bt["ok"]
        if group == "all":
            bt["persons"] = bt["building_id"].map(st["persons"]).fillna(0).astype(int)
        else:
            bt["persons"] = 0
        bt["persons_ok"] = bt["persons"] * bt["ok"]
        res = _by_scope(bt[bt["households"] > 0], sc, ["tier"], ["households", "households_ok", "persons",
                                                                 "persons_ok"])
        out.append(res.assign(group=group, profile=prof))
    res = pd.concat(out, ignore_index=True)
    res["share"] = res["households_ok"] / res["households"].where(res["households"] > 0)
    res["share_persons"] = res["persons_ok"] / res["persons"].where(res["persons"] > 0)
    order = {t.key: t.order for t in catalogue.tiers}
    return res.sort_values(["scope", "scope_id", "group"], kind="stable").assign(
        _o=lambda d: d["tier"].map(order)).sort_values(["scope", "scope_id", "group", "_o"], kind="stable").drop(
        columns="_o").reset_index(drop=True)


def requirement_failures(table: pd.DataFrame, stats: pd.DataFrame, sc: pd.DataFrame, scope: str = "grid"
                         ) -> pd.DataFrame:
    """The life-circle check: per scope id, tier and requirement, households and buildings that fail it.

    Columns: scope_id, tier, requirement, households_failing, buildings_failing, households
    (of the scope), share_failing. Rows only where something fails; most failing first.
    """
    st = stats.set_index("building_id")
    t = table[["building_id", "tier", "requirement", "within"]].copy()
    t["households"] = t["building_id"].map(st["households"]).fillna(0).astype(int)
    t = t[t["households"] > 0]
    t["households_failing"] = t["households"] * ~t["within"]
    t["buildings_failing"] = (~t["within"]).astype(int)
    res = _by_scope(t, sc, ["tier", "requirement"], ["households", "households_failing", "buildings_failing"])
    res = res[(res["scope"] == scope) & (res["households_failing"] > 0)].drop(columns="scope")
    res["share_failing"] = res["households_failing"] / res["households"]
    return res.sort_values(["households_failing", "scope_id"], ascending=[False, True]).reset_index(drop=True)


def profile_edges(walk_edges: gpd.GeoDataFrame, profile) -> gpd.GeoDataFrame:
    """The walk edges a profile can use (e.g. no highway=steps for wheelchairs)."""
    if not profile.avoid_highway or "highway" not in walk_edges:
        return walk_edges
    return walk_edges[~walk_edges["highway"].isin(list(profile.avoid_highway))]
