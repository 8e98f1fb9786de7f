"""The livelihood map: communities, level-1/level-2 grids, buildings coloured by grid, streets,
service points by type — as Plotly traces with legend entries."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import shapely

from data.catalogue import service_types
from layers.base import fill_trace, legend_swatch, outline_trace, streets_trace
from layers.style import COMMUNITY_LINE, GRID_PALETTE, LEVEL1_LINE, LEVEL2_LINE
from minsheng.i18n import t

ALL_LAYERS = ("communities", "level1", "level2", "buildings", "streets", "services")
LAYER_ORDER = ("streets", "level2", "buildings", "level1", "communities", "services")  # drawing order, bottom first


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


def overview_traces(bundle, plan_id: str, lang: str, layers=ALL_LAYERS, types=None,
                    building_households: pd.Series | None = None) -> list:
    grids = bundle.plan_grids(plan_id)
    g1 = grids[grids["level"] == 1]
    g2 = grids[grids["level"] == 2].reset_index(drop=True)
    traces = []
    if "streets" in layers:
        traces.append(streets_trace(bundle.walk_edges, t("layer_streets", lang)))
    if "level2" in layers and len(g2):
        hover = [f"<b>{n}</b><br>{t('code', lang)}: {c}" for n, c in zip(g2["name"], g2["code"])]
        traces.append(fill_trace(g2, g2["id"], ["#ffffff"] * len(g2), t("layer_level2", lang), hovertext=hover,
                                 opacity=0.05, line_color=LEVEL2_LINE, line_width=1, showlegend=False,
                                 customdata=g2["id"]))
        traces.append(outline_trace(g2, t("layer_level2", lang), LEVEL2_LINE, 1))
    if "buildings" in layers and len(bundle.buildings):
        b = bundle.buildings
        a = bundle.plan_assignments(plan_id).set_index("building_id")["grid_id"]
        gid = b["id"].map(a)
        colors = grid_colors(g2)
        col = [colors.get(g, "#bbbbbb") for g in gid]
        name2 = dict(zip(g2["id"], g2["name"]))
        hh = building_households.reindex(b["id"]).fillna(0).astype(int).to_numpy() if building_households is not None \
            else np.zeros(len(b), int)
        hover = [f"<b>{n}</b><br>{t('grid', lang)}: {name2.get(g, '—')}<br>{t('households', lang)}: {h}"
                 for n, g, h in zip(b["name"].fillna(""), gid, hh)]
        traces.append(fill_trace(b, b["id"], col, t("legend_buildings", lang), hovertext=hover, opacity=0.85,
                                 line_color="#444", line_width=0.3, showlegend=False,
                                 customdata=gid.fillna("").to_numpy()))
        traces.append(legend_swatch(t("legend_buildings", lang), GRID_PALETTE[0]))
    if "level1" in layers and len(g1):
        traces.append(outline_trace(g1, t("layer_level1", lang), LEVEL1_LINE, 2.5))
    if "communities" in layers and len(bundle.communities):
        traces.append(outline_trace(bundle.communities, t("layer_communities", lang), COMMUNITY_LINE, 4.5))
    if "services" in layers:
        traces += service_point_traces(bundle.service_points, lang, types)
    return traces


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
