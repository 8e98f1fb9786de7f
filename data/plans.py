"""Plan life cycle in a store: copy to a draft, save with optimistic locking, adopt, archive.

Works on any store of the data.store.Store protocol: each operation loads the dataset,
checks, and writes the few layers involved with one `replace_layers(..., expected_version=)`
call (atomic in both the GeoPackage and PostGIS stores). When the store changed in between
for an unrelated reason (another plan saved, an audit row appended) the operation is
re-checked and retried; when the plan itself changed, `ConflictError` is raised and nothing
is written. Stores that provide their own transactional `save_plan(plan_id, grids, assignments,
expected_plan_version, user) -> int` (data/postgis_store.py) are used for the save.

Plan versions: `plans.version` (an integer per plan) is the optimistic lock a planner holds:
save_plan(store, plan, expected_version=<the version loaded>) refuses a stale save.
Audit rows (action copy_plan / save_plan / adopt_plan / archive_plan, object "plan:<id>")
carry ids and counts only, never names or phones.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone

import geopandas as gpd
import pandas as pd

from data.bundle import DataError
from data.store import ConflictError
from geo.plan import Plan, diff_plans, plan_from_bundle, structure_problems

RETRIES = 5


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _consistent_load(store):
    """A bundle whose version is the store's version while it was read (retry on a race)."""
    for _ in range(RETRIES):
        before = store.version()
        bundle = store.load()
        if bundle.version == before:
            return bundle
    raise ConflictError("the store kept changing while it was read; retry")


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
    b = store_or_bundle.load() if hasattr(store_or_bundle, "load") else store_or_bundle
    return b.plans.copy()


def load_plan(store, plan_id: str | None = None, *, settings=None) -> tuple[Plan, int]:
    """(Plan, plans.version) of `plan_id` (default: the adopted plan): pass the version back
    to save_plan as expected_version."""
    bundle = _consistent_load(store)
    plan_id = plan_id or bundle.adopted_plan_id()
    _plan_row(bundle, plan_id)
    return plan_from_bundle(bundle, plan_id, settings=settings), plan_version(bundle, plan_id)


def _audit(bundle, rows: list[dict]) -> pd.DataFrame:
    new = pd.DataFrame(rows, columns=["ts", "user", "action", "object", "detail"])
    old = bundle.audit_log
    return pd.concat([old, new], ignore_index=True) if len(old) else new


def _write(store, compute) -> object:
    """Run compute(bundle) -> (layers, result) and write layers with the bundle's version as
    expected_version; on a conflict reload and recompute (compute raises ConflictError when
    the conflict is real)."""
    last = None
    for _ in range(RETRIES):
        bundle = _consistent_load(store)
        layers, result = compute(bundle)
        try:
            store.replace_layers(layers, expected_version=bundle.version)
            return result
        except ConflictError as e:
            last = e
    raise ConflictError(f"the store kept changing; nothing was written ({last})")


def _next_plan_id(plans: pd.DataFrame) -> str:
    nums = [int(m.group(1)) for m in (re.fullmatch(r"P(\d+)", str(i)) for i in plans["id"]) if m]
    n = max(nums, default=0) + 1
    used = set(plans["id"].astype(str))
    while f"P{n}" in used:
        n += 1
    return f"P{n}"


def copy_plan_to_draft(store, source_plan_id: str, new_name: str, user: str, *, new_plan_id: str | None = None,
                       now: str | None = None) -> str:
    """Copy a plan (grids with their geometry, assignments) to a new draft plan (version 1).
    Returns the new plan id ("P<n>" unless given)."""
    if not str(new_name or "").strip():
        raise ValueError("a plan name must not be empty")

    def compute(bundle):
        _plan_row(bundle, source_plan_id)
        pid = str(new_plan_id) if new_plan_id else _next_plan_id(bundle.plans)
        if (bundle.plans["id"].astype(str) == pid).any():
            raise ValueError(f"plan id {pid!r} already exists")
        ts = now or utc_now()
        plans = pd.concat([bundle.plans, pd.DataFrame([{
            "id": pid, "name": str(new_name).strip(), "status": "draft", "version": 1, "created_at": ts,
            "created_by": str(user)}])], ignore_index=True)
        g = bundle.plan_grids(source_plan_id).assign(plan_id=pid)
        a = bundle.plan_assignments(source_plan_id).assign(plan_id=pid)
        grids = pd.concat([bundle.grids, g], ignore_index=True)
        assignments = pd.concat([bundle.assignments, a], ignore_index=True)
        detail = json.dumps({"from": str(source_plan_id), "version": 1, "grids": len(g), "assignments": len(a)})
        audit = _audit(bundle, [{"ts": ts, "user": str(user), "action": "copy_plan", "object": f"plan:{pid}",
                                 "detail": detail}])
        return ({"plans": plans, "grids": gpd.GeoDataFrame(grids, geometry="geometry", crs=bundle.grids.crs),
                 "assignments": assignments, "audit_log": audit}, pid)
    return _write(store, compute)


def _derived_frames(bundle, plan: Plan) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    from geo.plan import boundaries
    g = boundaries(plan, bundle.buildings, bundle.communities)
    g = g.assign(plan_id=plan.plan_id)
    a = plan.assignments.assign(plan_id=plan.plan_id)[["plan_id", "building_id", "grid_id"]]
    return g, a


def _check_saveable(bundle, plan: Plan, expected_version: int) -> None:
    row = _plan_row(bundle, plan.plan_id)
    found = plan_version(bundle, plan.plan_id)
    if found != int(expected_version):
        raise ConflictError(f"plan {plan.plan_id!r} was changed by someone else (expected version "
                            f"{expected_version}, found {found}); nothing was saved, reload the plan and retry")
    if str(row["status"]) != "draft":
        raise ValueError(f"plan {plan.plan_id!r} is {row['status']}; only drafts are edited "
                         f"(copy it to a draft first)")
    problems = structure_problems(plan, bundle.buildings["id"].astype(str))
    known = set(bundle.communities["id"].astype(str))
    used = set(plan.grids.loc[plan.grids["level"] == 1, "parent_id"].dropna())
    if used - known:
        problems.append(f"level-1 grids under unknown communities: {sorted(used - known)[:10]}")
    if problems:
        raise ValueError(f"plan {plan.plan_id!r} is not consistent, nothing was saved: " + "; ".join(problems))


def save_detail(before: Plan | None, plan: Plan, version: int) -> str:
    """Audit detail of a save: version and counts, no personal data."""
    d = {"version": int(version), "grids": int(len(plan.grids)), "assignments": int(len(plan.assignments))}
    if before is not None:
        diff = diff_plans(before, plan)
        d.update({"moved": int(len(diff.moved)), "added": list(diff.added), "removed": list(diff.removed),
                  "renamed": int(len(diff.renamed)), "head_changed": int(len(diff.head_changed))})
    return f"version {int(version)}: " + json.dumps(d, ensure_ascii=False)


def save_plan(store, plan: Plan, expected_version: int, user: str, *, now: str | None = None) -> int:
    """Save a draft plan: its grids (with boundaries derived from the buildings) and its
    assignments replace the stored ones for that plan only; plans.version is bumped and an
    audit row appended. Raises ConflictError (nothing written) when the stored version is
    not `expected_version`; ValueError when the plan is not a draft or not consistent.
    Returns the new version."""
    bundle = _consistent_load(store)
    _check_saveable(bundle, plan, expected_version)
    if hasattr(store, "save_plan"):  # a store with its own transactional plan save (PostGIS)
        g, a = _derived_frames(bundle, plan)
        return int(store.save_plan(plan.plan_id, g, a, int(expected_version), str(user)))

    def compute(b):
        _check_saveable(b, plan, expected_version)
        g, a = _derived_frames(b, plan)
        new_version = int(expected_version) + 1
        plans = b.plans.copy()
        plans.loc[(plans["id"].astype(str) == plan.plan_id).to_numpy(), "version"] = new_version
        keep_g = b.grids[(b.grids["plan_id"].astype(str) != plan.plan_id).to_numpy()]
        keep_a = b.assignments[(b.assignments["plan_id"].astype(str) != plan.plan_id).to_numpy()]
        grids = gpd.GeoDataFrame(pd.concat([keep_g, g.to_crs(b.grids.crs or 4326)], ignore_index=True),
                                 geometry="geometry", crs=b.grids.crs or 4326)
        assignments = pd.concat([keep_a, a], ignore_index=True)
        try:
            before = plan_from_bundle(b, plan.plan_id, context=plan.context) if plan.context else \
                Plan(plan.plan_id, b.plan_grids(plan.plan_id), b.plan_assignments(plan.plan_id))
        except ValueError:
            before = None
        audit = _audit(b, [{"ts": now or utc_now(), "user": str(user), "action": "save_plan",
                            "object": f"plan:{plan.plan_id}", "detail": save_detail(before, plan, new_version)}])
        return {"plans": plans, "grids": grids, "assignments": assignments, "audit_log": audit}, new_version
    return _write(store, compute)


def _set_status(store, plan_id: str, status: str, user: str, now: str | None, check) -> None:
    def compute(bundle):
        row = _plan_row(bundle, plan_id)
        check(bundle, row)
        plans = bundle.plans.copy()
        rows = []
        ts = now or utc_now()
        changed = []
        if status == "adopted":
            prev = (plans["status"] == "adopted").to_numpy() & (plans["id"].astype(str) != str(plan_id)).to_numpy()
            for pid in plans.loc[prev, "id"].astype(str):
                changed.append(pid)
                rows.append({"ts": ts, "user": str(user), "action": "archive_plan", "object": f"plan:{pid}",
                             "detail": json.dumps({"reason": f"plan {plan_id} adopted"})})
            plans.loc[prev, "status"] = "archived"
            plans.loc[prev, "version"] = plans.loc[prev, "version"].fillna(0).astype(int) + 1
        hit = (plans["id"].astype(str) == str(plan_id)).to_numpy()
        old = str(plans.loc[hit, "status"].iloc[0])
        plans.loc[hit, "status"] = status
        plans.loc[hit, "version"] = plans.loc[hit, "version"].fillna(0).astype(int) + 1
        new_version = int(plans.loc[hit, "version"].iloc[0])
        rows.insert(0, {"ts": ts, "user": str(user), "action": f"{'adopt' if status == 'adopted' else 'archive'}_plan",
                        "object": f"plan:{plan_id}",
                        "detail": json.dumps({"from": old, "to": status, "version": new_version,
                                              "archived": changed})})
        return {"plans": plans, "audit_log": _audit(bundle, rows)}, None
    _write(store, compute)


def adopt_plan(store, plan_id: str, user: str, *, require_complete: bool = True, now: str | None = None) -> None:
    """Make `plan_id` the adopted plan; the previously adopted plan becomes archived (exactly
    one adopted plan). With require_complete (default), refuse a plan in which some building
    is in no level-2 grid or the nesting is broken. Bumps the versions of the plans whose
    status changed (a planner still editing them gets a ConflictError on save)."""
    def check(bundle, row):
        if str(row["status"]) == "adopted":
            raise ValueError(f"plan {plan_id!r} is already adopted")
        if require_complete:
            plan = Plan(str(plan_id), bundle.plan_grids(plan_id), bundle.plan_assignments(plan_id),
                        tuple(bundle.communities["id"].astype(str)))
            problems = structure_problems(plan, bundle.buildings["id"].astype(str))
            if problems:
                raise ValueError(f"plan {plan_id!r} cannot be adopted: " + "; ".join(problems))
    _set_status(store, plan_id, "adopted", user, now, check)


def archive_plan(store, plan_id: str, user: str, *, now: str | None = None) -> None:
    """Archive a draft (an adopted plan is archived by adopting another one)."""
    def check(bundle, row):
        if str(row["status"]) == "adopted":
            raise ValueError(f"plan {plan_id!r} is the adopted plan; adopt another plan instead of archiving it")
        if str(row["status"]) == "archived":
            raise ValueError(f"plan {plan_id!r} is already archived")
    _set_status(store, plan_id, "archived", user, now, check)


__all__ = ["ConflictError", "adopt_plan", "archive_plan", "copy_plan_to_draft", "list_plans", "load_plan",
           "plan_status", "plan_version", "save_detail", "save_plan"]
