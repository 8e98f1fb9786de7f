"""geo/suppress: no suppressed cell can be worked out from the figures on the same page.

The oracle enumerates every integer assignment of the suppressed cells consistent with what a
reader sees (shown cells, "<5" = 0..4 and at most the row's households, "—" = at least 5 and at
most the row's households, the total row when shown) and checks every suppressed cell can still
take two values or more."""
import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from geo.suppress import COMPLEMENTARY, PRIMARY, public_workload, suppress_table

T = 5


def reader_solutions(s, col):
    """All values of the suppressed cells of a column consistent with the page (brute force)."""
    lo, hi = s.bounds()
    m = s.mark[:, col] > 0
    idx = np.flatnonzero(m)
    known = int(s.values[~m, col].sum())
    ranges = [range(int(lo[i, col]), int(min(hi[i, col], lo[i, col] + 12)) + 1) for i in idx]
    sols = []
    for combo in itertools.product(*ranges):
        tot = known + sum(combo)
        if s.total is not None:
            tm = s.total_mark[col]
            if tm == 0 and tot != s.total[col]:
                continue
            if tm == PRIMARY and not tot < T:
                continue
            if tm == COMPLEMENTARY and not tot >= T:
                continue
        sols.append(combo)
    return idx, sols


def assert_protected(s):
    for c in range(s.values.shape[1]):
        idx, sols = reader_solutions(s, c)
        assert sols, "the true values must be among the solutions"
        true = tuple(int(s.values[i, c]) for i in idx)
        assert true in sols
        hh = s.households
        for k, i in enumerate(idx):
            if hh is not None and hh[i] == 0:
                continue  # nobody to protect
            values = {sol[k] for sol in sols}
            assert len(values) >= 2, f"cell ({i}, {c}) = {s.values[i, c]} recoverable: {values}"


def test_small_cells_show_as_less_than_threshold():
    s = suppress_table(np.array([[0], [3], [12], [7]]), [100, 100, 100, 100], threshold=T)
    shown = s.shown()[:, 0].tolist()
    assert shown[0] == "<5" and shown[1] == "<5"
    assert "12" in shown or "—" in shown
    assert s.shown_total()[0] == "22"
    assert_protected(s)


def test_single_small_cell_and_a_total_needs_a_complementary_cell():
    # without a second cell the total 22 - 12 - 7 would give the 3 away
    s = suppress_table(np.array([[3], [12], [7]]), [100, 100, 100], threshold=T)
    assert s.mark[0, 0] == PRIMARY
    assert (s.mark[:, 0] == COMPLEMENTARY).sum() >= 1
    assert s.mark[2, 0] == COMPLEMENTARY  # the smallest count >= 5 goes first
    assert_protected(s)


def test_edge_case_one_and_five_is_not_given_away():
    # 1 + 5 = 6: with "<5" and "—" (>= 5) a reader would know 1 and 5; more must go
    s = suppress_table(np.array([[1], [5], [30]]), [50, 50, 50], threshold=T)
    assert_protected(s)


def test_households_bound_the_cell():
    # one household: "<5" alone would still say "0 or 1"; the total must not decide it
    s = suppress_table(np.array([[1], [6]]), [1, 40], threshold=T)
    assert_protected(s)


def test_without_total_only_primary():
    s = suppress_table(np.array([[2, 9]]), [30], threshold=T, with_total=False)
    assert s.shown().tolist() == [["<5", "9"]]
    assert s.shown_total() is None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9), st.integers(0, 25)), min_size=1, max_size=6),
       st.booleans())
def test_no_suppressed_cell_is_recoverable(rows, with_total):
    v = np.array([[a, b] for a, b, _ in rows], dtype=np.int64)
    hh = np.array([max(a, b) + extra for a, b, extra in rows], dtype=np.int64)
    s = suppress_table(v, hh, threshold=T, with_total=with_total)
    assert_protected(s)
    assert (s.mark[v < T] == PRIMARY).all()


def test_public_workload_does_not_depend_on_suppressed_values():
    rates = {"*": 1 / 3, "low_income": 1.0, "extreme_hardship": 52 / 12}
    hh = np.array([100, 120])
    a = suppress_table(np.array([[1, 0], [3, 2]]), hh, threshold=T, with_total=False, columns=["low_income",
                                                                                              "extreme_hardship"])
    b = suppress_table(np.array([[4, 3], [0, 4]]), hh, threshold=T, with_total=False, columns=["low_income",
                                                                                              "extreme_hardship"])
    assert (a.shown() == b.shown()).all()  # the same page ...
    assert public_workload(hh, a, rates) == pytest.approx(public_workload(hh, b, rates))  # ... the same workload


def test_a_complementary_cell_is_never_one_its_households_bound_gives_away():
    """Found by the property test: a zero beside a 5 in a grid of exactly 5 households. Hiding
    the 5 would not protect the zero (the reader knows 5 <= x <= 5): the total is withheld instead."""
    s = suppress_table(np.array([[0, 0], [0, 5]]), np.array([1, 5]), threshold=T, with_total=True)
    assert_protected(s)
    assert s.mark[1, 1] != COMPLEMENTARY
