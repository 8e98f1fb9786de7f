"""Generate communities and level-1/level-2 grids from buildings, compounds and street blocks.

Buildings are put in a walking order (street block by block in reading order, compound by
compound inside a block, a Hilbert curve inside a compound) and the order is cut into parts
of balanced household counts, preferring cuts at block, then compound boundaries. Grids are
sets of buildings; their boundaries are derived afterwards (geo/tessellate), so the result
has no gaps or overlaps by construction.
"""
from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.codes import reading_order, sequence_within
from geo.crs import metric_crs

BLOCK_ROADS = ("trunk", "primary", "secondary", "tertiary", "residential", "unclassified",
               "primary_link", "secondary_link", "tertiary_link", "living_street")


@dataclass(frozen=True)
class GridTargets:
    community: int = 1750   # households per community (band 1,100-2,400)
    level1: int = 550       # households per level-1 grid
    level2: int = 180       # households per level-2 grid


def hilbert_index(x: np.ndarray, y: np.ndarray, order: int = 16) -> np.ndarray:
    """Hilbert curve index of points (vectorised)."""
    n = 1 << order
    if len(x) == 0:
        return np.zeros(0, dtype=np.int64)
    def norm(v):
        lo, hi = float(np.min(v)), float(np.max(v))
        return np.zeros(len(v), np.int64) if hi == lo else ((v - lo) / (hi - lo) * (n - 1)).astype(np.int64)
    xi, yi = norm(np.asarray(x, float)), norm(np.asarray(y, float))
    d = np.zeros(len(xi), dtype=np.int64)
    s = n >> 1
    while s > 0:
        rx = ((xi & s) > 0).astype(np.int64)
        ry = ((yi & s) > 0).astype(np.int64)
        d += s * s * ((3 * rx) ^ ry)
        flip = ry == 0
        swap_x = np.where(flip & (rx == 1), n - 1 - xi, xi)
        swap_y = np.where(flip & (rx == 1), n - 1 - yi, yi)
        xi, yi = np.where(flip, swap_y, swap_x), np.where(flip, swap_x, swap_y)
        s >>= 1
    return d


def street_blocks(edges: gpd.GeoDataFrame, extent: shapely.Geometry) -> gpd.GeoSeries:
    """Polygons cut out of the extent by the block-forming streets (EPSG:4326)."""
    hw = edges["highway"].fillna("")
    lines = edges.geometry[hw.isin(BLOCK_ROADS)].values
    clipped = shapely.intersection(lines, extent)
    noded = shapely.node(shapely.union_all(np.concatenate([clipped, [extent.boundary]])))
    polys = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    polys = polys[shapely.area(polys) > 0]
    return gpd.GeoSeries(polys, crs=4326)


def walking_order(buildings: gpd.GeoDataFrame, blocks: gpd.GeoSeries) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(order, block_of_building, compound_key) — order is a permutation of building positions."""
    crs = metric_crs(buildings)
    pts = buildings.geometry.representative_point()
    pm = shapely.get_coordinates(pts.to_crs(crs).values)
    bm = blocks.to_crs(crs)
    tree = shapely.STRtree(blocks.values)
    pi, bi = tree.query(pts.values, predicate="within")
    block = np.full(len(buildings), -1)
    block[pi] = bi
    missing = block < 0
    if missing.any():
        block[missing] = tree.nearest(pts.values[missing])
    bc = shapely.get_coordinates(bm.centroid.values)
    block_rank = reading_order(bc, row_height_m=300.0)[block] if len(bc) else np.zeros(len(buildings), int)
    compound = buildings["compound"].fillna("").to_numpy(dtype=object)
    comp_key = pd.Series(block.astype(str)) + "|" + pd.Series(compound)
    # order compounds inside a block by the Hilbert index of their mean position
    h = hilbert_index(pm[:, 0], pm[:, 1])
    comp_h = pd.Series(h).groupby(comp_key.to_numpy()).transform("mean").to_numpy()
    order = np.lexsort((h, comp_h, block_rank))
    return order, block, comp_key.to_numpy()


def cut(weights: np.ndarray, k: int, strong: np.ndarray, weak: np.ndarray, tol: float = 0.3) -> np.ndarray:
    """Labels 0..k-1 for items in sequence so part sums are balanced.

    strong/weak: boolean arrays, True at i when a boundary lies before item i (block /
    compound change). Cuts prefer strong, then weak boundaries within tol of the ideal."""
    n = len(weights)
    if k <= 1 or n == 0:
        return np.zeros(n, dtype=int)
    c = np.concatenate([[0.0], np.cumsum(weights)])  # c[i] = sum before item i
    total = c[-1]
    cuts = []
    last = 0
    for i in range(1, k):
        ideal = i * total / k
        slack = tol * total / k
        chosen = None
        for mask, limit in ((strong, slack), (weak, slack), (None, np.inf)):
            cand = np.arange(last + 1, n) if mask is None else np.flatnonzero(mask)
            cand = cand[(cand > last) & (np.abs(c[cand] - ideal) <= limit)]
            if len(cand):
                chosen = cand[np.argmin(np.abs(c[cand] - ideal))]
                break
        if chosen is None:
            break
        cuts.append(int(chosen))
        last = int(chosen)
    labels = np.zeros(n, dtype=int)
    for j, pos in enumerate(cuts, start=1):
        labels[pos:] = j
    return labels


def _parts(total: float, target: int) -> int:
    return max(1, int(round(total / target)))


def generate_plan(buildings: gpd.GeoDataFrame, households: np.ndarray, edges: gpd.GeoDataFrame,
                  extent: shapely.Geometry, targets: GridTargets = GridTargets()) -> pd.DataFrame:
    """Per building: community (1..), level1 (1.. within community), level2 (1.. within level-1)."""
    w_all = np.asarray(households, dtype=float)
    blocks = street_blocks(edges, extent)
    order, block, comp_key = walking_order(buildings, blocks)
    w = w_all[order]
    blk = block[order]
    ck = comp_key[order]
    strong = np.concatenate([[False], blk[1:] != blk[:-1]])
    weak = np.concatenate([[False], ck[1:] != ck[:-1]])
    comm = cut(w, _parts(w.sum(), targets.community), strong, weak)
    l1 = np.zeros(len(w), dtype=int)
    l2 = np.zeros(len(w), dtype=int)
    for c in np.unique(comm):
        idx = np.flatnonzero(comm == c)
        l1[idx] = cut(w[idx], _parts(w[idx].sum(), targets.level1), strong[idx], weak[idx])
        for g in np.unique(l1[idx]):
            jdx = idx[l1[idx] == g]
            l2[jdx] = cut(w[jdx], _parts(w[jdx].sum(), targets.level2), weak[jdx], strong[jdx])
    out = pd.DataFrame({"community": 0, "level1": 0, "level2": 0, "block": block}, index=range(len(w)))
    out.loc[order, "community"] = comm
    out.loc[order, "level1"] = l1
    out.loc[order, "level2"] = l2
    inner, outer = nested_footprints(buildings.geometry.values)
    if len(inner):  # a footprint drawn inside another one (a mis-tagged building part) follows its container
        cols = ["community", "level1", "level2"]
        out.loc[inner, cols] = out.loc[outer, cols].to_numpy()
    return out


def nested_footprints(geoms) -> tuple[np.ndarray, np.ndarray]:
    """(inner, outer) positions: footprint `inner` lies within the larger footprint `outer`."""
    geoms = np.asarray(geoms, dtype=object)
    inner, outer = shapely.STRtree(geoms).query(shapely.point_on_surface(geoms), predicate="within")
    keep = (inner != outer) & (shapely.area(geoms[inner]) < shapely.area(geoms[outer]))
    return inner[keep], outer[keep]


def renumber_reading_order(labels: pd.DataFrame, buildings: gpd.GeoDataFrame) -> pd.DataFrame:
    """Renumber communities, level-1 and level-2 grids 1.. left-to-right, top-to-bottom."""
    crs = metric_crs(buildings)
    xy = shapely.get_coordinates(buildings.geometry.representative_point().to_crs(crs).values)
    df = labels.copy()
    df["x"], df["y"] = xy[:, 0], xy[:, 1]
    out = df.copy()
    c = df.groupby("community")[["x", "y"]].mean()
    out["community"] = df["community"].map(pd.Series(reading_order(c.to_numpy(), 400.0) + 1, index=c.index))
    g1 = df.groupby(["community", "level1"])[["x", "y"]].mean().reset_index()
    g1["seq"] = sequence_within(g1["community"], g1[["x", "y"]].to_numpy(), 250.0)
    out["level1"] = df.set_index(["community", "level1"]).index.map(g1.set_index(["community", "level1"])["seq"])
    g2 = df.groupby(["community", "level1", "level2"])[["x", "y"]].mean().reset_index()
    g2["seq"] = sequence_within(g2["community"].astype(str) + "|" + g2["level1"].astype(str),
                                g2[["x", "y"]].to_numpy(), 150.0)
    out["level2"] = df.set_index(["community", "level1", "level2"]).index.map(
        g2.set_index(["community", "level1", "level2"])["seq"])
    return out[["community", "level1", "level2"]].astype(int)


def cell_adjacency(cells) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i, j), i < j, of building cells sharing a stretch of boundary (not just a point)."""
    geoms = np.asarray(cells, dtype=object)
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    tree = shapely.STRtree(np.where(ok, geoms, None))
    i, j = tree.query(np.where(ok, geoms, None), predicate="intersects")
    keep = i < j
    i, j = i[keep], j[keep]
    if len(i) == 0:
        return i, j
    shared = shapely.intersection(shapely.boundary(geoms[i]), shapely.boundary(geoms[j]))
    line = shapely.length(shared) > 0
    return i[line], j[line]


def make_contiguous(labels: pd.DataFrame, pairs: tuple[np.ndarray, np.ndarray], weights=None,
                    max_share: float = 0.35, passes: int = 6) -> pd.DataFrame:
    """Give small detached pieces of a community / level-1 / level-2 grid to a neighbour.

    labels: community, level1, level2 per building (as from generate_plan); pairs: adjacent
    buildings (cell_adjacency); weights: households per building (default 1). For each level,
    top-down, a connected piece of a group that is not its heaviest and holds at most
    `max_share` of the group's weight joins the group of its most-touching neighbour with the
    same parent (taking that neighbour's labels at this level and below). Bigger pieces, or
    pieces with no such neighbour, stay as they are (balance first). Returns new labels."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    out = labels[["community", "level1", "level2"]].copy()
    n = len(out)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float) + 1e-6
    i, j = pairs
    levels = (("community",), ("community", "level1"), ("community", "level1", "level2"))
    for _ in range(passes):
        changed = False
        for depth, cols in enumerate(levels):
            key = pd.MultiIndex.from_frame(out[list(cols)]).factorize()[0]
            same = key[i] == key[j]
            g = coo_matrix((np.ones(int(same.sum())), (i[same], j[same])), shape=(n, n))
            _, comp = connected_components(g, directed=False)
            size = np.bincount(comp, weights=w, minlength=comp.max() + 1)
            group = np.bincount(key, weights=w)
            # the heaviest piece of every group stays; small other pieces are detached enclaves
            order = np.lexsort((-size[comp], key))
            first = np.r_[True, key[order][1:] != key[order][:-1]]
            main = np.isin(comp, comp[order][first]) | (size[comp] > max_share * group[key])
            if main.all():
                continue
            parent = pd.MultiIndex.from_frame(out[list(cols[:-1])]).factorize()[0] if depth else np.zeros(n, int)
            for c in np.unique(comp[~main]):
                members = np.flatnonzero(comp == c)
                mset = np.isin(i, members) ^ np.isin(j, members)  # edges leaving the piece
                nb = np.where(np.isin(i[mset], members), j[mset], i[mset])
                nb = nb[(key[nb] != key[members[0]]) & (parent[nb] == parent[members[0]])]
                if len(nb) == 0:
                    continue
                target = pd.Series(key[nb]).mode().iloc[0]
                donor = nb[key[nb] == target][0]
                out.iloc[members, [out.columns.get_loc(cn) for cn in ("community", "level1", "level2")[depth:]]] = \
                    out.iloc[donor][list(("community", "level1", "level2")[depth:])].to_numpy()
                changed = True
            if changed:
                break  # recompute pieces from the top after any change
        if not changed:
            break
    return out
