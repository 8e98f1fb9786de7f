"""Walking graph from street lines; snapping buildings and service points onto its edges.

The graph is undirected, stored as a symmetric scipy CSR matrix of edge lengths (metres).
Points snap to the nearest point ON an edge (not the nearest node); a snapped point
reaches the edge's end nodes through the partial lengths ``to_u`` / ``to_v``.
"""
from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse import csgraph

from geo.crs import metric_crs

MIN_EDGE_M = 1e-3  # zero-length edges become 1 mm so the sparse matrix keeps them


@dataclass(frozen=True, eq=False)
class WalkGraph:
    """An undirected walking graph. Node index i <-> original node id ``node_ids[i]``."""

    node_ids: np.ndarray      # (n,) original node ids
    node_xy: np.ndarray       # (n, 2) node coordinates in ``crs``
    u: np.ndarray             # (m,) node index of each edge's u end (row order of walk_edges)
    v: np.ndarray             # (m,) node index of each edge's v end
    length: np.ndarray        # (m,) edge length in metres
    geoms: np.ndarray         # (m,) LineStrings in ``crs``
    flipped: np.ndarray       # (m,) True when the geometry runs from v to u
    matrix: sparse.csr_matrix  # (n, n) symmetric, shortest parallel edge kept
    component: np.ndarray     # (n,) component label per node
    largest: int              # label of the largest component
    crs: str                  # the metric CRS of node_xy and geoms
    tree: shapely.STRtree     # spatial index over geoms

    @property
    def n_nodes(self) -> int:
        return len(self.node_ids)

    @property
    def n_edges(self) -> int:
        return len(self.u)

    @property
    def edge_component(self) -> np.ndarray:
        return self.component[self.u] if self.n_edges else np.zeros(0, int)

    def components(self) -> pd.DataFrame:
        """One row per connected component: nodes, edges, km of street, is_largest (largest first)."""
        if not self.n_nodes:
            return pd.DataFrame({"component": [], "nodes": [], "edges": [], "km": [], "is_largest": []})
        labels = np.arange(self.component.max() + 1)
        nodes = np.bincount(self.component, minlength=len(labels))
        edges = np.bincount(self.edge_component, minlength=len(labels))
        km = np.bincount(self.edge_component, weights=self.length, minlength=len(labels)) / 1000
        df = pd.DataFrame({"component": labels, "nodes": nodes, "edges": edges, "km": km,
                           "is_largest": labels == self.largest})
        return df.sort_values(["nodes", "component"], ascending=[False, True]).reset_index(drop=True)

    def report(self) -> dict:
        """Connectivity summary: components, largest component's share, nodes/edges outside it."""
        in_largest = self.component == self.largest
        return {"nodes": self.n_nodes, "edges": self.n_edges,
                "components": int(self.component.max() + 1) if self.n_nodes else 0,
                "largest_nodes": int(in_largest.sum()),
                "nodes_outside_largest": int((~in_largest).sum()),
                "edges_outside_largest": int((self.edge_component != self.largest).sum()),
                "km": float(self.length.sum() / 1000)}


@dataclass(frozen=True, eq=False)
class Snap:
    """Points snapped onto graph edges. ``edge == -1`` marks a point that could not be snapped."""

    edge: np.ndarray    # (k,) edge index, -1 = none (empty geometry or empty graph)
    offset: np.ndarray  # (k,) straight-line metres from the point (or footprint) to the edge
    to_u: np.ndarray    # (k,) metres along the edge from the snapped point to the u node
    to_v: np.ndarray    # (k,) metres along the edge from the snapped point to the v node
    point: np.ndarray   # (k,) snapped points on the edge (graph CRS), None when edge == -1

    def __len__(self) -> int:
        return len(self.edge)

    @property
    def ok(self) -> np.ndarray:
        return self.edge >= 0

    def take(self, idx) -> "Snap":
        return Snap(self.edge[idx], self.offset[idx], self.to_u[idx], self.to_v[idx], self.point[idx])


def build_walk_graph(walk_edges: gpd.GeoDataFrame, crs: str | None = None) -> WalkGraph:
    """Build the graph from walk_edges (u, v, length_m, LineString geometry)."""
    crs = crs or metric_crs(walk_edges)
    edges = walk_edges[walk_edges.geometry.notna() & ~walk_edges.geometry.is_empty]
    geoms = np.asarray(edges.geometry.to_crs(crs).values, dtype=object) if len(edges) else np.empty(0, object)
    node_ids, inv = np.unique(np.concatenate([np.asarray(edges["u"], np.int64), np.asarray(edges["v"], np.int64)]),
                              return_inverse=True)
    m = len(edges)
    u, v = inv[:m], inv[m:]
    geom_len = shapely.length(geoms)
    length = pd.to_numeric(edges["length_m"], errors="coerce").to_numpy(float) if "length_m" in edges else geom_len
    length = np.where(np.isfinite(length) & (length > 0), length, geom_len)
    length = np.maximum(length, MIN_EDGE_M)
    node_xy, flipped = _orient(u, v, geoms, len(node_ids))
    matrix = _symmetric_csr(u, v, length, len(node_ids))
    if len(node_ids):
        _, comp = csgraph.connected_components(matrix, directed=False)
        largest = int(np.argmax(np.bincount(comp)))
    else:
        comp, largest = np.zeros(0, np.int64), -1
    return WalkGraph(node_ids, node_xy, u, v, length, geoms, flipped, matrix, comp, largest, crs,
                     shapely.STRtree(geoms))


def _orient(u, v, geoms, n):
    """Whether each geometry runs v -> u, and node coordinates (end points vote).

    A node's true position recurs across its edges; a node is placed when one candidate
    wins. Edges with no placed end (dead-end pairs, parallel edges) follow the orientation
    of the majority of the other edges.
    """
    if not len(geoms):
        return np.zeros((n, 2)), np.zeros(0, bool)
    s = shapely.get_coordinates(shapely.get_point(geoms, 0))
    e = shapely.get_coordinates(shapely.get_point(geoms, -1))
    cand = pd.DataFrame({"node": np.concatenate([u, v, u, v]),
                         "x": np.concatenate([s[:, 0], e[:, 0], e[:, 0], s[:, 0]]),
                         "y": np.concatenate([s[:, 1], e[:, 1], e[:, 1], s[:, 1]])})
    cand = cand[np.concatenate([np.ones(2 * len(u), bool), u != v, u != v])]
    cand["rx"], cand["ry"] = np.round(cand["x"], 2), np.round(cand["y"], 2)
    votes = (cand.groupby(["node", "rx", "ry"], sort=False)
             .agg(w=("x", "size"), x=("x", "first"), y=("y", "first")).reset_index()
             .sort_values(["node", "w"], ascending=[True, False]))
    top = votes.drop_duplicates("node")
    second = votes[votes.duplicated("node")].drop_duplicates("node").set_index("node")["w"]
    sure = top[top["w"].to_numpy() > second.reindex(top["node"]).fillna(0).to_numpy()]
    xy = np.full((n, 2), np.nan)
    xy[sure["node"].to_numpy()] = sure[["x", "y"]].to_numpy()

    def d(a, b):
        return np.nan_to_num(np.hypot(*(a - b).T), nan=0.0)
    keep, swap = d(s, xy[u]) + d(e, xy[v]), d(e, xy[u]) + d(s, xy[v])
    decided = ~(np.isnan(xy[u, 0]) & np.isnan(xy[v, 0])) & (keep != swap)
    flipped = swap < keep
    majority = bool(flipped[decided].mean() > 0.5) if decided.any() else False
    flipped = np.where(decided, flipped, majority)
    start = np.where(flipped[:, None], e, s)  # the u end of every edge
    stop = np.where(flipped[:, None], s, e)
    missing = np.isnan(xy[:, 0])
    xy[u[missing[u]]] = start[missing[u]]
    missing = np.isnan(xy[:, 0])
    xy[v[missing[v]]] = stop[missing[v]]
    return xy, flipped


def _symmetric_csr(u, v, w, n) -> sparse.csr_matrix:
    """Symmetric CSR with the minimum weight over parallel edges and no self-loops."""
    i, j, d = np.concatenate([u, v]), np.concatenate([v, u]), np.concatenate([w, w])
    keep = i != j
    i, j, d = i[keep], j[keep], d[keep]
    order = np.lexsort((d, j, i))
    i, j, d = i[order], j[order], d[order]
    first = np.ones(len(i), bool)
    first[1:] = (i[1:] != i[:-1]) | (j[1:] != j[:-1])
    return sparse.csr_matrix((d[first], (i[first], j[first])), shape=(n, n))


def anchor_points(geoms: gpd.GeoSeries, how: str = "representative") -> gpd.GeoSeries:
    """Points standing for footprints: 'representative' (a point inside) or 'centroid'."""
    if how == "representative":
        return geoms.representative_point()
    if how == "centroid":
        return geoms.centroid
    raise ValueError(f"unknown anchor {how!r}; use 'representative' or 'centroid'")


def snap(graph: WalkGraph, geoms: gpd.GeoSeries, *, anchor: str = "representative",
         edges: np.ndarray | None = None) -> Snap:
    """Snap geometries to the nearest point on the nearest edge.

    Points snap as they are. Polygons snap from their ``anchor``: 'representative' or
    'centroid' point, or 'footprint' (the footprint's point nearest to the street, 0 m when a
    street crosses it). ``edges`` optionally restricts candidates (e.g. largest component).
    """
    k = len(geoms)
    out_edge = np.full(k, -1, np.int64)
    offset, to_u, to_v = np.full(k, np.inf), np.full(k, np.inf), np.full(k, np.inf)
    point = np.full(k, None, dtype=object)
    if not k or not graph.n_edges:
        return Snap(out_edge, offset, to_u, to_v, point)
    g = geoms.to_crs(graph.crs) if geoms.crs is not None else geoms.set_crs(graph.crs)
    if anchor != "footprint":
        polys = g.geom_type.isin(["Polygon", "MultiPolygon"]).to_numpy()
        g = g.copy()
        if polys.any():
            g[polys] = anchor_points(g[polys], anchor)
    arr = np.asarray(g.values, dtype=object)
    valid = ~(shapely.is_missing(arr) | shapely.is_empty(arr))
    if edges is None:
        tree, edge_ids = graph.tree, np.arange(graph.n_edges)
    else:
        edge_ids = np.asarray(edges, np.int64)
        tree = shapely.STRtree(graph.geoms[edge_ids])
    if not len(edge_ids):
        return Snap(out_edge, offset, to_u, to_v, point)
    (src, hit), dist = tree.query_nearest(arr[valid], return_distance=True, all_matches=False)
    idx = np.flatnonzero(valid)[src]
    e = edge_ids[hit]
    line = graph.geoms[e]
    nearest_on_line = shapely.get_point(shapely.shortest_line(arr[idx], line), 1)
    along = shapely.line_locate_point(line, nearest_on_line)
    glen = shapely.length(line)
    frac = np.where(glen > 0, along / np.where(glen > 0, glen, 1), 0.5)
    frac = np.where(graph.flipped[e], 1 - frac, frac)  # fraction of the way from u to v
    out_edge[idx], offset[idx] = e, dist
    to_u[idx], to_v[idx] = frac * graph.length[e], (1 - frac) * graph.length[e]
    point[idx] = nearest_on_line
    return Snap(out_edge, offset, to_u, to_v, point)


def snap_component(graph: WalkGraph, s: Snap) -> np.ndarray:
    """Component label of each snapped point (-1 when not snapped)."""
    return np.where(s.ok, graph.edge_component[np.maximum(s.edge, 0)] if graph.n_edges else -1, -1)
