"""Grid coverage audit -> Plotly traces for the MapLibre `map` subplot (plotly >= 6).

    from geo.coverage import audit_bundle
    from layers.coverage import coverage_traces
    audit = audit_bundle(bundle, plan_id, settings)
    fig.add_traces(coverage_traces(audit, bundle.plan_grids(plan_id), level=2, lang="zh"))

Grids are coloured by households against the band of their level (low / ok / high, one
legend entry each); gaps, overlaps and parts outside the parent are drawn as red hatched
areas with a red outline; building problems as markers. No Dash here.
"""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import plotly.graph_objects as go
import shapely

from geo.validate import KIND_LABELS
from layers.base import geojson, line_coords

BAND_STYLE = {  # status -> (colour, zh, en)
    "low": ("#9ecae1", "户数偏少", "Below band"),
    "ok": ("#a1d99b", "户数适中", "Within band"),
    "high": ("#fc9272", "户数偏多", "Above band"),
}
AREA_KINDS = ("gap", "overlap", "not_nested")
POINT_KINDS = ("unassigned_building", "split_building", "misplaced_building", "invalid_geometry")
PROBLEM_RED = "#d7191c"
AREA_COLOURS = {"gap": "#d7191c", "overlap": "#a50f15", "not_nested": "#e6550d"}
POINT_SYMBOLS = {"unassigned_building": "#d7191c", "split_building": "#ff7f00", "misplaced_building": "#984ea3",
                 "invalid_geometry": "#000000"}


def _label(zh: str, en: str, lang: str) -> str:
    return zh if lang == "zh" else en


def _geojson(ids, geoms) -> dict:
    return geojson(gpd.GeoDataFrame({"id": [str(i) for i in ids]}, geometry=list(geoms), crs=4326))


def hatch_lines(geoms, spacing_m: float = 6.0):
    """45° hatch lines clipped to each polygon (EPSG:4326 in and out), for a hatch-like fill on
    maps that cannot pattern-fill. Loops over the (few) problem polygons."""
    out = []
    for g in geoms:
        if g is None or g.is_empty:
            continue
        minx, miny, maxx, maxy = g.bounds
        lat0 = (miny + maxy) / 2
        dy = spacing_m / 111_000.0
        kx = np.cos(np.radians(lat0))
        # lines y = x*kx + c in degrees (45° on the ground), c spanning the bbox
        c = np.arange(miny - maxx * kx - dy, maxy - minx * kx + dy, dy * 1.4142)
        lines = shapely.linestrings(np.stack([np.stack([np.full_like(c, minx), minx * kx + c], axis=1),
                                              np.stack([np.full_like(c, maxx), maxx * kx + c], axis=1)], axis=1))
        clipped = shapely.intersection(lines, g)
        out.append(shapely.union_all(clipped[~shapely.is_empty(clipped)]))
    return out


def band_traces(grids: gpd.GeoDataFrame, table, level: int = 2, lang: str = "zh", opacity: float = 0.55) -> list:
    """Grids of one level coloured by band status (one Choroplethmap per status, with legend).
    grids: the plan's grids with geometry (EPSG:4326); table: Audit.grids."""
    t = table[table["level"] == level].set_index("id")
    g = grids[grids["level"] == level]
    g = g[g["id"].astype(str).isin(t.index)]
    traces = []
    lo, hi = (t["band_low"].iloc[0], t["band_high"].iloc[0]) if len(t) else (None, None)
    for status, (colour, zh, en) in BAND_STYLE.items():
        sel = g[t.loc[g["id"].astype(str), "band"].to_numpy() == status]
        rng = {"low": f"< {lo}", "ok": f"{lo}–{hi}", "high": f"> {hi}"}[status]
        name = f"{_label(zh, en, lang)} ({rng} {_label('户', 'households', lang)})"
        ids = sel["id"].astype(str).tolist()
        hh = t.loc[ids, "households"].tolist() if ids else []
        traces.append(go.Choroplethmap(
            geojson=_geojson(ids, sel.geometry.values), locations=ids,
            z=[1] * len(ids), colorscale=[[0, colour], [1, colour]], showscale=False, zmin=0, zmax=1,
            marker={"opacity": opacity, "line": {"color": "#555555", "width": 1}},
            name=name, legendgroup=f"band-{status}", showlegend=True,
            text=[f"{i}: {n} {_label('户', 'households', lang)}" for i, n in zip(ids, hh)],
            hovertemplate="%{text}<extra></extra>"))
    return traces


def problem_traces(problems, lang: str = "zh", kinds=AREA_KINDS + POINT_KINDS, hatch_spacing_m: float = 6.0) -> list:
    """Problems with geometry: areas (gap/overlap/not_nested) as translucent red fills with a
    hatch and an outline, building problems as markers at their footprint. One legend entry per kind."""
    problems = [p for p in problems if p.kind in kinds and p.geometry is not None and not p.geometry.is_empty]
    traces = []
    for kind in AREA_KINDS:
        ps = [p for p in problems if p.kind == kind]
        if not ps:
            continue
        colour = AREA_COLOURS[kind]
        name = _label(*KIND_LABELS[kind], lang)
        ids = [f"{kind}-{i}" for i in range(len(ps))]
        traces.append(go.Choroplethmap(
            geojson=_geojson(ids, [p.geometry for p in ps]), locations=ids,
            z=[1] * len(ps), colorscale=[[0, colour], [1, colour]], showscale=False, zmin=0, zmax=1,
            marker={"opacity": 0.3, "line": {"color": colour, "width": 2}}, name=name, legendgroup=kind,
            showlegend=True, text=[p.detail for p in ps], hovertemplate="%{text}<extra></extra>"))
        lon, lat = line_coords(hatch_lines([p.geometry for p in ps], hatch_spacing_m) + [p.geometry for p in ps])
        traces.append(go.Scattermap(lon=lon, lat=lat, mode="lines", line={"color": colour, "width": 1.5},
                                    name=name, legendgroup=kind, showlegend=False, hoverinfo="skip"))
    for kind in POINT_KINDS:
        ps = [p for p in problems if p.kind == kind]
        if not ps:
            continue
        pts = shapely.point_on_surface(np.asarray([p.geometry for p in ps], dtype=object))
        xy = shapely.get_coordinates(pts)
        traces.append(go.Scattermap(lon=xy[:, 0], lat=xy[:, 1], mode="markers",
                                    marker={"size": 11, "color": POINT_SYMBOLS[kind]},
                                    name=_label(*KIND_LABELS[kind], lang), legendgroup=kind, showlegend=True,
                                    text=[p.detail for p in ps], hovertemplate="%{text}<extra></extra>"))
    return traces


def coverage_traces(audit, grids: gpd.GeoDataFrame, level: int = 2, lang: str = "zh") -> list:
    """Band-coloured grids of `level` underneath, then the problems on top."""
    return band_traces(grids, audit.grids, level, lang) + problem_traces(audit.problems, lang)
