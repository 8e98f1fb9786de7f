"""Plan-level writes shared by the stores: save one plan with optimistic locking, append audit rows.

``save_plan(store, ...)`` and ``append_audit(store, ...)`` work on any store (they call the
store's own method). PostgisStore implements them in SQL (data/postgis_store.py); the
GeoPackage versions live here and keep GpkgStore's design: under the store's writer lock,
read the few layers involved, check the plan version, and write through the same atomic
temp-file-and-replace as every other GeoPackage write (a failure leaves the file as it was).

Audit ``detail`` strings must not contain personal data (names, phones): they are shown
to administrators and may be exported.
"""
from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import pyogrio

from data.bundle import DataError, conform, empty_frame
from data.schema import LAYER_BY_NAME
from data.store import ConflictError

PLAN_LAYERS = ("plans", "grids", "assignments", "audit_log")


def save_plan(store, plan_id: str, grids_gdf, assignments_df, expected_plan_version: int, user: str) -> int:
    """Replace plan ``plan_id``'s grids and assignments if its version is still
    ``expected_plan_version``; else ConflictError and nothing written. Returns the new version."""
    return store.save_plan(plan_id, grids_gdf, assignments_df, expected_plan_version, user)


def append_audit(store, user: str, action: str, object: str, detail: str = "") -> None:
    store.append_audit(user, action, object, detail)


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def prepare_plan_frames(plan_id: str, grids, assignments) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The plan's grids and assignments with plan_id filled in and checked, conformed to the contract."""
    out = []
    for name, df in (("grids", grids), ("assignments", assignments)):
        df = df.copy() if df is not None else empty_frame(LAYER_BY_NAME[name])
        if "plan_id" in df.columns:
            pid = df["plan_id"].astype(object)
            other = pid.notna() & (pid.astype(str) != str(plan_id))
            if other.any():
                i = int(other.to_numpy().nonzero()[0][0])
                raise DataError(f"row belongs to another plan (expected plan {plan_id!r})", layer=name,
                                row=i + 1, field="plan_id")
        df["plan_id"] = str(plan_id)
        out.append(conform(name, df))
    return out[0], out[1]


def plan_audit_detail(new_version: int, grids: pd.DataFrame, assignments: pd.DataFrame) -> str:
    return f"version {new_version}: {len(grids)} grids, {len(assignments)} assignments"


# -- GeoPackage implementations (called by GpkgStore.save_plan / append_audit) ------------
def _read(store, names) -> dict:
    present = {n for n, _ in pyogrio.list_layers(store.path)} if store.path.exists() else set()
    out = {}
    for name in names:
        layer = LAYER_BY_NAME[name]
        if name not in present:
            out[name] = empty_frame(layer)
            continue
        df = pyogrio.read_dataframe(store.path, layer=name, read_geometry=bool(layer.geometry))
        if not layer.geometry and "geometry" in df.columns:
            df = pd.DataFrame(df.drop(columns="geometry"))
        out[name] = conform(name, df, file=str(store.path))
    return out


def _audit_frame(existing: pd.DataFrame, user, action, object, detail) -> pd.DataFrame:
    row = pd.DataFrame([{"ts": utc_now(), "user": str(user), "action": str(action), "object": str(object),
                         "detail": "" if detail is None else str(detail)}])
    return pd.concat([existing, row], ignore_index=True) if len(existing) else row


def gpkg_save_plan(store, plan_id: str, grids_gdf, assignments_df, expected_plan_version: int, user: str) -> int:
    grids, assignments = prepare_plan_frames(plan_id, grids_gdf, assignments_df)
    with store._lock():
        cur = _read(store, PLAN_LAYERS)
        plans = cur["plans"]
        hit = (plans["id"] == str(plan_id)).to_numpy()
        if not hit.any():
            raise DataError(f"unknown plan {plan_id!r}", file=str(store.path), layer="plans")
        found = plans.loc[hit, "version"].iloc[0]
        if pd.isna(found) or int(found) != int(expected_plan_version):
            raise ConflictError(f"plan {plan_id!r} was changed by someone else (expected version "
                                f"{expected_plan_version}, found {found}); nothing was saved, reload the plan "
                                f"and retry")
        new_version = int(found) + 1
        plans = plans.copy()
        plans.loc[hit, "version"] = new_version
        g, a = cur["grids"], cur["assignments"]
        keep_g = g[(g["plan_id"] != str(plan_id)).to_numpy()]
        keep_a = a[(a["plan_id"] != str(plan_id)).to_numpy()]
        new_grids = pd.concat([keep_g, grids], ignore_index=True) if len(keep_g) else grids
        new_assignments = pd.concat([keep_a, assignments], ignore_index=True) if len(keep_a) else assignments
        audit = _audit_frame(cur["audit_log"], user, "save_plan", f"plan:{plan_id}",
                             plan_audit_detail(new_version, grids, assignments))
        store._atomic_write({"plans": plans, "grids": new_grids, "assignments": new_assignments,
                             "audit_log": audit}, start_from=store.path)
    return new_version


def gpkg_append_audit(store, user: str, action: str, object: str, detail: str = "") -> None:
    with store._lock():
        existing = _read(store, ("audit_log",))["audit_log"]
        store._atomic_write({"audit_log": _audit_frame(existing, user, action, object, detail)},
                            start_from=store.path if store.path.exists() else None)
