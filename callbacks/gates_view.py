"""Gate editor of the circle and life-circle views: what a map click does (inspect a building,
add a gate, move the selected gate, move a proposed site), and closing / opening a gate (e.g.
at night). Planners and administrators only, checked here on the server for every write.

A Plotly map cannot drag points, so an edit is a mode and a click: "add a gate" then click
near a compound's wall, "move the selected gate" then click its new place. The clicked place
snaps to the nearest point of the compound's boundary (geo/gates.nearest_boundary_point). Every
edit is one store transaction with an audit row that bumps the dataset version (data/sqlstore:
add_gate, move_gate, set_gate_closed), so every process recomputes its circles on its next
request; this process re-reads at once and the gate controls are refreshed, which redraws the
map and the panel.
"""
from __future__ import annotations

import math

from dash import Input, Output, State, ctx as dash_ctx, dcc, html, no_update

from callbacks import ids
from callbacks.widgets import dropdown
from callbacks import life_circle_model as lcm
from minsheng.i18n import t

MODES = ("inspect", "site_move", "gate_add", "gate_move")
GATE_MODES = ("gate_add", "gate_move")
CLICK_MAX_M = 100.0     # a gate goes on a compound boundary at most this far from the click


def compound_names(ctx, lang) -> dict:
    cg = lcm.compounds_gates(ctx)
    return {i: n or t("unnamed_compound", lang).format(id=i)
            for i, n in zip(cg.compounds["id"], cg.compounds["name"].fillna(""))}


def _gate_label(names, gid, comp, name, closed, lang) -> str:
    where = names.get(comp, "") if comp else t("gate_no_compound", lang)
    label = f"{where} · {name or gid}" if name else f"{where} · {gid}"
    return label + (f" ({t('gate_shut', lang)})" if closed else "")


def gate_options(ctx, lang, *, on_compounds: bool = False) -> list:
    """Dropdown / checklist options of the gates (``on_compounds``: only gates on a compound)."""
    cg = lcm.compounds_gates(ctx)
    names = compound_names(ctx, lang)
    g = cg.gates
    comp = g["compound_id"].fillna("").astype(str)
    if on_compounds:
        g, comp = g[comp != ""], comp[comp != ""]
    if on_compounds:
        return [{"label": f"{names.get(c, c)} · {gid}", "value": gid} for gid, c in zip(g["id"], comp)]
    return [{"label": _gate_label(names, gid, c, n, bool(cl), lang), "value": gid}
            for gid, c, n, cl in zip(g["id"], comp, g["name"], g["closed"])]


def mode_options(lang, user) -> list:
    modes = MODES if user.can("plan") else MODES[:2]
    return [{"label": t(f"click_{m}", lang), "value": m} for m in modes]


def controls(ctx, lang, user) -> list:
    """The click mode (everyone) and the gate editor (shown to planners and administrators; the
    components exist for everyone so the callbacks are wired the same for every role)."""
    can = user.can("plan")
    return [html.H3(t("click_mode", lang)),
            dcc.RadioItems(id=ids.CLICK_MODE, value="inspect", className="checklist", options=mode_options(lang, user)),
            html.Div(id="gate-editor", style={} if can else {"display": "none"}, children=[
                html.H3(t("gate_edit_head", lang)),
                html.Label(t("gate_pick", lang), className="hint"),
                dropdown(lang, id=ids.GATE_PICK, options=gate_options(ctx, lang), value=None, clearable=True),
                html.Div([html.Button(t("gate_close_btn", lang), id=ids.BTN_GATE_CLOSE, className="btn"),
                          html.Button(t("gate_open_btn", lang), id=ids.BTN_GATE_OPEN, className="btn")],
                         className="btn-row"),
                html.P(t("gate_edit_help", lang), className="hint")]),
            html.Div(id=ids.GATE_MSG, className="message")]


def selected_trace(ctx, gate_id, lang) -> list:
    """The halo of the gate being edited, for the map (ids.GATE_PICK's value). Not wired into the
    figure yet: callbacks/views.py would pass GATE_PICK in and add this before the gate markers."""
    from layers.life_circle import selected_gate_trace
    g = lcm.compounds_gates(ctx).gates
    hit = g[g["id"] == gate_id] if isinstance(gate_id, str) else g.iloc[:0]
    return [selected_gate_trace(hit, t("gate_pick", lang))] if len(hit) else []


# -- reading a click -------------------------------------------------------------

def _finite(v) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None


def first_point(click) -> dict | None:
    """The first point of a clickData (a dict), or None for anything else."""
    if not isinstance(click, dict):
        return None
    pts = click.get("points")
    if not isinstance(pts, list) or not pts or not isinstance(pts[0], dict):
        return None
    return pts[0]


def custom_tag(pt, prefix: str) -> str | None:
    """'<prefix>:<value>' customdata of a clicked marker (a string or the first of a list)."""
    cd = pt.get("customdata") if pt else None
    if isinstance(cd, list):
        cd = cd[0] if cd else None
    if isinstance(cd, str) and cd.startswith(prefix + ":") and len(cd) <= 200:
        return cd[len(prefix) + 1:]
    return None


def click_location(ctx, pt):
    """Where the user clicked, as a lon/lat shapely Point: the point's lon/lat (a marker or a line
    vertex), or for a clicked polygon (a building, by its id) a point inside the footprint."""
    import shapely
    if pt is None:
        return None
    lon, lat = _finite(pt.get("lon")), _finite(pt.get("lat"))
    if lon is not None and lat is not None and -180 <= lon <= 180 and -90 <= lat <= 90:
        return shapely.Point(lon, lat)
    loc = pt.get("location")
    if isinstance(loc, str):
        b = ctx.bundle().buildings
        hit = b[b["id"] == loc]
        if len(hit):
            return hit.geometry.iloc[0].representative_point()
    return None


# -- the callback ----------------------------------------------------------------

def edit(ctx, trig, click, mode, picked, closed, shut, view, lang, user):
    """One gate edit; returns (message, pick options, pick value, shut options, shut value,
    closed value) — no_update where nothing changes."""
    from data.bundle import DataError
    from data.store import ConflictError
    from geo.crs import metric_crs
    from geo.gates import nearest_boundary_point
    keep = (no_update,) * 5
    closed = [c for c in closed if isinstance(c, str)] if isinstance(closed, list) else []
    shut = [g for g in shut if isinstance(g, str)] if isinstance(shut, list) else []
    pt = None
    if trig == ids.MAP:
        if view not in ("circle", "lifecircle"):
            return (no_update,) + keep
        pt = first_point(click)
        gid = custom_tag(pt, "gate")
        if mode not in GATE_MODES:
            if gid and gid in set(lcm.compounds_gates(ctx).gates["id"]):
                return (t("gate_selected", lang).format(g=gid), no_update, gid, no_update, no_update, no_update)
            return (no_update,) + keep
    if not user.can("plan"):
        return (t("gate_forbidden", lang),) + keep
    cg = lcm.compounds_gates(ctx)
    gates = cg.gates.set_index("id")
    names = compound_names(ctx, lang)
    try:
        if trig in (ids.BTN_GATE_CLOSE, ids.BTN_GATE_OPEN):
            if not isinstance(picked, str) or picked not in gates.index:
                return (t("gate_pick_first", lang),) + keep
            to_close = trig == ids.BTN_GATE_CLOSE
            ctx.store.set_gate_closed(picked, to_close, user.username)
            ctx.reload()
            shut = sorted(set(shut) | {picked}) if to_close else [g for g in shut if g != picked]
            msg = t("gate_closed_msg" if to_close else "gate_opened_msg", lang).format(g=picked)
            return (msg, gate_options(ctx, lang), picked, gate_options(ctx, lang, on_compounds=True), shut, no_update)
        at = click_location(ctx, pt)
        if at is None:
            return (t("gate_bad_click", lang),) + keep
        crs = metric_crs(cg.compounds) if len(cg.compounds) else None
        if mode == "gate_add":
            hit = nearest_boundary_point(cg.compounds, at, crs=crs, max_m=CLICK_MAX_M) if crs else None
            if hit is None:
                return (t("gate_far", lang).format(m=CLICK_MAX_M),) + keep
            cid, on, d = hit
            gid, _ = ctx.store.add_gate(cid, on, user.username)
            ctx.reload()
            msg = t("gate_added", lang).format(g=gid, c=names.get(cid, cid), d=d)
            return (msg, gate_options(ctx, lang), gid, gate_options(ctx, lang, on_compounds=True), shut,
                    sorted(set(closed) | {cid}))
        if not isinstance(picked, str) or picked not in gates.index:
            return (t("gate_pick_first", lang),) + keep
        own = str(gates.at[picked, "compound_id"] or "")
        hit = nearest_boundary_point(cg.compounds, at, crs=crs, compound_id=own or None, max_m=CLICK_MAX_M) \
            if crs else None
        if hit is None:
            return (t("gate_far", lang).format(m=CLICK_MAX_M),) + keep
        cid, on, _ = hit
        ctx.store.move_gate(picked, on, user.username, compound_id=cid)
        ctx.reload()
        return (t("gate_moved", lang).format(g=picked, c=names.get(cid, cid)), gate_options(ctx, lang), picked,
                gate_options(ctx, lang, on_compounds=True), shut, sorted(set(closed) | {cid}) if cid else no_update)
    except ConflictError:
        return (t("gate_conflict", lang),) + keep
    except DataError:
        return (t("gate_unknown", lang),) + keep


def register(app, ctx):
    from callbacks.auth import current_user

    @app.callback(Output(ids.GATE_MSG, "children"), Output(ids.GATE_PICK, "options"), Output(ids.GATE_PICK, "value"),
                  Output(ids.SHUT_GATES, "options"), Output(ids.SHUT_GATES, "value"),
                  Output(ids.GATED_COMPOUNDS, "value"),
                  Input(ids.MAP, "clickData"), Input(ids.BTN_GATE_CLOSE, "n_clicks"),
                  Input(ids.BTN_GATE_OPEN, "n_clicks"),
                  State(ids.CLICK_MODE, "value"), State(ids.GATE_PICK, "value"), State(ids.GATED_COMPOUNDS, "value"),
                  State(ids.SHUT_GATES, "value"), State(ids.VIEW, "value"), State(ids.LANG, "data"),
                  prevent_initial_call=True)
    def gate_edit(click, _close, _open, mode, picked, closed, shut, view, lang):
        lang = lang if lang in ("zh", "en") else "zh"
        return edit(ctx, dash_ctx.triggered_id, click, mode, picked, closed, shut, view, lang, current_user(ctx))

