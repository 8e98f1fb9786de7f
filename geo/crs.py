"""Coordinate reference systems: metric CRS choice and Chinese datum conversions.

WGS-84 (EPSG:4326) is the storage CRS; CGCS2000 (EPSG:4490) is accepted as equal within
a metre. GCJ-02 ("Mars coordinates", AMap/Tencent) and BD-09 (Baidu) are obfuscated
datums with published forward formulas; the inverse is solved iteratively (error < 1e-7°).
"""
from __future__ import annotations

import numpy as np

_A = 6378245.0
_EE = 0.00669342162296594323


def utm_epsg(lon: float, lat: float) -> int:
    zone = int((lon + 180.0) // 6.0) + 1
    return (32600 if lat >= 0 else 32700) + zone


def metric_crs(gdf) -> str:
    """A local metric CRS (UTM zone of the data's centre) for measuring lengths and areas."""
    minx, miny, maxx, maxy = gdf.to_crs(4326).total_bounds if gdf.crs is not None else gdf.total_bounds
    if not np.isfinite([minx, miny, maxx, maxy]).all():
        return "EPSG:32650"
    return f"EPSG:{utm_epsg((minx + maxx) / 2, (miny + maxy) / 2)}"


def _out_of_china(lon, lat):
    return (lon < 72.004) | (lon > 137.8347) | (lat < 0.8293) | (lat > 55.8271)


def _delta(lon, lat):
    x, y = lon - 105.0, lat - 35.0
    dlat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
            + (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
            + (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
            + (160.0 * np.sin(y / 12.0 * np.pi) + 320 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0)
    dlon = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
            + (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
            + (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
            + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0)
    radlat = lat / 180.0 * np.pi
    magic = 1 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * np.pi)
    return dlon, dlat


def wgs84_to_gcj02(lon, lat):
    lon, lat = np.asarray(lon, float), np.asarray(lat, float)
    dlon, dlat = _delta(lon, lat)
    out = _out_of_china(lon, lat)
    return np.where(out, lon, lon + dlon), np.where(out, lat, lat + dlat)


def gcj02_to_wgs84(lon, lat):
    lon, lat = np.asarray(lon, float), np.asarray(lat, float)
    wlon, wlat = lon.copy(), lat.copy()
    for _ in range(30):
        glon, glat = wgs84_to_gcj02(wlon, wlat)
        dx, dy = glon - lon, glat - lat
        wlon, wlat = wlon - dx, wlat - dy
        if np.nanmax(np.abs(np.concatenate([np.ravel(dx), np.ravel(dy)])), initial=0) < 1e-9:
            break
    return wlon, wlat


_XPI = np.pi * 3000.0 / 180.0


def gcj02_to_bd09(lon, lat):
    lon, lat = np.asarray(lon, float), np.asarray(lat, float)
    z = np.sqrt(lon * lon + lat * lat) + 0.00002 * np.sin(lat * _XPI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _XPI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def bd09_to_gcj02(lon, lat):
    x, y = np.asarray(lon, float) - 0.0065, np.asarray(lat, float) - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _XPI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _XPI)
    return z * np.cos(theta), z * np.sin(theta)


def wgs84_to_bd09(lon, lat):
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon, lat):
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def polygonal(geoms) -> np.ndarray:
    """The polygonal part of each geometry (make_valid may add stray lines and points): a Polygon
    for one part, a MultiPolygon for several, None when nothing polygonal is left. Vectorised."""
    import shapely
    geoms = np.asarray(geoms, dtype=object)
    out = np.full(len(geoms), None, dtype=object)
    if len(geoms) == 0:
        return out
    parts, idx = shapely.get_parts(geoms, return_index=True)
    # a MultiPolygon inside a GeometryCollection comes out whole: take its parts too
    multi = shapely.get_type_id(parts) == 6
    if multi.any():
        sub, k = shapely.get_parts(parts[multi], return_index=True)
        parts = np.concatenate([parts[~multi], sub])
        idx = np.concatenate([idx[~multi], idx[multi][k]])
    keep = (shapely.get_type_id(parts) == 3) & ~shapely.is_empty(parts)
    parts, idx = parts[keep], idx[keep]
    if len(parts) == 0:
        return out
    order = np.argsort(idx, kind="stable")
    parts, idx = parts[order], idx[order]
    uniq, start, count = np.unique(idx, return_index=True, return_counts=True)
    single = count == 1
    out[uniq[single]] = parts[start[single]]
    if (~single).any():
        many = np.isin(idx, uniq[~single])
        _, dense = np.unique(idx[many], return_inverse=True)
        out[uniq[~single]] = shapely.multipolygons(parts[many], indices=dense)
    return out


def make_valid_in(geoms, crs, *, source_crs=4326) -> np.ndarray:
    """Polygons (in `source_crs`) that are valid where they are measured: in `crs` (a metric CRS).

    A footprint valid in lon/lat can self-intersect once projected (and the other way round);
    invalid ones are repaired with shapely.make_valid in `crs`, keeping the polygonal part, and
    projected back. Those still invalid in `crs` after the round trip are snapped to a 1 cm
    grid there and repaired again; None where nothing polygonal is left."""
    import geopandas as gpd
    import shapely
    geoms = np.asarray(geoms, dtype=object).copy()
    if len(geoms) == 0:
        return geoms
    m = gpd.GeoSeries(geoms, crs=source_crs).to_crs(crs).values
    bad = ~shapely.is_valid(m) & ~shapely.is_missing(m)
    for grid in (None, 0.01):
        if not bad.any():
            break
        fix = m[bad] if grid is None else shapely.set_precision(m[bad], grid)
        fix = polygonal(shapely.make_valid(fix))
        back = gpd.GeoSeries(fix, crs=crs).to_crs(source_crs).values
        geoms[bad] = back
        m = m.copy()
        m[bad] = gpd.GeoSeries(back, crs=source_crs).to_crs(crs).values
        bad = ~shapely.is_valid(m) & ~shapely.is_missing(m)
    return geoms
