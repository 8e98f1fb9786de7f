"""Service circles (服务圈): walking distance from every building to the nearest service point
of every type, circle polygons that follow the reached streets, and coverage shares.

One multi-source Dijkstra per service type: a virtual super-source joins every service point's
edge ends with weight snap offset + partial edge length, so no per-facility loop is needed.
Buildings on a part of the network with no service point of a type get ``walk_m = inf`` and
``within = False``; they stay in the table.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse import csgraph

from geo.stats import as_stats, tag_columns
from geo.network import Snap, WalkGraph, snap

WALK_SPEED_M_MIN = 80.0     # DESIGN.md default (4.8 km/h)
ELDERLY_SPEED_M_MIN = 60.0
# GB 50180-2018 life circles: minutes -> (walking metres, upper bound of the stated range)
GB50180_M = ((5, 300.0, 300.0), (10, 500.0, 500.0), (15, 800.0, 1000.0))
TABLE_COLUMNS = ("building_id", "service_type", "walk_m", "minutes", "within")


@dataclass(frozen=True)
class CircleParams:
    """How far a circle reaches: ``max_m`` if set, else minutes (per type if given) x speed."""

    minutes: float = 10.0
    speed_m_min: float = WALK_SPEED_M_MIN
    max_m: float | None = None
    minutes_by_type: tuple[tuple[str, float], ...] = ()
    anchor: str = "representative"    # building anchor: representative | centroid | footprint
    street_width_m: float = 50.0      # half-width of the circle polygon around reached streets
    largest_only: bool = False        # snap only onto the largest connected component

    def __post_init__(self):
        for name in ("minutes", "speed_m_min", "street_width_m"):
            if not (getattr(self, name) > 0 and np.isfinite(getattr(self, name))):
                raise ValueError(f"{name} must be a positive number, got {getattr(self, name)!r}")
        if self.max_m is not None and not self.max_m > 0:
            raise ValueError(f"max_m must be positive, got {self.max_m!r}")
        if any(not m > 0 for _, m in self.minutes_by_type):
            raise ValueError("minutes_by_type values must be positive")
        if self.anchor not in ("representative", "centroid", "footprint"):
            raise ValueError(f"anchor must be representative, centroid or footprint, got {self.anchor!r}")

    def minutes_for(self, service_type: str | None = None) -> float:
        return dict(self.minutes_by_type).get(service_type, self.minutes)

    def threshold_m(self, service_type: str | None = None) -> float:
        if self.max_m is not None:
            return float(self.max_m)
        return float(self.minutes_for(service_type) * self.speed_m_min)

    @classmethod
    def gb50180(cls, minutes: int, *, upper: bool = False, **kw) -> "CircleParams":
        """The GB 50180-2018 distance preset (5 -> 300 m, 10 -> 500 m, 15 -> 800 m or 1000 m)."""
        for mins, low, high in GB50180_M:
            if mins == minutes:
                return cls(minutes=mins, max_m=high if upper else low, **kw)
        raise ValueError(f"GB 50180-2018 defines 5, 10 and 15-minute circles, not {minutes}")

    def elderly(self, speed_m_min: float = ELDERLY_SPEED_M_MIN) -> "CircleParams":
        return replace(self, speed_m_min=speed_m_min)


# -- distances -------------------------------------------------------------

def source_edge_ends(graph: WalkGraph, sources: Snap) -> tuple[np.ndarray, np.ndarray]:
    """The nodes a set of snapped sources reaches first (the ends of their edges) and the
    shortest walk to each: one (node, metres) pair per node."""
    ok = sources.ok
    e = sources.edge[ok]
    col = np.concatenate([graph.u[e], graph.v[e]])
    w = np.concatenate([sources.offset[ok] + sources.to_u[ok], sources.offset[ok] + sources.to_v[ok]])
    order = np.lexsort((w, col))
    col, w = col[order], w[order]
    first = np.ones(len(col), bool)
    first[1:] = col[1:] != col[:-1]
    return col[first], w[first]


def _with_super_source(graph: WalkGraph, sources: Snap):
    """The graph plus one virtual node (index n) joined to every source's edge ends."""
    m, n = graph.matrix, graph.n_nodes
    col, w = source_edge_ends(graph, sources)
    indptr = np.append(m.indptr, m.indptr[-1] + len(col))
    return sparse.csr_matrix((np.concatenate([m.data, w]), np.concatenate([m.indices, col]), indptr),
                             shape=(n + 1, n + 1))


def node_distances(graph: WalkGraph, sources: Snap, limit: float = np.inf) -> np.ndarray:
    """Metres from the nearest source to every node: one Dijkstra from a super-source."""
    if not graph.n_nodes:
        return np.zeros(0)
    a = _with_super_source(graph, sources)
    return csgraph.dijkstra(a, directed=True, indices=graph.n_nodes, limit=limit)[: graph.n_nodes]


def target_distances(graph: WalkGraph, node_d: np.ndarray, targets: Snap, sources: Snap) -> np.ndarray:
    """Metres from each snapped target to the nearest source, given node distances."""
    d = np.full(len(targets), np.inf)
    ok = targets.ok
    if not ok.any() or not graph.n_nodes:
        return d
    e = targets.edge[ok]
    via = np.minimum(node_d[graph.u[e]] + targets.to_u[ok], node_d[graph.v[e]] + targets.to_v[ok])
    d[ok] = via + targets.offset[ok]
    # a source on the target's own edge is reached along the edge, without its end nodes
    s_ok = sources.ok
    shared = np.isin(e, sources.edge[s_ok])
    if shared.any():
        src = pd.DataFrame({"edge": sources.edge[s_ok], "sp": sources.to_u[s_ok], "so": sources.offset[s_ok]})
        tgt = pd.DataFrame({"t": np.flatnonzero(ok)[shared], "edge": e[shared], "tp": targets.to_u[ok][shared],
                            "to": targets.offset[ok][shared]})
        both = tgt.merge(src, on="edge")
        if len(both):
            direct = both["so"] + (both["sp"] - both["tp"]).abs() + both["to"]
            best = direct.groupby(both["t"]).min()
            idx = best.index.to_numpy()
            d[idx] = np.minimum(d[idx], best.to_numpy())
    return d


def nearest_distances(graph: WalkGraph, sources: Snap, targets: Snap, limit: float = np.inf) -> np.ndarray:
    """Walking metres from every target to its nearest source (inf = unreachable / beyond limit)."""
    return target_distances(graph, node_distances(graph, sources, limit), targets, sources)


def _restrict(graph: WalkGraph, params: CircleParams):
    return np.flatnonzero(graph.edge_component == graph.largest) if params.largest_only else None


def snap_buildings(graph: WalkGraph, buildings: gpd.GeoDataFrame, params: CircleParams = CircleParams()) -> Snap:
    return snap(graph, buildings.geometry, anchor=params.anchor, edges=_restrict(graph, params))


def snap_points(graph: WalkGraph, points: gpd.GeoDataFrame, params: CircleParams = CircleParams()) -> Snap:
    return snap(graph, points.geometry, edges=_restrict(graph, params))


def _types(service_points, types) -> list[str]:
    if types is None:
        return sorted(pd.unique(service_points["type"].dropna().astype(str)))
    return [str(t) for t in types]


def service_distances(graph: WalkGraph, buildings: gpd.GeoDataFrame, service_points: gpd.GeoDataFrame,
                      params: CircleParams = CircleParams(), types=None, *,
                      building_snap: Snap | None = None, point_snap: Snap | None = None) -> pd.DataFrame:
    """Tidy table: one row per (building_id, service_type) with walk_m, minutes, within.

    ``types`` defaults to the types present in service_points; a requested type with no
    service point gets inf everywhere. Pass precomputed snaps to reuse them.
    """
    bs = building_snap if building_snap is not None else snap_buildings(graph, buildings, params)
    ps = point_snap if point_snap is not None else snap_points(graph, service_points, params)
    ptype = service_points["type"].astype(str).to_numpy()
    types = _types(service_points, types)
    ids = buildings["id"].to_numpy() if "id" in buildings else buildings.index.to_numpy()
    walk = np.empty((len(types), len(bs)))
    for i, t in enumerate(types):
        src = ps.take(np.flatnonzero(ptype == t))
        walk[i] = nearest_distances(graph, src, bs)
    thresholds = np.array([params.threshold_m(t) for t in types])[:, None]
    return pd.DataFrame({
        "building_id": np.tile(ids, len(types)),
        "service_type": np.repeat(np.array(types, dtype=object), len(bs)),
        "walk_m": walk.ravel(),
        "minutes": (walk / params.speed_m_min).ravel(),
        "within": (walk <= thresholds + 1e-9).ravel(),
    })


def summary(table: pd.DataFrame, households: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per service type: buildings, covered share, unreachable count; households and share if given."""
    t = table.assign(unreachable=~np.isfinite(table["walk_m"]))
    out = t.groupby("service_type", sort=False).agg(buildings=("building_id", "size"),
                                                   buildings_within=("within", "sum"),
                                                   unreachable=("unreachable", "sum"))
    out["building_share"] = out["buildings_within"] / out["buildings"].where(out["buildings"] > 0)
    if households is not None:
        st = as_stats(households)
        per_b = st.groupby("building_id")["households"].sum().rename("hh")
        t = t.merge(per_b, left_on="building_id", right_index=True, how="left").fillna({"hh": 0})
        t["hh_within"] = t["hh"] * t["within"]
        hh = t.groupby("service_type", sort=False)[["hh", "hh_within"]].sum()
        out["households"] = hh["hh"].astype(int)
        out["households_within"] = hh["hh_within"].astype(int)
        out["household_share"] = out["households_within"] / out["households"].where(out["households"] > 0)
        homeless = int(st.loc[~st["building_id"].isin(table["building_id"]), "households"].sum())
        out.attrs["households_without_building"] = homeless
    return out.reset_index()


# -- circle polygons -------------------------------------------------------

def _reached_intervals(graph: WalkGraph, node_d: np.ndarray, sources: Snap, reach: float):
    """(edge, start_m, end_m) stretches of edges within ``reach``, measured from the u end."""
    L, du, dv = graph.length, node_d[graph.u], node_d[graph.v]
    ra = np.clip(reach - du, 0, L)
    rb = np.clip(reach - dv, 0, L)
    full = ra + rb >= L
    e_all = np.arange(graph.n_edges)
    parts = [(e_all[full], np.zeros(full.sum()), L[full])]
    a = ~full & (ra > 0)
    parts.append((e_all[a], np.zeros(a.sum()), ra[a]))
    b = ~full & (rb > 0)
    parts.append((e_all[b], L[b] - rb[b], L[b]))
    ok = sources.ok
    rem = reach - sources.offset[ok]
    near = rem > 0
    se, pos, rem = sources.edge[ok][near], sources.to_u[ok][near], rem[near]
    parts.append((se, np.maximum(pos - rem, 0), np.minimum(pos + rem, L[se])))
    return tuple(np.concatenate(x) for x in zip(*parts))


def _substrings(graph: WalkGraph, edge, start_m, end_m) -> np.ndarray:
    """Vectorised pieces of edge geometries between two distances from the u end (metres)."""
    keep = end_m - start_m > 1e-9
    edge, start_m, end_m = edge[keep], start_m[keep], end_m[keep]
    if not len(edge):
        return np.empty(0, object)
    L = graph.length[edge]
    geoms = graph.geoms[edge]
    glen = shapely.length(geoms)
    fa, fb = start_m / L, end_m / L
    fl = graph.flipped[edge]
    fa, fb = np.where(fl, 1 - fb, fa), np.where(fl, 1 - fa, fb)
    sa, sb = fa * glen, fb * glen
    ue, inv = np.unique(edge, return_inverse=True)
    coords, owner = shapely.get_coordinates(graph.geoms[ue], return_index=True)
    step = np.hypot(*np.diff(coords, axis=0).T)
    step[owner[1:] != owner[:-1]] = 0
    cum = np.concatenate([[0.0], np.cumsum(step)])
    first = np.searchsorted(owner, np.arange(len(ue)))
    counts = np.diff(np.append(first, len(owner)))
    cum = cum - cum[first][owner]
    k = np.arange(len(edge))
    rep = np.repeat(k, counts[inv])
    offs = np.cumsum(counts[inv]) - counts[inv]
    vi = first[inv][rep] + (np.arange(len(rep)) - offs[rep])
    inside = (cum[vi] > sa[rep]) & (cum[vi] < sb[rep])
    pa = shapely.get_coordinates(shapely.line_interpolate_point(geoms, sa))
    pb = shapely.get_coordinates(shapely.line_interpolate_point(geoms, sb))
    which = np.concatenate([k, rep[inside], k])
    pos = np.concatenate([sa, cum[vi][inside], sb])
    tag = np.concatenate([np.zeros(len(k)), np.ones(inside.sum()), np.full(len(k), 2)])
    xy = np.concatenate([pa, coords[vi][inside], pb])
    order = np.lexsort((tag, pos, which))
    return shapely.linestrings(xy[order], indices=which[order])


def reached_streets(graph: WalkGraph, sources: Snap, reach_m: float) -> np.ndarray:
    """LineStrings (graph CRS) of every street stretch within reach_m of the nearest source."""
    node_d = node_distances(graph, sources, limit=reach_m)
    return _substrings(graph, *_reached_intervals(graph, node_d, sources, reach_m))


def circle_polygons(graph: WalkGraph, service_points: gpd.GeoDataFrame, params: CircleParams = CircleParams(),
                    types=None, *, by: str = "type", point_snap: Snap | None = None) -> gpd.GeoDataFrame:
    """Circle polygons following the reached streets (buffered by street_width_m), EPSG:4326.

    by='type': one polygon per service type (union of its points' circles);
    by='point': one polygon per service point (id, service_type).
    """
    if by not in ("type", "point"):
        raise ValueError(f"by must be 'type' or 'point', got {by!r}")
    ps = point_snap if point_snap is not None else snap_points(graph, service_points, params)
    ptype = service_points["type"].astype(str).to_numpy()
    rows = []
    if by == "type":
        for t in _types(service_points, types):
            reach = params.threshold_m(t)
            lines = reached_streets(graph, ps.take(np.flatnonzero(ptype == t)), reach)
            rows.append({"service_type": t, "reach_m": reach, "geometry": _buffer(lines, params)})
    else:
        ids = service_points["id"].to_numpy() if "id" in service_points else service_points.index.to_numpy()
        wanted = set(_types(service_points, types))
        for i in np.flatnonzero(np.isin(ptype, list(wanted))):
            reach = params.threshold_m(ptype[i])
            lines = reached_streets(graph, ps.take([i]), reach)
            rows.append({"id": ids[i], "service_type": ptype[i], "reach_m": reach,
                         "geometry": _buffer(lines, params)})
    cols = ["service_type", "reach_m", "geometry"] if by == "type" else ["id", "service_type", "reach_m", "geometry"]
    gdf = gpd.GeoDataFrame(pd.DataFrame(rows, columns=cols), geometry="geometry", crs=graph.crs)
    return gdf.to_crs("EPSG:4326")


def _buffer(lines: np.ndarray, params: CircleParams):
    if not len(lines):
        return shapely.Polygon()
    # buffering pieces then unioning is ~10x faster than buffering one MultiLineString
    return shapely.union_all(shapely.buffer(lines, params.street_width_m, quad_segs=4))


# -- coverage shares -------------------------------------------------------

def coverage_shares(table: pd.DataFrame, assignments: pd.DataFrame, households: pd.DataFrame,
                    grids: pd.DataFrame | None = None, groups=None, types=None) -> pd.DataFrame:
    """Share of households within the circle, by scope (all / community / grid), service type
    and group ('all' or a key-group key from households.tags).

    assignments: building_id, grid_id (one plan). grids (optional): id, level, parent_id, used
    to roll level-2 grids up to level-1 grids and communities. Households whose building has
    no row in ``table`` count as not covered. types: only these service types. Columns: scope,
    scope_id, service_type, group, households, within, share (NaN when households == 0); a
    key group appears in a scope only where it has households.

    Sums are sparse matrix products (scope x building) @ (building x group), one per type, so
    a district (300k buildings, 20 types, 12 groups, 28k scopes) needs no row per combination.
    """
    st = as_stats(households, groups or ())
    keys = [k for k in tag_columns(st) if groups is None or k in set(groups)]
    names = ["all", *keys]
    bid = st["building_id"].astype(str).to_numpy()
    H = st[["households", *keys]].to_numpy(dtype=float)
    w = table[["building_id", "service_type", "within"]]
    tlist = list(pd.unique(w["service_type"]))
    if types is not None:
        tlist = [x for x in tlist if x in set(types)]
    pos = pd.Index(bid)
    W = np.zeros((len(bid), len(tlist)), dtype=bool)
    if tlist:
        w = w[w["service_type"].isin(tlist) & w["within"].fillna(False).astype(bool)]
        r = pos.get_indexer(w["building_id"].astype(str))
        c = pd.Index(tlist).get_indexer(w["service_type"])
        ok = r >= 0
        W[r[ok], c[ok]] = True
    sc = _scopes(assignments, grids)
    sc = sc.assign(building_id=sc["building_id"].astype(str)).set_index("building_id").reindex(bid)
    parts = []
    for scope in ["all", *[c for c in ("community", "grid_level1", "grid") if c in sc.columns]]:
        ids = pd.Series("all", index=range(len(bid))) if scope == "all" else sc[scope].reset_index(drop=True)
        codes, uniq = pd.factorize(ids, sort=False)
        m = codes >= 0
        if not m.any():
            continue
        A = sparse.csr_matrix((np.ones(m.sum()), (codes[m], np.flatnonzero(m))), shape=(len(uniq), len(bid)))
        hh = np.asarray(A @ H)                                   # scope x group
        keep = (hh > 0) | (np.arange(len(names)) == 0)           # a group only where it has households
        si, gi = np.nonzero(keep)
        for t_i, stype in enumerate(tlist):
            within = np.asarray(A @ (H * W[:, [t_i]]))
            parts.append(pd.DataFrame({"scope": scope, "scope_id": np.asarray(uniq, dtype=object)[si],
                                       "service_type": stype, "group": np.asarray(names, dtype=object)[gi],
                                       "households": hh[si, gi].astype(np.int64),
                                       "within": within[si, gi].astype(np.int64)}))
    cols = ["scope", "scope_id", "service_type", "group", "households", "within"]
    res = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)
    res["share"] = res["within"] / res["households"].where(res["households"] > 0)
    return res


def _scopes(assignments, grids) -> pd.DataFrame:
    a = assignments[["building_id", "grid_id"]].drop_duplicates("building_id").rename(columns={"grid_id": "grid"})
    if grids is None or not len(grids):
        return a
    g = pd.DataFrame(grids).drop_duplicates("id").set_index("id")
    level, parent = a["grid"].map(g["level"]), a["grid"].map(g["parent_id"])
    a["grid_level1"] = parent.where(level == 2, a["grid"].where(level == 1))
    a["community"] = a["grid_level1"].map(g["parent_id"])
    return a
