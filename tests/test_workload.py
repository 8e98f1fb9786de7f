"""Workload (geo/workload), per-building stats (geo/stats), grid tables on stats frames, the
visit-frequency catalogue, and workload as a balance target (geo/regionalize)."""
import numpy as np
import pandas as pd
import pytest

from data.bundle import DataError
from data.catalogue import FREQUENCY_TIERS, visit_frequency
from geo.coverage import grid_table
from geo.stats import building_stats
from geo.validate import plan_index
from geo.workload import building_workload, walk_lengths, workload_breakdown
from minsheng.settings import Settings

RATES = {"*": 1 / 3, "living_alone_elderly": 52 / 12, "low_income": 1.0, "party_member": 1 / 3}


def households():
    return pd.DataFrame({
        "id": [f"H{i}" for i in range(7)],
        "building_id": ["A", "A", "A", "B", "B", "C", None],
        "persons": [1, 2, 3, 1, 4, 2, 9],
        "tags": [["living_alone_elderly"], ["low_income", "living_alone_elderly"], ["party_member"], [],
                 ["low_income", "low_income"], None, ["low_income"]],
        "synthetic": [True, True, False, True, True, True, True]})


def test_building_stats_counts_each_tag_once_per_household():
    st = building_stats(households(), ["living_alone_elderly", "low_income", "party_member"])
    # a household without a building id is kept, under "", so the audit can count it as an orphan
    assert st.loc[st["building_id"] == "", "households"].tolist() == [1]
    st = st[st["building_id"] != ""].reset_index(drop=True)
    assert list(st["building_id"]) == ["A", "B", "C"]
    assert list(st["households"]) == [3, 2, 1] and list(st["persons"]) == [6, 5, 2]
    assert list(st["synthetic"]) == [2, 2, 1]
    assert list(st["living_alone_elderly"]) == [2, 0, 0]
    assert list(st["low_income"]) == [1, 1, 0]  # listed twice on H4: one household
    assert list(st["party_member"]) == [1, 0, 0]


def test_building_stats_default_columns_are_the_catalogue():
    from data.catalogue import key_groups
    st = building_stats(households())
    assert list(st.columns) == ["building_id", "households", "persons", "synthetic", *[k.key for k in key_groups()]]


def test_workload_weekly_monthly_quarterly():
    st = building_stats(households(), list(RATES)[1:])
    w = building_workload(st, RATES)
    # A: 3 households at 1/3, two living alone (+4 each), one low-income (+2/3); party member adds nothing
    assert w["A"] == pytest.approx(3 / 3 + 2 * (52 / 12 - 1 / 3) + (1 - 1 / 3))
    assert w["B"] == pytest.approx(2 / 3 + (1 - 1 / 3))
    assert w["C"] == pytest.approx(1 / 3)
    # one group: visited at that group's rate
    one = pd.DataFrame({"building_id": ["X"], "households": [1], "persons": [1], "synthetic": [0],
                        "living_alone_elderly": [1]})
    assert building_workload(one, RATES)["X"] == pytest.approx(52 / 12)
    br = workload_breakdown(st.set_index("building_id"), RATES)
    assert br.sum(axis=1).to_numpy() == pytest.approx(w.to_numpy())


def test_shipped_visit_frequency_tiers():
    r = dict(visit_frequency())
    assert r["*"] == FREQUENCY_TIERS["quarterly"]
    assert r["living_alone_elderly"] == FREQUENCY_TIERS["weekly"]
    assert r["low_income"] == FREQUENCY_TIERS["monthly"]


def test_visit_frequency_bad_rows_name_file_row_field(tmp_path):
    f = tmp_path / "vf.csv"
    f.write_text("key,frequency\n*,quarterly\nnot_a_group,weekly\n", encoding="utf-8")
    with pytest.raises(DataError) as e:
        visit_frequency(str(f))
    assert e.value.row == 3 and e.value.field == "key" and str(f) in str(e.value)
    f.write_text("key,frequency\n*,quarterly\nlow_income,often\n", encoding="utf-8")
    with pytest.raises(DataError) as e:
        visit_frequency(str(f))
    assert e.value.row == 3 and e.value.field == "frequency"
    f.write_text("key,frequency\nlow_income,2.5\n", encoding="utf-8")
    assert dict(visit_frequency(str(f))) == {"low_income": 2.5, "*": 1 / 3}


def _plan():
    grids = pd.DataFrame({"id": ["G1", "G1-1", "G1-2"], "level": [1, 2, 2], "parent_id": ["C", "G1", "G1"],
                          "code": None, "name": ["一", "一1", "一2"]})
    comm = pd.DataFrame({"id": ["C"]})
    bld = pd.DataFrame({"id": ["A", "B", "C"]})
    a = pd.DataFrame({"building_id": ["A", "B", "C"], "grid_id": ["G1-1", "G1-2", "G1-2"]})
    return grids, plan_index(grids, comm, bld, a)


def test_grid_table_same_from_households_and_stats_with_workload_and_band():
    grids, ix = _plan()
    keys = list(RATES)[1:]
    bands = {1: (1, 100), 2: (1, 100), ("workload", 1): (0, 50), ("workload", 2): (0, 5)}
    t1 = grid_table(grids, households(), ix, bands=bands, tag_keys=keys, visits=RATES)
    t2 = grid_table(grids, building_stats(households(), keys), ix, bands=bands, tag_keys=keys, visits=RATES)
    pd.testing.assert_frame_equal(t1, t2)
    r = t1.set_index("id")
    assert r.loc["G1-1", "workload"] == pytest.approx(round(3 / 3 + 2 * 4 + 2 / 3, 1))
    assert r.loc["G1", "workload"] == pytest.approx(r.loc["G1-1", "workload"] + r.loc["G1-2", "workload"], abs=0.11)
    assert r.loc["G1-1", "workload_band"] == "high" and r.loc["G1-2", "workload_band"] == "ok"
    assert r.loc["G1", "households"] == 6 and r.loc["G1", "low_income"] == 2


def test_settings_workload_bands_per_level():
    s = Settings()
    assert s.workload_band(2).low < s.workload_band(2).high < s.workload_band(1).high <= s.workload_band(0).high


def test_walk_lengths_spanning_tree_per_grid():
    ids = ["a", "b", "c", "d", "e"]
    xy = np.array([[0, 0], [100, 0], [200, 0], [0, 1000], [0, 1030]], dtype=float)
    g = pd.Series({"a": "G1", "b": "G1", "c": "G1", "d": "G2", "e": "G2"})
    w = walk_lengths(ids, xy, g)
    assert w["G1"] == pytest.approx(200) and w["G2"] == pytest.approx(30)


def test_propose_balances_workload():
    """Same households, different risk: by households two equal grids, by workload the grid with
    the weekly visits gets fewer households."""
    from geo.regionalize import partition_weights
    st = pd.DataFrame({"building_id": ["A", "B"], "households": [100, 100], "persons": [200, 200], "synthetic": [0, 0],
                       "living_alone_elderly": [40, 0]})
    w_h, band_h = partition_weights(st, Settings(), "households", RATES)
    w_w, band_w = partition_weights(st, Settings(), "workload", RATES)
    w_b, band_b = partition_weights(st, Settings(), "both", RATES)
    w_h, w_w = w_h.reset_index(drop=True), w_w.reset_index(drop=True)
    w_b = w_b.reset_index(drop=True)
    assert list(w_h) == [100, 100] and band_h[2] == (Settings().band(2).low, Settings().band(2).high)
    assert w_w[0] == pytest.approx(100 / 3 + 40 * 4) and w_w[1] == pytest.approx(100 / 3)
    assert band_w[2] == (Settings().workload_band(2).low, Settings().workload_band(2).high)
    s2 = Settings()
    r = (s2.band(2).low + s2.band(2).high) / (s2.workload_band(2).low + s2.workload_band(2).high)
    assert w_b.to_numpy() == pytest.approx((w_h.to_numpy() + r * w_w.to_numpy()) / 2)
    assert w_b[0] > w_b[1] and band_b == band_h
