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


@dataclass(frozen=True, eq=False)
class Suppression:
    columns: tuple              # the sensitive key-group columns
    values: np.ndarray          # (rows, columns) true counts, never shown as such
    mark: np.ndarray            # 0 shown, 1 primary ("<t"), 2 complementary ("—")
    total: np.ndarray | None    # true column totals (None: no total row on the page)
    total_mark: np.ndarray | None  # per column: 0 shown, 1 primary, 2 withheld
    threshold: int
    households: np.ndarray | None = None  # per-row households shown on the page (bounds a reader knows)

    def _cells(self, v, m) -> np.ndarray:
        out = v.astype(np.int64).astype(str).astype(object)
        out[m == PRIMARY] = f"<{self.threshold}"
        out[m == COMPLEMENTARY] = "—"
        return out

    def shown(self) -> np.ndarray:
        """(rows, columns) strings: counts, "<t" or "—"."""
        return self._cells(self.values, self.mark)

    def shown_total(self) -> np.ndarray | None:
        return None if self.total is None else self._cells(self.total, self.total_mark)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """What a reader knows of each cell: (low, high) arrays (equal where shown)."""
        return _bounds(self.values, self.mark, self.households, self.threshold)

    def total_bounds(self) -> tuple[np.ndarray, np.ndarray] | None:
        if self.total is None:
            return None
        hh = None if self.households is None else np.array([self.households.sum()])
        lo, hi = _bounds(self.total[None, :], self.total_mark[None, :], hh, self.threshold)
        return lo[0], hi[0]


def _bounds(v: np.ndarray, m: np.ndarray, households, t: int):
    v = np.asarray(v, dtype=np.int64)
    hh = np.full(v.shape[0], INF, dtype=np.int64) if households is None else np.asarray(households, dtype=np.int64)
    hh = np.broadcast_to(hh[:, None], v.shape)
    lo = np.where(m == PRIMARY, 0, np.where(m == COMPLEMENTARY, t, v))
    hi = np.where(m == PRIMARY, np.minimum(t - 1, hh), np.where(m == COMPLEMENTARY, hh, v))
    return lo, hi


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


def suppress_table(values, households=None, *, threshold: int = 5, with_total: bool = True,
                   columns=None) -> Suppression:
    """Suppress the count columns of `values` (a DataFrame or (rows, columns) array of
    non-negative ints: rows x sensitive key groups). households: per-row household counts shown
    on the same page (bounds a reader knows; None = unbounded); with_total: the page also shows
    the column sums. See the module doc."""
    t = int(threshold)
    if isinstance(values, pd.DataFrame):
        columns = tuple(values.columns) if columns is None else tuple(columns)
        v = values.fillna(0).to_numpy(dtype=np.int64)
    else:
        v = np.asarray(values, dtype=np.int64).reshape(len(values), -1)
        columns = tuple(columns) if columns is not None else tuple(range(v.shape[1]))
    hh = None if households is None else np.asarray(households, dtype=np.int64)
    mark = np.where(v < t, PRIMARY, 0)
    total = v.sum(axis=0) if with_total else None
    tmark = None
    if with_total:
        tmark = np.where(total < t, PRIMARY, 0)
        for c in range(v.shape[1]):
            while True:
                lo, hi = _bounds(v[:, [c]], mark[:, [c]], hh, t)
                lo, hi = lo[:, 0], hi[:, 0]
                sup = mark[:, c] > 0
                if not sup.any():
                    break
                known = v[~sup, c].sum()
                s_lo, s_hi = _column_sum_bounds(int(total[c]), tmark[c], t, known)
                rmin, rmax = feasible_ranges(lo[sup], hi[sup], s_lo, s_hi)
                pinned = (rmin >= rmax) & (lo[sup] < hi[sup])
                if not pinned.any():
                    break
                # a complementary cell is known to lie in [t, households]: one whose row has just
                # t households would be given away by that bound alone
                wide = np.ones(len(v), dtype=bool) if hh is None else hh > t
                cand = np.flatnonzero((mark[:, c] == 0) & (v[:, c] >= t) & wide)
                if len(cand):
                    mark[cand[np.argsort(v[cand, c], kind="stable")[0]], c] = COMPLEMENTARY
                elif tmark[c] == 0:
                    tmark[c] = COMPLEMENTARY
                else:  # nothing left to withhold (cannot happen with bounds of width >= 1)
                    break
    return Suppression(columns, v, mark, total, tmark, t, hh)


def public_workload(households, suppression: Suppression, rates: dict, other=None) -> np.ndarray:
    """Visits per month per row computed from the published figures only: each suppressed cell
    counts as the middle of its known range. households: per-row households; rates: key ->
    visits per month ("*" = every household, geo/workload.rates_of); other: the rows' exact
    workload from the non-sensitive key groups (published or not: they are not protected),
    e.g. geo/workload.workload_breakdown minus the sensitive columns."""
    from geo.workload import ALL
    base = float(rates.get(ALL, 1 / 3))
    lo, hi = suppression.bounds()
    mid = (lo + np.minimum(hi, lo + 10 * suppression.threshold)) / 2
    used = np.where(suppression.mark > 0, mid, suppression.values)
    extra = np.array([max(float(rates.get(k, base)) - base, 0.0) for k in suppression.columns])
    w = np.asarray(households, dtype=float) * base + (used * extra).sum(axis=1)
    return w if other is None else w + np.asarray(other, dtype=float)


def suppressed_rows(table: pd.DataFrame, small_keys, rates: dict, *, threshold: int = 5,
                    with_total: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For aggregate views of roles without personal access: the rows of a grid table
    (households, workload, key-group columns) -> (shown cells of `small_keys` (rows, keys) str,
    public workload per row (float), approx per row (bool: a suppressed cell was estimated))."""
    from geo.workload import ALL
    keys = [k for k in small_keys if k in table.columns]
    hh = table["households"].to_numpy(dtype=np.int64)
    v = table[keys].to_numpy(dtype=np.int64) if keys else np.zeros((len(table), 0), dtype=np.int64)
    s = suppress_table(v, hh, threshold=threshold, with_total=with_total, columns=keys)
    base = float(rates.get(ALL, 1 / 3))
    extra = np.array([max(float(rates.get(k, base)) - base, 0.0) for k in keys])
    wl = table["workload"].to_numpy(dtype=float)
    other = wl - hh * base - ((v * extra).sum(axis=1) if keys else 0.0)
    return s.shown(), public_workload(hh, s, rates, other), (s.mark > 0).any(axis=1)
