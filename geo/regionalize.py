"""Automatic grid proposals: contiguous level-2 grids balanced by households, grouped into
level-1 grids, per community (DESIGN.md: regionalize).

The building graph: two buildings of one community are adjacent when their tessellation
cells (geo/tessellate, the cells grid boundaries are derived from) share an edge, so a
region connected in the graph has a connected derived boundary. Adjacencies whose
connecting segment crosses a main road (walk_edges highway trunk/primary/secondary/tertiary)
are dropped, except the shortest ones needed to keep the community connected.

Fresh proposal (per community): k = households / target regions (clamped so the band is
reachable), seeds from a household-weighted k-means on building positions, balanced region
growing (the lightest region takes its nearest free neighbour), then greedy boundary moves
(vectorised candidate scoring, a move is kept only if its donor stays connected) that
minimise band violation, squared deviation from the target and a compactness term.
Level-1 grids: the same partition on the graph of level-2 grids.

min-moves mode (start_from=plan): only the out-of-band grids are repaired, by moving
boundary buildings to adjacent grids of the same level-1 grid (then of the same community)
while it strictly reduces the total band violation; donors stay connected.

Pure: frames and arrays in, values out; no I/O.
"""
from __future__ import annotations

import heapq
import time
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree

from geo.stats import as_stats, is_stats
from geo.crs import metric_crs
from geo.plan import Plan, make_context, renumber_codes
from geo.tessellate import building_cells_by_zone

MAIN_ROADS = ("trunk", "primary", "secondary", "tertiary", "trunk_link", "primary_link", "secondary_link",
              "tertiary_link")
CN_DIGITS = "零一二三四五六七八九十"


# ---------------------------------------------------------------------------------------------
# the building graph

@dataclass(frozen=True)
class BuildingGraph:
    ids: np.ndarray            # building ids (str), graph node order
    community: np.ndarray      # community id per node
    xy: np.ndarray             # (n, 2) metric positions
    weight: np.ndarray         # households per building
    adjacency: sp.csr_matrix   # usable adjacency (symmetric, 0/1): cells share an edge, not across a main road
    cells_adjacency: sp.csr_matrix  # all cell adjacencies (symmetric)
    crossing: sp.csr_matrix    # cell adjacencies whose segment crosses a main road (symmetric)
    persons: np.ndarray = field(default=None, repr=False)

    @property
    def n(self) -> int:
        return len(self.ids)

    def position(self, building_ids) -> np.ndarray:
        return pd.Index(self.ids).get_indexer(pd.Index([str(b) for b in building_ids]))


def _sym(i, j, n) -> sp.csr_matrix:
    m = sp.coo_matrix((np.ones(len(i) * 2, dtype=np.int8), (np.r_[i, j], np.r_[j, i])), shape=(n, n)).tocsr()
    m.data[:] = 1
    return m


def building_graph(buildings: gpd.GeoDataFrame, households: pd.DataFrame, communities: gpd.GeoDataFrame,
                   walk_edges: gpd.GeoDataFrame | None = None, *, community_of=None, main_roads=MAIN_ROADS,
                   min_shared_m: float = 0.5) -> BuildingGraph:
    """The adjacency graph of buildings (see module doc). community_of: building id ->
    community id (e.g. Plan.community_of_building()); default: the community polygon holding
    the building's representative point (nearest when none)."""
    crs = metric_crs(buildings)
    bm = buildings.to_crs(crs).reset_index(drop=True)
    ids = bm["id"].astype(str).to_numpy(dtype=object)
    n = len(ids)
    pts = shapely.point_on_surface(np.asarray(bm.geometry.values))
    xy = shapely.get_coordinates(pts)
    cm = communities.to_crs(crs)
    cids = cm["id"].astype(str).to_numpy(dtype=object)
    if community_of is not None:
        comm = pd.Series(community_of).astype(str).reindex(ids).to_numpy(dtype=object)
    else:
        comm = np.full(n, None, dtype=object)
    miss = pd.isna(comm)
    if miss.any() and len(cm):
        tree = shapely.STRtree(np.asarray(cm.geometry.values))
        pi, ci = tree.query(pts[miss], predicate="within")
        sub = np.full(int(miss.sum()), -1)
        sub[pi] = ci
        none = sub < 0
        if none.any():
            sub[none] = tree.nearest(pts[miss][none])
        comm[np.flatnonzero(miss)] = cids[sub]
    st = as_stats(households)
    per = st.groupby(st["building_id"].astype(str))[["households", "persons"]].sum().reindex(ids).fillna(0)
    w = per["households"].to_numpy(dtype=float)
    persons = per["persons"].to_numpy(dtype=float) if is_stats(households) or "persons" in households.columns \
        else w.copy()
    zones = gpd.GeoSeries(np.asarray(cm.geometry.values), index=cids, crs=crs)
    cells = np.asarray(building_cells_by_zone(bm, comm, zones).values, dtype=object)
    ok = ~shapely.is_empty(cells)
    tree = shapely.STRtree(cells)
    i, j = tree.query(cells, predicate="intersects")
    keep = (i < j) & (comm[i] == comm[j]) & ok[i] & ok[j]
    i, j = i[keep], j[keep]
    shared = shapely.length(shapely.intersection(cells[i], cells[j]))
    keep = shared > min_shared_m
    i, j = i[keep], j[keep]
    cross = np.zeros(len(i), dtype=bool)
    if walk_edges is not None and len(walk_edges) and len(i):
        hw = walk_edges["highway"].fillna("").astype(str)
        roads = np.asarray(walk_edges.to_crs(crs).geometry.values)[hw.isin(main_roads).to_numpy()]
        if len(roads):
            segs = shapely.linestrings(np.stack([xy[i], xy[j]], axis=1))
            si, _ = shapely.STRtree(roads).query(segs, predicate="intersects")
            cross[np.unique(si)] = True
    allowed_i, allowed_j = list(i[~cross]), list(j[~cross])
    # keep each community connected: shortest crossing edges between components (MST)
    if cross.any():
        base = _sym(i[~cross], j[~cross], n)
        ncomp, lab = connected_components(base, directed=False)
        if ncomp > 1:
            ci_, cj_ = i[cross], j[cross]
            d = np.hypot(*(xy[ci_] - xy[cj_]).T) + 1e-3
            a, b = lab[ci_], lab[cj_]
            diff = a != b
            if diff.any():
                df = pd.DataFrame({"a": np.minimum(a[diff], b[diff]), "b": np.maximum(a[diff], b[diff]),
                                   "d": d[diff], "k": np.flatnonzero(diff)}).sort_values("d")
                best = df.drop_duplicates(["a", "b"])
                cg = sp.coo_matrix((best["d"].to_numpy(), (best["a"].to_numpy(), best["b"].to_numpy())),
                                   shape=(ncomp, ncomp)).tocsr()
                mst = minimum_spanning_tree(cg).tocoo()
                pick = best.set_index(["a", "b"]).loc[list(zip(np.minimum(mst.row, mst.col),
                                                               np.maximum(mst.row, mst.col)))]["k"].to_numpy()
                allowed_i += list(ci_[pick])
                allowed_j += list(cj_[pick])
    adj = _sym(np.asarray(allowed_i, dtype=int), np.asarray(allowed_j, dtype=int), n)
    return BuildingGraph(ids, comm, xy, w, adj, _sym(i, j, n), _sym(i[cross], j[cross], n), persons)


# ---------------------------------------------------------------------------------------------
# partitioning one connected node set

def _k_for(total: float, lo: float, hi: float, target: float) -> int:
    kmin = int(np.ceil(total / hi)) if hi > 0 else 1
    kmax = int(np.floor(total / lo)) if lo > 0 else 10 ** 9
    k = int(round(total / target)) if target > 0 else 1
    if kmin <= kmax:
        k = min(max(k, kmin), kmax)
    return max(1, k)


def _seeds(xy: np.ndarray, w: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k distinct node positions near the centres of a household-weighted k-means."""
    n = len(xy)
    if k >= n:
        return np.arange(n)
    ww = np.maximum(w, 1e-3)
    # k-means++ initialisation, then a few Lloyd steps (vectorised)
    c = [xy[int(np.argmax(ww))]]
    for _ in range(1, k):
        d2 = np.min(((xy[:, None, :] - np.asarray(c)[None]) ** 2).sum(-1), axis=1) * ww
        c.append(xy[int(np.argmax(d2))] if d2.sum() == 0 else xy[int(rng.choice(n, p=d2 / d2.sum()))])
    c = np.asarray(c, dtype=float)
    for _ in range(10):
        lab = np.argmin(((xy[:, None, :] - c[None]) ** 2).sum(-1), axis=1)
        sw = np.bincount(lab, weights=ww, minlength=k)
        for d in range(2):
            m = np.bincount(lab, weights=ww * xy[:, d], minlength=k)
            c[:, d] = np.where(sw > 0, m / np.maximum(sw, 1e-9), c[:, d])
    dist = ((xy[:, None, :] - c[None]) ** 2).sum(-1)
    seeds = np.full(k, -1)
    taken = np.zeros(n, dtype=bool)
    for r in np.argsort(dist.min(axis=0)):
        order = np.argsort(dist[:, r])
        s = order[~taken[order]][0]
        seeds[r] = s
        taken[s] = True
    return seeds


def _grow(adj: sp.csr_matrix, xy: np.ndarray, w: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Balanced region growing: the lightest region with a free neighbour takes its nearest one."""
    n, k = len(w), len(seeds)
    lab = np.full(n, -1)
    load = np.zeros(k)
    fronts = [[] for _ in range(k)]
    indptr, indices = adj.indptr, adj.indices

    def push(r, v):
        for u in indices[indptr[v]:indptr[v + 1]]:
            if lab[u] < 0:
                d = float(np.hypot(*(xy[u] - xy[seeds[r]])))
                heapq.heappush(fronts[r], (d, int(u)))
    for r, s in enumerate(seeds):
        lab[s] = r
        load[r] += w[s]
    for r, s in enumerate(seeds):
        push(r, s)
    active = [(load[r], r) for r in range(k)]
    heapq.heapify(active)
    while active:
        _, r = heapq.heappop(active)
        f = fronts[r]
        while f and lab[f[0][1]] >= 0:
            heapq.heappop(f)
        if not f:
            continue
        _, v = heapq.heappop(f)
        lab[v] = r
        load[r] += w[v]
        push(r, v)
        heapq.heappush(active, (load[r], r))
    # nodes unreachable from every seed (a disconnected node set): nearest region by position
    rest = np.flatnonzero(lab < 0)
    if len(rest):
        d = ((xy[rest][:, None, :] - xy[seeds][None]) ** 2).sum(-1)
        lab[rest] = np.argmin(d, axis=1)
    return lab


def _violation(load, lo, hi):
    return np.maximum(0.0, lo - load) + np.maximum(0.0, load - hi)


def _connected_without(adj: sp.csr_matrix, members: np.ndarray, v: int) -> bool:
    """Removing v from the region does not split it further (a region that is already in
    pieces, e.g. in a hand-made start plan, may lose a building as long as no new piece forms)."""
    rest = members[members != v]
    if len(rest) <= 1:
        return len(rest) == 1
    n_after, _ = connected_components(adj[rest][:, rest], directed=False)
    if n_after == 1:
        return True
    n_before, _ = connected_components(adj[members][:, members], directed=False)
    return n_after <= n_before


def refine(adj: sp.csr_matrix, xy: np.ndarray, w: np.ndarray, lab: np.ndarray, lo: float, hi: float,
           target: float, *, min_moves: bool = False, allowed=None, max_iter: int | None = None,
           compactness: float = 0.3, crossing=None, road_penalty: float = 0.2) -> tuple[np.ndarray, int]:
    """Greedy boundary moves on labels `lab` (0..k-1). Returns (labels, number of moves).

    min_moves=False: minimise BIG·violation + (load-target)²/target² + compactness·(distance² to
    the receiving region's centre − to the own one)/scale². min_moves=True: only moves that
    strictly reduce the total band violation (each move one building). `allowed(r, s)`: bool
    array mask over candidate (from r, to s) pairs (e.g. same level-1 grid). A donor region
    never loses its last building and stays connected."""
    lab = lab.copy()
    n = len(w)
    k = int(lab.max()) + 1 if n else 0
    coo = sp.triu(adj, k=1).tocoo()
    eu, ev = np.r_[coo.row, coo.col], np.r_[coo.col, coo.row]  # directed: u may move to ev's region
    scale2 = max(float(np.var(xy[:, 0]) + np.var(xy[:, 1])), 1.0) if n else 1.0
    big = 1000.0
    moves = 0
    max_iter = max_iter or 20 * n + 100
    tabu: set = set()
    for _ in range(max_iter):
        load = np.bincount(lab, weights=w, minlength=k)
        size = np.bincount(lab, minlength=k)
        cand = lab[eu] != lab[ev]
        u, s = eu[cand], lab[ev[cand]]
        r = lab[u]
        if allowed is not None and len(u):
            m = allowed(r, s)
            u, s, r = u[m], s[m], r[m]
        ok = size[r] > 1
        u, s, r = u[ok], s[ok], r[ok]
        if len(u) == 0:
            break
        pair = pd.DataFrame({"u": u, "s": s}).drop_duplicates()
        u, s = pair["u"].to_numpy(), pair["s"].to_numpy()
        r = lab[u]
        wu = w[u]
        dv = (_violation(load[r] - wu, lo, hi) + _violation(load[s] + wu, lo, hi)
              - _violation(load[r], lo, hi) - _violation(load[s], lo, hi))
        if min_moves:
            score = dv - 1e-6 * np.abs(load[s] + wu - target) / max(target, 1)
            good = dv < -1e-9
        else:
            cx = np.bincount(lab, weights=xy[:, 0], minlength=k) / np.maximum(size, 1)
            cy = np.bincount(lab, weights=xy[:, 1], minlength=k) / np.maximum(size, 1)
            dist_s = (xy[u, 0] - cx[s]) ** 2 + (xy[u, 1] - cy[s]) ** 2
            dist_r = (xy[u, 0] - cx[r]) ** 2 + (xy[u, 1] - cy[r]) ** 2
            t2 = max(target, 1.0) ** 2
            dbal = ((load[r] - wu - target) ** 2 + (load[s] + wu - target) ** 2
                    - (load[r] - target) ** 2 - (load[s] - target) ** 2) / t2
            score = big * dv / max(target, 1) + dbal + compactness * (dist_s - dist_r) / scale2
            if crossing is not None and crossing.nnz:
                onehot = sp.csr_matrix((np.ones(n), (np.arange(n), lab)), shape=(n, k))
                cnt = (crossing @ onehot).tocsr()
                score = score + road_penalty * (np.asarray(cnt[u, s]).ravel() - np.asarray(cnt[u, r]).ravel())
            good = score < -1e-9
        idx = np.flatnonzero(good)
        if len(idx) == 0:
            break
        idx = idx[np.argsort(score[idx], kind="stable")]
        done = False
        for q in idx[:50]:
            v, to = int(u[q]), int(s[q])
            key = (v, to, int(lab[v]))
            if key in tabu:
                continue
            members = np.flatnonzero(lab == lab[v])
            if _connected_without(adj, members, v):
                lab[v] = to
                moves += 1
                tabu.add((v, int(key[2]), to))  # do not move straight back
                done = True
                break
        if not done:
            break
    return lab, moves


def partition(adj: sp.csr_matrix, xy: np.ndarray, w: np.ndarray, lo: float, hi: float, *,
              target: float | None = None, k: int | None = None, seed: int = 0, crossing=None,
              attempts: int = 8) -> np.ndarray:
    """Contiguous balanced regions of one node set: labels 0..k-1. crossing: adjacencies across
    main roads (penalised inside a region); attempts: seedings tried (the best is kept)."""
    n = len(w)
    if n == 0:
        return np.zeros(0, dtype=int)
    target = target or (lo + hi) / 2
    ncomp, cl = connected_components(adj, directed=False)
    if ncomp > 1 and k is None:
        return _partition_components(adj, xy, w, lo, hi, target, ncomp, cl, seed, crossing)
    k = min(k or _k_for(float(w.sum()), lo, hi, target), n)
    if k <= 1:
        return np.zeros(n, dtype=int)
    rng = np.random.default_rng(seed)
    best, best_score = None, None
    floor = float(np.maximum(0.0, w - hi).sum())  # violation no partition can avoid (huge buildings)
    for attempt in range(attempts):  # a few seedings; keep the best
        seeds = _seeds(xy, w, k, rng) if attempt % 2 == 0 else rng.choice(n, size=k, replace=False)
        lab = _grow(adj, xy, w, seeds)
        lab, _ = refine(adj, xy, w, lab, lo, hi, target, crossing=crossing)
        lab, _ = refine(adj, xy, w, lab, lo, hi, target, min_moves=True)
        load = np.bincount(lab, weights=w, minlength=k)
        sc = (float(_violation(load, lo, hi).sum()), float(np.std(load)))
        if best_score is None or sc < best_score:
            best, best_score = lab, sc
        if sc[0] <= floor + 1e-9:
            break
    return best


def _partition_components(adj, xy, w, lo, hi, target, ncomp, cl, seed, crossing=None):
    """The node set falls apart (e.g. a community of two separate pieces): components that
    can hold a grid (households >= lo, or the heaviest) are partitioned on their own; smaller
    ones join the nearest such component through a virtual edge (their grid cannot be
    contiguous, evaluate() reports it)."""
    from scipy.spatial import cKDTree
    cw = np.bincount(cl, weights=w, minlength=ncomp)
    main = cw >= lo
    if not main.any():
        main[int(np.argmax(cw))] = True
    group = np.arange(ncomp)
    main_nodes = np.flatnonzero(main[cl])
    tree = cKDTree(xy[main_nodes])
    extra_i, extra_j = [], []
    for c in np.flatnonzero(~main):
        m = np.flatnonzero(cl == c)
        d, q = tree.query(xy[m])
        a = int(np.argmin(d))
        extra_i.append(m[a])
        extra_j.append(main_nodes[q[a]])
        group[c] = cl[main_nodes[q[a]]]
    adj2 = (adj + _sym(np.asarray(extra_i, int), np.asarray(extra_j, int), len(w))).tocsr() if extra_i else adj
    adj2.data[:] = 1
    g = group[cl]
    lab = np.zeros(len(w), dtype=int)
    off = 0
    for c in np.flatnonzero(main):
        m = np.flatnonzero(g == c)
        sub = partition(adj2[m][:, m], xy[m], w[m], lo, hi, target=target, seed=seed + int(c),
                        crossing=None if crossing is None else crossing[m][:, m])
        lab[m] = sub + off
        off += int(sub.max()) + 1
    return lab


# ---------------------------------------------------------------------------------------------
# evaluation

def evaluate(graph: BuildingGraph, labels, lo: float, hi: float) -> dict:
    """Balance and contiguity of a building -> region labelling (labels aligned with graph
    nodes; -1 / None = unassigned). Contiguity is judged on the cell adjacency graph (so a
    connected region has a connected derived boundary). cut_main_roads: cell adjacencies
    inside one region whose segment crosses a main road; regions_across_main_roads: regions
    containing at least one."""
    lab = pd.factorize(pd.Series(np.asarray(labels, dtype=object)).astype(str))[0]
    k = int(lab.max()) + 1 if len(lab) else 0
    load = np.bincount(lab, weights=graph.weight, minlength=k)
    split = 0
    for r in range(k):
        m = np.flatnonzero(lab == r)
        if len(m) > 1 and connected_components(graph.cells_adjacency[m][:, m], directed=False)[0] > 1:
            split += 1
    cr = sp.triu(graph.crossing, k=1).tocoo()
    inside = lab[cr.row] == lab[cr.col]
    ok = (load >= lo) & (load <= hi)
    return {"regions": k, "share_in_band": round(float(ok.mean()), 4) if k else None,
            "cv": round(float(load.std() / load.mean()), 4) if k and load.mean() > 0 else None,
            "min": int(load.min()) if k else None, "max": int(load.max()) if k else None,
            "contiguous": split == 0, "split_regions": split, "cut_main_roads": int(inside.sum()),
            "regions_across_main_roads": int(len(np.unique(lab[cr.row[inside]]))) if inside.any() else 0}


# ---------------------------------------------------------------------------------------------
# plans

@dataclass(frozen=True)
class Proposal:
    plan: Plan
    moved: int                 # buildings whose level-2 grid differs from start_from (0 without one)
    stats: dict                # evaluate() of level-2 grids, per community and "all"
    seconds: float
    infeasible: tuple = ()     # messages: communities / buildings where the band cannot be met


def _band(bands, level):
    from geo.coverage import _band_of
    return _band_of(bands, level)


def _reading_seq(groups, xy, row):
    from geo.codes import sequence_within
    return sequence_within(pd.Series(np.asarray(groups, dtype=object)), xy, row)


def _fresh_community(graph: BuildingGraph, nodes: np.ndarray, cid: str, cname: str, bands, seed: int):
    lo2, hi2 = _band(bands, 2)
    lo1, hi1 = _band(bands, 1)
    adj = graph.adjacency[nodes][:, nodes]
    xy, w = graph.xy[nodes], graph.weight[nodes]
    l2 = partition(adj, xy, w, lo2, hi2, seed=seed, crossing=graph.crossing[nodes][:, nodes])
    k2 = int(l2.max()) + 1
    # level-1: partition the graph of level-2 regions
    ra = sp.coo_matrix((np.ones(adj.nnz), (l2[adj.tocoo().row], l2[adj.tocoo().col])), shape=(k2, k2)).tocsr()
    ra.setdiag(0)
    ra.eliminate_zeros()
    ra.data[:] = 1
    rw = np.bincount(l2, weights=w, minlength=k2)
    cnt = np.bincount(l2, minlength=k2)
    rxy = np.column_stack([np.bincount(l2, weights=xy[:, d], minlength=k2) / np.maximum(cnt, 1) for d in range(2)])
    l1 = partition(ra, rxy, rw, lo1, hi1, seed=seed)
    # ids in reading order
    s1 = _reading_seq(np.zeros(int(l1.max()) + 1), pd.DataFrame(rxy).groupby(l1).mean().to_numpy(), 250.0)
    s2 = _reading_seq(l1, rxy, 150.0)
    l1_id = np.array([f"{cid}-{s:02d}" for s in s1], dtype=object)
    l2_id = np.array([f"{l1_id[l1[r]]}-{s2[r]:02d}" for r in range(k2)], dtype=object)
    rows = [{"id": l1_id[g], "level": 1, "parent_id": cid,
             "name": f"{cname}第{CN_DIGITS[s1[g]] if s1[g] <= 10 else s1[g]}网格"} for g in range(len(s1))]
    l1_name = {r["id"]: r["name"] for r in rows}
    rows += [{"id": l2_id[r], "level": 2, "parent_id": l1_id[l1[r]], "name": f"{l1_name[l1_id[l1[r]]]}{s2[r]}号微网格"}
             for r in range(k2)]
    return pd.DataFrame(rows), pd.DataFrame({"building_id": graph.ids[nodes], "grid_id": l2_id[l2]})


def _min_moves_community(graph: BuildingGraph, nodes: np.ndarray, plan: Plan, bands):
    lo2, hi2 = _band(bands, 2)
    bg = plan.building_grid()
    gids = bg.reindex(graph.ids[nodes]).to_numpy(dtype=object)
    lab, uniq = pd.factorize(pd.Series(gids))
    parent = plan.parent_of().reindex(uniq).to_numpy(dtype=object)
    adj = graph.adjacency[nodes][:, nodes]
    xy, w = graph.xy[nodes], graph.weight[nodes]
    target = (lo2 + hi2) / 2
    same_parent = lambda r, s: parent[r] == parent[s]  # noqa: E731
    lab, _ = refine(adj, xy, w, lab, lo2, hi2, target, min_moves=True, allowed=same_parent)
    lab, _ = refine(adj, xy, w, lab, lo2, hi2, target, min_moves=True)
    return pd.DataFrame({"building_id": graph.ids[nodes], "grid_id": np.asarray(uniq, dtype=object)[lab]})


BALANCE = ("households", "workload", "both")


def partition_weights(households: pd.DataFrame, bands, balance: str = "households", visits=None):
    """What a proposal balances, per building: (weights Series by building id, {level: (low,
    high)} for levels 0-2). households: the household count and band; workload: visits per month
    (geo/workload) and the workload band; both: the mean of households and workload converted to
    household units (× the ratio of the level-2 band midpoints), against the household band.
    households: a households frame or a stats frame; bands: Settings-like (None = defaults)."""
    from geo.coverage import _band_of, _workload_band_of
    from geo.stats import as_stats
    from geo.workload import building_workload, rates_of
    if balance not in BALANCE:
        raise ValueError(f"balance must be one of {', '.join(BALANCE)}, got {balance!r}")
    st = as_stats(households)
    hh = pd.Series(st["households"].to_numpy(dtype=float), index=st["building_id"].astype(str).to_numpy())
    hb = {lev: _band_of(bands, lev) for lev in (0, 1, 2)}
    if balance == "households":
        return hh, hb
    if visits is None and hasattr(bands, "visit_frequency"):
        visits = bands
    wl = building_workload(as_stats(households, list(rates_of(visits).keys() - {"*"})), visits)
    wl.index = hh.index
    if balance == "workload":
        return wl, {lev: _workload_band_of(bands, lev) for lev in (0, 1, 2)}
    lo_h, hi_h = hb[2]
    lo_w, hi_w = _workload_band_of(bands, 2)
    r = (lo_h + hi_h) / (lo_w + hi_w) if lo_w + hi_w > 0 else 1.0
    return (hh + r * wl) / 2, hb


def propose_plan(buildings: gpd.GeoDataFrame, households: pd.DataFrame, communities: gpd.GeoDataFrame,
                 walk_edges: gpd.GeoDataFrame | None = None, *, bands=None, start_from: Plan | None = None,
                 min_moves: bool | None = None, community_ids=None, plan_id: str = "proposal", settings=None,
                 graph: BuildingGraph | None = None, seed: int = 0, balance: str = "households",
                 visits=None) -> Proposal:
    """A proposed plan.

    start_from: an existing plan. With min_moves (the default when start_from is given) its
    out-of-band level-2 grids are rebalanced by moving as few boundary buildings as possible
    (grid ids, names, codes and heads kept). Without min_moves the communities in
    `community_ids` (default: all) get fresh grids and the other communities keep those of
    start_from. Without start_from every community gets fresh grids (community of a building:
    the polygon holding it). bands: Settings-like (default minsheng Settings()); settings:
    Settings-like for code parts (grid_object_code, county_code, street_code). balance:
    "households" (default), "workload" or "both" (partition_weights); the stats then count in
    that unit. households: a households frame or a per-building stats frame (geo/stats)."""
    t0 = time.perf_counter()
    bands = bands if bands is not None else settings
    if min_moves is None:
        min_moves = start_from is not None
    if min_moves and start_from is None:
        raise ValueError("min_moves needs start_from (the plan to rebalance)")
    if community_ids is not None and start_from is None:
        raise ValueError("proposing some communities only needs start_from (the plan that keeps the others)")
    comm_of = start_from.community_of_building() if start_from is not None else None
    if graph is None:
        graph = building_graph(buildings, households, communities, walk_edges, community_of=comm_of)
    unit = "households"
    if balance != "households":
        from dataclasses import replace as _replace
        w, eff = partition_weights(households, bands, balance, visits)
        graph = _replace(graph, weight=w.reindex(pd.Index(graph.ids).astype(str)).fillna(0.0).to_numpy(dtype=float))
        bands = eff
        unit = "visits per month" if balance == "workload" else "household units"
    all_c = communities["id"].astype(str).tolist()
    todo = [str(c) for c in community_ids] if community_ids is not None else all_c
    unknown = [c for c in todo if c not in all_c]
    if unknown:
        raise ValueError(f"unknown community {', '.join(unknown)} (communities: {', '.join(all_c)})")
    cname = dict(zip(communities["id"].astype(str), communities["name"].fillna("").astype(str)
                     if "name" in communities.columns else communities["id"].astype(str)))
    ctx = start_from.context if start_from is not None and start_from.context is not None else \
        make_context(buildings, communities, settings=settings)
    infeasible = []
    hi2 = _band(bands, 2)[1]
    big = graph.weight > hi2
    for v in np.flatnonzero(big):
        infeasible.append(f"building {graph.ids[v]} alone has {int(graph.weight[v])} {unit} (> {hi2})")
    if min_moves:
        a = start_from.assignments.set_index("building_id")["grid_id"].copy()
        for c in todo:
            nodes = np.flatnonzero(graph.community == c)
            res = _min_moves_community(graph, nodes, start_from, bands)
            a.loc[res["building_id"].to_numpy()] = res["grid_id"].to_numpy()
        plan = Plan(plan_id, start_from.grids, a.rename("grid_id").rename_axis("building_id").reset_index(),
                    start_from.communities, ctx)
    else:
        grids, assigns = [], []
        if start_from is not None:
            keep = start_from.community_of_grid()
            kg = start_from.grids[~keep.reindex(start_from.grids["id"]).isin(todo).to_numpy()]
            grids.append(kg)
            assigns.append(start_from.assignments[start_from.assignments["grid_id"].isin(kg["id"])])
        for i, c in enumerate(todo):
            nodes = np.flatnonzero(graph.community == c)
            if len(nodes) == 0:
                continue
            g, a = _fresh_community(graph, nodes, c, cname.get(c, c), bands, seed + i)
            grids.append(g)
            assigns.append(a)
        plan = Plan(plan_id, pd.concat(grids, ignore_index=True), pd.concat(assigns, ignore_index=True),
                    tuple(all_c), ctx)
        plan = renumber_codes(plan, parents=todo)
    moved = 0
    if start_from is not None:
        m = start_from.assignments.merge(plan.assignments, on="building_id", suffixes=("_a", "_b"))
        moved = int((m["grid_id_a"] != m["grid_id_b"]).sum())
    lab = plan.building_grid().reindex(graph.ids).to_numpy(dtype=object)
    lo2, hi2 = _band(bands, 2)
    stats = {"all": evaluate(graph, lab, lo2, hi2)}
    for c in todo:
        nodes = np.flatnonzero(graph.community == c)
        sub = BuildingGraph(graph.ids[nodes], graph.community[nodes], graph.xy[nodes], graph.weight[nodes],
                            graph.adjacency[nodes][:, nodes], graph.cells_adjacency[nodes][:, nodes],
                            graph.crossing[nodes][:, nodes])
        stats[c] = evaluate(sub, lab[nodes], lo2, hi2)
    return Proposal(plan, moved, stats, time.perf_counter() - t0, tuple(infeasible))
