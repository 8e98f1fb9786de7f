"""Service-circle results as Plotly map traces (``map`` subplot, MapLibre). No Dash here."""
from __future__ import annotations


import geopandas as gpd
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from layers.base import geojson

WITHIN_COLOR = "#2c7fb8"  # blue: never a service type's colour
BEYOND_COLOR = "#e67e22"
UNREACHABLE_COLOR = "#7f8c8d"


def _flat(color: str) -> list:
    return [[0, color], [1, color]]


def circle_traces(circles: gpd.GeoDataFrame, colors: dict | None = None, labels: dict | None = None,
                  opacity: float = 0.3) -> list[go.Choroplethmap]:
    """One semi-transparent Choroplethmap per row of circle_polygons(..., by='type')."""
    colors, labels = colors or {}, labels or {}
    out = []
    c = circles.reset_index(drop=True).assign(key=lambda d: d.index.astype(str))
    for row in c.itertuples():
        if row.geometry is None or row.geometry.is_empty:
            continue
        t = row.service_type
        color = colors.get(t, "#2980b9")
        out.append(go.Choroplethmap(
            geojson=geojson(c.iloc[[row.Index]].to_crs(4326), "key"), locations=[row.key], z=[1],
            featureidkey="id", colorscale=_flat(color), showscale=False, marker_opacity=opacity,
            marker_line_color=color, marker_line_width=1, name=labels.get(t, t), legendgroup=f"circle-{t}",
            showlegend=True, hovertemplate=f"{labels.get(t, t)}<br>≤ {row.reach_m:.0f} m<extra></extra>"))
    return out


def building_traces(buildings: gpd.GeoDataFrame, table: pd.DataFrame, service_type: str,
                    labels: tuple[str, str, str] = ("within", "beyond", "unreachable"),
                    opacity: float = 0.8) -> list[go.Choroplethmap]:
    """Building footprints coloured within / beyond / unreachable for one service type."""
    t = table[table["service_type"] == service_type].set_index("building_id")
    b = buildings[["id", "geometry"]].copy()
    walk = b["id"].map(t["walk_m"]).to_numpy(float)
    within = b["id"].map(t["within"]).fillna(False).to_numpy(bool)
    state = np.where(within, 0, np.where(np.isfinite(walk), 1, 2))
    out = []
    for s, (label, color) in enumerate(zip(labels, (WITHIN_COLOR, BEYOND_COLOR, UNREACHABLE_COLOR))):
        part = b[state == s]
        if not len(part):
            continue
        w = walk[state == s]
        text = [f"{i}<br>{d:.0f} m" if np.isfinite(d) else f"{i}<br>—" for i, d in zip(part["id"], w)]
        out.append(go.Choroplethmap(
            geojson=geojson(part.to_crs(4326), "id"), locations=part["id"].tolist(), z=np.zeros(len(part)),
            featureidkey="id", colorscale=_flat(color), showscale=False, marker_opacity=opacity,
            marker_line_width=0, name=label, legendgroup=f"buildings-{s}", text=text, showlegend=True,
            hovertemplate="%{text}<extra></extra>"))
    return out


def service_point_trace(service_points: gpd.GeoDataFrame, service_type: str | None = None,
                        color: str = "#c0392b", name: str = "service points") -> go.Scattermap:
    """Service points (optionally of one type) as map markers."""
    p = service_points if service_type is None else service_points[service_points["type"] == service_type]
    p = p.to_crs("EPSG:4326")
    return go.Scattermap(lon=p.geometry.x, lat=p.geometry.y, mode="markers", name=name,
                         marker={"size": 10, "color": color}, text=p.get("name"),
                         hovertemplate="%{text}<extra></extra>")
