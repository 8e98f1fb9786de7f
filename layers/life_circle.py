"""Life-circle check, gates, walking paths and siting proposals as Plotly map traces. No Dash here."""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import shapely

from layers.base import geojson, line_coords

OK_COLOR, ONE_COLOR, MANY_COLOR = "#27ae60", "#f39c12", "#c0392b"
WALL_COLOR = "#d35400"
GATE_OPEN, GATE_SHUT = "#1e8449", "#c0392b"
SELECTED_GATE = "#f1c40f"
PATH_COLOR = "#1f4e9c"
PROPOSED_COLOR = "#8e44ad"


def compliance_traces(buildings: gpd.GeoDataFrame, state: pd.DataFrame, labels, hover) -> list:
    """Footprints coloured by requirements failed in one tier: none / one / two or more.

    state: building_id, met, requirements, failed (building_tiers rows of one tier); hover:
    building_id -> text."""
    s = state.set_index("building_id")
    b = buildings[["id", "geometry"]]
    b = b[b["id"].isin(s.index)]
    fails = (b["id"].map(s["requirements"]) - b["id"].map(s["met"])).to_numpy()
    cls = np.where(fails == 0, 0, np.where(fails == 1, 1, 2))
    out = []
    for c, (label, color) in enumerate(zip(labels, (OK_COLOR, ONE_COLOR, MANY_COLOR))):
        part = b[cls == c]
        if not len(part):
            continue
        out.append(go.Choroplethmap(
            geojson=geojson(part.to_crs(4326), "id"), locations=part["id"].tolist(), z=np.zeros(len(part)),
            featureidkey="id", colorscale=[[0, color], [1, color]], showscale=False, marker_opacity=0.8,
            marker_line_width=0, name=label, legendgroup=f"lc-{c}", text=[hover.get(i, i) for i in part["id"]],
            hovertemplate="%{text}<extra></extra>"))
    return out


WALL_VERTEX_M = 5.0   # walls are drawn with a vertex every 5 m: a click on a wall lands within 2.5 m


def walls_trace(walls: gpd.GeoDataFrame, name: str) -> go.Scattermap:
    """Walls (rings in a metric CRS), densified so that a click on one (placing a gate) gives a
    point close to where the user clicked (a line trace reports its nearest vertex)."""
    dense = walls.set_geometry(shapely.segmentize(np.asarray(walls.geometry.values), WALL_VERTEX_M), crs=walls.crs) \
        if len(walls) and walls.crs is not None and walls.crs.is_projected else walls
    lon, lat = line_coords(dense.to_crs(4326).geometry.values) if len(walls) else ([], [])
    return go.Scattermap(lon=lon, lat=lat, mode="lines", line={"color": WALL_COLOR, "width": 3}, name=name,
                         hoverinfo="skip")


def gates_trace(gates: gpd.GeoDataFrame, shut, names: tuple[str, str]) -> list:
    g = gates.to_crs(4326)
    is_shut = g["id"].isin(list(shut)).to_numpy()
    out = []
    for flag, name, color in ((False, names[0], GATE_OPEN), (True, names[1], GATE_SHUT)):
        p = g[is_shut == flag]
        if not len(p):
            continue
        out.append(go.Scattermap(lon=p.geometry.x, lat=p.geometry.y, mode="markers", name=name,
                                 marker={"size": 11, "color": color, "symbol": "circle"},
                                 text=p["id"], customdata=[f"gate:{i}" for i in p["id"]],
                                 hovertemplate="%{text}<extra></extra>"))
    return out


def selected_gate_trace(gate: gpd.GeoDataFrame, name: str) -> go.Scattermap:
    """A halo under the gate being edited (one row, any CRS); add it before the gate markers."""
    g = gate.to_crs(4326)
    return go.Scattermap(lon=g.geometry.x, lat=g.geometry.y, mode="markers", name=name, showlegend=False,
                         marker={"size": 22, "color": SELECTED_GATE, "opacity": 0.6}, hoverinfo="skip")


def cuts_trace(cuts: gpd.GeoDataFrame, name: str) -> go.Scattermap:
    c = cuts.to_crs(4326) if len(cuts) else cuts
    return go.Scattermap(lon=c.geometry.x if len(c) else [], lat=c.geometry.y if len(c) else [], mode="markers",
                         name=name, marker={"size": 8, "color": WALL_COLOR}, hoverinfo="skip")


def path_trace(path, crs: str, start, end, name: str, text: str) -> list:
    """The walking path (graph CRS LineString) plus dotted connectors to the building and the point."""
    out = []
    if path is not None:
        line = gpd.GeoSeries([path], crs=crs).to_crs(4326).iloc[0]
        xy = shapely.get_coordinates(line)
        out.append(go.Scattermap(lon=xy[:, 0], lat=xy[:, 1], mode="lines", line={"color": PATH_COLOR, "width": 5},
                                 name=name, text=[text] * len(xy), hovertemplate="%{text}<extra></extra>"))
    pts = gpd.GeoSeries([p for p in (start, end) if p is not None], crs=crs).to_crs(4326)
    if len(pts):
        out.append(go.Scattermap(lon=pts.x, lat=pts.y, mode="markers", showlegend=False, hoverinfo="skip",
                                 marker={"size": 12, "color": PATH_COLOR}))
    return out


def proposed_trace(points: gpd.GeoDataFrame, name: str, labels, hover) -> go.Scattermap:
    """Proposed new points (their number in the hover and the panel: map text would need glyphs
    fetched from an outside font server); a click on one reports customdata ["site:<n>", hover]
    (the point to move)."""
    p = points.to_crs(4326)
    return go.Scattermap(lon=p.geometry.x, lat=p.geometry.y, mode="markers", name=name,
                         marker={"size": 20, "color": PROPOSED_COLOR},
                         customdata=[[f"site:{i + 1}", h] for i, h in enumerate(hover)],
                         hovertemplate="%{customdata[1]}<extra></extra>")


TODAY_COLOR = "#95a5a6"


def site_compare_figure(categories, today, scenario, names: tuple[str, str], title: str) -> go.Figure:
    """Grouped bars, today vs the scenario, of shares (0..1) per category (households, persons,
    a key group)."""
    fig = go.Figure([go.Bar(x=list(categories), y=[100 * v for v in today], name=names[0], marker_color=TODAY_COLOR,
                            text=[f"{100 * v:.1f}%" for v in today], textposition="outside"),
                     go.Bar(x=list(categories), y=[100 * v for v in scenario], name=names[1],
                            marker_color=PROPOSED_COLOR, text=[f"{100 * v:.1f}%" for v in scenario],
                            textposition="outside")])
    fig.update_layout(barmode="group", height=260, margin={"l": 36, "r": 8, "t": 36, "b": 28},
                      title={"text": title, "font": {"size": 13}}, yaxis={"range": [0, 110], "ticksuffix": "%"},
                      legend={"orientation": "h", "y": -0.18}, paper_bgcolor="rgba(0,0,0,0)",
                      plot_bgcolor="rgba(0,0,0,0)")
    return fig
