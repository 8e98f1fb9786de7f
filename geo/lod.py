"""Level of detail for the map: which features a view draws for a viewport. Pure: no Dash.

A map shows one of three tiers, the most detailed one whose features in the (padded) viewport
fit the budget, so that no answer carries more than about a megabyte:

- ``building``: buildings, streets, level-2 grid outlines in view (street zoom; the sample);
- ``grid``: level-2 grids as filled areas (no buildings);
- ``community``: communities as filled areas, level-1 grid outlines when they fit.

    index = FeatureIndex(grids["id"], grids.geometry.values, tolerance=SIMPLIFY["grid"])
    pos = index.query(bbox)                     # positions of the features touching bbox
    tier = choose_tier({"building": nb, "grid": ng})
    fc = index.feature_collection(pos)          # compact GeoJSON of those features
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import shapely

__all__ = ["BUDGET", "SIMPLIFY", "TIERS", "FeatureIndex", "Viewport", "choose_tier", "expand", "inside",
           "round_geoms", "view_bounds"]

TIERS = ("community", "grid", "building")
# features per answer (padded viewport); ~120 bytes per building, ~250 per simplified grid polygon
BUDGET = {"building": 8000, "grid": 3000, "street": 8000, "level1": 1500, "points": 600}  # points: zoomed out only
# simplification tolerance in degrees (~1 m = 9e-6); none for buildings
SIMPLIFY = {"community": 4e-5, "level1": 2e-5, "grid": 8e-6, "building": 0.0}
DECIMALS = 6
PAD = 0.2  # the viewport is padded by this share on each side so a small pan needs no new data


@dataclass(frozen=True)
class Viewport:
    """What the map shows: tier, the padded bbox the data covers, the zoom it was chosen at."""
    tier: str
    bbox: tuple
    zoom: float

    def as_dict(self) -> dict:
        return {"tier": self.tier, "extent": [round(v, 6) for v in self.bbox], "zoom": self.zoom}


def expand(bbox, pad: float = PAD) -> tuple:
    minx, miny, maxx, maxy = (float(v) for v in bbox)
    dx, dy = max(maxx - minx, 1e-5) * pad, max(maxy - miny, 1e-5) * pad
    return (minx - dx, miny - dy, maxx + dx, maxy + dy)


def inside(inner, outer) -> bool:
    return inner[0] >= outer[0] and inner[1] >= outer[1] and inner[2] <= outer[2] and inner[3] <= outer[3]


def view_bounds(coordinates) -> tuple | None:
    """The lon/lat bbox of the map's four corners (plotly's relayoutData ``map._derived``)."""
    try:
        xy = np.asarray(coordinates, dtype=float).reshape(-1, 2)
    except (TypeError, ValueError):
        return None
    if len(xy) < 2 or not np.isfinite(xy).all():
        return None
    minx, miny = xy.min(axis=0)
    maxx, maxy = xy.max(axis=0)
    if not (-180 <= minx < maxx <= 180 and -90 <= miny < maxy <= 90):
        return None
    return (float(minx), float(miny), float(maxx), float(maxy))


def choose_tier(counts: dict, budget: dict = BUDGET) -> str:
    """The most detailed tier whose feature count fits its budget (communities always fit)."""
    if counts.get("building", math.inf) <= budget["building"]:
        return "building"
    if counts.get("grid", math.inf) <= budget["grid"]:
        return "grid"
    return "community"


def round_geoms(geoms, decimals: int = DECIMALS) -> np.ndarray:
    scale = 10.0 ** decimals
    return shapely.transform(np.asarray(geoms, dtype=object), lambda c: np.round(c * scale) / scale)


class FeatureIndex:
    """Features of one layer ready to draw: string ids, geometry (simplified when a tolerance
    is given) and an STRtree to find those in a bbox."""

    def __init__(self, ids, geoms, tolerance: float = 0.0):
        g = np.asarray(geoms, dtype=object)
        if tolerance and len(g):
            g = shapely.simplify(g, tolerance, preserve_topology=True)
        self.ids = np.asarray([str(i) for i in ids], dtype=object)
        self.geoms = g
        self.tree = shapely.STRtree(g)
        self.tolerance = tolerance

    def __len__(self) -> int:
        return len(self.ids)

    def query(self, bbox=None) -> np.ndarray:
        """Sorted positions of the features whose bounding box meets bbox (all when None)."""
        if bbox is None:
            return np.arange(len(self.ids))
        return np.sort(self.tree.query(shapely.box(*bbox)))

    def count(self, bbox=None) -> int:
        return len(self.ids) if bbox is None else len(self.tree.query(shapely.box(*bbox)))

    def positions_of(self, ids) -> np.ndarray:
        lookup = {v: i for i, v in enumerate(self.ids)}
        return np.array(sorted(lookup[i] for i in map(str, ids) if i in lookup), dtype=int)

    def feature_collection(self, pos, decimals: int = DECIMALS) -> dict:
        """Compact GeoJSON of the features at pos (coordinates rounded), ids as feature ids."""
        pos = np.asarray(pos, dtype=int)
        geoms = round_geoms(self.geoms[pos], decimals)
        ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
        texts = shapely.to_geojson(geoms[ok])
        ids = self.ids[pos][ok]
        body = ",".join('{"type":"Feature","id":%s,"properties":{},"geometry":%s}' % (json.dumps(i), g)
                        for i, g in zip(ids, texts))
        return {"type": "FeatureCollection", "features": json.loads(f"[{body}]")}
