"""geo/plan.people_diff: households, persons and key groups that change grid, per grid worker."""
import pandas as pd

from geo.plan import move_buildings, people_diff, set_grid_head
from geo.stats import building_stats
from test_plan import HH, P0  # the shared tiny world

KEYS = ["elderly_alone"]


def test_moving_buildings_moves_their_households():
    p = set_grid_head(P0, "C1-01-02", "王五", "13800000000")
    moved = ["B00", "B01"]
    src = p.building_grid()[moved].unique().tolist()
    assert src == ["C1-01-01"]
    q = move_buildings(p, moved, "C1-01-02")
    d = people_diff(p, q, HH, tag_keys=KEYS)
    f2 = d.flows[d.flows["level"] == 2]
    assert len(f2) == 1
    r = f2.iloc[0]
    assert (r.from_grid, r.to_grid) == ("C1-01-01", "C1-01-02")
    assert r.buildings == ("B00", "B01")
    assert r.households == 6 and r.persons == 12
    expect_tag = int(sum(1 for k, b in enumerate(HH["building_id"]) if b in moved and HH["tags"][k]))
    assert r.elderly_alone == expect_tag
    assert d.households_moved == 6 and d.persons_moved == 12
    per = d.per_grid.set_index("id")
    assert per.loc["C1-01-02", "households_gained"] == 6 and per.loc["C1-01-02", "households_lost"] == 0
    assert per.loc["C1-01-01", "households_net"] == -6
    assert per.loc["C1-01-02", "head_name"] == "王五"  # the grid worker who gains them (mask for viewers)
    assert per.loc["C1-01-02", "buildings_gained"] == ("B00", "B01")
    # same level-1 grid: no level-1 flow
    assert not (d.flows["level"] == 1).any()


def test_level1_flows_and_stats_frame_gives_the_same_answer():
    q = move_buildings(P0, ["B00"], "C1-02-01")  # another level-1 grid of C1
    a = people_diff(P0, q, HH, tag_keys=KEYS)
    b = people_diff(P0, q, building_stats(HH, KEYS), tag_keys=KEYS)
    pd.testing.assert_frame_equal(a.flows, b.flows)
    pd.testing.assert_frame_equal(a.per_grid, b.per_grid)
    f1 = a.flows[a.flows["level"] == 1]
    assert list(zip(f1["from_grid"], f1["to_grid"])) == [("C1-01", "C1-02")]
    assert int(f1["households"].iloc[0]) == 3


def test_no_change_no_flows():
    d = people_diff(P0, P0, HH, tag_keys=KEYS)
    assert len(d.flows) == 0 and len(d.per_grid) == 0 and d.households_moved == 0


def test_totals_balance():
    q = move_buildings(P0, ["B00", "B10"], "C1-01-02")
    q = move_buildings(q, ["B55"], "C2-01-01")
    d = people_diff(P0, q, HH, tag_keys=KEYS)
    per = d.per_grid[d.per_grid["level"] == 2]
    assert per["households_gained"].sum() == per["households_lost"].sum() == d.households_moved
    assert per["households_net"].sum() == 0
