"""geo/codes: 20-digit CJ/T 349-2010 grid codes — is_valid, reading order, generation, checks."""
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from geo.codes import (check_codes, community_numbers, compose, generate_codes, is_valid, parse,
                       reading_order, sequence_within)

P = "1001" + "110108" + "012"  # object + county + street


@pytest.mark.parametrize("code, ok", [
    (P + "001" + "01" + "00", True),    # level-1
    (P + "001" + "01" + "03", True),    # level-2
    (P + "001" + "00" + "00", True),    # community-level code
    (P + "000" + "00" + "00", False),   # community 000: was accepted by the precedence bug
    (P + "000" + "01" + "00", False),
    (P + "001" + "00" + "05", False),   # level-2 sequence without a level-1 sequence
    ("1234", False), (None, False), ("1001110108012001010a", False),
])
def test_is_valid(code, ok):
    assert is_valid(code) is ok


def test_compose_parse_roundtrip():
    c = compose("1001", "110108", "012", 7, 12, 3)
    assert c == P + "0071203" and parse(c)["level2"] == 3 and parse(c)["community"] == 7


def test_sequence_within_reads_rows_north_first_then_west_to_east():
    # group a: two rows; group b independent; NaN position last
    xy = np.array([[100, 0], [0, 0], [50, 500], [0, 490], [10, 10], [np.nan, np.nan], [5, 5]], float)
    groups = pd.Series(["a", "a", "a", "a", "b", "b", "b"])
    seq = sequence_within(groups, xy, row_height_m=200)
    assert seq.tolist() == [4, 3, 2, 1, 2, 3, 1]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.floats(0, 1000), st.floats(0, 1000)), min_size=1, max_size=30))
def test_sequence_within_matches_per_group_reading_order(items):
    groups = pd.Series([g for g, _, _ in items])
    xy = np.array([[x, y] for _, x, y in items], float)
    seq = sequence_within(groups, xy, 150.0)
    for g in groups.unique():
        idx = np.flatnonzero(groups.to_numpy() == g)
        ref = reading_order(xy[idx], 150.0) + 1
        # ties in x within a row may be ordered either way; compare the induced positions
        assert sorted(seq[idx]) == list(range(1, len(idx) + 1))
        assert (np.sort(xy[idx][np.argsort(seq[idx])], axis=0) == np.sort(xy[idx][np.argsort(ref)], axis=0)).all()


def test_community_numbers_use_own_codes_or_reading_order():
    xy = np.array([[0, 0], [1000, 0], [0, 1000]], float)
    assert community_numbers(["110108012005", "110108012002", "009"], xy).tolist() == [5, 2, 9]
    # duplicated / non-numeric codes -> reading order (north first)
    assert community_numbers(["5", "x", None], xy, 200).tolist() == [2, 3, 1]
    assert community_numbers(["001", "001", "002"], xy, 200).tolist() == [2, 3, 1]


def _plan():
    ids = ["A", "B", "a1", "a2", "a3", "b1"]
    levels = [1, 1, 2, 2, 2, 2]
    parents = ["c1", "c1", "A", "A", "A", "B"]
    # A west, B east; a3 north (first row), then a1 (west) and a2 (east)
    xy = np.array([[0, 0], [1000, 0], [0, 0], [300, 0], [100, 400], [1000, 0]], float)
    return ids, levels, parents, xy


def test_generate_codes_numbers_by_reading_order_and_nests():
    ids, levels, parents, xy = _plan()
    codes = generate_codes(ids, levels, parents, xy, ["c1"], [7], object_code="1001", county="110108", street="012")
    assert codes.to_dict() == {"A": P + "0070100", "B": P + "0070200", "a1": P + "0070102",
                               "a2": P + "0070103", "a3": P + "0070101", "b1": P + "0070201"}
    assert check_codes(ids, levels, parents, codes.to_numpy(), prefix=P) == []


def test_generate_codes_unknown_parent_gets_none_and_overflow_raises():
    ids, levels, parents, xy = _plan()
    parents = ["c1", "zz", "A", "A", "A", "B"]
    codes = generate_codes(ids, levels, parents, xy, ["c1"], [7], object_code="1001", county="110108", street="012")
    assert codes["B"] is None and codes["b1"] is None and codes["a1"] is not None
    n = 100
    with pytest.raises(ValueError, match="exceeds 99"):
        generate_codes([f"g{i}" for i in range(n)], [1] * n, ["c1"] * n, np.c_[np.arange(n), np.zeros(n)],
                       ["c1"], [1], object_code="1001", county="110108", street="012")


def test_check_codes_reports_each_kind_of_bad_code():
    ids = ["A", "B", "a1", "a2", "a3", "b1", "C", "c1", "D"]
    levels = [1, 1, 2, 2, 2, 2, 1, 2, 1]
    parents = ["k1", "k1", "A", "A", "A", "B", "k2", "C", "k3"]
    codes = [P + "0010100",   # A ok
             P + "0020200",   # B: community part differs from A (same community k1)
             P + "0010101",   # a1 ok
             P + "0010101",   # a2 duplicate of a1
             P + "0010301",   # a3 does not extend A
             None,            # b1 missing
             "9999" + "110108012" + "0030100",  # C: wrong prefix
             P + "0030100",   # c1: level-2 with HH=00
             P + "0020100"]   # D (community k3) shares community part 002 with B (k1)
    found = check_codes(ids, levels, parents, codes, prefix=P)
    text = {tuple(i): d for i, d in found}
    assert ("b1",) in text and "missing" in text[("b1",)]
    assert "duplicate" in text[("a1", "a2")]
    assert "does not extend" in text[("a3",)]
    assert "does not start with" in text[("C",)]
    assert "does not fit a level-2" in text[("c1",)]
    assert "different community parts" in text[("A", "B")]
    assert "share community part 002" in text[("B", "D")]
    assert len(found) == 7
    assert check_codes(["x"], [1], ["k"], ["12345"])[0][1].startswith("网格编码应为20位数字")
