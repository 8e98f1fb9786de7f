"""Topology audit of one grid plan (DESIGN.md: coverage (a) — 全覆盖、无缝隙).

Finds invalid geometry, grids not nested in their parent, gaps (parent area not covered by
its children), overlaps between grids of one level, buildings without a (valid) grid,
buildings split across grids or assigned twice, buildings lying in another grid than the
one they are assigned to, and households whose building is unknown.

Everything is measured in a local metric CRS (geo.crs.metric_crs); problem geometries are
returned in the CRS of the input (EPSG:4326 for the data contract). Vectorised shapely 2:
STRtree queries and element-wise operations, loops only over problems found.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.stats import as_stats
from geo.crs import metric_crs
from geo.tessellate import polygonal

KINDS = ("invalid_geometry", "not_nested", "gap", "overlap", "unassigned_building", "split_building",
         "misplaced_building", "orphan_household", "out_of_band", "missing_head", "bad_code")

KIND_LABELS = {  # (zh, en) for legends and tables
    "invalid_geometry": ("几何无效", "Invalid geometry"),
    "not_nested": ("未嵌套于上级", "Not inside parent"),
    "gap": ("缝隙", "Gap"),
    "overlap": ("重叠", "Overlap"),
    "unassigned_building": ("楼栋未入格", "Building in no grid"),
    "split_building": ("楼栋跨格", "Building split"),
    "misplaced_building": ("楼栋入错格", "Building in another grid"),
    "orphan_household": ("住户楼栋不存在", "Household without building"),
    "out_of_band": ("户数超出范围", "Households out of band"),
    "missing_head": ("缺网格长", "No grid head"),
    "bad_code": ("编码不规范", "Bad grid code"),
}


@dataclass(frozen=True)
class Problem:
    kind: str
    ids: tuple
    detail: str
    geometry: object = field(default=None, compare=False)  # shapely geometry (input CRS) or None

    def as_dict(self) -> dict:
        return {"kind": self.kind, "ids": [str(i) for i in self.ids], "detail": self.detail}


@dataclass(frozen=True)
class Tolerances:
    """What counts as a problem rather than digitising noise (metres, m², shares)."""
    nest_area_m2: float = 1.0      # not_nested: area outside the parent above this ...
    nest_share: float = 0.001      # ... and above this share of the grid's area
    gap_area_m2: float = 1.0       # gap / overlap pieces smaller than this are slivers
    sliver_width_m: float = 0.2    # ... and so are pieces thinner than this (2·area/perimeter)
    split_area_m2: float = 1.0     # split_building: footprint outside its main grid above this ...
    split_share: float = 0.02      # ... and above this share of the footprint


def problems_frame(problems, crs="EPSG:4326") -> gpd.GeoDataFrame:
    """Problems as a GeoDataFrame (kind, ids, detail, geometry) for drawing and export."""
    problems = list(problems)
    return gpd.GeoDataFrame({"kind": [p.kind for p in problems], "ids": [list(p.ids) for p in problems],
                             "detail": [p.detail for p in problems]},
                            geometry=gpd.GeoSeries([p.geometry for p in problems], crs=crs), crs=crs)


# ---------------------------------------------------------------------------------------------
# plan structure (ids only; shared with geo/coverage.py)

@dataclass(frozen=True)
class PlanIndex:
    """Who belongs to whom in one plan, as pandas objects keyed by string ids."""
    grid_ids: pd.Index          # all grids of the plan
    level: pd.Series            # grid id -> level (1/2, NaN when unreadable)
    parent: pd.Series           # grid id -> parent id (string or <NA>)
    community_of_grid: pd.Series  # grid id -> community id (<NA> when the chain is broken)
    building_grid: pd.Series    # building id -> level-2 grid id of its first valid assignment
    community_ids: pd.Index
    building_ids: pd.Index


def plan_index(grids: pd.DataFrame, communities: pd.DataFrame, buildings: pd.DataFrame,
               assignments: pd.DataFrame) -> PlanIndex:
    gids = pd.Index(grids["id"].astype(str).to_numpy(), dtype=object)
    level = pd.Series(pd.to_numeric(grids["level"], errors="coerce").to_numpy(dtype=float), index=gids)
    parent = pd.Series(grids["parent_id"].astype("string").to_numpy(), index=gids)
    cids = pd.Index(communities["id"].astype(str).to_numpy(), dtype=object)
    bids = pd.Index(buildings["id"].astype(str).to_numpy(), dtype=object)
    lev1 = level[level == 1].index
    uparent = parent[~parent.index.duplicated()]
    comm1 = uparent.where((level[~level.index.duplicated()] == 1) & uparent.isin(cids))
    l1_of = uparent.where((level[~level.index.duplicated()] == 2) & uparent.isin(lev1))
    comm2 = l1_of.map(comm1.dropna())
    community_of_grid = comm1.fillna(comm2).reindex(gids)
    l2_valid = level[(level == 2)].index
    a = assignments.assign(building_id=assignments["building_id"].astype(str),
                           grid_id=assignments["grid_id"].astype("string"))
    a = a[a["grid_id"].isin(l2_valid) & a["building_id"].isin(bids)]
    a = a.drop_duplicates("building_id", keep="first")
    building_grid = pd.Series(a["grid_id"].to_numpy(dtype=object), index=pd.Index(a["building_id"], dtype=object))
    return PlanIndex(gids, level, parent, community_of_grid, building_grid, cids, bids)


# ---------------------------------------------------------------------------------------------
# helpers

def _geoms(gdf) -> np.ndarray:
    return np.asarray(gdf.geometry.values, dtype=object)


def _to_metric(gdfs: dict, crs) -> dict:
    out = {}
    for name, g in gdfs.items():
        if g.crs is None:
            g = g.set_crs(4326)
        out[name] = _geoms(g.to_crs(crs)) if len(g) else np.zeros(0, dtype=object)
    return out


def _fix(geoms: np.ndarray) -> np.ndarray:
    """Valid polygonal version of each geometry (missing -> empty), for measuring."""
    g = np.asarray(geoms, dtype=object).copy()
    bad = ~shapely.is_valid(g) & ~shapely.is_missing(g)
    if bad.any():
        g[bad] = shapely.make_valid(g[bad])
    return polygonal(g)


def _solid_parts(geoms: np.ndarray, min_area: float, min_width: float) -> tuple[np.ndarray, np.ndarray]:
    """Drop sliver parts (area < min_area or thinner than min_width) from each geometry.
    Returns (cleaned geometries with None where nothing is left, area kept per geometry)."""
    geoms = polygonal(geoms)
    parts, which = shapely.get_parts(geoms, return_index=True)
    area = shapely.area(parts)
    perim = shapely.length(parts)
    with np.errstate(divide="ignore", invalid="ignore"):
        width = np.where(perim > 0, 2 * area / perim, 0.0)
    keep = (area >= min_area) & (width >= min_width)
    out = np.full(len(geoms), None, dtype=object)
    kept_area = np.bincount(which[keep], weights=area[keep], minlength=len(geoms))
    if keep.any():
        groups = np.unique(which[keep])
        out[groups] = shapely.multipolygons(parts[keep], indices=np.searchsorted(groups, which[keep]))
    return out, kept_area


def _interior_pairs(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs i < j whose interiors intersect (STRtree + DE-9IM), excluding mere touching."""
    if len(geoms) < 2:
        return np.zeros(0, int), np.zeros(0, int)
    tree = shapely.STRtree(geoms)
    i, j = tree.query(geoms, predicate="intersects")
    m = i < j
    i, j = i[m], j[m]
    inner = shapely.relate_pattern(geoms[i], geoms[j], "T********")
    return i[inner], j[inner]


# ---------------------------------------------------------------------------------------------
# the checks (each returns a list of (kind, ids, detail, metric geometry or None))

def check_geometry(name: str, ids: np.ndarray, geoms: np.ndarray) -> list:
    out = []
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    invalid = ~missing & ~shapely.is_valid(geoms)
    tid = shapely.get_type_id(geoms)
    wrong_type = ~missing & ~invalid & (tid != 3) & (tid != 6)
    for i in np.flatnonzero(missing):
        out.append(("invalid_geometry", (ids[i],), f"{name} {ids[i]}: 几何为空 / geometry missing or empty", None))
    if invalid.any():
        reasons = shapely.is_valid_reason(geoms[invalid])
        for i, r in zip(np.flatnonzero(invalid), reasons):
            out.append(("invalid_geometry", (ids[i],), f"{name} {ids[i]}: 几何无效 / invalid geometry ({r})", geoms[i]))
    for i in np.flatnonzero(wrong_type):
        out.append(("invalid_geometry", (ids[i],),
                    f"{name} {ids[i]}: 不是面 / not a polygon ({shapely.get_type_id(geoms[i])})", geoms[i]))
    return out


def check_nesting(ix: PlanIndex, grid_geoms: np.ndarray, comm_geoms: np.ndarray, tol: Tolerances):
    """not_nested problems, plus each grid's area inside its parent (for the gap fast path)."""
    out = []
    gids = ix.grid_ids.to_numpy()
    level = ix.level.to_numpy()
    parent = ix.parent.to_numpy(dtype=object)
    area = shapely.area(grid_geoms)
    inside_area = area.copy()
    grid_pos = pd.Series(np.arange(len(gids)), index=ix.grid_ids)
    grid_pos = grid_pos[~grid_pos.index.duplicated()]
    comm_pos = pd.Series(np.arange(len(ix.community_ids)), index=ix.community_ids)
    comm_pos = comm_pos[~comm_pos.index.duplicated()]
    bad_level = ~np.isin(level, [1, 2])
    for i in np.flatnonzero(bad_level):
        out.append(("not_nested", (gids[i],), f"网格 {gids[i]} 层级应为1或2 / level must be 1 or 2, got {level[i]}", None))
    for lev, pos, what in ((1, comm_pos, "community"), (2, grid_pos, "level-1 grid")):
        sel = np.flatnonzero(level == lev)
        p = np.array(pd.Series(parent[sel], dtype=object).map(pos), dtype=float)
        if lev == 2:  # the parent must be a level-1 grid
            ok_par = ~np.isnan(p)
            p[ok_par] = np.where(level[p[ok_par].astype(int)] == 1, p[ok_par], np.nan)
        unknown = np.isnan(p)
        for i in sel[unknown]:
            out.append(("not_nested", (gids[i],), f"网格 {gids[i]} 的上级 {parent[i]} 不存在 / parent {parent[i]} "
                                                  f"of grid {gids[i]} is not a known {what}", None))
        sel, p = sel[~unknown], p[~unknown].astype(int)
        parents = comm_geoms[p] if lev == 1 else grid_geoms[p]
        child = grid_geoms[sel]
        ok = shapely.is_empty(child) | shapely.covers(parents, child)
        todo = np.flatnonzero(~ok)
        if len(todo) == 0:
            continue
        diff = polygonal(shapely.difference(child[todo], parents[todo]))
        outside = shapely.area(diff)
        inside_area[sel[todo]] = area[sel[todo]] - outside
        bad = (outside > tol.nest_area_m2) & (outside > tol.nest_share * area[sel[todo]])
        for k in np.flatnonzero(bad):
            i = sel[todo[k]]
            out.append(("not_nested", (gids[i], parent[i]),
                        f"网格 {gids[i]} 有 {outside[k]:.0f} m² ({outside[k] / area[i]:.1%}) 在上级 {parent[i]} 之外 / "
                        f"{outside[k]:.0f} m² of grid {gids[i]} lies outside its parent {parent[i]}", diff[k]))
    return out, inside_area


def check_overlaps(name: str, ids: np.ndarray, geoms: np.ndarray, tol: Tolerances):
    """overlap problems among one level; also returns all interior-intersecting pairs."""
    i, j = _interior_pairs(geoms)
    out = []
    if len(i):
        inter, kept = _solid_parts(shapely.intersection(geoms[i], geoms[j]), tol.gap_area_m2, tol.sliver_width_m)
        for k in np.flatnonzero(kept > 0):
            a, b = ids[i[k]], ids[j[k]]
            out.append(("overlap", (a, b), f"{name} {a} 与 {b} 重叠 {kept[k]:.0f} m² / {name} {a} and {b} "
                                           f"overlap by {kept[k]:.0f} m²", inter[k]))
    return out, (i, j)


def check_gaps(parent_ids, parent_geoms, child_parent_pos, child_geoms, child_inside_area, sibling_overlap,
               tol: Tolerances, what: str, child_what: str) -> list:
    """gap problems: parent area not covered by its children.

    child_parent_pos: index into parent arrays for each child (-1 = none). Fast path: when
    the children do not overlap each other, their area inside the parent adds up to the
    covered area, and a parent whose area is matched needs no union."""
    out = []
    n = len(parent_ids)
    has = child_parent_pos >= 0
    covered = np.bincount(child_parent_pos[has], weights=child_inside_area[has], minlength=n)
    n_kids = np.bincount(child_parent_pos[has], minlength=n)
    p_area = shapely.area(parent_geoms)
    suspicious = (p_area - covered > tol.gap_area_m2) | sibling_overlap
    suspicious &= ~shapely.is_empty(parent_geoms)
    todo = np.flatnonzero(suspicious)
    if len(todo) == 0:
        return out
    order = np.argsort(child_parent_pos, kind="stable")
    cpp = child_parent_pos[order]
    starts = np.searchsorted(cpp, todo, side="left")
    ends = np.searchsorted(cpp, todo, side="right")
    unions = np.array([shapely.union_all(child_geoms[order[s:e]]) if e > s else None
                       for s, e in zip(starts, ends)], dtype=object)  # one per parent with a gap
    gaps = np.where(shapely.is_missing(unions), parent_geoms[todo],
                    shapely.difference(parent_geoms[todo], np.where(shapely.is_missing(unions), parent_geoms[todo], unions)))
    gaps, kept = _solid_parts(gaps, tol.gap_area_m2, tol.sliver_width_m)
    for k in np.flatnonzero(kept > 0):
        p = todo[k]
        pieces = shapely.get_num_geometries(gaps[k])
        if n_kids[p] == 0:
            detail = (f"{what} {parent_ids[p]} 没有{child_what[0]}, {kept[k]:.0f} m² 未覆盖 / "
                      f"{parent_ids[p]} has no {child_what[1]}: {kept[k]:.0f} m² uncovered")
        else:
            detail = (f"{what} {parent_ids[p]} 有 {kept[k]:.0f} m² ({kept[k] / p_area[p]:.1%}, {pieces} 处) 未被{child_what[0]}覆盖 / "
                      f"{kept[k]:.0f} m² of {parent_ids[p]} not covered by its {child_what[1]} ({pieces} pieces)")
        out.append(("gap", (parent_ids[p],), detail, gaps[k]))
    return out


def check_buildings(ix: PlanIndex, assignments: pd.DataFrame, b_geoms: np.ndarray, l2_geoms: np.ndarray,
                    l2_ids: np.ndarray, hh_per_building: np.ndarray, tol: Tolerances) -> list:
    out = []
    bids = ix.building_ids.to_numpy()
    a = pd.DataFrame({"building_id": assignments["building_id"].astype(str).to_numpy(),
                      "grid_id": assignments["grid_id"].astype("string").to_numpy()})
    # assigned twice
    dup = a[a["building_id"].duplicated(keep=False)]
    for bid, g in dup.groupby("building_id", sort=True):
        grids = ", ".join(str(x) for x in g["grid_id"])
        out.append(("split_building", (bid,), f"楼栋 {bid} 被分配了 {len(g)} 次 / building {bid} assigned "
                                              f"{len(g)} times ({grids})", None))
    # assignments that cannot hold
    unknown_b = ~a["building_id"].isin(ix.building_ids)
    for bid, gid in a.loc[unknown_b, ["building_id", "grid_id"]].itertuples(index=False):
        out.append(("unassigned_building", (bid,), f"分配表中的楼栋 {bid} 不存在 / assignment to grid {gid} refers to "
                                                   f"unknown building {bid}", None))
    level = ix.level[~ix.level.index.duplicated()]
    bad_grid = ~unknown_b & ~a["grid_id"].map(level).eq(2).fillna(False).astype(bool)
    bad_grid &= ~a["building_id"].isin(ix.building_grid.index)  # a later valid assignment wins
    b_pos = pd.Series(np.arange(len(bids)), index=ix.building_ids)
    b_pos = b_pos[~b_pos.index.duplicated()]
    reported = set()
    for bid, gid in a.loc[bad_grid, ["building_id", "grid_id"]].drop_duplicates("building_id").itertuples(index=False):
        lev = level.get(gid) if not pd.isna(gid) else None
        zh, en = ("未知网格", "unknown grid") if lev is None or pd.isna(lev) else (f"{int(lev)}级网格", f"level-{int(lev)} grid")
        i = b_pos[bid]
        out.append(("unassigned_building", (bid,), f"楼栋 {bid} 分配到{zh} {gid} / building {bid} assigned to {en} {gid} "
                                                   f"({hh_per_building[i]} households)", b_geoms[i]))
        reported.add(bid)
    # geometry: which level-2 grid polygon holds each footprint
    ok_b = ~(shapely.is_missing(b_geoms) | shapely.is_empty(b_geoms))
    b_idx = np.flatnonzero(ok_b)
    holder = np.full(len(bids), -1)
    if len(l2_geoms) and len(b_idx):
        tree = shapely.STRtree(b_geoms[b_idx])
        gi, bi = tree.query(l2_geoms, predicate="contains_properly")  # prepared grid polygons
        holder[b_idx[bi]] = gi
    assigned_pos = pd.Series(ix.building_grid.index).map(b_pos).to_numpy()
    l2_pos = pd.Series(np.arange(len(l2_ids)), index=pd.Index(l2_ids, dtype=object))
    l2_pos = l2_pos[~l2_pos.index.duplicated()]
    assigned = np.full(len(bids), -1)
    assigned[assigned_pos] = ix.building_grid.map(l2_pos).fillna(-1).to_numpy(dtype=int)
    # footprints not properly inside one grid: measure shares
    rest = np.flatnonzero(ok_b & (holder < 0))
    main = holder.copy()
    if len(rest) and len(l2_geoms):
        tree = shapely.STRtree(l2_geoms)
        ri, gi = tree.query(b_geoms[rest], predicate="intersects")
        bi = rest[ri]
        share_area = shapely.area(shapely.intersection(b_geoms[bi], l2_geoms[gi]))
        b_area = shapely.area(b_geoms)
        df = pd.DataFrame({"b": bi, "g": gi, "a": share_area})
        df = df[df["a"] > 0].sort_values(["b", "a"], ascending=[True, False])
        top = df.drop_duplicates("b")
        main[top["b"].to_numpy()] = top["g"].to_numpy()
        main_area = np.zeros(len(bids))
        main_area[top["b"].to_numpy()] = top["a"].to_numpy()
        outside_main = b_area - main_area
        n_grids = df.groupby("b").size()
        split = np.zeros(len(bids), dtype=bool)
        split[rest] = (outside_main[rest] > tol.split_area_m2) & (outside_main[rest] > tol.split_share * b_area[rest])
        split[n_grids.index[n_grids.to_numpy() < 2].to_numpy()] = False
        for i in np.flatnonzero(split):
            parts = df[df["b"] == i]
            shares = ", ".join(f"{l2_ids[g]} {a / b_area[i]:.0%}" for g, a in zip(parts["g"], parts["a"]))
            out.append(("split_building", (bids[i],), f"楼栋 {bids[i]} 跨越多个网格 / building {bids[i]} is split across "
                                                      f"grids: {shares}", b_geoms[i]))
    no_assignment = np.ones(len(bids), dtype=bool)
    no_assignment[assigned_pos] = False
    for i in np.flatnonzero(no_assignment):
        if bids[i] in reported:
            continue
        where = f"位于网格 {l2_ids[main[i]]} / lies in grid {l2_ids[main[i]]}" if main[i] >= 0 else \
            "不在任何网格内 / outside every grid"
        out.append(("unassigned_building", (bids[i],), f"楼栋 {bids[i]} 未分配网格, {where} "
                                                      f"({hh_per_building[i]} households)", b_geoms[i]))
    outside = ok_b & (assigned >= 0) & (main < 0)
    for i in np.flatnonzero(outside):
        out.append(("unassigned_building", (bids[i],), f"楼栋 {bids[i]} 不在任何二级网格范围内 (分配到 {l2_ids[assigned[i]]}) / "
                                                      f"footprint lies outside every level-2 grid polygon (assigned to "
                                                      f"{l2_ids[assigned[i]]}, {hh_per_building[i]} households)", b_geoms[i]))
    misplaced = ok_b & (assigned >= 0) & (main >= 0) & (main != assigned)
    for i in np.flatnonzero(misplaced):
        out.append(("misplaced_building", (bids[i], l2_ids[assigned[i]], l2_ids[main[i]]),
                    f"楼栋 {bids[i]} 分配到 {l2_ids[assigned[i]]} 却位于 {l2_ids[main[i]]} / building {bids[i]} is assigned "
                    f"to {l2_ids[assigned[i]]} but lies in {l2_ids[main[i]]}", b_geoms[i]))
    return out


def check_households(households: pd.DataFrame, building_ids: pd.Index) -> list:
    """Households whose building is unknown, one problem per unknown building id (ids: that
    building id). ``households``: a stats frame (geo/stats.py) or household rows."""
    out = []
    st = as_stats(households)
    hb = st["building_id"].astype("string")
    orphan = ~hb.isin(building_ids).to_numpy() & (st["households"].to_numpy() > 0)
    for bid, n, p in zip(hb.fillna("").to_numpy()[orphan], st["households"].to_numpy()[orphan],
                         st["persons"].to_numpy()[orphan]):
        bid = bid or "<none>"
        out.append(("orphan_household", (str(bid),),
                    f"{int(n)} 户 ({int(p)} 人) 的楼栋 {bid} 不存在 / {int(n)} households "
                    f"({int(p)} persons) refer to unknown building {bid}", None))
    return out


# ---------------------------------------------------------------------------------------------

def validate_plan(grids: gpd.GeoDataFrame, communities: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame,
                  assignments: pd.DataFrame, households: pd.DataFrame, *, tolerances: Tolerances | None = None,
                  index: PlanIndex | None = None, timings: dict | None = None) -> list[Problem]:
    """All topology problems of one plan (kinds invalid_geometry, not_nested, gap, overlap,
    unassigned_building, split_building, misplaced_building, orphan_household).

    grids: the plan's grids (id, level, parent_id, geometry); assignments: the plan's
    building_id -> grid_id rows. Problem geometries are in the grids' CRS (EPSG:4326 by default)."""
    tol = tolerances or Tolerances()
    t0 = time.perf_counter()
    ix = index or plan_index(grids, communities, buildings, assignments)
    out_crs = grids.crs or buildings.crs or "EPSG:4326"
    ref = communities if len(communities) else (grids if len(grids) else buildings)
    mcrs = metric_crs(ref.set_crs(4326) if ref.crs is None else ref) if len(ref) else "EPSG:32650"
    m = _to_metric({"grids": grids, "communities": communities, "buildings": buildings}, mcrs)
    t1 = time.perf_counter()
    found = []
    gids, cids, bids = ix.grid_ids.to_numpy(), ix.community_ids.to_numpy(), ix.building_ids.to_numpy()
    found += check_geometry("网格 grid", gids, m["grids"])
    found += check_geometry("社区 community", cids, m["communities"])
    found += check_geometry("楼栋 building", bids, m["buildings"])
    g_geoms, c_geoms, b_geoms = _fix(m["grids"]), _fix(m["communities"]), _fix(m["buildings"])
    t2 = time.perf_counter()
    nest, inside_area = check_nesting(ix, g_geoms, c_geoms, tol)
    found += nest
    level = ix.level.to_numpy()
    sib_overlap = {}
    for lev, name in ((1, "一级网格 level-1 grid"), (2, "二级网格 level-2 grid")):
        sel = np.flatnonzero(level == lev)
        o, (i, j) = check_overlaps(name, gids[sel], g_geoms[sel], tol)
        found += o
        sib_overlap[lev] = (sel[i], sel[j])
    o, _ = check_overlaps("社区 community", cids, c_geoms, tol)
    found += o
    t3 = time.perf_counter()
    # gaps: community vs its level-1 grids, level-1 grid vs its level-2 grids
    parent = ix.parent.to_numpy(dtype=object)
    comm_pos = pd.Series(np.arange(len(cids)), index=ix.community_ids)
    comm_pos = comm_pos[~comm_pos.index.duplicated()]
    for lev, p_ids, p_geoms, pos_map, what, child_what in (
            (1, cids, c_geoms, comm_pos, "社区 community", ("一级网格", "level-1 grids")),
            (2, None, None, None, "一级网格 level-1 grid", ("二级网格", "level-2 grids"))):
        if lev == 2:
            p_sel = np.flatnonzero(level == 1)
            p_ids, p_geoms = gids[p_sel], g_geoms[p_sel]
            pos_map = pd.Series(np.arange(len(p_sel)), index=pd.Index(p_ids, dtype=object))
            pos_map = pos_map[~pos_map.index.duplicated()]
        kids = np.flatnonzero(level == lev)
        cpp = pd.Series(parent[kids], dtype=object).map(pos_map).fillna(-1).to_numpy(dtype=int)
        overlap_parent = np.zeros(len(p_ids), dtype=bool)
        i, j = sib_overlap[lev]
        same = parent[i] == parent[j]
        hit = pd.Series(parent[i][same], dtype=object).map(pos_map).dropna().to_numpy(dtype=int)
        overlap_parent[hit] = True
        found += check_gaps(p_ids, p_geoms, cpp, g_geoms[kids], inside_area[kids], overlap_parent, tol, what, child_what)
    t4 = time.perf_counter()
    st = as_stats(households)
    b_pos = pd.Series(np.arange(len(bids)), index=ix.building_ids)
    b_pos = b_pos[~b_pos.index.duplicated()]
    hpos = st["building_id"].astype("string").map(b_pos)
    ok = hpos.notna().to_numpy()
    hh_per_building = np.rint(np.bincount(hpos[ok].to_numpy(dtype=int),
                                          weights=st["households"].to_numpy(dtype=float)[ok],
                                          minlength=len(bids))).astype(np.int64)
    l2_sel = np.flatnonzero(level == 2)
    found += check_buildings(ix, assignments, b_geoms, g_geoms[l2_sel], gids[l2_sel], hh_per_building, tol)
    t5 = time.perf_counter()
    found += check_households(st, ix.building_ids)
    # problem geometries back to the input CRS, in one go
    geo = np.array([f[3] for f in found], dtype=object)
    has = ~shapely.is_missing(geo) if len(geo) else np.zeros(0, bool)
    if has.any():
        geo[has] = np.asarray(gpd.GeoSeries(geo[has], crs=mcrs).to_crs(out_crs).values, dtype=object)
    problems = [Problem(k, tuple(str(x) for x in ids), d, g) for (k, ids, d, _), g in zip(found, geo)]
    t6 = time.perf_counter()
    if timings is not None:
        timings.update({"project": t1 - t0, "validity": t2 - t1, "nesting_overlap": t3 - t2, "gaps": t4 - t3,
                        "buildings": t5 - t4, "households": t6 - t5})
    return problems
