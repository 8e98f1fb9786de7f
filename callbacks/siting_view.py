"""Siting scenario of the circle view: propose "add k points of type T" (optionally with a
capacity per new point), adjust it on the map (click mode "move a proposed site": click the
numbered site, then the building to move it to; the scenario is re-scored), save it under a
name in the store (planners and administrators, checked on the server), list and reload saved
ones. The scenario itself travels as JSON in ids.SITING (life_circle_model.parse_scenario);
the figures are computed in callbacks/circle_view.scenario_panel.
"""
from __future__ import annotations

import math

import numpy as np
from dash import Input, Output, State, ctx as dash_ctx, dcc, html, no_update

from callbacks import ids
from callbacks.widgets import dropdown
from callbacks import life_circle_model as lcm
from callbacks.gates_view import click_location, custom_tag, first_point
from minsheng.i18n import t

BUILDING_CLICK_MAX_M = 80.0   # a click on a street moves the site to the nearest building this close


def saved_options(ctx, lang) -> list:
    """The saved scenarios, newest first, for the reload list."""
    from data.catalogue import service_types
    labels = {s.key: s.label(lang) for s in service_types()}
    sc = ctx.store.scenarios()
    return [{"label": f"{n} · {labels.get(st, st)} ×{int(k)} · {str(ts or '')[:10]}", "value": i}
            for i, n, st, k, ts in zip(sc["id"][::-1], sc["name"][::-1], sc["service_type"][::-1], sc["k"][::-1],
                                       sc["created_at"][::-1])]


def pick_options(k: int, lang) -> list:
    return [{"label": f"{t('site_proposed', lang)} {i}", "value": i} for i in range(1, int(k) + 1)]


def controls(ctx, lang, user) -> list:
    from data.catalogue import key_groups
    weights = [{"label": t("site_households", lang), "value": "households"}] + [
        {"label": g.label(lang), "value": g.key} for g in key_groups() if not g.sensitive]
    can = user.can("plan")
    return [html.H3(t("site_head", lang)),
            html.Label(t("site_k", lang)),
            dcc.Input(id=ids.SITE_K, type="number", min=1, max=lcm.MAX_NEW_POINTS, step=1, value=3,
                      style={"width": "60px"}),
            html.Label(t("site_weight", lang)),
            dropdown(lang, id=ids.SITE_WEIGHT, options=weights, value="households", clearable=False),
            html.Label(t("site_capacity", lang)),
            dcc.Input(id=ids.SITE_CAPACITY, type="number", min=1, max=lcm.MAX_CAPACITY, step=1, value=None,
                      placeholder=t("site_no_limit", lang), style={"width": "110px"}),
            html.Button(t("site_button", lang), id=ids.BTN_SITE, className="btn primary"),
            html.Button(t("site_clear", lang), id=ids.BTN_SITE_CLEAR, className="btn"),
            html.Label(t("site_pick", lang), className="hint"),
            dropdown(lang, id=ids.SITE_PICK, options=[], value=None, clearable=True),
            html.Div(style={} if can else {"display": "none"}, children=[
                html.Label(t("site_name", lang)),
                dcc.Input(id=ids.SITE_NAME, type="text", maxLength=80, value="", style={"width": "100%"}),
                html.Button(t("site_save", lang), id=ids.BTN_SITE_SAVE, className="btn")]),
            html.Label(t("site_saved", lang)),
            dropdown(lang, id=ids.SITE_SAVED, options=saved_options(ctx, lang), value=None, clearable=True),
            html.Button(t("site_load", lang), id=ids.BTN_SITE_LOAD, className="btn"),
            html.Div(id=ids.SITE_MSG, className="message")]


# -- helpers ---------------------------------------------------------------------

def _int(v, low, high):
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        return None
    try:
        x = float(v)
    except ValueError:
        return None
    if not math.isfinite(x) or x != int(x) or not low <= x <= high:
        return None
    return int(x)


def _reach(ctx, stype, minutes, speed) -> float:
    from callbacks.circle_view import circle_params
    m = minutes if isinstance(minutes, (int, float)) and not isinstance(minutes, bool) and 1 <= minutes <= 60 else 10
    v = speed if isinstance(speed, (int, float)) and not isinstance(speed, bool) and 0 <= speed <= 200 \
        else ctx.settings.walk_speed_m_min
    return circle_params(float(m), float(v)).threshold_m(stype)


def _ids(v) -> tuple:
    return tuple(sorted(x for x in v if isinstance(x, str))) if isinstance(v, list) else ()


def current_points(ctx, s, minutes, speed, closed, shut) -> list:
    """The scenario's points as building ids (solved now when the scenario has none yet)."""
    if s.get("points") is not None:
        return list(s["points"])
    res, _ = lcm.scenario(ctx, s["stype"], _reach(ctx, s["stype"], minutes, speed), s["k"], s["weight"],
                          _ids(closed), _ids(shut), s.get("capacity"))
    return [str(x) for x in ctx.bundle().buildings["id"].to_numpy()[res.chosen]]


def target_building(ctx, pt) -> str | None:
    """The building a click points at: the clicked footprint, else the nearest to the click."""
    import geopandas as gpd
    from geo.crs import metric_crs
    b = ctx.bundle().buildings
    loc = pt.get("location") if pt else None
    if isinstance(loc, str) and loc in set(b["id"]):
        return loc
    at = click_location(ctx, pt)
    if at is None or not len(b):
        return None
    crs = metric_crs(b)
    d = b.geometry.to_crs(crs).distance(gpd.GeoSeries([at], crs=4326).to_crs(crs).iloc[0]).to_numpy()
    j = int(np.argmin(d))
    return str(b["id"].iloc[j]) if d[j] <= BUILDING_CLICK_MAX_M else None


# -- callbacks -------------------------------------------------------------------

def scenario_edit(ctx, trig, click, stype, k, weight, capacity, raw, mode, pick, minutes, speed, closed, shut, saved,
                  view, lang):
    """Propose / clear / move a point / reload. Returns (siting, pick options, pick value, message,
    type, minutes, speed, k, weight, capacity, closed, shut) — no_update where nothing changes."""
    rest = (no_update,) * 8
    if trig == ids.BTN_SITE_CLEAR:
        return (None, [], None, "") + rest
    if trig == ids.BTN_SITE:
        kk = _int(k, 1, lcm.MAX_NEW_POINTS)
        cap = None if capacity in (None, "") else _int(capacity, 1, lcm.MAX_CAPACITY)
        if not isinstance(stype, str) or not stype or kk is None or (capacity not in (None, "") and cap is None):
            return (no_update, no_update, no_update, t("site_bad_input", lang).format(n=lcm.MAX_NEW_POINTS)) + rest
        s = {"stype": stype, "k": kk, "weight": weight if isinstance(weight, str) and weight else "households",
             "capacity": cap}
        return (lcm.dump_scenario(s), pick_options(kk, lang), None, "") + rest
    if trig == ids.BTN_SITE_LOAD:
        row = ctx.store.scenario(saved) if isinstance(saved, str) and len(saved) <= 64 else None
        if row is None:
            return (no_update, no_update, no_update, t("site_pick_saved", lang)) + rest
        cg = lcm.compounds_gates(ctx)
        s = {"stype": row["service_type"], "k": int(row["k"]), "weight": row["weight"] or "households",
             "capacity": None if row["capacity"] is None else int(row["capacity"]), "points": list(row["points"]),
             "name": row["name"]}
        known = set(ctx.bundle().buildings["id"])
        lost = [x for x in s["points"] if x not in known]
        msg = t("site_loaded", lang).format(name=row["name"]) + (
            " " + t("site_lost_points", lang).format(n=len(lost)) if lost else "")
        return (lcm.dump_scenario(s), pick_options(s["k"], lang), None, msg, s["stype"],
                row["minutes"] if row["minutes"] is not None else no_update,
                row["speed"] if row["speed"] is not None else no_update, s["k"], s["weight"], s["capacity"],
                [c for c in row["closed"] if c in set(cg.compounds["id"])],
                [g for g in row["shut"] if g in set(cg.gates["id"])])
    # a map click
    if view != "circle" or mode != "site_move":
        return (no_update,) * 12
    s = lcm.parse_scenario(ctx, raw)
    if not s:
        return (no_update, no_update, no_update, t("site_none_to_move", lang)) + rest
    pt = first_point(click)
    tag = custom_tag(pt, "site")
    if tag is not None:
        n = _int(tag, 1, lcm.MAX_NEW_POINTS)
        return (no_update, no_update, n, t("site_picked", lang).format(n=n) if n else "") + rest
    n = _int(pick, 1, lcm.MAX_NEW_POINTS)
    points = current_points(ctx, s, minutes, speed, closed, shut)
    if n is None or n > len(points):
        return (no_update, no_update, no_update, t("site_pick_first", lang)) + rest
    bid = target_building(ctx, pt)
    if bid is None:
        return (no_update, no_update, no_update, t("site_no_building", lang).format(m=BUILDING_CLICK_MAX_M)) + rest
    if bid in points:
        return (no_update, no_update, no_update, t("site_already", lang)) + rest
    points[n - 1] = bid
    s["points"] = points
    return (lcm.dump_scenario(s), no_update, n, t("site_moved", lang).format(n=n)) + rest


def scenario_save(ctx, raw, name, minutes, speed, closed, shut, lang, user):
    """(message, saved options, saved value)."""
    if not user.can("plan"):
        return t("site_forbidden", lang), no_update, no_update
    s = lcm.parse_scenario(ctx, raw)
    if not s:
        return t("site_none_to_save", lang), no_update, no_update
    name = name.strip() if isinstance(name, str) else ""
    if not name or len(name) > 80:
        return t("site_name_needed", lang), no_update, no_update
    reach = _reach(ctx, s["stype"], minutes, speed)
    res, _ = lcm.scenario(ctx, s["stype"], reach, s["k"], s["weight"], _ids(closed), _ids(shut), s.get("capacity"),
                          s.get("points"))
    points = [str(x) for x in ctx.bundle().buildings["id"].to_numpy()[res.chosen]]
    m = minutes if isinstance(minutes, (int, float)) and not isinstance(minutes, bool) else None
    v = speed if isinstance(speed, (int, float)) and not isinstance(speed, bool) else None
    sid = ctx.store.save_scenario({
        "name": name, "service_type": s["stype"], "k": s["k"], "weight": s["weight"], "capacity": s.get("capacity"),
        "minutes": m, "speed": v, "closed": list(_ids(closed)), "shut": list(_ids(shut)), "points": points,
        "covered_before": res.covered_before, "covered_after": res.covered_after,
        "weight_total": res.weight_total}, user.username)
    return t("site_saved_msg", lang).format(name=name, id=sid), saved_options(ctx, lang), sid


def register(app, ctx):
    from callbacks.auth import current_user

    @app.callback(Output(ids.SITING, "data"), Output(ids.SITE_PICK, "options"), Output(ids.SITE_PICK, "value"),
                  Output(ids.SITE_MSG, "children"), Output(ids.CIRCLE_TYPE, "value"),
                  Output(ids.CIRCLE_MINUTES, "value"), Output(ids.CIRCLE_SPEED, "value"), Output(ids.SITE_K, "value"),
                  Output(ids.SITE_WEIGHT, "value"), Output(ids.SITE_CAPACITY, "value"),
                  Output(ids.GATED_COMPOUNDS, "value", allow_duplicate=True),
                  Output(ids.SHUT_GATES, "value", allow_duplicate=True),
                  Input(ids.BTN_SITE, "n_clicks"), Input(ids.BTN_SITE_CLEAR, "n_clicks"), Input(ids.MAP, "clickData"),
                  Input(ids.BTN_SITE_LOAD, "n_clicks"),
                  State(ids.CIRCLE_TYPE, "value"), State(ids.SITE_K, "value"), State(ids.SITE_WEIGHT, "value"),
                  State(ids.SITE_CAPACITY, "value"), State(ids.SITING, "data"), State(ids.CLICK_MODE, "value"),
                  State(ids.SITE_PICK, "value"), State(ids.CIRCLE_MINUTES, "value"), State(ids.CIRCLE_SPEED, "value"),
                  State(ids.GATED_COMPOUNDS, "value"), State(ids.SHUT_GATES, "value"), State(ids.SITE_SAVED, "value"),
                  State(ids.VIEW, "value"), State(ids.LANG, "data"), prevent_initial_call=True)
    def site_edit(_n, _clear, click, _load, stype, k, weight, capacity, raw, mode, pick, minutes, speed, closed, shut,
                  saved, view, lang):
        lang = lang if lang in ("zh", "en") else "zh"
        return scenario_edit(ctx, dash_ctx.triggered_id, click, stype, k, weight, capacity, raw, mode, pick, minutes,
                             speed, closed, shut, saved, view, lang)

    @app.callback(Output(ids.SITE_MSG, "children", allow_duplicate=True), Output(ids.SITE_SAVED, "options"),
                  Output(ids.SITE_SAVED, "value"),
                  Input(ids.BTN_SITE_SAVE, "n_clicks"), State(ids.SITING, "data"), State(ids.SITE_NAME, "value"),
                  State(ids.CIRCLE_MINUTES, "value"), State(ids.CIRCLE_SPEED, "value"),
                  State(ids.GATED_COMPOUNDS, "value"), State(ids.SHUT_GATES, "value"), State(ids.LANG, "data"),
                  prevent_initial_call=True)
    def site_save(_n, raw, name, minutes, speed, closed, shut, lang):
        lang = lang if lang in ("zh", "en") else "zh"
        return scenario_save(ctx, raw, name, minutes, speed, closed, shut, lang, current_user(ctx))

