"""The map and the side panel for every view (overview, coverage, service circle)."""
from __future__ import annotations

from dash import ALL, Input, Output, State, ctx as dash_ctx, no_update

from callbacks import (admin_view, circle_view, coverage_view, ids, import_view, lifecircle_view, overview,
                       planner_view)
from callbacks.auth import current_user
from callbacks.errors import BadInput
from minsheng.i18n import t
from callbacks.params import ViewParams
from layers.base import base_figure, highlight_trace, view_of

VIEWS = {"overview": overview, "coverage": coverage_view, "circle": circle_view, "lifecircle": lifecircle_view,
         "planner": planner_view, "import": import_view, "admin": admin_view}
CONTROL_IDS = {"overview": ids.CONTROLS_OVERVIEW, "coverage": ids.CONTROLS_COVERAGE, "circle": ids.CONTROLS_CIRCLE,
               "lifecircle": ids.CONTROLS_LIFECIRCLE, "planner": ids.CONTROLS_PLANNER}


def _number(v, default, low, high, field, lang):
    if v is None or v == "":
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise BadInput(t("bad_number", lang).format(field=t(field, lang), low=low, high=high))
    try:
        x = float(v)
    except ValueError:
        raise BadInput(t("bad_number", lang).format(field=t(field, lang), low=low, high=high)) from None
    if not (low <= x <= high):  # also refuses nan
        raise BadInput(t("bad_number", lang).format(field=t(field, lang), low=low, high=high))
    return x


def _text(v, field, lang, allow_none=True, limit=200):
    if v is None and allow_none:
        return None
    if not isinstance(v, str) or len(v) > limit:
        raise BadInput(t("bad_value", lang).format(field=t(field, lang)))
    return v


def _texts(v, lang) -> tuple:
    if v is None:
        return ()
    if not isinstance(v, (list, tuple)) or len(v) > 100_000 or not all(isinstance(x, str) for x in v):
        raise BadInput(t("bad_value", lang).format(field=t("field_list", lang)))
    return tuple(v)


def read_params(ctx, view, layers, stypes, plan_id, lang, selected, level, stype, minutes, speed,
                state=None, selection=None, compare=None, tier=None, profile=None, closed=None, shut=None,
                building=None, siting=None) -> ViewParams:
    """The view's parameters from the controls, checked: a malformed value (an unknown view,
    minutes as text or negative, a dict as grid id, an unknown plan) raises BadInput (-> 400 with
    its message in the UI language), never a server error."""
    lang = lang if lang in ("zh", "en") else "zh"
    view = view or "overview"
    if not isinstance(view, str) or view not in VIEWS:
        raise BadInput(t("bad_view", lang).format(value=str(view)[:40]))
    b = ctx.bundle()
    plan_id = _text(plan_id, "plan", lang) or b.adopted_plan_id()
    if plan_id is not None and plan_id not in set(b.plans["id"].astype(str)):
        raise BadInput(t("bad_plan", lang))
    selected = _text(selected, "field_grid", lang)
    compare = _text(compare, "plan", lang)
    stype = _text(stype, "service_types", lang)
    if state is not None and not isinstance(state, dict):
        raise BadInput(t("bad_value", lang).format(field=t("tab_planner", lang)))
    lv = _number(level, 2, 1, 2, "field_level", lang)
    planner = view == "planner"
    edits = planner_view.active_edits(state) if planner and state and state.get("plan_id") == plan_id else "[]"
    return ViewParams(view=view, plan_id=plan_id, lang=lang,
                      layers=_texts(layers, lang), stypes=tuple(sorted(_texts(stypes, lang))), level=int(lv),
                      stype=stype or "", minutes=_number(minutes, 10.0, 1, 60, "field_minutes", lang),
                      speed=_number(speed, 80.0, 0, 200, "field_speed", lang),
                      selected=None if planner else (selected or None), edits=edits,
                      selection=_texts(selection, lang) if planner else (), compare=(compare or "") if planner else "",
                      tier=_text(tier, "lc_tier", lang) or "10min", profile=_text(profile, "lc_profile", lang) or "general",
                      closed=tuple(sorted(_texts(closed, lang))), shut=tuple(sorted(_texts(shut, lang))),
                      building=(_text(building, "layer_buildings", lang) or "") if view == "circle" else "",
                      siting=(_text(siting, "site_head", lang, limit=2000) or "") if view == "circle" else "")


PARAM_INPUTS = [Input(ids.VIEW, "value"), Input(ids.LAYERS, "value"), Input(ids.STYPES, "value"),
                Input(ids.PLAN, "value"), Input(ids.LANG, "data"), Input(ids.SELECTED_GRID, "data"),
                Input(ids.COV_LEVEL, "value"), Input(ids.CIRCLE_TYPE, "value"), Input(ids.CIRCLE_MINUTES, "value"),
                Input(ids.CIRCLE_SPEED, "value"), Input(ids.PLANNER_STATE, "data"),
                Input(ids.PLANNER_SELECTION, "data"), Input(ids.PLANNER_COMPARE, "value"),
                Input(ids.LC_TIER, "value"), Input(ids.LC_PROFILE, "value"), Input(ids.GATED_COMPOUNDS, "value"),
                Input(ids.SHUT_GATES, "value"), Input(ids.CIRCLE_BUILDING, "data"), Input(ids.SITING, "data")]


def figure(ctx, p: ViewParams, focus=None) -> dict:
    """The map figure as a plain dict: the view's base figure is built (and validated by
    plotly) once per (dataset version, parameters); selection and focus are added on a copy."""
    b = ctx.bundle()
    base = p.without_selection()
    fig = ctx.cached("figure", (base,), lambda: {
        "data": [tr.to_plotly_json() for tr in VIEWS[p.view].traces(ctx, base)],
        "layout": ctx.cached("layout", (p.plan_id,), lambda: base_figure(
            b.buildings.total_bounds, [], uirevision=p.plan_id).to_plotly_json()["layout"])})
    extra = [planner_view.selection_trace(ctx, p.selection)] if p.selection else []
    if p.building:
        extra += circle_view.path_traces(ctx, p)
    if p.selected:
        grids = b.plan_grids(p.plan_id)
        sel = grids[grids["id"] == p.selected]
        if len(sel):
            extra.append(highlight_trace(sel))
    layout = dict(fig["layout"], uirevision=f"{p.plan_id}|{focus}")
    if focus:
        layout["map"] = dict(layout["map"], **view_of(focus))
    if p.view == "planner":
        layout["dragmode"] = "lasso"
    return {"data": list(fig["data"]) + [tr.to_plotly_json() for tr in extra], "layout": layout}


def register(app, ctx):
    @app.callback([Output(cid, "style") for cid in CONTROL_IDS.values()], Input(ids.VIEW, "value"))
    def show_controls(view):
        view = "overview" if view in (None, "admin", "import") else view
        return [{"display": "block" if v == view else "none"} for v in CONTROL_IDS]

    @app.callback(Output(ids.CONTROLS_GATES, "style"), Input(ids.VIEW, "value"))
    def show_gate_controls(view):
        return {"display": "block" if view in ("circle", "lifecircle") else "none"}

    @app.callback(Output(ids.MAP, "figure"), *PARAM_INPUTS, Input(ids.FOCUS, "data"))
    def draw(*args):
        p = read_params(ctx, *args[:-1])
        return figure(ctx, p, tuple(args[-1]) if args[-1] else None)

    @app.callback(Output(ids.PANEL, "children"), *PARAM_INPUTS)
    def panel(*args):
        p = read_params(ctx, *args)
        return VIEWS[p.view].panel(ctx, p, current_user(ctx))

    @app.callback(Output(ids.CIRCLE_BUILDING, "data"), Input(ids.MAP, "clickData"), State(ids.VIEW, "value"),
                  prevent_initial_call=True)
    def click_building(click, view):
        if view != "circle" or not click or not click.get("points"):
            return no_update
        bid = click["points"][0].get("location")
        return bid if bid in set(ctx.bundle().buildings["id"]) else no_update

    @app.callback(Output(ids.SELECTED_GRID, "data"), Input(ids.MAP, "clickData"), prevent_initial_call=True)
    def select_grid(click):
        if not click or not click.get("points"):
            return no_update
        pt = click["points"][0]
        gid = pt.get("customdata") or pt.get("location")
        if isinstance(gid, list):
            gid = gid[0] if gid else None
        grids = ctx.bundle().grids
        return gid if gid in set(grids["id"]) else no_update

    @app.callback(Output(ids.FOCUS, "data"), Input({"type": ids.PROBLEM, "index": ALL}, "n_clicks"),
                  State(ids.PLAN, "value"), prevent_initial_call=True)
    def zoom_to_problem(clicks, plan_id):
        trig = dash_ctx.triggered_id
        if not trig or not any(clicks or ()):
            return no_update
        bounds = coverage_view.problem_bounds(ctx, plan_id or ctx.bundle().adopted_plan_id(), trig["index"])
        if bounds is None:
            return no_update
        pad = 0.0008
        return [bounds[0] - pad, bounds[1] - pad, bounds[2] + pad, bounds[3] + pad]
