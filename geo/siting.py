"""Where to build next: "add k points of type T" as a maximal covering location problem (MCLP)
on walking distances, solved by spopt.locate.MCLP with PuLP's bundled CBC.

Existing points stay: demand they already cover within the reach is covered whatever is
added, so it leaves the model (the same optimum as fixing them open as predefined
facilities, with a smaller model). Demand rows with the same set of covering candidates are
merged (weights summed), candidates that cover nothing still uncovered or whose uncovered
demand is a subset of another candidate's are dropped before the solver sees the model
(spopt builds its constraints from a dense matrix in Python, so model size is the cost; above
SPOPT_MAX_CELLS the same formulation is written to PuLP from the sparse matrix).

Capacity (optional): each new point serves at most ``capacity`` units of weight (households, or
households of a key group); the model then also assigns demand to points (a building's
households may be shared between two new points), spopt's MCLP having no capacity: the
capacitated MCLP is written to PuLP and solved by the same CBC, without the candidate-dominance
pruning (two overlapping points can both be worth opening when each is full). The existing
points are taken as they are (their load is not known): what they cover stays covered.

``score`` evaluates a given set of new points (a scenario the user adjusted on the map) the
same way: coverage, and with a capacity the best assignment (a linear programme).
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
    capacity: float | None = None
    before: np.ndarray | None = None   # (n_demand,) bool: covered by the existing points
    served: np.ndarray | None = None   # (n_demand,) share of each demand's weight the new points serve, 0..1

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


def _var(prob, name, cat="Continuous", low=0, up=None):
    import pulp
    if hasattr(prob, "add_variable"):  # PuLP >= 3.3
        return prob.add_variable(name, lowBound=low, upBound=up, cat=cat)
    return pulp.LpVariable(name, lowBound=low, upBound=up, cat=cat)


def _solve_capacitated(M: sparse.csr_matrix, gw, p, capacity: float, solver):
    """Capacitated MCLP: max sum_g w_g sum_j z_gj; sum_j z_gj <= 1; sum_g w_g z_gj <= C x_j;
    sum_j x_j = p; x binary, z in [0, 1] (z: share of demand g served by candidate j)."""
    import pulp
    prob = pulp.LpProblem("cmclp", pulp.LpMaximize)
    x = [_var(prob, f"x[{j}]", "Binary", 0, 1) for j in range(M.shape[1])]
    coo = M.tocoo()
    z = [_var(prob, f"z[{g},{j}]", "Continuous", 0, 1) for g, j in zip(coo.row.tolist(), coo.col.tolist())]
    prob += pulp.LpAffineExpression([(v, float(gw[g])) for v, g in zip(z, coo.row.tolist())])
    by_row: dict = {}
    by_col: dict = {}
    for v, g, j in zip(z, coo.row.tolist(), coo.col.tolist()):
        by_row.setdefault(g, []).append(v)
        by_col.setdefault(j, []).append((v, float(gw[g])))
    for g, vs in by_row.items():
        prob += pulp.LpAffineExpression([(v, 1.0) for v in vs]) <= 1
    for j, terms in by_col.items():
        prob += pulp.LpAffineExpression(terms + [(x[j], -float(capacity))]) <= 0
    prob += pulp.lpSum(x) == p
    prob.solve(solver)
    return np.array([j for j, v in enumerate(x) if v.value() is not None and v.value() > 0.5], int), prob.status


def _assign(A: sparse.csr_matrix, w, open_, capacity: float, solver):
    """Best assignment of open demand to the given points under a capacity (an LP): (share served
    per demand row, weight served per point)."""
    import pulp
    sub = A[np.flatnonzero(open_)].tocoo()
    rows = np.flatnonzero(open_)[sub.row]
    served = np.zeros(A.shape[0])
    per_point = np.zeros(A.shape[1])
    if not len(rows):
        return served, per_point
    prob = pulp.LpProblem("assign", pulp.LpMaximize)
    z = [_var(prob, f"z[{i}]", "Continuous", 0, 1) for i in range(len(rows))]
    prob += pulp.LpAffineExpression([(v, float(w[r])) for v, r in zip(z, rows)])
    by_row: dict = {}
    by_col: dict = {}
    for i, (r, j) in enumerate(zip(rows.tolist(), sub.col.tolist())):
        by_row.setdefault(r, []).append((z[i], 1.0))
        by_col.setdefault(j, []).append((z[i], float(w[r])))
    for terms in by_row.values():
        prob += pulp.LpAffineExpression(terms) <= 1
    for terms in by_col.values():
        prob += pulp.LpAffineExpression(terms) <= capacity
    prob.solve(solver)
    val = np.array([v.value() or 0.0 for v in z])
    np.add.at(served, rows, val)
    np.add.at(per_point, sub.col, val * w[rows])
    return np.clip(served, 0, 1), per_point


def _result(A_chosen: sparse.csr_matrix, chosen, w, before, capacity, solver, status, backend, rows, cols
            ) -> SitingResult:
    """Coverage of the chosen points (columns of A_chosen, in that order)."""
    total, cov0 = float(w.sum()), float(w[before].sum())
    open_ = ~before & (w > 0)
    if capacity is None:
        hit = np.asarray(A_chosen.sum(axis=1)).ravel() > 0
        served = (hit & open_).astype(float)
        dense = A_chosen.toarray().astype(bool) if A_chosen.shape[1] else np.zeros((len(w), 0), bool)
        gains = np.array([float(w[dense[:, c] & open_].sum()) for c in range(dense.shape[1])])
    else:
        served, gains = _assign(A_chosen.tocsr(), w, open_, float(capacity), solver)
    return SitingResult(np.asarray(chosen, int), total, cov0, cov0 + float((w * served).sum()),
                        np.flatnonzero(served > 1e-9), gains, rows, cols, status, backend,
                        None if capacity is None else float(capacity), before, served)


def _before(graph, existing, demand, reach_m):
    return nearest_distances(graph, existing, demand, limit=reach_m) <= reach_m + 1e-9 if existing.ok.any() \
        else np.zeros(len(demand), bool)


def score(graph: WalkGraph, demand: Snap, weights, existing: Snap, candidates: Snap, chosen, reach_m: float,
          *, capacity: float | None = None, solver=None, time_limit_s: float = 60) -> SitingResult:
    """Coverage of the given new points (indices into ``candidates``, kept in their order): the
    figures of a scenario whose points the user moved. With ``capacity`` the demand is assigned
    to the points as well as it can be (a linear programme, CBC)."""
    w = np.asarray(weights, float)
    chosen = np.asarray(chosen, int)
    before = _before(graph, existing, demand, reach_m)
    A = coverage_matrix(graph, candidates.take(chosen), demand, reach_m) if len(chosen) else \
        sparse.csr_matrix((len(demand), 0), dtype=bool)
    if capacity is not None and solver is None:
        solver = _cbc(time_limit_s)
    return _result(A, chosen, w, before, capacity, solver, "scored", "", 0, 0)


def site(graph: WalkGraph, demand: Snap, weights, existing: Snap, candidates: Snap, k: int, reach_m: float,
         *, capacity: float | None = None, solver=None, time_limit_s: float = 60, backend: str = "auto"
         ) -> SitingResult:
    """Pick k candidates maximising the weight newly covered within reach_m (existing points fixed).

    backend: 'spopt' (spopt.locate.MCLP), 'sparse' (the same model written to PuLP from the
    sparse coverage matrix) or 'auto' (spopt up to SPOPT_MAX_CELLS matrix cells, else sparse).
    ``capacity``: weight one new point can serve at most (backend 'capacitated', PuLP).
    All solve with CBC (bundled with PuLP) unless ``solver`` is given."""
    import pulp

    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if capacity is not None and not capacity > 0:
        raise ValueError(f"capacity must be positive, got {capacity}")
    w = np.asarray(weights, float)
    before = _before(graph, existing, demand, reach_m)
    A = coverage_matrix(graph, candidates, demand, reach_m)
    open_rows = np.flatnonzero((w > 0) & ~before & (np.diff(A.indptr) > 0))
    sub = A[open_rows]
    useful = np.flatnonzero(np.diff(sub.tocsc().indptr) > 0)
    total, cov0 = float(w.sum()), float(w[before].sum())
    if not len(useful):
        return SitingResult(np.zeros(0, int), total, cov0, cov0, np.zeros(0, int), np.zeros(0), 0, 0, "nothing to gain",
                            "", capacity, before, np.zeros(len(w)))
    sub = sub[:, useful].tocsr()
    solver = solver or _cbc(time_limit_s)
    if capacity is not None:
        keys = pd.Series([sub.indices[sub.indptr[i]:sub.indptr[i + 1]].tobytes() for i in range(sub.shape[0])])
        group, first = pd.factorize(keys)
        gw = np.bincount(group, weights=w[open_rows], minlength=len(first))
        Ms = sub[np.unique(group, return_index=True)[1]].tocsr()
        picked, status = _solve_capacitated(Ms, gw, min(k, len(useful)), float(capacity), solver)
        chosen = np.sort(useful[picked])
        return _result(A[:, chosen], chosen, w, before, capacity, solver, pulp.LpStatus[status], "capacitated",
                       Ms.shape[0], Ms.shape[1])
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
    if backend == "auto":
        backend = "spopt" if Ms.shape[0] * Ms.shape[1] <= SPOPT_MAX_CELLS else "sparse"
    if backend == "spopt":
        picked, status = _solve_spopt(Ms.toarray(), gw, p, solver)
    elif backend == "sparse":
        picked, status = _solve_sparse(Ms, gw, p, solver)
    else:
        raise ValueError(f"backend must be auto, spopt or sparse, got {backend!r}")
    chosen = np.sort(useful[picked])
    return _result(A[:, chosen], chosen, w, before, None, solver, pulp.LpStatus[status], backend,
                   Ms.shape[0], Ms.shape[1])
