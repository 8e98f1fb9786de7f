"""Frames shared by the exporters: a plan's grids, buildings with their grids, per-grid counts.

Per-grid counts come from geo/coverage.py (the same figures as the dashboard)."""
from __future__ import annotations

import geopandas as gpd
import pandas as pd

from data.bundle import DataError
from data.catalogue import catalogue as _shipped


FORMULA_LEAD = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(v):
    """A text cell a spreadsheet would run as a formula (leading =, +, -, @, tab, CR: OWASP CSV
    injection) gets a leading apostrophe, so it is shown as text; everything else unchanged."""
    return "'" + v if isinstance(v, str) and v.startswith(FORMULA_LEAD) else v


def neutralise_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of df with every text cell passed through neutralise_cell (numbers untouched)."""
    out = df.copy()
    for c in out.columns:
        if pd.api.types.is_object_dtype(out[c]) or pd.api.types.is_string_dtype(out[c]):
            out[c] = out[c].astype(object).map(neutralise_cell)
    return out


def neutralise_xlsx(ws) -> None:
    """An openpyxl worksheet written from data: no cell is a formula. openpyxl stores any text
    starting with "=" as a formula; such cells become plain text shown as typed (quotePrefix),
    and other formula-leading text gets the same text flag so Excel never re-reads it."""
    for row in ws.iter_rows():
        for cell in row:
            v = cell.value
            if isinstance(v, str) and v.startswith(FORMULA_LEAD):
                cell.data_type = "s"
                cell.quotePrefix = True


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


def in_force(catalogue=None):
    """The catalogue an exporter uses: the one passed (Settings.catalogue()), else the shipped one."""
    return catalogue if catalogue is not None else _shipped()


def grid_counts(bundle, plan_id: str | None, allow_personal: bool = False, bands=None, catalogue=None
                ) -> dict[str, pd.DataFrame]:
    """Counts per level-2 grid, level-1 grid and community (geo.coverage): id, buildings,
    households, persons, households per key group (sensitive groups only with allow_personal)
    and band (low/ok/high against the configured households band). Keys: "level2", "level1",
    "community", plus "unassigned" (one row). catalogue: data.catalogue.Catalogue in force
    (Settings.catalogue(); default the shipped one)."""
    from geo.coverage import community_table, grid_table, plan_totals
    from geo.validate import plan_index
    grids = bundle.plan_grids(plan_id) if plan_id is not None else bundle.grids.iloc[0:0]
    assignments = bundle.plan_assignments(plan_id) if plan_id is not None else bundle.assignments.iloc[0:0]
    keys = [k.key for k in in_force(catalogue).key_groups if allow_personal or not k.sensitive]
    ix = plan_index(grids, bundle.communities, bundle.buildings, assignments)
    table = grid_table(grids, bundle.building_stats, ix, bands=bands, tag_keys=keys)
    comm = community_table(bundle.communities, table, ix, bands=bands)
    cols = ["id", "buildings", "households", "persons", *keys, "band"]
    totals = plan_totals(bundle.building_stats, ix)
    return {"level2": table[table["level"] == 2][cols].reset_index(drop=True),
            "level1": table[table["level"] == 1][cols].reset_index(drop=True),
            "community": comm[cols].reset_index(drop=True),
            "unassigned": pd.DataFrame([{
                "buildings_without_grid": totals["buildings"] - totals["buildings_in_grids"],
                "households_without_grid": totals["households"] - totals["households_in_grids"],
                "households_without_building": totals["households_orphan"]}])}


def plan_layers(bundle, plan_id: str | None) -> dict[str, gpd.GeoDataFrame]:
    """communities, level1, level2 grids of the plan; buildings with grid_id/level1_id/community_id."""
    g = bundle.plan_grids(plan_id) if plan_id is not None else bundle.grids.iloc[0:0]
    b = bundle.buildings.merge(building_grids(bundle, plan_id).rename(columns={"building_id": "id"}), on="id",
                               how="left")
    return {"communities": bundle.communities, "level1": g[g["level"] == 1].reset_index(drop=True),
            "level2": g[g["level"] == 2].reset_index(drop=True),
            "buildings": gpd.GeoDataFrame(b, geometry="geometry", crs=4326)}


def households_are_synthetic(bundle) -> bool:
    st = bundle.building_stats
    if len(st) and int(st["households"].sum()):
        return bool((st["synthetic"] == st["households"]).all())
    return bundle.meta_dict.get("households", "") == "synthetic" if len(bundle.meta) else False


def palette(n: int) -> list[str]:
    base = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
            "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354",
            "#756bb1", "#636363"]
    return [base[i % len(base)] for i in range(n)]

