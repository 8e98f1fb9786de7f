"""Small-cell suppression of sensitive key-group counts (for roles without personal access).

A page shows a table: rows (e.g. the level-2 grids of a community), one column per sensitive
key group, optionally a total row (the column sums, e.g. the community), and each row's
household count. A reader knows the rule, so we protect against what they can derive:

* primary suppression: every count below the threshold t (zero included: "no released
  prisoner lives here" is also said only of groups of t or more) shows as "<t"; the reader
  knows such a cell lies in [0, min(t-1, households of the row)].
* complementary suppression: when the published total and the other cells of a column would
  pin a suppressed cell to one value, further cells of that column (the smallest counts >= t
  first) are suppressed as well (shown "—"; the reader knows they lie in [t, households]);
  when no cell is left to add, the total itself is withheld.
* derived figures: a row's workload depends linearly on its key-group counts, so the figure
  shown to these roles is computed with every suppressed cell replaced by the middle of what
  the reader already knows (`public_workload`): a function of the published figures only.

`feasible_ranges` computes, for one column, the exact range of values each suppressed cell can
take given everything published (with one sum constraint and interval bounds every integer in
the range is attainable), which is what `suppress_table` checks and the tests verify by brute
force. Pure: frames in, frames out."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

PRIMARY, COMPLEMENTARY = 1, 2
INF = 10 ** 12


@dataclass(frozen=True)
class Suppression:
    values: pd.DataFrame       # the true counts (rows x sensitive columns), never shown as such
    mark: pd.DataFrame         # 0 shown, 1 primary ("<t"), 2 complementary ("—")
    total: pd.Series | None    # true column totals (None: no total row on the page)
    total_mark: pd.Series | None  # per column: 0 shown, 1 primary, 2 withheld
    threshold: int
    households: np.ndarray | None = None  # per-row households shown on the page (bounds a reader knows)

    def shown(self, lang: str = "zh") -> pd.DataFrame:
        """The cells as strings: counts, "<t" or "—"."""
        out = self.values.astype(np.int64).astype(str).astype(object)
        out = out.mask(self.mark == PRIMARY, f"<{self.threshold}")
        return out.mask(self.mark == COMPLEMENTARY, "—")

    def shown_total(self) -> pd.Series | None:
        if self.total is None:
            return None
        out = self.total.astype(np.int64).astype(str).astype(object)
        out = out.mask(self.total_mark == PRIMARY, f"<{self.threshold}")
        return out.mask(self.total_mark == COMPLEMENTARY, "—")

    def bounds(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """What a reader knows of each cell: (low, high) frames (equal where shown)."""
        return _bounds(self.values, self.mark, self.households, self.threshold)


def _bounds(values: pd.DataFrame, mark: pd.DataFrame, households, t: int):
    v = values.to_numpy(dtype=np.int64)
    m = mark.to_numpy()
    hh = np.full(len(values), INF, dtype=np.int64) if households is None else \
        np.asarray(households, dtype=np.int64)
    hh = np.broadcast_to(hh[:, None], v.shape)
    lo = np.where(m == PRIMARY, 0, np.where(m == COMPLEMENTARY, t, v))
    hi = np.where(m == PRIMARY, np.minimum(t - 1, hh), np.where(m == COMPLEMENTARY, hh, v))
    return (pd.DataFrame(lo, index=values.index, columns=values.columns),
            pd.DataFrame(hi, index=values.index, columns=values.columns))


def feasible_ranges(lo: np.ndarray, hi: np.ndarray, sum_lo: float, sum_hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Integers x_i in [lo_i, hi_i] with sum_lo <= sum(x) <= sum_hi: the smallest and largest
    value each x_i takes over all solutions (lo > hi where there is none)."""
    lo = np.asarray(lo, dtype=float)
    hi = np.asarray(hi, dtype=float)
    s_lo, s_hi = lo.sum(), hi.sum()
    rmin = np.maximum(lo, sum_lo - (s_hi - hi))
    rmax = np.minimum(hi, sum_hi - (s_lo - lo))
    return rmin, rmax


def _column_sum_bounds(total_value, total_mark_value, t, known):
    if total_mark_value == 0:
        return total_value - known, total_value - known
    if total_mark_value == PRIMARY:
        return 0 - known, t - 1 - known
    return t - known, INF


def suppress_table(values: pd.DataFrame, households=None, *, threshold: int = 5, with_total: bool = True
                   ) -> Suppression:
    """Suppress the count columns of `values` (rows x sensitive key groups; non-negative ints).
    households: per-row household counts shown on the same page (bounds a reader knows; None
    = unbounded); with_total: the page also shows the column sums. See the module doc."""
    t = int(threshold)
    vals = values.fillna(0).astype(np.int64)
    v = vals.to_numpy()
    hh = None if households is None else np.asarray(households, dtype=np.int64)
    mark = np.where(v < t, PRIMARY, 0)
    total = vals.sum(axis=0) if with_total else None
    tmark = None
    if with_total:
        tmark = np.where(total.to_numpy() < t, PRIMARY, 0)
        for c in range(v.shape[1]):
            while True:
                lo, hi = _bounds(vals.iloc[:, [c]], pd.DataFrame(mark[:, [c]]), hh, t)
                lo, hi = lo.to_numpy()[:, 0], hi.to_numpy()[:, 0]
                sup = mark[:, c] > 0
                known = v[~sup, c].sum()
                s_lo, s_hi = _column_sum_bounds(int(total.iloc[c]), tmark[c], t, known)
                rmin, rmax = feasible_ranges(lo[sup], hi[sup], s_lo, s_hi)
                pinned = (rmin >= rmax) & (lo[sup] < hi[sup])
                if not pinned.any():
                    break
                cand = np.flatnonzero((mark[:, c] == 0) & (v[:, c] >= t))
                if len(cand):
                    pick = cand[np.argsort(v[cand, c], kind="stable")[0]]
                    mark[pick, c] = COMPLEMENTARY
                elif tmark[c] == 0:
                    tmark[c] = COMPLEMENTARY
                else:  # nothing left to withhold (cannot happen with bounds of width >= 1)
                    break
    return Suppression(vals, pd.DataFrame(mark, index=vals.index, columns=vals.columns), total,
                       None if tmark is None else pd.Series(tmark, index=vals.columns), t, hh)


def public_workload(counts: pd.DataFrame, suppression: Suppression, visits=None) -> np.ndarray:
    """Visits per month per row computed from the published figures only: each suppressed cell
    counts as the middle of its known range. counts: the rows' households and non-sensitive
    key-group columns (true values; they are published)."""
    from geo.workload import workload_breakdown
    lo, hi = suppression.bounds()
    mid = (lo.astype(float) + hi.clip(upper=lo + 10 * suppression.threshold).astype(float)) / 2
    public = counts.copy()
    for c in suppression.values.columns:
        public[c] = np.where(suppression.mark[c].to_numpy() > 0, mid[c].to_numpy(), suppression.values[c].to_numpy())
    return workload_breakdown(public, visits).sum(axis=1).to_numpy()
