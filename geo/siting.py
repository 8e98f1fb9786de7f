"""Where to build next: "add k points of type T" as a maximal covering location problem (MCLP)
on walking distances, solved by spopt.locate.MCLP with PuLP's bundled CBC.

Existing points stay: demand they already cover within the reach is covered whatever is
added, so it leaves the model (the same optimum as fixing them open as predefined
facilities, with a smaller model). Demand rows with the same set of covering candidates are
merged (weights summed), and candidates that cover nothing still uncovered are dropped
before the solver sees the model. Capacity is not modelled (spopt's MCLP has none).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse import csgraph

from geo.network import Snap, WalkGraph
from geo.service_circle import nearest_distances


def coverage_matrix(graph: WalkGraph, candidates: Snap, demand: Snap, reach_m: float, chunk: int = 48
                    ) -> sparse.csr_matrix:
    """(n_demand, n_candidates) boolean: demand i within reach_m walking of candidate j."""
    nd, nc = len(demand), len(candidates)
    rows, cols = [], []
    d_ok = np.flatnonzero(demand.ok)
    de = demand.edge[d_ok]
    du, dv = graph.u[de], graph.v[de]
    dtu, dtv, doff = demand.to_u[d_ok], demand.to_v[d_ok], demand.offset[d_ok]
    c_ok = np.flatnonzero(candidates.ok)
    for start in range(0, len(c_ok), chunk):
        cj = c_ok[start:start + chunk]
        ce = candidates.edge[cj]
        nodes, inv = np.unique(np.concatenate([graph.u[ce], graph.v[ce]]), return_inverse=True)
        iu, iv = inv[: len(cj)], inv[len(cj):]
        D = csgraph.dijkstra(graph.matrix, directed=False, indices=nodes, limit=reach_m)
        T = np.minimum(D[:, du] + dtu, D[:, dv] + dtv) + doff               # (nodes, demand)
        coff = candidates.offset[cj][:, None]
        dist = np.minimum(T[iu] + (coff + candidates.to_u[cj][:, None]), T[iv] + (coff + candidates.to_v[cj][:, None]))
        same = ce[:, None] == de[None, :]
        if same.any():
            direct = coff + np.abs(candidates.to_u[cj][:, None] - dtu[None, :]) + doff[None, :]
            dist = np.where(same, np.minimum(dist, direct), dist)
        r, c = np.nonzero(dist <= reach_m + 1e-9)
        rows.append(d_ok[c])
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

    @property
    def share_before(self) -> float:
        return self.covered_before / self.weight_total if self.weight_total else float("nan")

    @property
    def share_after(self) -> float:
        return self.covered_after / self.weight_total if self.weight_total else float("nan")


def site(graph: WalkGraph, demand: Snap, weights, existing: Snap, candidates: Snap, k: int, reach_m: float,
         *, solver=None, time_limit_s: float = 60) -> SitingResult:
    """Pick k candidates maximising the weight newly covered within reach_m (existing points fixed)."""
    import pulp
    from spopt.locate import MCLP

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
    # merge demand rows covered by the same candidates
    keys = pd.Series([sub.indices[sub.indptr[i]:sub.indptr[i + 1]].tobytes() for i in range(sub.shape[0])])
    group, first = pd.factorize(keys)
    gw = np.bincount(group, weights=w[open_rows], minlength=len(first))
    rep = np.unique(group, return_index=True)[1]
    M = sub[rep].toarray()
    p = min(k, len(useful))
    cost = np.where(M, 0.0, 2.0)
    model = MCLP.from_cost_matrix(cost, gw, service_radius=1.0, p_facilities=p)
    model = model.solve(solver or pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit_s))
    picked = np.array([j for j, x in enumerate(model.fac_vars) if x.value() is not None and x.value() > 0.5], int)
    chosen = np.sort(useful[picked])
    new = np.asarray(A[:, chosen].sum(axis=1)).ravel() > 0
    new = new & ~before & (w > 0)
    gains = np.array([float(w[np.asarray(A[:, [c]].todense()).ravel() & ~before].sum()) for c in chosen])
    return SitingResult(chosen, total, cov0, cov0 + float(w[new].sum()), np.flatnonzero(new), gains,
                        M.shape[0], M.shape[1], pulp.LpStatus[model.problem.status])
