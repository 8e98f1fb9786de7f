"""Assigning buildings to grids (and grids to parents) by footprint overlap. Pure, vectorised.

Each building goes to the level-2 grid holding the largest share of its footprint, measured in
a local metric CRS. Buildings that do not fit cleanly are reported:
    outside        no grid overlaps the footprint (left unassigned)
    split          the best grid holds less than `threshold` of the footprint and another grid
                   holds part of it (assigned to the best grid)
    partly_outside the best grid holds less than `threshold`, the rest lies outside every grid
                   (assigned to the best grid)
"""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.crs import metric_crs

MISFIT_COLUMNS = ["building_id", "status", "grid_id", "share", "other_grid_id", "other_share"]


def overlap_pairs(left: gpd.GeoDataFrame, right: gpd.GeoDataFrame, crs: str | None = None) -> pd.DataFrame:
    """Every intersecting (left row, right row) pair with the share of the left geometry's area
    inside the right one (points and zero-area geometries: 1.0 when they intersect).
    Columns: left, right (positional indices), share."""
    if len(left) == 0 or len(right) == 0:
        return pd.DataFrame({"left": np.zeros(0, int), "right": np.zeros(0, int), "share": np.zeros(0)})
    if crs is None:  # projected input is measured as it is; lon/lat in the local UTM zone
        crs = left.crs if left.crs is not None and left.crs.is_projected else metric_crs(left)
    lg = np.asarray(left.geometry.to_crs(crs).values) if left.crs is not None else np.asarray(left.geometry.values)
    rg = np.asarray(right.geometry.to_crs(crs).values) if right.crs is not None else np.asarray(right.geometry.values)
    tree = shapely.STRtree(rg)
    li, ri = tree.query(lg, predicate="intersects")
    area = shapely.area(lg[li])
    inter = shapely.area(shapely.intersection(lg[li], rg[ri]))
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(area > 0, inter / np.where(area > 0, area, 1.0), 1.0)
    return pd.DataFrame({"left": li.astype(int), "right": ri.astype(int), "share": np.clip(share, 0.0, 1.0)})


def largest_overlap(left: gpd.GeoDataFrame, right: gpd.GeoDataFrame, crs: str | None = None) -> pd.DataFrame:
    """For each left row (positional, all rows present): best right row (-1 if none), its share,
    the second-best right row (-1) and its share, and the total share covered by all right rows."""
    pairs = overlap_pairs(left, right, crs)
    n = len(left)
    out = pd.DataFrame({"best": np.full(n, -1), "share": np.zeros(n), "second": np.full(n, -1),
                        "second_share": np.zeros(n), "total_share": np.zeros(n)})
    if len(pairs) == 0:
        return out
    pairs = pairs[pairs["share"] > 0].sort_values(["left", "share", "right"], ascending=[True, False, True],
                                                 kind="stable")  # ties: first grid wins
    rank = pairs.groupby("left").cumcount().to_numpy()
    first, second = pairs[rank == 0], pairs[rank == 1]
    out.loc[first["left"].to_numpy(), "best"] = first["right"].to_numpy()
    out.loc[first["left"].to_numpy(), "share"] = first["share"].to_numpy()
    out.loc[second["left"].to_numpy(), "second"] = second["right"].to_numpy()
    out.loc[second["left"].to_numpy(), "second_share"] = second["share"].to_numpy()
    total = pairs.groupby("left")["share"].sum()
    out.loc[total.index.to_numpy(), "total_share"] = np.clip(total.to_numpy(), 0.0, 1.0)
    return out


def assign_by_footprint(buildings: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, *, threshold: float = 0.8,
                        building_id: str = "id", grid_id: str = "id",
                        crs: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Assign each building to the grid with the largest share of its footprint.

    Returns (assignments, misfits): assignments has building_id, grid_id, share for every
    building that overlaps a grid; misfits (columns MISFIT_COLUMNS) lists buildings outside
    every grid or whose best share is below `threshold`."""
    lo = largest_overlap(buildings, grids, crs)
    bids = buildings[building_id].to_numpy(dtype=object)
    gids = np.append(grids[grid_id].to_numpy(dtype=object), None)  # index -1 -> None
    best_gid = gids[lo["best"].to_numpy()]
    other_gid = gids[lo["second"].to_numpy()]
    has = lo["best"].to_numpy() >= 0
    assignments = pd.DataFrame({"building_id": bids[has], "grid_id": best_gid[has],
                                "share": lo["share"].to_numpy()[has]})
    status = np.where(~has, "outside",
                      np.where(lo["share"].to_numpy() >= threshold, "",
                               np.where(lo["second"].to_numpy() >= 0, "split", "partly_outside")))
    bad = status != ""
    misfits = pd.DataFrame({"building_id": bids[bad], "status": status[bad], "grid_id": best_gid[bad],
                            "share": lo["share"].to_numpy()[bad], "other_grid_id": other_gid[bad],
                            "other_share": lo["second_share"].to_numpy()[bad]}, columns=MISFIT_COLUMNS)
    for c in ("grid_id", "other_grid_id"):
        misfits[c] = pd.Series(misfits[c].to_numpy(dtype=object), dtype=object).where(misfits[c].notna(), None)
    return assignments, misfits.reset_index(drop=True)


def fit_score(buildings: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, crs: str | None = None) -> float:
    """Mean best-grid share over the buildings: 1.0 when every building lies cleanly inside one
    grid, lower when grid boundaries cut through buildings or miss them. Used to tell which
    datum (WGS-84 / GCJ-02 / BD-09) a drawing was made in."""
    if len(buildings) == 0:
        return 0.0
    return float(largest_overlap(buildings, grids, crs)["share"].mean())
