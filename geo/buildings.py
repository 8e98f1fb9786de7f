"""Building attributes imputed from footprints: floors, units (单元), residential kind, capacity.

OSM in mainland China rarely carries building:levels, so floors are estimated from the
footprint area and building type and flagged (floors_estimated=True).
"""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.crs import metric_crs

RESIDENTIAL = {"residential", "apartments", "house", "dormitory", "detached", "terrace",
               "semidetached_house", "bungalow", "villa"}
LOW_RISE = {"house", "detached", "terrace", "semidetached_house", "bungalow", "villa"}
UNIT_WIDTH_M = 14.0          # one stairwell unit along a slab building
HOUSEHOLDS_PER_FLOOR_UNIT = 2


def classify_kind(building: pd.Series, in_compound: pd.Series) -> np.ndarray:
    """'residential' for residential tags, or building=yes inside a residential compound."""
    b = building.fillna("yes").to_numpy()
    res = np.isin(b, list(RESIDENTIAL)) | ((b == "yes") & in_compound.to_numpy(dtype=bool))
    return np.where(res, "residential", "other")


def estimate_floors_units(df: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Add floors, floors_estimated and units. Needs columns building, levels, geometry."""
    out = df.copy()
    m = out.geometry.to_crs(metric_crs(out))
    area = m.area.to_numpy()
    rect = shapely.oriented_envelope(m.values)
    coords = shapely.get_coordinates(rect).reshape(len(rect), -1, 2)[:, :3, :] if len(rect) else np.zeros((0, 3, 2))
    sides = np.stack([np.hypot(*(coords[:, 1] - coords[:, 0]).T), np.hypot(*(coords[:, 2] - coords[:, 1]).T)], 1) \
        if len(rect) else np.zeros((0, 2))
    long_side = sides.max(axis=1) if len(sides) else np.zeros(0)
    short_side = sides.min(axis=1) if len(sides) else np.zeros(0)
    btype = out["building"].fillna("yes").to_numpy()
    est = np.select([np.isin(btype, list(LOW_RISE)), area < 150, area < 600, area < 1200, area < 2500],
                    [2, 2, 6, 6, 12], 18)
    est = np.where(np.isin(btype, list(RESIDENTIAL)) | (btype == "yes"), est, np.minimum(est, 5))
    levels = pd.to_numeric(out["levels"], errors="coerce").to_numpy(dtype=float)
    known = np.isfinite(levels) & (levels > 0)
    out["floors"] = np.where(known, np.nan_to_num(levels), est).astype(int)
    out["floors_estimated"] = ~known
    tower = (out["floors"].to_numpy() >= 10) & (long_side < 2.2 * np.maximum(short_side, 1))
    units = np.clip(np.round(long_side / UNIT_WIDTH_M), 1, 10)
    out["units"] = np.where(tower, np.clip(np.round(area / 400), 1, 4), units).astype(int)
    out["units"] = np.where(np.isin(btype, list(LOW_RISE)), 1, out["units"])
    return out


def household_capacity(buildings: pd.DataFrame) -> np.ndarray:
    """Dwellings a building holds: floors x units x households per floor-unit (0 if not residential)."""
    res = buildings["kind"].to_numpy() == "residential"
    low = buildings["floors"].to_numpy() <= 2
    per = np.where(low, 1, HOUSEHOLDS_PER_FLOOR_UNIT)
    cap = buildings["floors"].to_numpy(dtype=int) * buildings["units"].to_numpy(dtype=int) * per
    return np.where(res, cap, 0)
