"""Why a building is outside: its walking path to the nearest point of a type (scipy shortest
path predecessors from the super-source), or the reason there is none."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from scipy.sparse import csgraph

from geo.network import Snap, WalkGraph
from geo.service_circle import _substrings, _with_super_source


@dataclass(frozen=True)
class PathExplanation:
    status: str              # within | beyond | unreachable | unsnapped | no_points
    walk_m: float            # inf unless a path exists
    threshold_m: float
    source: int              # index (into the sources Snap) of the nearest point, -1 if none
    path: object             # LineString (graph CRS) building -> point, None if none
    component: int           # component label of the building's edge, -1 if unsnapped
    component_nodes: int     # size of that component
    nodes: tuple = ()        # graph node indices along the path, building side first

    @property
    def shortfall_m(self) -> float:
        return max(0.0, self.walk_m - self.threshold_m) if np.isfinite(self.walk_m) else np.inf


def explain(graph: WalkGraph, sources: Snap, target: Snap, threshold_m: float) -> PathExplanation:
    """Path from one snapped target (a 1-element Snap) to its nearest source."""
    if not len(target) or not target.ok[0]:
        return PathExplanation("unsnapped", np.inf, threshold_m, -1, None, -1, 0)
    te, tu, tv, toff = int(target.edge[0]), float(target.to_u[0]), float(target.to_v[0]), float(target.offset[0])
    comp = int(graph.component[graph.u[te]])
    comp_nodes = int((graph.component == comp).sum())
    if not sources.ok.any():
        return PathExplanation("no_points", np.inf, threshold_m, -1, None, comp, comp_nodes)
    n = graph.n_nodes
    a = _with_super_source(graph, sources)
    dist, pred = csgraph.dijkstra(a, directed=True, indices=n, return_predecessors=True)
    best, route = np.inf, None
    for end, along in ((graph.u[te], tu), (graph.v[te], tv)):
        if dist[end] + along < best:
            best, route = dist[end] + along, ("node", int(end), along)
    ok = np.flatnonzero(sources.ok)
    same = ok[sources.edge[ok] == te]   # a point on the building's own edge: straight along it
    for s in same:
        d = sources.offset[s] + abs(sources.to_u[s] - tu)
        if d < best:
            best, route = d, ("edge", int(s), 0.0)
    if not np.isfinite(best):
        return PathExplanation("unreachable", np.inf, threshold_m, -1, None, comp, comp_nodes)
    walk = best + toff
    start = target.point[0]
    if route[0] == "edge":
        s = route[1]
        lo, hi = sorted((tu, float(sources.to_u[s])))
        piece = _substrings(graph, np.array([te]), np.array([lo]), np.array([hi]))
        line = _join([start, *piece, sources.point[s]])
        return PathExplanation(_status(walk, threshold_m), walk, threshold_m, int(s), line, comp, comp_nodes)
    node = route[1]
    nodes = [node]
    while pred[nodes[-1]] not in (n, -9999):
        nodes.append(int(pred[nodes[-1]]))
    entry = nodes[-1]
    # which source enters the graph at `entry` with the path's weight
    cand = ok[(graph.u[sources.edge[ok]] == entry) | (graph.v[sources.edge[ok]] == entry)]
    w = np.where(graph.u[sources.edge[cand]] == entry, sources.to_u[cand], sources.to_v[cand]) + sources.offset[cand]
    s = int(cand[np.argmin(np.abs(w - dist[entry]))])
    pieces = [_piece_to_node(graph, te, tu, node)]
    pieces += [_edge_between(graph, a_, b_) for a_, b_ in zip(nodes[:-1], nodes[1:])]
    pieces.append(_piece_to_node(graph, int(sources.edge[s]), float(sources.to_u[s]), entry, reverse=True))
    line = _join([start, *pieces, sources.point[s]])
    return PathExplanation(_status(walk, threshold_m), walk, threshold_m, s, line, comp, comp_nodes, tuple(nodes))


def _status(walk, threshold):
    return "within" if walk <= threshold + 1e-9 else "beyond"


def _piece_to_node(graph, e, pos_u, node, reverse=False):
    """Edge e from a point pos_u metres from its u end to one of its end nodes."""
    if node == graph.u[e]:
        lo, hi = 0.0, pos_u
    else:
        lo, hi = pos_u, float(graph.length[e])
    p = _substrings(graph, np.array([e]), np.array([lo]), np.array([hi]))
    if not len(p):
        return shapely.Point(graph.node_xy[node])
    line = p[0]
    # orient: start at the point's end when going to the node (reverse=False)
    starts_at_node = np.allclose(shapely.get_coordinates(line)[0], graph.node_xy[node], atol=1e-6)
    if starts_at_node != reverse:
        line = shapely.reverse(line)
    return line


def _edge_between(graph, a, b):
    """The shortest edge's geometry from node a to node b, oriented a -> b."""
    cand = np.flatnonzero(((graph.u == a) & (graph.v == b)) | ((graph.u == b) & (graph.v == a)))
    e = cand[np.argmin(graph.length[cand])]
    line = graph.geoms[e]
    runs_u_to_v = not graph.flipped[e]
    if (graph.u[e] == a) != runs_u_to_v:
        line = shapely.reverse(line)
    return line


def _join(parts) -> shapely.LineString:
    xy = []
    for p in parts:
        if p is None:
            continue
        c = shapely.get_coordinates(p)
        xy.extend(c.tolist())
    out = [xy[0]]
    for q in xy[1:]:
        if q != out[-1]:
            out.append(q)
    if len(out) == 1:
        out.append(out[0])
    return shapely.LineString(out)
