"""Frames shared by the exporters: a plan's grids, buildings with their grids, per-grid counts.

Per-grid counts are a small pandas groupby here (geo/coverage.py is the analysis home; switch
to it when it exists on main)."""
from __future__ import annotations

import geopandas as gpd
import pandas as pd

from data.bundle import DataError
from data.catalogue import key_groups


def resolve_plan(bundle, plan_id: str | None) -> str | None:
    if plan_id is None:
        return bundle.adopted_plan_id()
    if plan_id not in set(bundle.plans["id"].astype(str)):
        known = ", ".join(bundle.plans["id"].astype(str))
        raise DataError(f"no plan {plan_id!r} (plans: {known or 'none'})", field="plan")
    return plan_id


def building_grids(bundle, plan_id: str | None) -> pd.DataFrame:
    """building_id, grid_id (level 2), level1_id, community_id (None where unassigned)."""
    b = pd.DataFrame({"building_id": bundle.buildings["id"].astype(str)})
    if plan_id is None:
        return b.assign(grid_id=None, level1_id=None, community_id=None)
    a = bundle.plan_assignments(plan_id)[["building_id", "grid_id"]]
    g = bundle.plan_grids(plan_id)
    parent = dict(zip(g["id"], g["parent_id"]))
    out = b.merge(a, on="building_id", how="left")
    out["level1_id"] = out["grid_id"].map(parent)
    out["community_id"] = out["level1_id"].map(parent)
    return out.astype(object).where(out.notna(), None)


def grid_counts(bundle, plan_id: str | None, allow_personal: bool = False) -> dict[str, pd.DataFrame]:
    """Counts per level-2 grid, level-1 grid and community: buildings, households, persons and
    households per key group (sensitive groups only with allow_personal). Keys: "level2",
    "level1", "community", plus "unassigned" (one row)."""
    bg = building_grids(bundle, plan_id)
    hh = bundle.households
    groups = [k for k in key_groups() if allow_personal or not k.sensitive]
    h = pd.DataFrame({"building_id": hh["building_id"], "persons": pd.to_numeric(hh["persons"]).fillna(0)})
    h = h.merge(bg, on="building_id", how="left")
    tags = hh["tags"].map(lambda v: v if isinstance(v, list) else []).explode()
    tag_hits = pd.crosstab(tags.index, tags) if tags.notna().any() else pd.DataFrame(index=[])
    for k in groups:
        h[k.key] = tag_hits[k.key].reindex(h.index, fill_value=0).to_numpy() if k.key in tag_hits else 0
    out = {}
    for level, col in (("level2", "grid_id"), ("level1", "level1_id"), ("community", "community_id")):
        nb = bg.groupby(col).size().rename("buildings")
        agg = h.groupby(col).agg(households=("persons", "size"), persons=("persons", "sum"),
                                 **{k.key: (k.key, "sum") for k in groups})
        out[level] = pd.concat([nb, agg], axis=1).fillna(0).astype(int).rename_axis("id").reset_index()
    un_b = int(bg["grid_id"].isna().sum())
    un_h = int(h["grid_id"].isna().sum())
    orphan = int(hh["building_id"].isna().sum() + (~hh["building_id"].isin(bg["building_id"]) & hh["building_id"].notna()).sum())
    out["unassigned"] = pd.DataFrame([{"buildings_without_grid": un_b, "households_without_grid": un_h,
                                       "households_without_building": orphan}])
    return out


def plan_layers(bundle, plan_id: str | None) -> dict[str, gpd.GeoDataFrame]:
    """communities, level1, level2 grids of the plan; buildings with grid_id/level1_id/community_id."""
    g = bundle.plan_grids(plan_id) if plan_id is not None else bundle.grids.iloc[0:0]
    b = bundle.buildings.merge(building_grids(bundle, plan_id).rename(columns={"building_id": "id"}), on="id",
                               how="left")
    return {"communities": bundle.communities, "level1": g[g["level"] == 1].reset_index(drop=True),
            "level2": g[g["level"] == 2].reset_index(drop=True),
            "buildings": gpd.GeoDataFrame(b, geometry="geometry", crs=4326)}


def households_are_synthetic(bundle) -> bool:
    hh = bundle.households
    if len(hh):
        return bool(hh["synthetic"].all())
    return bundle.meta_dict.get("households", "") == "synthetic" if len(bundle.meta) else False


def palette(n: int) -> list[str]:
    base = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
            "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354",
            "#756bb1", "#636363"]
    return [base[i % len(base)] for i in range(n)]

