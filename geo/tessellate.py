"""Grid boundaries derived from buildings (DESIGN.md, "Grids as sets of buildings").

A community is tessellated by its buildings: every point of the community belongs to the
cell of the nearest building representative point (a Voronoi diagram clipped to the
community). A grid's boundary is the union of its buildings' cells, a level-1 grid's the
union of its level-2 grids' cells. Cells of one community partition it, so a plan whose
boundaries are derived this way has no gap and no overlap by construction.

Pure functions: GeoDataFrames / arrays in and out, no I/O.
"""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

EMPTY = shapely.from_wkt("MULTIPOLYGON EMPTY")


def _local_scale(crs, xy: np.ndarray) -> tuple[float, float, float]:
    """(x0, y0, kx): affine x' = (x - x0) * kx, y' = y - y0 making a geographic CRS roughly
    isotropic near the data, so Voronoi cells follow metric nearness. Identity for projected CRSs."""
    if len(xy) == 0:
        return 0.0, 0.0, 1.0
    x0, y0 = float(np.mean(xy[:, 0])), float(np.mean(xy[:, 1]))
    geographic = crs is not None and getattr(crs, "is_geographic", False)
    kx = float(np.cos(np.radians(y0))) if geographic else 1.0
    return x0, y0, kx


def polygonal(geoms) -> np.ndarray:
    """Keep only the polygonal parts of each geometry (vectorised): lines and points left by
    an intersection along a shared edge are dropped. Returns Polygon/MultiPolygon/empty."""
    arr = np.asarray(geoms, dtype=object).copy()
    if len(arr) == 0:
        return arr
    tid = shapely.get_type_id(arr)
    bad = (tid != 3) & (tid != 6) & (tid != -1)  # not Polygon / MultiPolygon / None
    if bad.any():
        idx = np.flatnonzero(bad)
        parts, which = shapely.get_parts(arr[idx], return_index=True)
        keep = shapely.get_type_id(parts) == 3
        fixed = np.full(len(idx), EMPTY, dtype=object)
        if keep.any():
            groups = np.unique(which[keep])
            # multipolygons(indices=) builds one geometry per distinct index, in ascending order
            fixed[groups] = shapely.multipolygons(parts[keep], indices=np.searchsorted(groups, which[keep]))
        arr[idx] = fixed
    arr[shapely.is_missing(arr)] = EMPTY
    return arr


def building_cells(buildings, extent, spacing_m: float = 4.0) -> gpd.GeoSeries:
    """Cell of each building: the points of `extent` nearer to its footprint than to any other.

    Approximated by a Voronoi diagram of sites sampled every `spacing_m` along each outline
    (plus an interior point), the sites' cells unioned per building; then every footprint is
    made whole: cell_i = (cell_i ∪ footprint_i) − other footprints. So a building always lies
    inside its own cell (never split between grids) and the cells still partition `extent`.

    buildings: GeoDataFrame/GeoSeries (any CRS; geographic CRSs are locally rescaled so
    nearness is metric). extent: a shapely (Multi)Polygon in the same CRS.
    Returns a GeoSeries aligned with `buildings` (same index and CRS). Buildings with
    missing/empty geometry, or whose every site is shared with an earlier building, get an
    empty polygon.
    """
    geom = buildings.geometry if isinstance(buildings, gpd.GeoDataFrame) else buildings
    crs = geom.crs
    n = len(geom)
    out = np.full(n, EMPTY, dtype=object)
    if n == 0 or extent is None or shapely.is_empty(extent):
        return gpd.GeoSeries(out, index=geom.index, crs=crs)
    g = np.asarray(geom.values, dtype=object)
    ok = ~(shapely.is_missing(g) | shapely.is_empty(g))
    if not ok.any():
        return gpd.GeoSeries(out, index=geom.index, crs=crs)
    ok_idx = np.flatnonzero(ok)
    foot = shapely.make_valid(g[ok])
    inner = shapely.get_coordinates(shapely.point_on_surface(foot))
    x0, y0, kx = _local_scale(crs, inner)
    geographic = crs is not None and getattr(crs, "is_geographic", False)
    m = 111_320.0 if geographic else 1.0  # work in (approximate) metres: better conditioned
    step = spacing_m
    to_local = lambda c: np.column_stack(((c[:, 0] - x0) * kx * m, (c[:, 1] - y0) * m))
    from_local = lambda c: np.column_stack((c[:, 0] / (kx * m) + x0, c[:, 1] / m + y0))
    ring = shapely.segmentize(shapely.transform(shapely.boundary(foot), to_local), step)
    rxy, ridx = shapely.get_coordinates(ring, return_index=True)
    sites_xy = np.vstack([to_local(inner), rxy])
    owner = np.concatenate([np.arange(len(foot)), ridx])
    # GEOS refuses duplicate sites for an ordered diagram: one site per distinct point (first owner)
    key = np.round(sites_xy, 4)
    _, first = np.unique(key, axis=0, return_index=True)
    first = np.sort(first)
    sites, owner = key[first], owner[first]
    # break exact co-circularity (square corners + centre) that makes GEOS build a wrong
    # diagram: a fixed sub-millimetre jitter, so the result stays deterministic
    sites = sites + np.random.default_rng(0).uniform(-5e-4, 5e-4, sites.shape)
    ext = shapely.transform(extent, to_local)
    xmin, ymin, xmax, ymax = shapely.bounds(shapely.union_all([ext, shapely.multipoints(sites)]))
    pad = max(xmax - xmin, ymax - ymin, 1e-6)
    frame = shapely.box(xmin - pad, ymin - pad, xmax + pad, ymax + pad)
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(sites), extend_to=frame, ordered=True))
    site_pts = shapely.points(sites)
    # GEOS's "ordered" output is not always in input order (seen with regular lattices of
    # sites): check, and where it is not, find each site's cell by point lookup
    if len(cells) != len(sites) or not shapely.intersects(cells, site_pts).all():
        tree = shapely.STRtree(cells)
        hit_site, hit_cell = tree.query(site_pts, predicate="intersects")
        order = np.full(len(sites), -1)
        order[hit_site[::-1]] = hit_cell[::-1]
        cells = np.where(order >= 0, cells[np.maximum(order, 0)], None)
    per = dissolve_cells(gpd.GeoSeries(cells), owner, keys=range(len(foot))).geometry.to_numpy(dtype=object)
    per = np.where(pd.isna(per), EMPTY, per)
    local_foot = shapely.transform(foot, to_local)
    per = np.where(shapely.is_empty(per), per, shapely.union(per, local_foot))
    # take every footprint out of the other buildings' cells; where footprints overlap (bad
    # data) the building listed first keeps the shared part, so nothing is left uncovered
    tree = shapely.STRtree(local_foot)
    ci, fj = tree.query(per, predicate="intersects")
    keep = (ci != fj) & ~shapely.is_empty(per[fj])
    ci, fj = ci[keep], fj[keep]
    if len(ci):
        piece = np.where(ci < fj, shapely.difference(local_foot[fj], local_foot[ci]), local_foot[fj])
        cut = dissolve_cells(gpd.GeoSeries(piece), ci).geometry
        idx = cut.index.to_numpy(dtype=int)
        per[idx] = shapely.difference(per[idx], cut.to_numpy(dtype=object))
    per = shapely.transform(per, from_local)
    out[ok_idx] = polygonal(shapely.intersection(per, extent))
    return gpd.GeoSeries(out, index=geom.index, crs=crs)


def building_cells_by_zone(buildings, zone_of_building, zones: gpd.GeoSeries) -> gpd.GeoSeries:
    """Tessellate each zone (e.g. a community) by the buildings that belong to it.

    zone_of_building: array aligned with `buildings` holding a label of `zones.index`
    (or NaN/None: the building gets an empty cell). Loops over zones, not buildings."""
    geom = buildings.geometry if isinstance(buildings, gpd.GeoDataFrame) else buildings
    out = np.full(len(geom), EMPTY, dtype=object)
    zob = pd.Series(np.asarray(zone_of_building, dtype=object))
    if zones.crs is not None and geom.crs is not None and not zones.crs.equals(geom.crs):
        zones = zones.to_crs(geom.crs)
    codes, labels = pd.factorize(zob)  # -1 for missing
    for k, label in enumerate(labels):
        if label not in zones.index:
            continue
        idx = np.flatnonzero(codes == k)
        extent = zones.loc[label]
        if isinstance(extent, gpd.GeoSeries):  # duplicated zone label: use their union
            extent = shapely.union_all(np.asarray(extent.values))
        out[idx] = building_cells(geom.iloc[idx], extent).values
    return gpd.GeoSeries(out, index=geom.index, crs=geom.crs)


def dissolve_cells(cells: gpd.GeoSeries, group_keys, *, keys=None) -> gpd.GeoDataFrame:
    """Union cells per group. Returns a GeoDataFrame indexed by group key (column `geometry`,
    MultiPolygons). `keys`: groups to include even when they have no cell (empty geometry);
    rows with a missing key are ignored. Loops over groups, not cells."""
    g = np.asarray(cells.values, dtype=object)
    k = pd.Series(np.asarray(group_keys, dtype=object))
    valid = k.notna().to_numpy() & ~shapely.is_missing(g) & ~shapely.is_empty(g)
    g, k = g[valid], k[valid].to_numpy()
    order = np.argsort(k.astype(str), kind="stable")
    g, k = g[order], k[order]
    uniq, starts = np.unique(k.astype(str), return_index=True) if len(k) else (np.array([]), np.array([], int))
    bounds = np.append(starts, len(k))
    geoms = [shapely.union_all(g[bounds[i]:bounds[i + 1]]) for i in range(len(uniq))]
    labels = [k[s] for s in starts]
    res = pd.Series(geoms, index=pd.Index(labels, dtype=object), dtype=object)
    if keys is not None:
        res = res.reindex(pd.Index(list(keys), dtype=object))
    vals = np.asarray(res.values, dtype=object)
    vals = polygonal(np.where(pd.isna(res).to_numpy(), None, vals))
    single = shapely.get_type_id(vals) == 3
    if single.any():
        vals[single] = shapely.multipolygons(vals[single], indices=np.arange(int(single.sum())))
    return gpd.GeoDataFrame({"geometry": vals}, index=res.index, geometry="geometry", crs=cells.crs)


def derive_grid_boundaries(grids: pd.DataFrame, assignments: pd.DataFrame, buildings: gpd.GeoDataFrame,
                           communities: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Grid boundaries of one plan derived from its building assignments.

    grids: the plan's grids (id, level, parent_id; geometry ignored). assignments:
    building_id -> grid_id (a level-2 grid). buildings: id + geometry. communities: id + geometry.
    Each community is tessellated by the buildings assigned (through level-2 -> level-1) to
    it; level-2 grids are unions of their buildings' cells, level-1 grids unions of the
    cells of their level-2 grids. Returns a copy of `grids` with derived MultiPolygon
    geometry in the buildings' CRS (empty for a grid without buildings). Buildings not
    assigned, or assigned to an unknown grid, take no part (neighbours fill their space);
    a building assigned twice counts once (its first assignment)."""
    crs = buildings.crs
    gids = grids["id"].astype(str).to_numpy()
    level = pd.to_numeric(grids["level"], errors="coerce").to_numpy()
    parent = pd.Series(grids["parent_id"].to_numpy(), index=gids)
    l1_ids = set(gids[level == 1])
    comm_ids = set(communities["id"].astype(str))
    l2_parent = parent[level == 2]
    l1_parent = parent[level == 1]
    a = assignments.drop_duplicates("building_id", keep="first")
    a = a[a["grid_id"].astype(str).isin(l2_parent.index)]
    l1_of = a["grid_id"].astype(str).map(l2_parent)
    comm_of = l1_of.map(l1_parent.where(l1_parent.isin(comm_ids)).dropna()) if len(a) else l1_of
    a = a.assign(l1=l1_of.to_numpy(), community=comm_of.to_numpy())
    a = a[a["l1"].isin(l1_ids) & a["community"].notna()]
    b = buildings[["id", "geometry"]].copy()
    b["id"] = b["id"].astype(str)
    b = b.merge(a[["building_id", "grid_id", "l1", "community"]].astype(str),
                left_on="id", right_on="building_id", how="inner")
    b = gpd.GeoDataFrame(b, geometry="geometry", crs=crs)
    zones = gpd.GeoSeries(np.asarray(communities.geometry.values), index=communities["id"].astype(str).to_numpy(),
                          crs=communities.crs)
    cells = building_cells_by_zone(b, b["community"].to_numpy(), zones)
    g2 = dissolve_cells(cells, b["grid_id"].to_numpy())
    g1 = dissolve_cells(cells, b["l1"].to_numpy())
    geom = pd.concat([g2.geometry, g1.geometry])
    vals = geom.reindex(pd.Index(gids, dtype=object)).to_numpy(dtype=object)
    vals = np.where(pd.isna(vals), EMPTY, vals)
    out = gpd.GeoDataFrame(grids.drop(columns=[c for c in ("geometry",) if c in grids.columns]).copy(),
                           geometry=gpd.GeoSeries(vals, index=grids.index, crs=crs), crs=crs)
    return out
