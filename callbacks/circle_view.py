"""Ten-minute service circle view: circles on the streets, buildings reachable or not,
uncovered households per grid; closed compounds crossed at gates; "why outside" (click a
building); "where to add" (siting scenario). Results cached per (dataset version, parameters)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import json

import geopandas as gpd
from dash import Input, Output, State, ctx as dash_ctx, html, no_update

from geo.network import build_walk_graph
from geo.service_circle import CircleParams, circle_polygons, coverage_shares, service_distances
from layers.base import outline_trace, streets_trace
from callbacks import ids
from callbacks import life_circle_model as lcm
from layers.life_circle import cuts_trace, gates_trace, path_trace, proposed_trace, walls_trace
from layers.service_circle import building_traces, circle_traces, service_point_trace
from layers.style import COMMUNITY_LINE, LEVEL1_LINE
from minsheng.i18n import t


def graph(ctx):
    b = ctx.bundle()
    return ctx.cached("walk_graph", (), lambda: build_walk_graph(b.walk_edges))


def circle_params(minutes: float, speed: float) -> CircleParams:
    """speed > 0: minutes x speed; speed == 0: the GB 50180-2018 distance of that circle."""
    return CircleParams.gb50180(int(minutes)) if speed == 0 else CircleParams(minutes=minutes, speed_m_min=speed)


def distances(ctx, minutes: float, speed: float, closed=(), shut=()) -> pd.DataFrame:
    b = ctx.bundle()
    params = circle_params(minutes, speed)
    net = lcm.network(ctx, closed, shut)
    return ctx.cached("service_distances", (minutes, speed, closed, shut), lambda: service_distances(
        net.graph, b.buildings, b.service_points, params, building_snap=net.bsnap, point_snap=net.psnap))


def circles(ctx, stype: str, minutes: float, speed: float, closed=(), shut=()):
    b = ctx.bundle()
    params = circle_params(minutes, speed)
    sel = np.flatnonzero(b.service_points["type"].to_numpy() == stype)
    net = lcm.network(ctx, closed, shut)
    return ctx.cached("circles", (stype, minutes, speed, closed, shut), lambda: circle_polygons(
        net.graph, b.service_points.iloc[sel], params, point_snap=net.psnap.take(sel)))


def shares(ctx, plan_id: str, minutes: float, speed: float, closed=(), shut=()) -> pd.DataFrame:
    b = ctx.bundle()
    return ctx.cached("circle_shares", (plan_id, minutes, speed, closed, shut), lambda: coverage_shares(
        distances(ctx, minutes, speed, closed, shut), b.plan_assignments(plan_id), b.building_stats,
        b.plan_grids(plan_id)))


def gate_traces(ctx, p) -> list:
    """Walls of the closed compounds, their open / shut gates and where walls cut streets."""
    if not p.closed:
        return []
    net = lcm.network(ctx, p.closed, p.shut)
    cg = lcm.compounds_gates(ctx)
    gates = cg.gates[cg.gates["compound_id"].isin(list(p.closed))]
    return ([walls_trace(net.gated.walls, t("layer_walls", p.lang)), cuts_trace(net.gated.cuts, t("wall_cut", p.lang))]
            + gates_trace(gates, p.shut, (t("gate_open", p.lang), t("gate_shut", p.lang))))


def traces(ctx, p) -> list:
    b = ctx.bundle()
    if not p.stype:
        return [streets_trace(b.walk_edges, t("layer_streets", p.lang))]
    st = ctx.settings.catalogue().service_type(p.stype)
    grids = b.plan_grids(p.plan_id)
    table = distances(ctx, p.minutes, p.speed, p.closed, p.shut)
    labels = (t("within_circle", p.lang), t("beyond_circle", p.lang), t("unreachable", p.lang))
    return ([streets_trace(b.walk_edges, t("layer_streets", p.lang))]
            + circle_traces(circles(ctx, p.stype, p.minutes, p.speed, p.closed, p.shut), {p.stype: st.color},
                            {p.stype: f"{st.label(p.lang)} · {p.minutes:g} {t('minutes', p.lang)}"})
            + building_traces(b.buildings, table, p.stype, labels=labels)
            + [outline_trace(grids[grids["level"] == 1], t("layer_level1", p.lang), LEVEL1_LINE, 2),
               outline_trace(b.communities, t("layer_communities", p.lang), COMMUNITY_LINE, 4)]
            + gate_traces(ctx, p)
            + [service_point_trace(b.service_points, p.stype, color=st.color, name=st.label(p.lang))]
            + scenario_traces(ctx, p))


def _reach(p) -> float:
    return circle_params(p.minutes, p.speed).threshold_m(p.stype)


def _scenario(ctx, p):
    s = lcm.parse_scenario(p.siting)
    if not s or s.get("stype") != p.stype:
        return None, None
    return s, lcm.scenario(ctx, p.stype, _reach(p), int(s["k"]), s.get("weight", "households"), p.closed, p.shut)


def scenario_traces(ctx, p) -> list:
    s, run = _scenario(ctx, p)
    if not run:
        return []
    res, _ = run
    if not len(res.chosen):
        return []
    b = ctx.bundle()
    pts = gpd.GeoDataFrame({"id": [f"new-{i + 1}" for i in range(len(res.chosen))], "type": p.stype},
                           geometry=b.buildings.geometry.iloc[res.chosen].representative_point().values,
                           crs=b.buildings.crs)
    net = lcm.network(ctx, p.closed, p.shut)
    circ = circle_polygons(net.graph, pts, circle_params(p.minutes, p.speed), point_snap=net.bsnap.take(res.chosen))
    name = t("site_proposed", p.lang)
    labels = [f"{i + 1}" for i in range(len(res.chosen))]
    hover = [f"{name} {i + 1} · {t('site_gain', p.lang).format(n=g)}" for i, g in enumerate(res.gain_by_choice)]
    return (circle_traces(circ, {p.stype: "#8e44ad"}, {p.stype: f"{name} · {p.minutes:g} {t('minutes', p.lang)}"},
                          opacity=0.2)
            + [proposed_trace(pts, name, labels, hover)])


def path_traces(ctx, p) -> list:
    """The clicked building's walking path to the nearest point of the type (extra trace)."""
    if not p.stype:
        return []
    r = lcm.explanation(ctx, p.building, p.stype, _reach(p), p.closed, p.shut)
    if not r:
        return []
    ex, _, _ = r
    b = ctx.bundle()
    net = lcm.network(ctx, p.closed, p.shut)
    start = b.buildings.to_crs(net.graph.crs).geometry[b.buildings["id"] == p.building].representative_point()
    start = start.iloc[0] if len(start) else None
    end = None
    if ex.source >= 0:
        pts = b.service_points[b.service_points["type"] == p.stype].to_crs(net.graph.crs)
        end = pts.geometry.iloc[ex.source]
    text = f"{p.building} · {ex.walk_m:.0f} m" if np.isfinite(ex.walk_m) else p.building
    return path_trace(ex.path, net.graph.crs, start, end, t("layer_path", p.lang), text)


def _pct(x) -> str:
    return "—" if x is None or not np.isfinite(x) else f"{100 * x:.1f}%"


def panel(ctx, p, user) -> list:
    b = ctx.bundle()
    if not p.stype:
        return [html.P(t("no_service_points", p.lang))]
    cat = ctx.settings.catalogue()
    st = cat.service_type(p.stype)
    sh = shares(ctx, p.plan_id, p.minutes, p.speed, p.closed, p.shut)
    sh = sh[sh["service_type"] == p.stype]
    overall = sh[(sh["scope"] == "all") & (sh["group"] == "all")]
    reach_m = circle_params(p.minutes, p.speed).threshold_m(p.stype)
    rows = [html.Tr([html.Td(t("households", p.lang)), html.Td(f"{int(overall['within'].sum()):,} / "
                                                              f"{int(overall['households'].sum()):,}", className="num"),
                     html.Td(_pct(overall["share"].iloc[0]) if len(overall) else "—", className="num")])]
    kg = sh[(sh["scope"] == "all") & (sh["group"] != "all")].set_index("group")
    for g in cat.key_groups:
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
        html.H3(t("why_head", p.lang)),
        why_panel(ctx, p, st),
        *scenario_panel(ctx, p, st),
        html.H3(t("uncovered_by_grid", p.lang)),
        html.Table(grid_rows, id="uncovered-grids") if len(per_grid) else html.P(t("all_covered", p.lang)),
    ]


def _building_name(row) -> str:
    return next((v for v in (row.get("name"), row.get("address")) if isinstance(v, str) and v), str(row["id"]))


def why_panel(ctx, p, st):
    label = st.label(p.lang)
    if not p.building:
        return html.P(t("why_hint", p.lang).format(stype=label), className="hint", id="why-outside")
    r = lcm.explanation(ctx, p.building, p.stype, _reach(p), p.closed, p.shut)
    if not r:
        return html.P(t("why_hint", p.lang).format(stype=label), className="hint", id="why-outside")
    ex, open_d, comp = r
    b = ctx.bundle()
    row = b.buildings[b.buildings["id"] == p.building].iloc[0]
    name = _building_name(row)
    lines = []
    if ex.status == "within":
        lines.append(t("why_within", p.lang).format(b=name, d=ex.walk_m, stype=label, r=ex.threshold_m))
    elif ex.status == "beyond":
        lines.append(t("why_beyond", p.lang).format(b=name, d=ex.walk_m, stype=label, r=ex.threshold_m,
                                                    s=ex.shortfall_m))
    elif ex.status == "no_points":
        lines.append(t("why_no_points", p.lang).format(stype=label))
    elif comp and ex.status in ("unsnapped", "unreachable"):
        cg = lcm.compounds_gates(ctx)
        names = dict(zip(cg.compounds["id"], cg.compounds["name"].fillna("")))
        shut = [g for g in cg.gates.loc[cg.gates["compound_id"] == comp, "id"] if g in set(p.shut)]
        lines.append(t("why_shut", p.lang).format(b=name, c=names.get(comp) or comp, gates=", ".join(shut) or "—"))
    elif ex.status == "unsnapped":
        lines.append(t("why_unsnapped", p.lang).format(b=name))
    else:
        lines.append(t("why_cutoff", p.lang).format(b=name, n=ex.component_nodes, stype=label))
    if open_d is not None and np.isfinite(open_d) and (not np.isfinite(ex.walk_m) or open_d < ex.walk_m - 1):
        lines.append(t("why_gate", p.lang).format(d=open_d))
    return html.Div([html.P(x) for x in lines], id="why-outside")


def scenario_panel(ctx, p, st) -> list:
    s, run = _scenario(ctx, p)
    if not run:
        return []
    res, w = run
    wlabel = t("site_households", p.lang) if s.get("weight") in (None, "", "households") else next(
        (g.label(p.lang) for g in ctx.settings.catalogue().key_groups if g.key == s.get("weight")), s.get("weight"))
    head = html.H3(t("site_title", p.lang).format(k=int(s["k"]), stype=st.label(p.lang)), id="site-title")
    if not len(res.chosen):
        return [head, html.P(t("site_nothing", p.lang))]
    b = ctx.bundle()
    rows = [html.Tr([html.Th(""), html.Th(t("site_today", p.lang)), html.Th(t("site_scenario", p.lang)),
                     html.Th(t("site_change", p.lang))]),
            html.Tr([html.Td(t("site_covered", p.lang).format(w=wlabel)), html.Td(f"{res.covered_before:,.0f}",
                                                                                  className="num"),
                     html.Td(f"{res.covered_after:,.0f}", className="num"),
                     html.Td(f"+{res.covered_after - res.covered_before:,.0f}", className="num")]),
            html.Tr([html.Td(t("site_share", p.lang)), html.Td(_pct(res.share_before), className="num"),
                     html.Td(_pct(res.share_after), className="num"),
                     html.Td(f"+{100 * (res.share_after - res.share_before):.1f} pp", className="num")])]
    picks = [html.Tr([html.Td(f"{t('site_proposed', p.lang)} {i + 1}"),
                      html.Td(_building_name(b.buildings.iloc[c])),
                      html.Td(t("site_gain", p.lang).format(n=g), className="num")])
             for i, (c, g) in enumerate(zip(res.chosen, res.gain_by_choice))]
    return [head, html.Table(rows, id="site-compare"), html.Table(picks, id="site-picks"),
            html.P(t("site_note", p.lang), className="hint")]


def register(app, ctx):
    @app.callback(Output(ids.SITING, "data"), Input(ids.BTN_SITE, "n_clicks"), Input(ids.BTN_SITE_CLEAR, "n_clicks"),
                  State(ids.CIRCLE_TYPE, "value"), State(ids.SITE_K, "value"), State(ids.SITE_WEIGHT, "value"),
                  prevent_initial_call=True)
    def propose(_n, _clear, stype, k, weight):
        if dash_ctx.triggered_id == ids.BTN_SITE_CLEAR:
            return None
        try:
            k = int(k)
        except (TypeError, ValueError):
            return no_update
        if not stype or not 1 <= k <= 20:
            return no_update
        return json.dumps({"stype": stype, "k": k, "weight": weight or "households"}, sort_keys=True)
