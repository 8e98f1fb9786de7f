"""Ten-minute service circle view: circles on the streets, buildings reachable or not,
uncovered households per grid. Results cached per (dataset version, parameters)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from dash import html

from data.catalogue import key_groups, service_type
from geo.network import build_walk_graph
from geo.service_circle import CircleParams, circle_polygons, coverage_shares, service_distances
from layers.base import outline_trace, streets_trace
from layers.service_circle import building_traces, circle_traces, service_point_trace
from layers.style import COMMUNITY_LINE, LEVEL1_LINE
from minsheng.i18n import t


def graph(ctx):
    b = ctx.bundle()
    return ctx.cached("walk_graph", (), lambda: build_walk_graph(b.walk_edges))


def circle_params(minutes: float, speed: float) -> CircleParams:
    """speed > 0: minutes x speed; speed == 0: the GB 50180-2018 distance of that circle."""
    return CircleParams.gb50180(int(minutes)) if speed == 0 else CircleParams(minutes=minutes, speed_m_min=speed)


def distances(ctx, minutes: float, speed: float) -> pd.DataFrame:
    b = ctx.bundle()
    params = circle_params(minutes, speed)
    return ctx.cached("service_distances", (minutes, speed),
                      lambda: service_distances(graph(ctx), b.buildings, b.service_points, params))


def circles(ctx, stype: str, minutes: float, speed: float):
    b = ctx.bundle()
    params = circle_params(minutes, speed)
    sp = b.service_points[b.service_points["type"] == stype]
    return ctx.cached("circles", (stype, minutes, speed), lambda: circle_polygons(graph(ctx), sp, params))


def shares(ctx, plan_id: str, minutes: float, speed: float) -> pd.DataFrame:
    b = ctx.bundle()
    return ctx.cached("circle_shares", (plan_id, minutes, speed), lambda: coverage_shares(
        distances(ctx, minutes, speed), b.plan_assignments(plan_id), b.building_stats, b.plan_grids(plan_id)))


def traces(ctx, p) -> list:
    b = ctx.bundle()
    if not p.stype:
        return [streets_trace(b.walk_edges, t("layer_streets", p.lang))]
    st = service_type(p.stype)
    grids = b.plan_grids(p.plan_id)
    table = distances(ctx, p.minutes, p.speed)
    labels = (t("within_circle", p.lang), t("beyond_circle", p.lang), t("unreachable", p.lang))
    return ([streets_trace(b.walk_edges, t("layer_streets", p.lang))]
            + circle_traces(circles(ctx, p.stype, p.minutes, p.speed), {p.stype: st.color},
                            {p.stype: f"{st.label(p.lang)} · {p.minutes:g} {t('minutes', p.lang)}"})
            + building_traces(b.buildings, table, p.stype, labels=labels)
            + [outline_trace(grids[grids["level"] == 1], t("layer_level1", p.lang), LEVEL1_LINE, 2),
               outline_trace(b.communities, t("layer_communities", p.lang), COMMUNITY_LINE, 4)]
            + [service_point_trace(b.service_points, p.stype, color=st.color, name=st.label(p.lang))])


def _pct(x) -> str:
    return "—" if x is None or not np.isfinite(x) else f"{100 * x:.1f}%"


def panel(ctx, p, user) -> list:
    b = ctx.bundle()
    if not p.stype:
        return [html.P(t("no_service_points", p.lang))]
    st = service_type(p.stype)
    sh = shares(ctx, p.plan_id, p.minutes, p.speed)
    sh = sh[sh["service_type"] == p.stype]
    overall = sh[(sh["scope"] == "all") & (sh["group"] == "all")]
    reach_m = circle_params(p.minutes, p.speed).threshold_m(p.stype)
    rows = [html.Tr([html.Td(t("households", p.lang)), html.Td(f"{int(overall['within'].sum()):,} / "
                                                              f"{int(overall['households'].sum()):,}", className="num"),
                     html.Td(_pct(overall["share"].iloc[0]) if len(overall) else "—", className="num")])]
    kg = sh[(sh["scope"] == "all") & (sh["group"] != "all")].set_index("group")
    for g in key_groups():
        if g.sensitive or g.key not in kg.index:
            continue
        r = kg.loc[g.key]
        rows.append(html.Tr([html.Td(g.label(p.lang)), html.Td(f"{int(r['within'])} / {int(r['households'])}",
                                                               className="num"),
                             html.Td(_pct(r["share"]), className="num")]))
    grids = b.plan_grids(p.plan_id).set_index("id")
    per_grid = sh[(sh["scope"] == "grid") & (sh["group"] == "all")].copy()
    per_grid["uncovered"] = per_grid["households"] - per_grid["within"]
    per_grid = per_grid[per_grid["uncovered"] > 0].sort_values("uncovered", ascending=False)
    grid_rows = [html.Tr([html.Th(t("grid", p.lang)), html.Th(t("uncovered_households", p.lang))])] + [
        html.Tr([html.Td(str(grids["name"].get(gid, gid))), html.Td(int(n), className="num")])
        for gid, n in zip(per_grid["scope_id"], per_grid["uncovered"])]
    return [
        html.H2(f"{st.label(p.lang)} · {p.minutes:g} {t('minutes', p.lang)}", id="circle-title"),
        html.P(t("circle_explain" if p.speed else "circle_explain_gb", p.lang).format(speed=p.speed, reach=reach_m)),
        html.Table(rows, id="circle-shares"),
        html.H3(t("uncovered_by_grid", p.lang)),
        html.Table(grid_rows, id="uncovered-grids") if len(per_grid) else html.P(t("all_covered", p.lang)),
    ]
