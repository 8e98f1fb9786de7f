"""The map and the side panel for every view (overview, coverage, service circle)."""
from __future__ import annotations

from dash import ALL, ClientsideFunction, Input, Output, State, ctx as dash_ctx, no_update

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


# The inputs every view reads, by name (the names of read_params' arguments).
PARAMS = {"view": Input(ids.VIEW, "value"), "layers": Input(ids.LAYERS, "value"),
          "stypes": Input(ids.STYPES, "value"), "plan_id": Input(ids.PLAN, "value"), "lang": Input(ids.LANG, "data"),
          "selected": Input(ids.SELECTED_GRID, "data"), "level": Input(ids.COV_LEVEL, "value"),
          "stype": Input(ids.CIRCLE_TYPE, "value"), "minutes": Input(ids.CIRCLE_MINUTES, "value"),
          "speed": Input(ids.CIRCLE_SPEED, "value"), "state": Input(ids.PLANNER_STATE, "data"),
          "selection": Input(ids.PLANNER_SELECTION, "data"), "compare": Input(ids.PLANNER_COMPARE, "value"),
          "tier": Input(ids.LC_TIER, "value"), "profile": Input(ids.LC_PROFILE, "value"),
          "closed": Input(ids.GATED_COMPOUNDS, "value"), "shut": Input(ids.SHUT_GATES, "value"),
          "building": Input(ids.CIRCLE_BUILDING, "data"), "siting": Input(ids.SITING, "data")}
OVERLAY_INPUTS = frozenset({ids.SELECTED_GRID, ids.PLANNER_SELECTION, ids.CIRCLE_BUILDING})
OVERLAY_SLOTS = 5  # the last traces of every map: selection, path, highlight (a patch replaces only these)


def _dicts(traces) -> list:
    return [tr if isinstance(tr, dict) else tr.to_plotly_json() for tr in traces]


def base_traces(ctx, p: ViewParams, vp) -> list:
    """The view's traces for the viewport (tier and extent), built once per (version, params, viewport)."""
    base = p.without_selection()
    return ctx.cached("figure", (base, vp), lambda: _dicts(VIEWS[p.view].traces(ctx, base, vp)))


def overlays(ctx, p: ViewParams) -> list:
    """The selection, the clicked building's path and the selected grid's outline, padded to
    OVERLAY_SLOTS so that a change of selection is a patch of these slots only."""
    from layers.lod import empty
    b = ctx.bundle()
    out = [planner_view.selection_trace(ctx, p.selection)] if p.selection else []
    if p.building:
        out += circle_view.path_traces(ctx, p)
    if p.selected:
        grids = b.plan_grids(p.plan_id)
        sel = grids[grids["id"] == p.selected]
        if not len(sel):
            sel = b.communities[b.communities["id"] == p.selected]
        if len(sel):
            out.append(highlight_trace(sel))
    out = _dicts(out)[:OVERLAY_SLOTS]
    return out + [empty() for _ in range(OVERLAY_SLOTS - len(out))]


def layout(ctx, p: ViewParams, focus=None) -> dict:
    from callbacks.lod import data_bounds
    lay = ctx.cached("layout", (p.plan_id,), lambda: base_figure(
        data_bounds(ctx), [], uirevision=p.plan_id).to_plotly_json()["layout"])
    lay = dict(lay, uirevision=f"{p.plan_id}|{focus}")
    if focus:
        lay["map"] = dict(lay["map"], **view_of(focus))
    if p.view == "planner":
        lay["dragmode"] = "lasso"
    return lay


def figure(ctx, p: ViewParams, focus=None, viewport=None) -> dict:
    """The map figure as a plain dict for the viewport (whole area when None): the view's
    traces at the tier that fits (geo/lod), then the overlay slots."""
    from callbacks.lod import resolve
    vp = resolve(ctx, p.plan_id, viewport, focus)
    return {"data": base_traces(ctx, p, vp) + overlays(ctx, p), "layout": layout(ctx, p, focus)}


def _key(p: ViewParams, focus) -> str:
    import hashlib
    return hashlib.sha1(repr((p.without_selection(), focus)).encode()).hexdigest()[:16]


def answer(ctx, p: ViewParams, triggered: set, focus=None, viewport=None, loaded=None):
    """(figure or patch, loaded): a change of selection patches the overlay slots; a pan or zoom
    that stays in the extent and tier held sends nothing; a pan beyond it replaces the data only
    (the view stays where the user put it); anything else is a new figure."""
    from dash import Patch
    from callbacks.lod import read_viewport, resolve
    from geo.lod import inside
    focus = tuple(focus) if focus else None
    key = _key(p, focus)
    same = isinstance(loaded, dict) and loaded.get("key") == key and isinstance(loaded.get("n"), int)
    if same and triggered and triggered <= OVERLAY_INPUTS:
        patch = Patch()
        for i, tr in enumerate(overlays(ctx, p)):
            patch["data"][loaded["n"] + i] = tr
        return patch, no_update
    use_focus = focus if (ids.FOCUS in triggered or read_viewport(viewport) is None) else None
    vp = resolve(ctx, p.plan_id, None if use_focus else viewport, use_focus)
    held = {"key": key, "tier": vp.tier, "extent": list(vp.bbox), "zoom": vp.zoom}
    if same and triggered == {ids.VIEWPORT}:
        shown = read_viewport(viewport)
        if vp.tier == loaded.get("tier") and shown and isinstance(loaded.get("extent"), list) \
                and inside(shown[0], loaded["extent"]):
            return no_update, dict(loaded, zoom=vp.zoom)
        data = base_traces(ctx, p, vp)
        patch = Patch()
        patch["data"] = data + overlays(ctx, p)
        return patch, dict(held, n=len(data))
    data = base_traces(ctx, p, vp)
    return {"data": data + overlays(ctx, p), "layout": layout(ctx, p, focus)}, dict(held, n=len(data))


def register(app, ctx):
    @app.callback([Output(cid, "style") for cid in CONTROL_IDS.values()], Input(ids.VIEW, "value"))
    def show_controls(view):
        view = "overview" if view in (None, "admin", "import") else view
        return [{"display": "block" if v == view else "none"} for v in CONTROL_IDS]

    @app.callback(Output(ids.CONTROLS_GATES, "style"), Input(ids.VIEW, "value"))
    def show_gate_controls(view):
        return {"display": "block" if view in ("circle", "lifecircle") else "none"}

    @app.callback(output=[Output(ids.MAP, "figure"), Output(ids.LOADED, "data")],
                  inputs={"params": PARAMS, "focus": Input(ids.FOCUS, "data"), "viewport": Input(ids.VIEWPORT, "data")},
                  state={"loaded": State(ids.LOADED, "data")})
    def draw(params, focus, viewport, loaded):
        p = read_params(ctx, **params)
        triggered = {t["prop_id"].rsplit(".", 1)[0] for t in dash_ctx.triggered if t.get("prop_id", ".") != "."}
        return answer(ctx, p, triggered, focus, viewport, loaded)

    app.clientside_callback(ClientsideFunction("minsheng", "viewport"), Output(ids.VIEWPORT, "data"),
                            Input(ids.MAP, "relayoutData"), State(ids.LOADED, "data"), prevent_initial_call=True)

    @app.callback(Output(ids.PANEL, "children"), inputs=PARAMS)
    def panel(**params):
        p = read_params(ctx, **params)
        return VIEWS[p.view].panel(ctx, p, current_user(ctx))

    @app.callback(Output(ids.CIRCLE_BUILDING, "data"), Input(ids.MAP, "clickData"), State(ids.VIEW, "value"),
                  State(ids.CLICK_MODE, "value"),
                  prevent_initial_call=True)
    def click_building(click, view, mode):
        if view != "circle" or mode not in (None, "inspect") or not click or not click.get("points"):
            return no_update  # other click modes move a proposed site or a gate (callbacks/gates_view)
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
        b = ctx.bundle()
        return gid if gid in set(b.grids["id"]) or gid in set(b.communities["id"]) else no_update

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
