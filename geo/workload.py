"""Grid workload: the visits a grid's households cause per month (DESIGN.md: grid work is visits).

Rates come from the visit-frequency table (data/catalogues/visit_frequency.csv: visits per
month by key group, "*" = every household). From per-building counts (geo/stats) a building's
workload is

    households × rate("*") + Σ_groups households_in_group × max(rate(group) − rate("*"), 0)

so a household with one key group is visited at that group's rate (e.g. weekly for an elderly
person living alone), a household in no group at the base rate (quarterly), and each further
group a household belongs to adds its extra visits (its duties are separate visits). Counts per
building are all the read model has, so this is exact for households with at most one group
above the base rate and an upper bound otherwise.

Walking (optional): the length of a spanning tree over the grid's buildings (neighbours from a
k-nearest-neighbour graph, one scipy minimum_spanning_tree call for all grids), times a detour
factor, over the walking speed: the minutes to walk past every building of the grid once.

Pure: frames and arrays in, frames out."""
from __future__ import annotations

import numpy as np
import pandas as pd

ALL = "*"
DETOUR = 1.3  # street distance / straight distance between neighbouring buildings


def default_rates() -> dict[str, float]:
    from data.catalogue import visit_frequency
    return dict(visit_frequency())


def rates_of(visits) -> dict[str, float]:
    """visits: mapping key -> visits per month, Settings-like (.visit_frequency: a CSV path or ""),
    or None (the shipped table)."""
    if visits is None:
        return default_rates()
    if hasattr(visits, "visit_frequency"):
        from data.catalogue import visit_frequency
        return dict(visit_frequency(visits.visit_frequency or ""))
    return dict(visits)


def building_workload(stats: pd.DataFrame, visits=None) -> pd.Series:
    """Visits per month per building (index building_id) from a stats frame (geo/stats)."""
    r = rates_of(visits)
    base = float(r.get(ALL, 1 / 3))
    w = stats["households"].to_numpy(dtype=float) * base
    for key, rate in r.items():
        if key != ALL and key in stats.columns and rate > base:
            w = w + stats[key].to_numpy(dtype=float) * (rate - base)
    return pd.Series(w, index=pd.Index(stats["building_id"].astype(str).to_numpy(), dtype=object), name="workload")


def workload_breakdown(counts: pd.DataFrame, visits=None) -> pd.DataFrame:
    """Per row of `counts` (households + key-group columns, e.g. a grid table): visits per month
    by source: "*" (base visits of every household) and one column per key group with extra
    visits; the row sum equals building_workload summed over the row's buildings."""
    r = rates_of(visits)
    base = float(r.get(ALL, 1 / 3))
    out = {ALL: counts["households"].to_numpy(dtype=float) * base}
    for key, rate in r.items():
        if key != ALL and key in counts.columns and rate > base:
            out[key] = counts[key].to_numpy(dtype=float) * (rate - base)
    return pd.DataFrame(out, index=counts.index)


def walk_lengths(building_ids, xy: np.ndarray, building_grid: pd.Series, *, k: int = 8) -> pd.Series:
    """Metres of a spanning tree over each grid's buildings (index grid id). xy: metric positions
    aligned with building_ids; building_grid: building id -> grid id (others are ignored).
    Buildings a k-NN graph leaves unconnected within their grid add nothing (a lower bound)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import minimum_spanning_tree
    from scipy.spatial import cKDTree
    ids = pd.Index(pd.Series(building_ids).astype(str).to_numpy(), dtype=object)
    g = building_grid.copy()
    g.index = g.index.astype(str)
    lab = g.reindex(ids).to_numpy(dtype=object)
    ok = pd.notna(lab)
    pos = np.flatnonzero(ok)
    if len(pos) < 2:
        return pd.Series(dtype=float)
    codes, uniq = pd.factorize(pd.Series(lab[ok]))
    pts = np.asarray(xy, dtype=float)[pos]
    kk = min(k + 1, len(pos))
    d, j = cKDTree(pts).query(pts, k=kk)
    i = np.repeat(np.arange(len(pos)), kk)
    d, j = d.ravel(), j.ravel()
    keep = (i != j) & (codes[i] == codes[j]) & np.isfinite(d)
    i, j, d = i[keep], j[keep], np.maximum(d[keep], 1e-3)
    m = coo_matrix((d, (i, j)), shape=(len(pos), len(pos))).tocsr()
    m = m.maximum(m.T)
    t = minimum_spanning_tree(m).tocoo()
    length = np.bincount(codes[t.row], weights=t.data, minlength=len(uniq))
    return pd.Series(length, index=pd.Index(np.asarray(uniq, dtype=object)), name="walk_m")


def walk_minutes(lengths_m: pd.Series, speed_m_min: float) -> pd.Series:
    return (lengths_m * DETOUR / float(speed_m_min)).rename("walk_min")
