"""data/plans: copy to draft, save with optimistic locking, adopt, archive, audit rows."""
import json
import shutil

import pytest

from data.gpkg_store import GpkgStore
from data.plans import (adopt_plan, archive_plan, copy_plan_to_draft, list_plans, load_plan, save_plan)
from data.store import ConflictError
from geo.plan import boundaries, move_buildings, rename_grid
from minsheng.settings import sample_path


@pytest.fixture
def store(tmp_path):
    p = tmp_path / "project.gpkg"
    shutil.copyfile(sample_path(), p)
    return GpkgStore(p)


def test_copy_save_and_stale_save_refused(store):
    pid = copy_plan_to_draft(store, "P1", "草案一", "alice")
    plans = list_plans(store).set_index("id")
    assert plans.loc[pid, "status"] == "draft" and int(plans.loc[pid, "version"]) == 1
    alice, va = load_plan(store, pid)
    bob, vb = load_plan(store, pid)  # two planners load the same version
    assert va == vb == 1
    moving = alice.buildings_of("C001-04-02")[:2]
    a2 = move_buildings(alice, moving, "C001-04-03")
    assert save_plan(store, a2, va, "alice") == 2
    bundle = store.load()
    assert set(bundle.plan_assignments(pid).query("building_id in @moving")["grid_id"]) == {"C001-04-03"}
    # stored geometry is derived from the buildings
    g = bundle.plan_grids(pid).set_index("id")
    derived = boundaries(a2, bundle.buildings, bundle.communities).set_index("id")
    assert g.loc["C001-04-03"].geometry.equals_exact(derived.loc["C001-04-03"].geometry, 1e-7) or \
        g.loc["C001-04-03"].geometry.symmetric_difference(derived.loc["C001-04-03"].geometry).area < 1e-12
    # P1 untouched
    assert bundle.plan_assignments("P1").equals(store.load().plan_assignments("P1"))
    before = store.path.read_bytes()
    with pytest.raises(ConflictError):
        save_plan(store, rename_grid(bob, "C001-01", "bob"), vb, "bob")
    assert store.path.read_bytes() == before  # the file is unchanged


def test_only_drafts_saved_and_adopt_archive(store):
    p1, v1 = load_plan(store, "P1")
    with pytest.raises(ValueError, match="adopted"):
        save_plan(store, rename_grid(p1, "C001-01", "x"), v1, "alice")
    pid = copy_plan_to_draft(store, "P1", "草案", "alice")
    adopt_plan(store, pid, "alice")
    plans = list_plans(store).set_index("id")
    assert plans.loc[pid, "status"] == "adopted" and plans.loc["P1", "status"] == "archived"
    assert (plans["status"] == "adopted").sum() == 1
    with pytest.raises(ValueError, match="adopted"):
        archive_plan(store, pid, "alice")
    other = copy_plan_to_draft(store, pid, "另一个", "bob")
    archive_plan(store, other, "bob")
    assert list_plans(store).set_index("id").loc[other, "status"] == "archived"
    # a planner still holding the archived draft cannot save it
    with pytest.raises((ConflictError, ValueError)):
        plan, _ = load_plan(store, other)
        save_plan(store, plan, 1, "bob")


def test_audit_rows_have_no_personal_data(store):
    pid = copy_plan_to_draft(store, "P1", "草案", "alice")
    plan, v = load_plan(store, pid)
    head = plan.grids.dropna(subset=["head_name"]).iloc[0]
    save_plan(store, move_buildings(plan, plan.buildings_of("C001-04-02")[:1], "C001-04-03"), v, "alice")
    adopt_plan(store, pid, "alice")
    log = store.load().audit_log
    assert list(log["action"]) == ["copy_plan", "save_plan", "adopt_plan", "archive_plan"]
    assert list(log["object"]) == [f"plan:{pid}"] * 3 + ["plan:P1"]
    assert "version 2" in log["detail"].iloc[1]
    assert json.loads(log["detail"].iloc[0])["from"] == "P1"
    text = " ".join(log["detail"])
    assert head["head_name"] not in text and head["head_phone"] not in text
