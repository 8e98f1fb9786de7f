"""Small pieces of the plan write model shared by both stores (data/sqlstore.py does the
transactions): the frames of one plan checked against the contract, the audit detail of a
save, the timestamp format.

Audit ``detail`` strings must not contain personal data (names, phones): they are shown
to administrators and may be exported.
"""
from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
from data.bundle import DataError, conform, empty_frame
from data.schema import LAYER_BY_NAME


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
