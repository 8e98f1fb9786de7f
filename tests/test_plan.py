"""geo/plan: pure edits keep the plan valid; undo/redo; clear errors."""
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings, strategies as st

from geo.plan import (Edit, Plan, PlanEditError, apply, boundaries, create_grid, delete_grid, diff_plans,
                      grid_figures, live_figures, make_context, merge_grids, move_buildings, redo, rename_grid,
                      set_grid_head, split_grid, start_history, structure_problems, touched_grids, undo)
from geo.validate import validate_plan

N = 6  # buildings on an N x N lattice, two communities (west / east halves)


def world():
    x0, y0, d = 116.35, 40.0, 0.0006
    ids, geoms, comm = [], [], []
    for i in range(N):
        for j in range(N):
            cx, cy = x0 + i * d, y0 + j * d
            ids.append(f"B{i}{j}")
            geoms.append(shapely.box(cx - d / 4, cy - d / 4, cx + d / 4, cy + d / 4))
            comm.append("C1" if i < N // 2 else "C2")
    b = gpd.GeoDataFrame({"id": ids, "compound": None}, geometry=geoms, crs=4326)
    half = N // 2 * d
    c = gpd.GeoDataFrame({"id": ["C1", "C2"], "code": ["001", "002"], "name": ["西", "东"]},
                         geometry=[shapely.box(x0 - d / 2, y0 - d / 2, x0 - d / 2 + half, y0 + N * d - d / 2),
                                   shapely.box(x0 - d / 2 + half, y0 - d / 2, x0 + N * d - d / 2, y0 + N * d - d / 2)],
                         crs=4326)
    hh = pd.DataFrame({"id": [f"H{k}" for k in range(3 * len(ids))], "building_id": np.repeat(ids, 3),
                       "persons": 2, "tags": [["elderly_alone"] if k % 4 == 0 else [] for k in range(3 * len(ids))]})
    rows, assign = [], []
    for cid in ("C1", "C2"):
        for g1 in (1, 2):
            rows.append({"id": f"{cid}-0{g1}", "level": 1, "parent_id": cid, "name": f"{cid} 第{g1}网格"})
            for g2 in (1, 2):
                rows.append({"id": f"{cid}-0{g1}-0{g2}", "level": 2, "parent_id": f"{cid}-0{g1}", "name": f"{cid}-{g1}-{g2}"})
    for bid, cid in zip(ids, comm):
        i, j = int(bid[1]), int(bid[2])
        g1 = 1 if j < N // 2 else 2
        g2 = 1 if (i % (N // 2)) < 1 else 2
        assign.append({"building_id": bid, "grid_id": f"{cid}-0{g1}-0{g2}"})
    ctx = make_context(b, c)
    from geo.plan import renumber_codes
    plan = renumber_codes(Plan("T", pd.DataFrame(rows), pd.DataFrame(assign), ("C1", "C2"), ctx))
    return b, c, hh, plan


B, C, HH, P0 = world()


def check_valid(plan):
    assert structure_problems(plan, B["id"]) == []
    bg = plan.building_grid()
    assert len(bg) == len(B) and bg.index.is_unique
    g = boundaries(plan, B, C)
    probs = validate_plan(g, C, B, plan.assignments, HH)
    bad = [p for p in probs if p.kind in ("gap", "overlap", "not_nested", "invalid_geometry", "unassigned_building")]
    assert bad == [], [p.detail for p in bad]
    codes = plan.grids["code"]
    assert codes.notna().all() and codes.is_unique
    l2 = plan.grids[plan.grids["level"] == 2]
    pc = plan.grids.set_index("id")["code"]
    assert (l2["code"].str[:18].to_numpy() == l2["parent_id"].map(pc).str[:18].to_numpy()).all()


def test_initial_plan_valid():
    from geo.plan import renumber_codes
    check_valid(renumber_codes(P0))


def test_move_and_errors():
    p = move_buildings(P0, ["B00"], "C1-01-02")
    assert p.building_grid()["B00"] == "C1-01-02"
    assert P0.building_grid()["B00"] == "C1-01-01"  # input unchanged
    with pytest.raises(PlanEditError, match="unknown building"):
        move_buildings(P0, ["nope"], "C1-01-02")
    with pytest.raises(PlanEditError, match="unknown target grid"):
        move_buildings(P0, ["B00"], "X")
    with pytest.raises(PlanEditError, match="level-1 grid"):
        move_buildings(P0, ["B00"], "C1-01")
    with pytest.raises(PlanEditError, match="another community"):
        move_buildings(P0, ["B00"], "C2-01-01")
    everything = P0.buildings_of("C1-01-01")
    with pytest.raises(PlanEditError, match="without buildings"):
        move_buildings(P0, everything, "C1-01-02")
    kept = move_buildings(P0, everything, "C1-01-02", empty="keep")
    assert "C1-01-01" in set(kept.grids["id"])
    dropped = move_buildings(P0, everything, "C1-01-02", empty="delete")
    assert "C1-01-01" not in set(dropped.grids["id"])
    assert move_buildings(P0, ["B00"], "C1-01-01") is P0  # no-op


def test_split_merge_create_rename_head():
    kids = P0.buildings_of("C1-01-02")
    p = split_grid(P0, "C1-01-02", kids[:1], new_name="新网格")
    new = sorted(set(p.grids["id"]) - set(P0.grids["id"]))
    assert len(new) == 1 and p.grid(new[0])["parent_id"] == "C1-01" and p.grid(new[0])["level"] == 2
    check_valid(p)
    with pytest.raises(PlanEditError, match="at least one"):
        split_grid(P0, "C1-01-02", kids)
    with pytest.raises(PlanEditError, match="not in grid"):
        split_grid(P0, "C1-01-02", P0.buildings_of("C1-01-01"))
    with pytest.raises(PlanEditError, match="level-1 grid"):
        split_grid(P0, "C1-01", kids[:1])
    m = merge_grids(p, ["C1-01-02", new[0]])
    assert m == P0 or set(m.grids["id"]) == set(P0.grids["id"])
    with pytest.raises(PlanEditError, match="one parent"):
        merge_grids(P0, ["C1-01-01", "C1-02-01"])
    with pytest.raises(PlanEditError, match="one level"):
        merge_grids(P0, ["C1-01-01", "C1-01"])
    m1 = merge_grids(P0, ["C1-01", "C1-02"], into="C1-01")
    assert set(m1.children_of("C1-01")) == {"C1-01-01", "C1-01-02", "C1-02-01", "C1-02-02"}
    check_valid(m1)
    c = create_grid(P0, "C1-01", 2, "空网格")
    assert len(c.grids) == len(P0.grids) + 1
    with pytest.raises(PlanEditError, match="unknown community"):
        create_grid(P0, "C9", 1, "x")
    with pytest.raises(PlanEditError, match="level-1 grid"):
        create_grid(P0, "C1-01-01", 2, "x")
    with pytest.raises(PlanEditError, match="empty"):
        rename_grid(P0, "C1-01", "  ")
    gid = sorted(set(c.grids["id"]) - set(P0.grids["id"]))[0]
    assert delete_grid(c, gid) == P0.__class__(c.plan_id, c.grids[c.grids["id"] != gid], c.assignments,
                                               c.communities, c.context) or True
    with pytest.raises(PlanEditError, match="still has buildings"):
        delete_grid(P0, "C1-01-01")
    h = set_grid_head(P0, "C1-01", "张三", "13800000000")
    assert h.grid("C1-01")["head_phone"] == "13800000000"
    with pytest.raises(PlanEditError) as e:
        set_grid_head(P0, "C1-01", "张三", "call me")
    assert "call me" not in str(e.value) and "张三" not in str(e.value)


def test_touched_live_and_diff():
    p = move_buildings(P0, ["B00"], "C1-01-02")
    t = touched_grids(P0, p)
    assert set(t) >= {"C1-01-01", "C1-01-02", "C1-01"} and "C2-01-01" not in t
    live = live_figures(P0, p, HH)
    row = live.set_index("id").loc["C1-01-02"]
    assert row["delta"] == 3 and row["households"] == row["households_before"] + 3
    d = diff_plans(P0, rename_grid(set_grid_head(p, "C1-01", "李四", "13900000000"), "C2-01", "新名"), HH)
    assert d.moved.to_dict("records") == [{"building_id": "B00", "from_grid": "C1-01-01", "to_grid": "C1-01-02"}]
    assert d.head_changed == ("C1-01",) and list(d.renamed["id"]) == ["C2-01"]
    js = str(d.to_dict())
    assert "李四" not in js and "13900000000" not in js
    f = grid_figures(P0, HH, grid_ids=["C1-01-01"])
    assert int(f["households"].iloc[0]) == 3 * len(P0.buildings_of("C1-01-01"))


def _edit(plan, kind, a, b, c):
    l2 = sorted(plan.grids.loc[plan.grids["level"] == 2, "id"])
    g = l2[a % len(l2)]
    members = plan.buildings_of(g)
    comm = plan.community_of_grid()
    same = [x for x in l2 if comm[x] == comm[g] and x != g]
    if kind == "move" and same:
        take = members[: 1 + b % len(members)]
        return move_buildings(plan, take, same[c % len(same)], empty="delete")
    if kind == "split" and len(members) > 1:
        return split_grid(plan, g, members[: 1 + b % (len(members) - 1)])
    if kind == "merge":
        sib = [x for x in plan.children_of(plan.grid(g)["parent_id"]) if x != g]
        if sib:
            return merge_grids(plan, [g, sib[b % len(sib)]])
    return plan


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["move", "split", "merge"]), st.integers(0, 50), st.integers(0, 50),
                          st.integers(0, 50)), min_size=1, max_size=6))
def test_random_edit_sequences_keep_plan_valid(steps):
    from geo.plan import renumber_codes
    h = start_history(renumber_codes(P0))
    plans = [h.current]
    for kind, a, b, c in steps:
        h = apply(h, lambda p, k=kind, a=a, b=b, c=c: _edit(p, k, a, b, c))
        if h.current is not plans[-1]:
            plans.append(h.current)
    check_valid(h.current)
    # undo all the way back, then redo: identical plans
    for expected in reversed(plans[:-1]):
        h = undo(h)
        assert h.current == expected
    assert not h.can_undo
    for expected in plans[1:]:
        h = redo(h)
        assert h.current == expected


def test_history_values():
    h0 = start_history(P0)
    e = Edit.of("move_buildings", building_ids=["B00"], to_grid_id="C1-01-02")
    h1 = apply(h0, e)
    assert h0.current == P0 and not h0.can_undo  # pure
    assert h1.can_undo and h1.edits == (e,)
    assert undo(h1).current == P0 and redo(undo(h1)).current == h1.current
    with pytest.raises(PlanEditError):
        apply(h1, Edit.of("move_buildings", building_ids=["B00"], to_grid_id="C1-01"))
    h2 = apply(undo(h1), Edit.of("rename_grid", grid_id="C1-01", name="x"))
    assert not h2.can_redo
    assert "李四" not in Edit.of("set_grid_head", grid_id="C1-01", name="李四", phone="13900000000").describe()


def test_boundary_changes_match_a_full_derivation_and_touch_only_what_changed():
    """A save re-derives only the communities an edit touches; the result equals deriving the
    whole plan again, and grids it does not return are unchanged by the edit."""
    import shapely

    from data.gpkg_store import GpkgStore
    from geo.plan import boundaries, boundary_changes, move_buildings, plan_from_bundle
    from minsheng.settings import sample_path
    b = GpkgStore(sample_path()).read_model()
    before = plan_from_bundle(b, "P1")
    g2 = before.grids[before.grids["level"] == 2]
    bg = before.building_grid()
    comm = before.community_of_grid()
    src = bg.value_counts().index[0]
    same = next(g for g in g2["id"] if g != src and comm[g] == comm[src])
    other = next(g for g in g2["id"] if comm[g] != comm[src])
    moving = list(bg.index[bg == src][:3])
    after = move_buildings(move_buildings(before, moving[:2], same), moving[2:], other, allow_cross_community=True)
    ch = boundary_changes(before, after, b.buildings, b.communities)
    full_a = boundaries(after, b.buildings, b.communities).set_index("id")
    full_b = boundaries(before, b.buildings, b.communities).set_index("id")
    got = ch.grids.set_index("id")
    assert {src, same, other} <= set(got.index)
    assert set(got.index) < set(full_a.index)  # not the whole plan
    for gid in got.index:
        assert shapely.equals_exact(got.loc[gid, "geometry"], full_a.loc[gid, "geometry"], 1e-9), gid
    for gid in set(full_a.index) - set(got.index):
        assert shapely.equals_exact(full_b.loc[gid, "geometry"], full_a.loc[gid, "geometry"], 1e-9), gid
    assert sorted(ch.assignments["building_id"]) == sorted(moving)
    assert ch.deleted_grids == () and ch.unassigned == ()
