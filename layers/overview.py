"""The livelihood map: communities, level-1/level-2 grids, buildings coloured by grid, streets,
service points by type — as Plotly traces with legend entries."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import shapely

from data.catalogue import service_types
from layers.style import GRID_PALETTE

ALL_LAYERS = ("communities", "level1", "level2", "buildings", "streets", "services")


def grid_colors(grids2) -> dict:
    """Colour per level-2 grid, neighbours distinct where possible (greedy colouring in id order)."""
    ids = list(grids2["id"])
    if not ids:
        return {}
    geoms = grids2.geometry.values
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="touches")
    nbrs = pd.Series(b).groupby(a).apply(list).to_dict() if len(a) else {}
    color = {}
    for i, gid in enumerate(ids):
        used = {color.get(ids[j]) for j in nbrs.get(i, [])}
        color[gid] = next((c for c in GRID_PALETTE if c not in used), GRID_PALETTE[i % len(GRID_PALETTE)])
    return color


def service_point_traces(sp, lang: str, types=None, showlegend: bool = True, catalogue=None) -> list:
    out = []
    for st in (catalogue.service_types if catalogue is not None else service_types()):
        if types is not None and st.key not in types:
            continue
        sel = sp[sp["type"] == st.key]
        if not len(sel):
            continue
        xy = shapely.get_coordinates(sel.geometry.values)
        names = sel["name"].fillna("").to_numpy()
        out.append(go.Scattermap(
            lon=xy[:, 0].round(6).tolist(), lat=xy[:, 1].round(6).tolist(), mode="markers", name=f"{st.label(lang)} ({len(sel)})",
            marker={"size": 11, "color": st.color, "opacity": 0.95},
            hovertext=[f"<b>{n or st.label(lang)}</b><br>{st.label(lang)}" for n in names], hoverinfo="text",
            legendgroup="services", showlegend=showlegend))
    return out
