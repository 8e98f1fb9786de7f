"""Where to build next: "add k points of type T" as a maximal covering location problem (MCLP)
on walking distances, solved by spopt.locate.MCLP with PuLP's bundled CBC.

Existing points stay: demand they already cover within the reach is covered whatever is
added, so it leaves the model (the same optimum as fixing them open as predefined
facilities, with a smaller model). Demand rows with the same set of covering candidates are
merged (weights summed), candidates that cover nothing still uncovered or whose uncovered
demand is a subset of another candidate's are dropped before the solver sees the model
(spopt builds its constraints from a dense matrix in Python, so model size is the cost; above
SPOPT_MAX_CELLS the same formulation is written to PuLP from the sparse matrix). Capacity is not modelled (spopt's MCLP has none).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse import csgraph

from geo.network import Snap, WalkGraph
from geo.service_circle import nearest_distances


def coverage_matrix(graph: WalkGraph, candidates: Snap, demand: Snap, reach_m: float, chunk: int = 64
                    ) -> sparse.csr_matrix:
    """(n_demand, n_candidates) boolean: demand i within reach_m walking of candidate j.

    Candidates are taken in spatially compact chunks; each chunk searches only the nodes within
    reach_m (straight line) of its bounding box, which is exact because a walk is never shorter
    than the straight line, and keeps every search small on a district network."""
    nd, nc = len(demand), len(candidates)
    rows, cols = [], []
    d_ok = np.flatnonzero(demand.ok)
    if not len(d_ok) or not candidates.ok.any():
        return sparse.csr_matrix((nd, nc), dtype=bool)
    dxy = shapely.get_coordinates(demand.point[d_ok])
    c_ok = np.flatnonzero(candidates.ok)
    cxy = shapely.get_coordinates(candidates.point[c_ok])
    cell = max(reach_m, 1.0) * 2
    order = np.lexsort((np.floor(cxy[:, 0] / cell), np.floor(cxy[:, 1] / cell)))
    c_ok, cxy = c_ok[order], cxy[order]
    nxy = graph.node_xy
    for start in range(0, len(c_ok), chunk):
        cj, pts = c_ok[start:start + chunk], cxy[start:start + chunk]
        lo, hi = pts.min(0) - reach_m, pts.max(0) + reach_m
        ce = candidates.edge[cj]
        keep = np.all((nxy >= lo) & (nxy <= hi), axis=1)
        keep[graph.u[ce]] = keep[graph.v[ce]] = True
        sub_nodes = np.flatnonzero(keep)
        local = np.full(graph.n_nodes + 1, -1)
        local[sub_nodes] = np.arange(len(sub_nodes))
        m = graph.matrix[sub_nodes][:, sub_nodes]
        dm = np.all((dxy >= lo) & (dxy <= hi), axis=1)
        di = d_ok[dm]
        if not len(di):
            continue
        de = demand.edge[di]
        nodes, inv = np.unique(np.concatenate([local[graph.u[ce]], local[graph.v[ce]]]), return_inverse=True)
        iu, iv = inv[: len(cj)], inv[len(cj):]
        D = csgraph.dijkstra(m, directed=False, indices=nodes, limit=reach_m)
        D = np.concatenate([D, np.full((len(nodes), 1), np.inf)], axis=1)    # column -1: outside the window
        lu, lv = local[graph.u[de]], local[graph.v[de]]
        T = np.minimum(D[:, lu] + demand.to_u[di], D[:, lv] + demand.to_v[di]) + demand.offset[di]
        coff = candidates.offset[cj][:, None]
        dist = np.minimum(T[iu] + (coff + candidates.to_u[cj][:, None]), T[iv] + (coff + candidates.to_v[cj][:, None]))
        same = ce[:, None] == de[None, :]
        if same.any():
            direct = coff + np.abs(candidates.to_u[cj][:, None] - demand.to_u[di][None, :]) + demand.offset[di][None, :]
            dist = np.where(same, np.minimum(dist, direct), dist)
        r, c = np.nonzero(dist <= reach_m + 1e-9)
        rows.append(di[c])
        cols.append(cj[r])
    r = np.concatenate(rows) if rows else np.zeros(0, int)
    c = np.concatenate(cols) if cols else np.zeros(0, int)
    return sparse.csr_matrix((np.ones(len(r), bool), (r, c)), shape=(nd, nc))


@dataclass(frozen=True)
class SitingResult:
    chosen: np.ndarray           # candidate indices picked (ascending)
    weight_total: float
    covered_before: float        # weight covered by the existing points
    covered_after: float         # ... plus the chosen ones
    newly_covered: np.ndarray    # demand indices newly covered
    gain_by_choice: np.ndarray   # weight newly covered by each chosen point alone (same order as chosen)
    model_rows: int
    model_cols: int
    status: str
    backend: str = ""

    @property
    def share_before(self) -> float:
        return self.covered_before / self.weight_total if self.weight_total else float("nan")

    @property
    def share_after(self) -> float:
        return self.covered_after / self.weight_total if self.weight_total else float("nan")


SPOPT_MAX_CELLS = 250_000   # spopt builds its PuLP constraints cell by cell (~15 us each)


def _cbc(time_limit_s):
    """A system CBC (COIN_CMD) when installed, else the CBC binary bundled with PuLP."""
    import pulp
    coin = pulp.COIN_CMD(msg=False, timeLimit=time_limit_s)
    return coin if coin.available() else pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit_s)


def _solve_spopt(M, gw, p, solver):
    from spopt.locate import MCLP
    model = MCLP.from_cost_matrix(np.where(M, 0.0, 2.0), gw, service_radius=1.0, p_facilities=p)
    model = model.solve(solver)
    picked = np.array([j for j, x in enumerate(model.fac_vars) if x.value() is not None and x.value() > 0.5], int)
    return picked, model.problem.status


def _solve_sparse(M: sparse.csr_matrix, gw, p, solver):
    """spopt's MCLP formulation (max sum w_i y_i; sum_{j covers i} x_j >= y_i; sum x_j = p; binary),
    written to PuLP from the sparse matrix so large models build in seconds."""
    import pulp
    prob = pulp.LpProblem("mclp", pulp.LpMaximize)
    x = [pulp.LpVariable(f"x[{j}]", cat="Binary") for j in range(M.shape[1])]
    y = [pulp.LpVariable(f"y[{i}]", cat="Binary") for i in range(M.shape[0])]
    prob += pulp.LpAffineExpression([(y[i], float(gw[i])) for i in range(len(y))])
    for i in range(M.shape[0]):
        cols = M.indices[M.indptr[i]:M.indptr[i + 1]]
        prob += pulp.LpAffineExpression([(x[j], 1.0) for j in cols] + [(y[i], -1.0)]) >= 0
    prob += pulp.lpSum(x) == p
    prob.solve(solver)
    return np.array([j for j, v in enumerate(x) if v.value() is not None and v.value() > 0.5], int), prob.status


def site(graph: WalkGraph, demand: Snap, weights, existing: Snap, candidates: Snap, k: int, reach_m: float,
         *, solver=None, time_limit_s: float = 60, backend: str = "auto") -> SitingResult:
    """Pick k candidates maximising the weight newly covered within reach_m (existing points fixed).

    backend: 'spopt' (spopt.locate.MCLP), 'sparse' (the same model written to PuLP from the
    sparse coverage matrix) or 'auto' (spopt up to SPOPT_MAX_CELLS matrix cells, else sparse).
    Both solve with CBC (bundled with PuLP) unless ``solver`` is given."""
    import pulp

    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    w = np.asarray(weights, float)
    before = nearest_distances(graph, existing, demand, limit=reach_m) <= reach_m + 1e-9 if existing.ok.any() \
        else np.zeros(len(demand), bool)
    A = coverage_matrix(graph, candidates, demand, reach_m)
    open_rows = np.flatnonzero((w > 0) & ~before & (np.diff(A.indptr) > 0))
    sub = A[open_rows]
    useful = np.flatnonzero(np.diff(sub.tocsc().indptr) > 0)
    total, cov0 = float(w.sum()), float(w[before].sum())
    if not len(useful):
        return SitingResult(np.zeros(0, int), total, cov0, cov0, np.zeros(0, int), np.zeros(0), 0, 0, "nothing to gain")
    sub = sub[:, useful].tocsr()
    # drop candidates whose open demand is a subset of another's (swapping one for the other never
    # covers less, so the optimum stays); ties keep the first
    S = (sub.T.astype(np.int32) @ sub.astype(np.int32)).toarray()
    size = np.diag(S).copy()
    contains = S == size[:, None]                   # contains[j, j2]: j's rows all covered by j2
    np.fill_diagonal(contains, False)
    bigger = (size[None, :] > size[:, None]) | ((size[None, :] == size[:, None])
                                                & (np.arange(len(size))[None, :] < np.arange(len(size))[:, None]))
    keep = ~(contains & bigger).any(axis=1)
    useful, sub = useful[keep], sub[:, keep].tocsr()
    # merge demand rows covered by the same candidates
    keys = pd.Series([sub.indices[sub.indptr[i]:sub.indptr[i + 1]].tobytes() for i in range(sub.shape[0])])
    group, first = pd.factorize(keys)
    gw = np.bincount(group, weights=w[open_rows], minlength=len(first))
    rep = np.unique(group, return_index=True)[1]
    Ms = sub[rep].tocsr()
    p = min(k, len(useful))
    solver = solver or _cbc(time_limit_s)
    if backend == "auto":
        backend = "spopt" if Ms.shape[0] * Ms.shape[1] <= SPOPT_MAX_CELLS else "sparse"
    if backend == "spopt":
        picked, status = _solve_spopt(Ms.toarray(), gw, p, solver)
    elif backend == "sparse":
        picked, status = _solve_sparse(Ms, gw, p, solver)
    else:
        raise ValueError(f"backend must be auto, spopt or sparse, got {backend!r}")
    chosen = np.sort(useful[picked])
    new = np.asarray(A[:, chosen].sum(axis=1)).ravel() > 0
    new = new & ~before & (w > 0)
    gains = np.array([float(w[np.asarray(A[:, [c]].todense()).ravel() & ~before].sum()) for c in chosen])
    return SitingResult(chosen, total, cov0, cov0 + float(w[new].sum()), np.flatnonzero(new), gains,
                        Ms.shape[0], Ms.shape[1], pulp.LpStatus[status], backend)
