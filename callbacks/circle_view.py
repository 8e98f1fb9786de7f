"""Ten-minute service circle view: circles on the streets, buildings reachable or not,
uncovered households per grid; closed compounds crossed at gates; "why outside" (click a
building); "where to add" (siting scenario). Results cached per (dataset version, parameters)."""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from dash import html

from geo.network import build_walk_graph
from geo.service_circle import CircleParams, circle_polygons, coverage_shares, service_distances

from callbacks import life_circle_model as lcm
from layers.life_circle import cuts_trace, gates_trace, path_trace, proposed_trace, walls_trace
from layers.service_circle import building_traces, circle_traces, service_point_trace
from layers.style import COMMUNITY_LINE, LEVEL1_LINE
from minsheng.i18n import t
from callbacks.params import PANEL_ROWS, more_rows


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


def circles(ctx, stype: str, minutes: float, speed: float, closed=(), shut=(), bbox=None):
    """The type's circle (EPSG:4326); with bbox, exact inside it and built only from the points
    that can reach it (walking distance is never shorter than the straight line)."""
    b = ctx.bundle()
    params = circle_params(minutes, speed)
    mask = b.service_points["type"].to_numpy() == stype
    if bbox is not None:
        pad = params.threshold_m(stype) / 80_000.0  # metres -> degrees, generous at these latitudes
        xy = shapely.get_coordinates(b.service_points.geometry.values)
        mask &= ((xy[:, 0] >= bbox[0] - pad) & (xy[:, 0] <= bbox[2] + pad)
                 & (xy[:, 1] >= bbox[1] - pad) & (xy[:, 1] <= bbox[3] + pad))
    sel = np.flatnonzero(mask)
    net = lcm.network(ctx, closed, shut)
    return ctx.cached("circles", (stype, minutes, speed, closed, shut, bbox), lambda: circle_polygons(
        net.graph, b.service_points.iloc[sel], params, point_snap=net.psnap.take(sel)))


def shares(ctx, plan_id: str, minutes: float, speed: float, closed=(), shut=(), stype=None) -> pd.DataFrame:
    """Shares within the circle by scope and group, for one service type (or all), cached per
    (dataset version, plan, parameters)."""
    b = ctx.bundle()
    return ctx.cached("circle_shares", (plan_id, minutes, speed, closed, shut, stype), lambda: coverage_shares(
        distances(ctx, minutes, speed, closed, shut), b.plan_assignments(plan_id), b.building_stats,
        b.plan_grids(plan_id), types=None if stype is None else [stype]))


def gate_traces(ctx, p) -> list:
    """Walls of the closed compounds, their open / shut gates and where walls cut streets."""
    if not p.closed:
        return []
    net = lcm.network(ctx, p.closed, p.shut)
    cg = lcm.compounds_gates(ctx)
    gates = cg.gates[cg.gates["compound_id"].isin(list(p.closed))]
    return ([walls_trace(net.gated.walls, t("layer_walls", p.lang)), cuts_trace(net.gated.cuts, t("wall_cut", p.lang))]
            + gates_trace(gates, p.shut, (t("gate_open", p.lang), t("gate_shut", p.lang))))


def traces(ctx, p, vp) -> list:
    """Zoomed out: the share of households within the circle per community / level-2 grid.
    At street zoom: the circles, buildings within / beyond / unreachable, the points, the gates."""
    from callbacks import lod
    b = ctx.bundle()
    if not p.stype:
        return lod.streets(ctx, vp, t("layer_streets", p.lang))
    st = ctx.settings.catalogue().service_type(p.stype)
    if vp.tier != "building":
        sh = shares(ctx, p.plan_id, p.minutes, p.speed, p.closed, p.shut, p.stype)
        sh = sh[sh["group"] == "all"]
        out = lod.share_areas(ctx, p.plan_id, vp, sh, f"{t('share_within', p.lang)} · {st.label(p.lang)}", p.lang)
        out += lod.outlines(ctx, p.plan_id, vp, "level1", t("layer_level1", p.lang), LEVEL1_LINE, 1.5)
        pos = lod.points_in_view(ctx, vp)
        if pos is not None:
            out.append(service_point_trace(b.service_points.iloc[pos], p.stype, color=st.color, name=st.label(p.lang)))
        return out
    table = distances(ctx, p.minutes, p.speed, p.closed, p.shut)
    labels = (t("within_circle", p.lang), t("beyond_circle", p.lang), t("unreachable", p.lang))
    pos = lod.building_positions(ctx, vp)
    circ = circles(ctx, p.stype, p.minutes, p.speed, p.closed, p.shut, vp.bbox)
    circ = circ.assign(geometry=circ.to_crs(4326).geometry.clip_by_rect(*vp.bbox).values).set_crs(4326, allow_override=True)
    return (lod.streets(ctx, vp, t("layer_streets", p.lang))
            + circle_traces(circ, {p.stype: st.color},
                            {p.stype: f"{st.label(p.lang)} · {p.minutes:g} {t('minutes', p.lang)}"})
            + building_traces(b.buildings.iloc[pos], table, p.stype, labels=labels)
            + lod.outlines(ctx, p.plan_id, vp, "level1", t("layer_level1", p.lang), LEVEL1_LINE, 2)
            + lod.outlines(ctx, p.plan_id, vp, "communities", t("layer_communities", p.lang), COMMUNITY_LINE, 4)
            + gate_traces(ctx, p)
            + [service_point_trace(b.service_points.iloc[lod.points_in_view(ctx, vp)], p.stype, color=st.color,
                                   name=st.label(p.lang))]
            + scenario_traces(ctx, p))


def _reach(p) -> float:
    return circle_params(p.minutes, p.speed).threshold_m(p.stype)


def _scenario(ctx, p):
    s = lcm.parse_scenario(ctx, p.siting)
    if not s or s.get("stype") != p.stype:
        return None, None
    return s, lcm.scenario(ctx, p.stype, _reach(p), int(s["k"]), s["weight"], p.closed, p.shut, s.get("capacity"),
                           s.get("points"))


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
    gain = "site_serves" if res.capacity else "site_gain"
    hover = [f"{name} {i + 1} · {t(gain, p.lang).format(n=g)}" for i, g in enumerate(res.gain_by_choice)]
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
    sh = shares(ctx, p.plan_id, p.minutes, p.speed, p.closed, p.shut, p.stype)
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
        for gid, n in zip(per_grid["scope_id"][:PANEL_ROWS], per_grid["uncovered"][:PANEL_ROWS])]
    return [
        html.H2(f"{st.label(p.lang)} · {p.minutes:g} {t('minutes', p.lang)}", id="circle-title"),
        html.P(t("circle_explain" if p.speed else "circle_explain_gb", p.lang).format(speed=p.speed, reach=reach_m)),
        html.Table(rows, id="circle-shares"),
        html.H3(t("why_head", p.lang)),
        why_panel(ctx, p, st),
        *scenario_panel(ctx, p, st),
        html.H3(t("uncovered_by_grid", p.lang)),
        html.Table(grid_rows, id="uncovered-grids") if len(per_grid) else html.P(t("all_covered", p.lang)),
        more_rows(len(per_grid), p.lang),
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


def _num(x) -> str:
    return f"{x:,.0f}"


def scenario_panel(ctx, p, st) -> list:
    """Today vs the scenario in figures: households and persons within reach (and the weighting
    key group), their shares, a bar chart, and the points with what each serves."""
    from dash import dcc
    from layers.life_circle import site_compare_figure
    s, run = _scenario(ctx, p)
    if not run:
        return []
    res, _ = run
    wlabel = t("site_households", p.lang) if s["weight"] == "households" else next(
        (g.label(p.lang) for g in ctx.settings.catalogue().key_groups if g.key == s["weight"]), s["weight"])
    title = t("site_title", p.lang).format(k=int(s["k"]), stype=st.label(p.lang))
    if s.get("points") is not None:
        title += t("site_adjusted", p.lang)
    head = [html.H3(title, id="site-title")]
    if s.get("name"):
        head.append(html.P(t("site_loaded", p.lang).format(name=s["name"]), className="hint", id="site-name"))
    if s.get("capacity"):
        head.append(html.P(t("site_capacity_note", p.lang).format(c=int(s["capacity"]), w=wlabel), className="hint",
                           id="site-capacity"))
    if not len(res.chosen):
        return head + [html.P(t("site_nothing", p.lang))]
    b = ctx.bundle()
    fig = lcm.scenario_figures(ctx, res)

    def row(label, today, scen, share=False):
        if share:
            cells = [_pct(today), _pct(scen), f"{100 * (scen - today):+.1f} pp" if np.isfinite(scen - today) else "—"]
        else:
            cells = [_num(today), _num(scen), f"{scen - today:+,.0f}"]
        return html.Tr([html.Td(label)] + [html.Td(c, className="num") for c in cells])

    hh, pp = fig["households"], fig["persons"]
    rows = [html.Tr([html.Th(""), html.Th(t("site_today", p.lang)), html.Th(t("site_scenario", p.lang)),
                     html.Th(t("site_change", p.lang))]),
            row(t("site_covered", p.lang).format(w=t("site_households", p.lang)), hh["before"], hh["after"]),
            row(t("site_share", p.lang), hh["share_before"], hh["share_after"], share=True),
            row(t("site_covered", p.lang).format(w=t("persons", p.lang)), pp["before"], pp["after"]),
            row(t("site_share_persons", p.lang), pp["share_before"], pp["share_after"], share=True)]
    cats = [t("site_households", p.lang), t("persons", p.lang)]
    today, scen = [hh["share_before"], pp["share_before"]], [hh["share_after"], pp["share_after"]]
    if s["weight"] != "households":
        rows += [row(t("site_covered", p.lang).format(w=wlabel), res.covered_before, res.covered_after),
                 row(t("site_share_of", p.lang).format(w=wlabel), res.share_before, res.share_after, share=True)]
        cats.append(wlabel)
        today.append(res.share_before)
        scen.append(res.share_after)
    chart = dcc.Graph(id="site-chart", config={"displayModeBar": False, "staticPlot": True},
                      figure=site_compare_figure(cats, [0 if not np.isfinite(v) else v for v in today],
                                                 [0 if not np.isfinite(v) else v for v in scen],
                                                 (t("site_today", p.lang), t("site_scenario", p.lang)),
                                                 t("site_chart_title", p.lang)))
    gain_key = "site_serves" if s.get("capacity") else "site_gain"
    picks = [html.Tr([html.Td(f"{t('site_proposed', p.lang)} {i + 1}"),
                      html.Td(_building_name(b.buildings.iloc[c])),
                      html.Td(t(gain_key, p.lang).format(n=g), className="num")])
             for i, (c, g) in enumerate(zip(res.chosen, res.gain_by_choice))]
    return head + [html.Table(rows, id="site-compare"), chart, html.Table(picks, id="site-picks"),
                   html.P(t("site_note", p.lang), className="hint")]


def register(app, ctx):
    """The siting scenario's callbacks (propose, adjust on the map, save, reload) are in
    callbacks/siting_view.py; the gate editor's in callbacks/gates_view.py."""
    from callbacks import gates_view, siting_view
    siting_view.register(app, ctx)
    gates_view.register(app, ctx)
