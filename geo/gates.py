"""Gated compounds (封闭小区): the walk network crosses a closed compound's boundary only at its
open gates, and buildings inside reach the streets through them.

The wall is the compound polygon shrunk by ``wall_inset_m`` (OSM landuse polygons are often
drawn along the centre line of the surrounding streets; the shrunk ring keeps those streets
outside). Every walk edge is split where it crosses a wall: at an open gate (within
``gate_tol_m`` of the crossing) the two pieces share a node, elsewhere each piece ends in a
dead end. Every piece gets a zone: the closed compound its midpoint lies in, or "" outside.
Buildings and service points then snap only onto edges of their own zone (a building in a
compound without mapped inside paths snaps onto the pieces just outside its open gates, i.e.
its residents walk to the gate; with every gate closed it is cut off).
"""
from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely import ops

from geo.network import Snap, WalkGraph, anchor_points, snap

GATE_TOL_M = 15.0
WALL_INSET_M = 4.0
LINK_MAX_M = 60.0      # a gate no mapped path passes through is linked to an outside path this close
OUTSIDE = ""


@dataclass(frozen=True, eq=False)
class GatedEdges:
    """walk_edges re-cut at the walls of closed compounds, in the metric CRS ``crs``."""

    edges: gpd.GeoDataFrame      # u, v, length_m, highway, name, zone, gate_id ('' unless it ends at a gate)
    walls: gpd.GeoDataFrame      # compound_id, geometry (the shrunk rings, metric CRS)
    cuts: gpd.GeoDataFrame       # points where a wall cuts a street (no open gate there)
    crossings: pd.DataFrame      # gate_id, compound_id, pieces (streets passing through each open gate)
    open_gates: gpd.GeoDataFrame  # id, compound_id, geometry (metric CRS) of the gates in use
    closed: tuple[str, ...]      # the closed compound ids
    crs: str
    links: pd.DataFrame = None   # gate_id, compound_id, inside_m, outside_m: paths added through gates
                                 # no mapped street passes (see _link_gates)


def assign_gates(gates: gpd.GeoDataFrame, compounds: gpd.GeoDataFrame, tol_m: float = 20.0,
                 crs: str | None = None) -> pd.Series:
    """The compound each gate stands on (nearest boundary within tol_m), '' for none; index = gates'."""
    if not len(gates) or not len(compounds):
        return pd.Series(OUTSIDE, index=gates.index, dtype=object)
    crs = crs or compounds.estimate_utm_crs()
    g = np.asarray(gates.geometry.to_crs(crs).values)
    rings = np.asarray(compounds.geometry.to_crs(crs).boundary.values)
    tree = shapely.STRtree(rings)
    (gi, ci), d = tree.query_nearest(g, max_distance=tol_m, return_distance=True, all_matches=False)
    out = np.full(len(gates), OUTSIDE, dtype=object)
    out[gi] = compounds["id"].to_numpy()[ci]
    return pd.Series(out, index=gates.index, dtype=object)


def gate_network(walk_edges: gpd.GeoDataFrame, compounds: gpd.GeoDataFrame, gates: gpd.GeoDataFrame,
                 closed=None, closed_gates=(), *, crs: str, gate_tol_m: float = GATE_TOL_M,
                 wall_inset_m: float = WALL_INSET_M, link_max_m: float = LINK_MAX_M) -> GatedEdges:
    """Cut walk_edges at the walls of the ``closed`` compounds (ids; None = all) except at open gates.

    compounds: id, geometry. gates: id, compound_id ('' = none), geometry; ``closed_gates``
    ids are treated as shut (e.g. at night). An open gate no street passes through is linked
    to the paths on both sides (_link_gates). Returns edges in ``crs`` with new negative node
    ids for the split points; ready for geo.network.build_walk_graph.
    """
    e = walk_edges.to_crs(crs).reset_index(drop=True)
    e = e[e.geometry.notna() & ~e.geometry.is_empty].reset_index(drop=True)
    for col, default in (("highway", None), ("name", None)):
        if col not in e:
            e[col] = default
    c = compounds.to_crs(crs)
    ids = c["id"].astype(str).to_numpy()
    is_closed = np.ones(len(c), bool) if closed is None else np.isin(ids, [str(x) for x in closed])
    walls_poly = shapely.buffer(np.asarray(c.geometry.values)[is_closed], -wall_inset_m)
    keep = ~shapely.is_empty(walls_poly)
    closed_ids, walls_poly = ids[is_closed][keep], walls_poly[keep]
    rings = shapely.boundary(walls_poly)
    g = gates.to_crs(crs) if len(gates) else gates
    shut = set(map(str, closed_gates))
    open_g = g[~g["id"].astype(str).isin(shut)] if len(g) else g
    gate_xy = np.asarray(open_g.geometry.values) if len(open_g) else np.empty(0, object)
    gate_ids = open_g["id"].astype(str).to_numpy() if len(open_g) else np.empty(0, object)
    gate_comp = open_g["compound_id"].astype(str).to_numpy() if len(open_g) else np.empty(0, object)

    geoms = np.asarray(e.geometry.values)
    ring_tree = shapely.STRtree(rings)
    ei, ri = ring_tree.query(geoms, predicate="intersects") if len(rings) else (np.empty(0, int), np.empty(0, int))
    crossing = np.unique(ei)
    next_id = -1
    pieces, cut_pts, used = [], [], []
    for k in crossing:  # the few edges that cross a wall (not a loop over buildings)
        line = geoms[k]
        hits = []
        for r in ri[ei == k]:
            pts = shapely.get_coordinates(shapely.intersection(line, rings[r]))
            for x, y in pts:
                p = shapely.Point(x, y)
                gate = ""
                same = np.flatnonzero(gate_comp == closed_ids[r])
                if len(same):
                    d = shapely.distance(gate_xy[same], p)
                    j = int(np.argmin(d))
                    if d[j] <= gate_tol_m:
                        gate = gate_ids[same][j]
                hits.append((line.project(p), gate, closed_ids[r], p))
        hits.sort(key=lambda h: h[0])
        L = line.length
        hits = [h for h in hits if 1e-6 < h[0] < L - 1e-6]
        if not hits:
            continue
        total = float(e.at[k, "length_m"]) if np.isfinite(e.at[k, "length_m"]) else L
        start_node, start_pos, start_gate = int(e.at[k, "u"]), 0.0, ""
        for pos, gate, comp, p in hits + [(L, None, None, None)]:
            if p is None:
                end_node, next_start = int(e.at[k, "v"]), None
            elif gate:
                end_node = next_id
                next_start = next_id
                next_id -= 1
                used.append((gate, comp))
            else:
                end_node, next_start = next_id, next_id - 1
                next_id -= 2
                cut_pts.append((comp, p))
            piece = ops.substring(line, start_pos, pos)
            if piece.length > 0:
                pieces.append({"src": k, "u": start_node, "v": end_node, "length_m": total * (pos - start_pos) / L,
                               "geometry": piece, "gate_id": ";".join(x for x in (start_gate, gate or "") if x)})
            start_node, start_pos, start_gate = next_start, pos, gate or ""
    rest = e.drop(index=crossing[np.isin(crossing, [p["src"] for p in pieces])]) if pieces else e
    rest = rest.assign(gate_id="")
    if pieces:
        cut = pd.DataFrame(pieces)
        src = e.loc[cut["src"], ["highway", "name"]].reset_index(drop=True)
        cut = gpd.GeoDataFrame(pd.concat([cut.drop(columns="src"), src], axis=1), geometry="geometry", crs=crs)
        out = pd.concat([rest, cut], ignore_index=True)
    else:
        out = rest.reset_index(drop=True)
    out = gpd.GeoDataFrame(out, geometry="geometry", crs=crs)
    out["zone"] = zones_of(shapely.line_interpolate_point(np.asarray(out.geometry.values), 0.5, normalized=True),
                           walls_poly, closed_ids)
    out, links = _link_gates(out, gate_ids, gate_xy, gate_comp, {g for g, _ in used}, set(closed_ids), next_id,
                             link_max_m)
    walls = gpd.GeoDataFrame({"compound_id": closed_ids}, geometry=rings, crs=crs)
    cuts = gpd.GeoDataFrame({"compound_id": [c for c, _ in cut_pts]}, geometry=[p for _, p in cut_pts], crs=crs)
    gate_use = pd.DataFrame(used, columns=["gate_id", "compound_id"])
    gate_use = gate_use.groupby(["gate_id", "compound_id"]).size().rename("pieces").reset_index()
    og = gpd.GeoDataFrame({"id": gate_ids, "compound_id": gate_comp}, geometry=list(gate_xy), crs=crs)
    return GatedEdges(out, walls, cuts, gate_use, og, tuple(closed_ids), crs, links)


def _split_edge(out: gpd.GeoDataFrame, k: int, point, new_node: int):
    """Split edge row ``k`` of ``out`` at its point nearest ``point``: (out with the two pieces in
    place of the edge, node id at the split, the split point). Geometries run from u to v, as
    the wall cuts above assume; a split at an end returns that end's node."""
    line = out.geometry.iloc[k]
    pos = line.project(point)
    at = line.interpolate(pos)
    L = line.length
    row = out.iloc[k]
    if pos <= 1e-6:
        return out, int(row["u"]), at
    if pos >= L - 1e-6:
        return out, int(row["v"]), at
    total = float(row["length_m"]) if np.isfinite(row["length_m"]) else L
    a, b = row.to_dict(), row.to_dict()
    a.update(v=new_node, length_m=total * pos / L, geometry=ops.substring(line, 0, pos))
    b.update(u=new_node, length_m=total * (L - pos) / L, geometry=ops.substring(line, pos, L))
    rest = out.drop(index=out.index[k])
    return (gpd.GeoDataFrame(pd.concat([rest, gpd.GeoDataFrame([a, b], geometry="geometry", crs=out.crs)],
                                       ignore_index=True), geometry="geometry", crs=out.crs), new_node, at)


def _link_gates(out, gate_ids, gate_xy, gate_comp, crossed, closed_ids, next_id, max_m):
    """Open gates of closed compounds that no mapped street passes through (e.g. a gate added in
    the dashboard where the map has no path through the wall): a short path from the nearest
    path inside the compound through the gate to the nearest street outside, when one is within
    ``max_m``. A compound without inside paths needs none (its buildings walk to the gate:
    snap_zoned). The few such gates are linked one by one."""
    links = []
    for gid, comp, p in zip(gate_ids, gate_comp, gate_xy):
        if gid in crossed or comp not in closed_ids:
            continue
        zone = out["zone"].to_numpy()
        geoms = np.asarray(out.geometry.values)
        inside, outside = np.flatnonzero(zone == comp), np.flatnonzero(zone == OUTSIDE)
        if not len(inside) or not len(outside):
            continue
        d_out = shapely.distance(geoms[outside], p)
        ko = int(outside[np.argmin(d_out)])
        if d_out.min() > max_m:
            continue
        out, n_out, at_out = _split_edge(out, ko, p, next_id)
        next_id -= 1
        inside = np.flatnonzero(out["zone"].to_numpy() == comp)   # rows moved by the split
        ki = int(inside[np.argmin(shapely.distance(np.asarray(out.geometry.values)[inside], p))])
        out, n_in, at_in = _split_edge(out, ki, p, next_id)
        next_id -= 1
        gate_node = next_id
        next_id -= 1
        legs = [{"u": n_in, "v": gate_node, "geometry": shapely.LineString([at_in, p]), "zone": comp},
                {"u": gate_node, "v": n_out, "geometry": shapely.LineString([p, at_out]), "zone": OUTSIDE}]
        for leg in legs:
            leg.update(length_m=leg["geometry"].length, highway="footway", name=None, gate_id=str(gid))
        out = gpd.GeoDataFrame(pd.concat([out, gpd.GeoDataFrame(legs, geometry="geometry", crs=out.crs)],
                                         ignore_index=True), geometry="geometry", crs=out.crs)
        links.append((str(gid), str(comp), legs[0]["length_m"], legs[1]["length_m"]))
    return out, pd.DataFrame(links, columns=["gate_id", "compound_id", "inside_m", "outside_m"])


def nearest_boundary_point(compounds: gpd.GeoDataFrame, point, *, crs: str, compound_id: str | None = None,
                           max_m: float | None = None):
    """Where a gate clicked at ``point`` (lon/lat) goes: (compound id, the nearest point on that
    compound's boundary in lon/lat, distance in metres), on ``compound_id`` when given, else on
    the compound whose boundary is nearest; None when there is none (within ``max_m``)."""
    if not len(compounds):
        return None
    c = compounds if compound_id is None else compounds[compounds["id"].astype(str) == str(compound_id)]
    if not len(c):
        return None
    cm = c.to_crs(crs)
    pm = gpd.GeoSeries([point], crs=compounds.crs or 4326).to_crs(crs).iloc[0]
    rings = np.asarray(cm.geometry.boundary.values)
    d = shapely.distance(rings, pm)
    j = int(np.argmin(d))
    if max_m is not None and d[j] > max_m:
        return None
    on = shapely.get_point(shapely.shortest_line(rings[j], pm), 0)
    back = gpd.GeoSeries([on], crs=crs).to_crs(compounds.crs or 4326).iloc[0]
    return str(c["id"].iloc[j]), back, float(d[j])


def zones_of(points, polygons, zone_ids) -> np.ndarray:
    """Zone id of each point: the first polygon containing it, '' for none."""
    pts = np.asarray(points)
    out = np.full(len(pts), OUTSIDE, dtype=object)
    if not len(pts) or not len(polygons):
        return out
    tree = shapely.STRtree(np.asarray(polygons))
    pi, gi = tree.query(pts, predicate="within")
    first = np.unique(pi, return_index=True)[1]
    out[pi[first]] = np.asarray(zone_ids)[gi[first]]
    return out


def compound_zones(geoms: gpd.GeoSeries, compounds: gpd.GeoDataFrame, closed, *, crs: str,
                   anchor: str = "representative") -> np.ndarray:
    """Closed compound id each geometry (building footprint or point) lies in, '' outside."""
    g = geoms.to_crs(crs)
    polys = g.geom_type.isin(["Polygon", "MultiPolygon"]).to_numpy()
    pts = np.asarray(g.values).copy()
    if polys.any():
        pts[polys] = np.asarray(anchor_points(g[polys], "centroid" if anchor == "centroid" else "representative").values)
    c = compounds.to_crs(crs)
    sel = c["id"].astype(str).isin([str(x) for x in closed]).to_numpy()
    return zones_of(pts, np.asarray(c.geometry.values)[sel], c["id"].astype(str).to_numpy()[sel])


def snap_zoned(graph: WalkGraph, geoms: gpd.GeoSeries, zones: np.ndarray, gated: GatedEdges, *,
               anchor: str = "representative", edges: np.ndarray | None = None) -> Snap:
    """Snap each geometry onto edges of its own zone. In a closed compound without mapped inside
    paths the residents walk straight to the nearest open gate of it and on from there (offset =
    footprint to gate + gate to street); with no open gate they stay unsnapped (edge -1)."""
    edge_zone = gated.edges["zone"].to_numpy()
    allowed = np.ones(graph.n_edges, bool)
    if edges is not None:
        allowed[:] = False
        allowed[np.asarray(edges, int)] = True
    k = len(geoms)
    out = Snap(np.full(k, -1), np.full(k, np.inf), np.full(k, np.inf), np.full(k, np.inf),
               np.full(k, None, dtype=object))

    def put(idx, s):
        out.edge[idx], out.offset[idx], out.to_u[idx], out.to_v[idx], out.point[idx] = \
            s.edge, s.offset, s.to_u, s.to_v, s.point

    g = geoms.to_crs(graph.crs)
    for z in pd.unique(zones):
        idx = np.flatnonzero(zones == z)
        cand = np.flatnonzero((edge_zone == z) & allowed)
        if len(cand):
            put(idx, snap(graph, g.iloc[idx], anchor=anchor, edges=cand))
            continue
        gates = gated.open_gates[gated.open_gates["compound_id"] == z]
        outside = np.flatnonzero((edge_zone == OUTSIDE) & allowed)
        if z == OUTSIDE or not len(gates) or not len(outside):
            continue
        gs = snap(graph, gates.geometry, edges=outside)
        pts = g.iloc[idx]
        pts = np.asarray(anchor_points(pts, "centroid" if anchor == "centroid" else "representative").values
                         if pts.geom_type.isin(["Polygon", "MultiPolygon"]).any() else pts.values)
        d = shapely.distance(pts[:, None], np.asarray(gates.geometry.values)[None, :])
        d = np.where(gs.ok[None, :], d, np.inf)
        j = np.argmin(d, axis=1)
        s = gs.take(j)
        put(idx, Snap(s.edge, s.offset + d[np.arange(len(idx)), j], s.to_u, s.to_v, s.point))
    return out
