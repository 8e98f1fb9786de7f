"""Base map layers for the dashboard (Plotly MapLibre `map` subplot traces)."""
from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import plotly.graph_objects as go
import shapely

from layers.style import MAP_STYLE

DECIMALS = 6


def geojson(gdf: gpd.GeoDataFrame, id_col: str = "id") -> dict:
    """Compact GeoJSON FeatureCollection with feature ids = id_col (coordinates rounded)."""
    geoms = shapely.set_precision(gdf.geometry.values, 10 ** -DECIMALS)
    feats = [{"type": "Feature", "id": str(i), "properties": {}, "geometry": shapely.geometry.mapping(g)}
             for i, g in zip(gdf[id_col], geoms) if g is not None and not g.is_empty]
    return {"type": "FeatureCollection", "features": feats}


def line_coords(geoms) -> tuple[list, list]:
    """lon/lat lists of lines (or polygon boundaries) separated by None, for one Scattermap trace."""
    geoms = np.asarray(list(geoms), dtype=object)
    if len(geoms) == 0:
        return [], []
    tid = shapely.get_type_id(geoms)
    bounds = np.where((tid == 3) | (tid == 6), shapely.boundary(geoms), geoms)  # polygons -> rings
    parts = shapely.get_parts(bounds)
    parts = shapely.get_parts(parts)  # multi -> single lines
    coords, idx = shapely.get_coordinates(parts, return_index=True)
    if len(coords) == 0:
        return [], []
    breaks = np.flatnonzero(np.diff(idx)) + 1
    lon = np.insert(np.round(coords[:, 0], DECIMALS).astype(object), breaks, None)
    lat = np.insert(np.round(coords[:, 1], DECIMALS).astype(object), breaks, None)
    return lon.tolist(), lat.tolist()


def fill_trace(gdf, ids, colors, name: str, hovertext=None, opacity=0.55, line_color="#ffffff",
               line_width=0.5, showlegend=True, customdata=None) -> go.Choroplethmap:
    """Polygons filled with one colour each (discrete colours through a stepped colour scale)."""
    colors = list(colors)
    uniq = list(dict.fromkeys(colors)) or ["#cccccc"]
    z = [uniq.index(c) for c in colors]
    n = len(uniq)
    scale = []
    for k, c in enumerate(uniq):
        lo, hi = k / n, (k + 1) / n
        scale += [[lo, c], [hi, c]]
    return go.Choroplethmap(
        geojson=geojson(gdf.assign(_id=list(ids)), "_id"), locations=[str(i) for i in ids], z=z,
        zmin=-0.5 if n == 1 else 0, zmax=n - 1 if n > 1 else 0.5, colorscale=scale, showscale=False,
        marker={"opacity": opacity, "line": {"color": line_color, "width": line_width}},
        hovertext=hovertext, hoverinfo="text" if hovertext is not None else "skip", name=name,
        showlegend=showlegend, customdata=customdata)


def view_of(bounds, width_px: int = 900, height_px: int = 650) -> dict:
    minx, miny, maxx, maxy = bounds
    dx = max(maxx - minx, 1e-4)
    dy = max(maxy - miny, 1e-4) / max(math.cos(math.radians((miny + maxy) / 2)), 0.1)
    zoom = min(math.log2(360 * width_px / (512 * dx)), math.log2(360 * height_px / (512 * dy)))
    return {"center": {"lon": (minx + maxx) / 2, "lat": (miny + maxy) / 2}, "zoom": round(zoom - 0.1, 2)}


def base_figure(bounds, traces, uirevision="map", legend_title: str = "") -> go.Figure:
    fig = go.Figure(traces)
    fig.update_layout(
        map={"style": MAP_STYLE, **view_of(bounds)}, margin={"l": 0, "r": 0, "t": 0, "b": 0},  # the legend pushes the right margin out
        uirevision=uirevision, clickmode="event",
        # the legend sits under the map (never over it), in rows
        legend={"orientation": "h", "x": 0, "y": -0.005, "xanchor": "left", "yanchor": "top",
                "bgcolor": "rgba(255,255,255,0.9)", "bordercolor": "#bbb", "borderwidth": 0,
                "title": {"text": legend_title}, "font": {"size": 11}, "itemsizing": "constant"},
        paper_bgcolor="#f4f1ea")
    return fig


def highlight_trace(gdf, color: str = "#ffd400", width: float = 5) -> go.Scattermap:
    """A bright outline around the selected grid."""
    lon, lat = line_coords(gdf.geometry.values)
    return go.Scattermap(lon=lon, lat=lat, mode="lines", line={"color": color, "width": width},
                         name="selected", showlegend=False, hoverinfo="skip")
