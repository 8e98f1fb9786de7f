"""Plan life cycle in a store: copy to a draft, save with optimistic locking, adopt, archive.

The row-level transactions are the store's (data/sqlstore.py: one implementation for both
stores); this module adds what needs geo/: checking a plan before it is saved or adopted,
deriving grid boundaries from the buildings, the audit detail of a save, and replaying a
planner's edits on the plan **as stored now** (never on a process's possibly stale copy).

Plan versions: ``plans.version`` (an integer per plan) is the optimistic lock a planner
holds: save refuses a plan whose stored version is not the one the planner started from —
at once, before any work (a lease, ``claim_plan``), and again inside the write transaction.
Audit rows (copy_plan / save_plan / adopt_plan / archive_plan, object "plan:<id>") carry ids
and counts only, never names or phones.
"""
from __future__ import annotations

import json

import pandas as pd

from data.bundle import DataError
from data.store import ConflictError
from geo.plan import Edit, Plan, plan_from_bundle, plan_from_frames, structure_problems

__all__ = ["ConflictError", "adopt_plan", "archive_plan", "copy_plan_to_draft", "list_plans", "load_plan",
           "change_detail", "plan_status", "plan_version", "propose_to_draft", "restore_plan", "save_edits",
           "save_plan", "stored_plan"]


def _plan_row(bundle, plan_id: str) -> pd.Series:
    p = bundle.plans
    hit = p[p["id"].astype(str) == str(plan_id)]
    if not len(hit):
        raise DataError(f"unknown plan {plan_id!r} (plans: {', '.join(map(str, p['id'])) or 'none'})",
                        file=str(bundle.source), layer="plans", field="id")
    return hit.iloc[0]


def plan_version(bundle, plan_id: str) -> int:
    v = _plan_row(bundle, plan_id)["version"]
    return 0 if pd.isna(v) else int(v)


def plan_status(bundle, plan_id: str) -> str:
    return str(_plan_row(bundle, plan_id)["status"])


def list_plans(store_or_bundle) -> pd.DataFrame:
    """id, name, status, version, created_at, created_by of every plan."""
    if hasattr(store_or_bundle, "list_plans"):
        return store_or_bundle.list_plans()
    return store_or_bundle.plans.copy()


def stored_plan(store, plan_id: str, *, context=None, communities=()) -> tuple[Plan, int]:
    """(Plan, plans.version) of ``plan_id`` read from the store now."""
    grids, assignments, row = store.plan_frames(plan_id)
    v = 0 if pd.isna(row["version"]) else int(row["version"])
    return plan_from_frames(plan_id, grids, assignments, communities=communities, context=context), v


def load_plan(store, plan_id: str | None = None, *, settings=None) -> tuple[Plan, int]:
    """(Plan, plans.version) of ``plan_id`` (default: the adopted plan): pass the version back
    to save_plan as expected_version."""
    bundle = store.read_model()
    plan_id = plan_id or bundle.adopted_plan_id()
    _plan_row(bundle, plan_id)
    plan = plan_from_bundle(bundle, plan_id, settings=settings)
    return plan, plan_version(bundle, plan_id)


def copy_plan_to_draft(store, source_plan_id: str, new_name: str, user: str, *, new_plan_id: str | None = None,
                       now: str | None = None) -> str:
    """Copy a plan (grids with their geometry, assignments) to a new draft plan (version 1).
    Returns the new plan id ("P<n>" unless given)."""
    if not str(new_name or "").strip():
        raise ValueError("a plan name must not be empty")
    return store.copy_plan(source_plan_id, str(new_name).strip(), str(user), new_plan_id=new_plan_id, now=now)


def _check_consistent(plan: Plan, buildings, communities) -> None:
    problems = structure_problems(plan, buildings["id"].astype(str))
    known = set(communities["id"].astype(str))
    used = set(plan.grids.loc[plan.grids["level"] == 1, "parent_id"].dropna())
    if used - known:
        problems.append(f"level-1 grids under unknown communities: {sorted(used - known)[:10]}")
    if problems:
        raise ValueError(f"plan {plan.plan_id!r} is not consistent, nothing was saved: " + "; ".join(problems))


def change_detail(before: Plan, plan: Plan, ch, version: int) -> str:
    """Audit detail of a save from its changed rows (no whole-plan diff): version and counts,
    no personal data."""
    added = sorted(set(plan.grids["id"]) - set(before.grids["id"]))
    d = {"version": int(version), "grids": int(len(plan.grids)), "assignments": int(len(plan.assignments)),
         "moved": int(len(ch.assignments) + len(ch.unassigned)), "added": added,
         "removed": sorted(map(str, ch.deleted_grids)), "grids_rewritten": int(len(ch.grids))}
    return f"version {int(version)}: " + json.dumps(d, ensure_ascii=False)


def _save(store, plan_id: str, expected_version: int, user: str, make, buildings, communities) -> int:
    """Claim the plan (refused at once if stale or being saved), build the plan to store with
    ``make(stored_plan)``, derive the boundaries that can have changed, and write the rows that
    changed in one transaction (the cost follows the edit, not the size of the plan)."""
    from geo.plan import boundary_changes
    lease = store.claim_plan(plan_id, int(expected_version))
    try:
        grids, assignments, row = store.plan_frames(plan_id, geometry=False)
        if str(row["status"]) != "draft":
            raise ValueError(f"plan {plan_id!r} is {row['status']}; only drafts are edited "
                             f"(copy it to a draft first)")
        before = plan_from_frames(plan_id, grids, assignments, communities=tuple(communities["id"].astype(str)))
        plan = make(before)
        _check_consistent(plan, buildings, communities)
        ch = boundary_changes(before, plan, buildings, communities)
        detail = change_detail(before, plan, ch, int(expected_version) + 1)
        return int(store.save_plan_changes(plan_id, ch.grids.assign(plan_id=plan_id), ch.deleted_grids,
                                           ch.assignments.assign(plan_id=plan_id), ch.unassigned,
                                           int(expected_version), str(user), detail=detail, lease=lease))
    finally:
        store.release_plan(plan_id, lease)


def save_plan(store, plan: Plan, expected_version: int, user: str, *, bundle=None) -> int:
    """Save a draft plan: its grids (with boundaries derived from the buildings) and its
    assignments replace the stored ones for that plan only; plans.version is bumped and an
    audit row appended. Raises ConflictError (nothing written) when the stored version is
    not `expected_version`; ValueError when the plan is not a draft or not consistent.
    Returns the new version."""
    b = bundle if bundle is not None else store.read_model()
    return _save(store, plan.plan_id, expected_version, user, lambda _stored: plan, b.buildings, b.communities)


def save_edits(store, plan_id: str, base_version: int, edits, user: str, *, bundle, context=None) -> int:
    """A planner's save: replay ``edits`` ([op, params] pairs of geo.plan.Edit) on the plan as
    stored at ``base_version`` (checked under the lease, so never on a stale copy)."""
    def make(stored: Plan) -> Plan:
        plan = Plan(stored.plan_id, stored.grids, stored.assignments, stored.communities, context)
        for op, params in edits:
            plan = Edit.of(op, **params)(plan)
        return plan
    return _save(store, plan_id, base_version, user, make, bundle.buildings, bundle.communities)


def _complete_check(buildings, communities, plan_id):
    def check(row, grids, assignments):
        if str(row["status"]) == "adopted":
            raise ValueError(f"plan {plan_id!r} is already adopted")
        plan = Plan(str(plan_id), grids, assignments, tuple(communities["id"].astype(str)))
        problems = structure_problems(plan, buildings["id"].astype(str))
        if problems:
            raise ValueError(f"plan {plan_id!r} cannot be adopted: " + "; ".join(problems))
    return check


def adopt_plan(store, plan_id: str, user: str, *, require_complete: bool = True, now: str | None = None,
               bundle=None) -> None:
    """Make `plan_id` the adopted plan; the previously adopted plan becomes archived (exactly
    one adopted plan). With require_complete (default), refuse a plan in which some building
    is in no level-2 grid or the nesting is broken. Bumps the versions of the plans whose
    status changed (a planner still editing them gets a ConflictError on save)."""
    if require_complete:
        b = bundle if bundle is not None else store.read_model()
        check = _complete_check(b.buildings, b.communities, plan_id)
    else:
        def check(row, grids, assignments):
            if str(row["status"]) == "adopted":
                raise ValueError(f"plan {plan_id!r} is already adopted")
    store.set_plan_status(plan_id, "adopted", user, check=check, now=now)


def archive_plan(store, plan_id: str, user: str, *, now: str | None = None) -> None:
    """Archive a draft (an adopted plan is archived by adopting another one)."""
    def check(row, grids, assignments):
        if str(row["status"]) == "adopted":
            raise ValueError(f"plan {plan_id!r} is the adopted plan; adopt another plan instead of archiving it")
        if str(row["status"]) == "archived":
            raise ValueError(f"plan {plan_id!r} is already archived")
    store.set_plan_status(plan_id, "archived", user, check=check, now=now)


def restore_plan(store, plan_id: str, user: str, *, now: str | None = None) -> None:
    """Bring an archived plan back as a draft."""
    def check(row, grids, assignments):
        if str(row["status"]) != "archived":
            raise ValueError(f"plan {plan_id!r} is {row['status']}, not archived")
    store.set_plan_status(plan_id, "draft", user, check=check, now=now)


def propose_to_draft(store, base_id: str, name: str, user: str, *, settings, community_ids=None,
                     min_moves: bool = False, seed: int = 0, balance: str = "households", progress=None):
    """An automatic grid proposal (geo/regionalize.propose_plan) saved as a new draft copied from
    ``base_id``: every community gets fresh grids, or only ``community_ids`` (the others keep
    base_id's), or with min_moves base_id is rebalanced moving as few buildings as possible. Codes
    follow the deployment's settings (street and community codes). ``progress(stage)``: called
    with "propose" before the proposal and "save" before the write (`minsheng propose` and the
    planner's background job). Returns (new plan id, new version, Proposal, base Plan, new Plan)."""
    from dataclasses import replace

    from geo.regionalize import propose_plan
    say = progress or (lambda stage: None)
    bundle = store.read_model()
    _plan_row(bundle, base_id)
    base = plan_from_bundle(bundle, base_id, settings=settings)
    fresh_all = community_ids is None and not min_moves
    say("propose")
    prop = propose_plan(bundle.buildings, bundle.building_stats, bundle.communities, bundle.walk_edges,
                        bands=settings, settings=settings, start_from=None if fresh_all else base,
                        min_moves=min_moves, community_ids=community_ids, seed=seed, balance=balance)
    say("save")
    new_id = copy_plan_to_draft(store, base_id, name, user)
    draft, version = load_plan(store, new_id, settings=settings)
    plan = replace(prop.plan, plan_id=new_id, context=draft.context)
    return new_id, save_plan(store, plan, version, user), prop, base, plan
