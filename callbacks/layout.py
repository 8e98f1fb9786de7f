"""Page layout. Language comes from the URL (?lang=en); Chinese is the default."""
from __future__ import annotations

from dash import Input, Output, dcc, html

from callbacks import exports, ids, siting_view
from callbacks.widgets import dropdown
from data.schema import ATTRIBUTION
from layers.overview import ALL_LAYERS
from minsheng.i18n import t


def lang_from_search(search: str | None, default: str) -> str:
    """?lang=en in the page URL switches the language; anything else keeps the default."""
    from urllib.parse import parse_qs
    lang = parse_qs((search or "").lstrip("?")).get("lang", [default])[0]
    return lang if lang in ("zh", "en") else default


def default_circle_type(present) -> str:
    for key in ("elderly_care", "clinic", "market", "kindergarten"):
        if key in present:
            return key
    return present[0] if present else ""


def propose_controls(lang):
    """The planner's automatic proposal: balance by, a button, the job's progress and cancel."""
    from callbacks.jobs import progress_box
    from callbacks.planner_view import PROPOSE_STAGES
    return [html.H3(t("propose_head", lang)),
            html.P(t("propose_help", lang), className="hint"),
            html.Label(t("balance_by", lang)),
            dropdown(lang, id=ids.PROPOSE_BALANCE, value="households", clearable=False,
                         options=[{"label": t(f"balance_{k}", lang), "value": k}
                                  for k in ("households", "workload", "both")]),
            html.Button(t("propose_button", lang), id=ids.BTN_PROPOSE, n_clicks=0, className="btn"),
            progress_box(ids.PROPOSE_PROGRESS, ids.PROPOSE_CANCEL, lang, stages=PROPOSE_STAGES,
                         label="propose_progress", cancel="propose_cancel"),
            html.Div(id=ids.PROPOSE_MSG, className="message")]


def lifecircle_controls(ctx, lang):
    cat = ctx.settings.life_circles()
    return [html.H3(t("lc_tier", lang)),
            dcc.RadioItems(id=ids.LC_TIER, value="10min" if any(x.key == "10min" for x in cat.tiers) else
                           cat.tiers[0].key, className="checklist",
                           options=[{"label": x.label(lang), "value": x.key} for x in cat.tiers]),
            html.H3(t("lc_profile", lang)),
            dcc.RadioItems(id=ids.LC_PROFILE, value=cat.profiles[0].key, className="checklist",
                           options=[{"label": p.label(lang), "value": p.key} for p in cat.profiles])]


def gate_controls(ctx, lang, user):
    """Closed compounds and shut gates (what-if switches for everyone, starting from the stored
    state), then the click mode and the gate editor (callbacks/gates_view.py)."""
    from callbacks import gates_view
    from callbacks.life_circle_model import compounds_gates, default_closed
    cg = compounds_gates(ctx)
    closed, shut = default_closed(ctx)
    if not len(cg.compounds):
        return [html.H3(t("gates_head", lang)), html.P(t("gates_none", lang), className="hint"),
                dcc.Checklist(id=ids.GATED_COMPOUNDS, value=[], options=[]),
                dcc.Checklist(id=ids.SHUT_GATES, value=[], options=[]), *gates_view.controls(ctx, lang, user)]
    names = gates_view.compound_names(ctx, lang)
    return [html.H3(t("gates_head", lang)),
            html.Label(t("gates_closed_compounds", lang), className="hint"),
            dcc.Checklist(id=ids.GATED_COMPOUNDS, value=list(closed), className="checklist",
                          options=[{"label": names[i], "value": i} for i in cg.compounds["id"]]),
            html.Label(t("gates_shut", lang), className="hint"),
            dcc.Checklist(id=ids.SHUT_GATES, value=list(shut), className="checklist",
                          options=gates_view.gate_options(ctx, lang, on_compounds=True)),
            *gates_view.controls(ctx, lang, user)]


def shell():
    """The static shell; the page itself is rendered for the URL's language by a callback."""
    return html.Div([dcc.Location(id=ids.URL), html.Div(id=ids.PAGE)])


def page(ctx, lang: str):
    from callbacks.auth import current_user
    from callbacks.planner_view import plan_options
    user = current_user(ctx)
    bundle = ctx.bundle()
    plans = bundle.plans
    plan_id = bundle.adopted_plan_id()
    present = set(bundle.service_points["type"])
    colors = {s.key: s.color for s in ctx.settings.catalogue().service_types}
    st_opts = [{"label": s.label(lang), "value": s.key} for s in ctx.settings.catalogue().service_types
               if s.key in present]
    meta = bundle.meta_dict
    other = "en" if lang == "zh" else "zh"
    return html.Div(className="page", children=[
        dcc.Store(id=ids.LANG, data=lang),
        dcc.Store(id=ids.SELECTED_GRID),
        dcc.Store(id=ids.FOCUS),
        dcc.Store(id=ids.VIEWPORT),
        dcc.Store(id=ids.LOADED),
        dcc.Store(id=ids.PLANNER_STATE),
        dcc.Store(id=ids.PLANNER_SELECTION, data=[]),
        dcc.Store(id=ids.CIRCLE_BUILDING),
        dcc.Store(id=ids.SITING),
        html.Header(className="header", children=[
            html.Div([html.H1(t("title", lang)), html.Div(t("subtitle", lang), className="subtitle")]),
            html.Div(className="header-right", children=[
                html.Label(t("plan", lang)),
                dropdown(lang, id=ids.PLAN, clearable=False, value=plan_id, style={"width": "260px"},
                             options=plan_options(ctx, lang)),
                exports.menu(lang, user),
                html.A("English" if lang == "zh" else "中文", href=f"?lang={other}", className="lang-switch",
                       id="lang-switch"),
                html.Span(t("anonymous", lang) if user.anonymous else f"{user.display_name or user.username} · "
                          f"{t('role_' + user.role, lang)}", id="user-badge", className="user-badge"),
                html.A(t("login", lang), href=f"/login?lang={lang}", className="lang-switch", id="login-link")
                if user.anonymous else logout_form(lang),
            ]),
        ]),
        dcc.Tabs(id=ids.VIEW, value="overview", className="tabs", style={"height": "40px"}, children=[
            dcc.Tab(label=t("tab_overview", lang), value="overview"),
            dcc.Tab(label=t("tab_coverage", lang), value="coverage"),
            dcc.Tab(label=t("tab_circle", lang), value="circle"),
            dcc.Tab(label=t("tab_lifecircle", lang), value="lifecircle"),
            *([dcc.Tab(label=t("tab_planner", lang), value="planner"),
               dcc.Tab(label=t("tab_import", lang), value="import")] if user.can("plan") else []),
            *([dcc.Tab(label=t("tab_admin", lang), value="admin")] if user.can("audit") else []),
        ]),
        html.Div(className="body", children=[
            html.Aside(className="controls", children=[
                html.Div(id=ids.CONTROLS_OVERVIEW, children=[
                    html.H3(t("layers", lang)),
                    dcc.Checklist(id=ids.LAYERS, value=list(ALL_LAYERS), className="checklist",
                                  options=[{"label": t(f"layer_{k}", lang), "value": k} for k in ALL_LAYERS]),
                    html.H3(t("service_types", lang)),
                    # the map's legend of service types: each type's marker colour beside its name
                    dcc.Checklist(id=ids.STYPES, value=[o["value"] for o in st_opts], options=[
                        {"label": html.Span([html.Span(className="swatch", style={"background": colors[o["value"]]}),
                                             o["label"]]), "value": o["value"]} for o in st_opts],
                                  className="checklist"),
                ]),
                html.Div(id=ids.CONTROLS_COVERAGE, style={"display": "none"}, children=[
                    html.H3(t("show_level", lang)),
                    dcc.RadioItems(id=ids.COV_LEVEL, value=2, className="checklist", options=[
                        {"label": t("layer_level2", lang), "value": 2},
                        {"label": t("layer_level1", lang), "value": 1}]),
                ]),
                html.Div(id=ids.CONTROLS_CIRCLE, style={"display": "none"}, children=[
                    html.H3(t("service_type", lang)),
                    dropdown(lang, id=ids.CIRCLE_TYPE, options=st_opts, clearable=False,
                                 value=default_circle_type([o["value"] for o in st_opts])),
                    html.H3(t("walk_minutes", lang)),
                    dcc.RadioItems(id=ids.CIRCLE_MINUTES, value=ctx.settings.circle_minutes, className="checklist",
                                   options=[{"label": f"{m} {t('minutes', lang)}", "value": m} for m in (5, 10, 15)]),
                    html.H3(t("walk_speed", lang)),
                    dcc.RadioItems(id=ids.CIRCLE_SPEED, value=ctx.settings.walk_speed_m_min, className="checklist",
                                   options=[{"label": t("speed_adult", lang), "value": ctx.settings.walk_speed_m_min},
                                            {"label": t("speed_elderly", lang),
                                             "value": ctx.settings.elderly_speed_m_min},
                                            {"label": t("speed_gb", lang), "value": 0}]),
                    *siting_view.controls(ctx, lang, user),
                ]),
                html.Div(id=ids.CONTROLS_LIFECIRCLE, style={"display": "none"}, children=lifecircle_controls(ctx, lang)),
                html.Div(id=ids.CONTROLS_GATES, style={"display": "none"}, children=gate_controls(ctx, lang, user)),
                html.Div(id=ids.CONTROLS_PLANNER, style={"display": "none"}, children=[
                    html.P(t("planner_help", lang), className="hint"),
                    html.Button(t("copy_draft", lang), id=ids.BTN_COPY, className="btn"),
                    html.H3(t("target_grid", lang)),
                    dropdown(lang, id=ids.PLANNER_TARGET, options=[], clearable=False),
                    html.Button(t("assign", lang), id=ids.BTN_ASSIGN, className="btn primary"),
                    html.Button(t("clear_selection", lang), id=ids.BTN_CLEAR, className="btn"),
                    html.Div([html.Button(t("undo", lang), id=ids.BTN_UNDO, className="btn"),
                              html.Button(t("redo", lang), id=ids.BTN_REDO, className="btn")], className="btn-row"),
                    html.Button(t("save", lang), id=ids.BTN_SAVE, className="btn primary"),
                    html.Div([html.Button(t("adopt", lang), id=ids.BTN_ADOPT, className="btn"),
                              html.Button(t("archive", lang), id=ids.BTN_ARCHIVE, className="btn")], className="btn-row"),
                    html.H3(t("compare_plan", lang)),
                    dropdown(lang, id=ids.PLANNER_COMPARE, clearable=True,
                                 options=[{"label": f"{n} ({i})", "value": i} for i, n in zip(plans["id"], plans["name"])]),
                    html.Div(id=ids.PLANNER_MSG, className="message"),
                    *propose_controls(lang),
                ]),
            ]),
            html.Main(className="map-wrap", children=[
                dcc.Loading(dcc.Graph(id=ids.MAP, className="map", style={"height": "calc(100vh - 150px)"}, responsive=True,
                                      config={"displaylogo": False, "scrollZoom": True}),
                            type="circle", delay_show=300),
            ]),
            html.Aside(id=ids.PANEL, className="panel", children=[html.P(t("click_grid", lang))]),
        ]),
        html.Footer(className="footer", children=[
            html.Span(ATTRIBUTION, id="attribution"),
            html.Span(" · "),
            html.Span(t("synthetic", lang) if meta.get("households") == "synthetic" else "", id="synthetic-notice"),
            html.Span(f" · {t('source', lang)}: {meta.get('source', '')}"),
        ]),
    ])


def logout_form(lang: str) -> html.Form:
    """Sign out is a POST with the session's CSRF token (a link could be triggered by another site)."""
    from callbacks.auth import csrf_token
    return html.Form(method="POST", action=f"/logout?lang={lang}", id="logout-form", className="logout-form",
                     children=[dcc.Input(type="hidden", name="csrf", value=csrf_token(), id="logout-csrf"),
                               html.Button(t("logout", lang), type="submit", id="login-link",
                                           className="lang-switch link-button")])


def register(app, ctx, pages=None):
    """pages: {pathname: callable(ctx, lang) -> layout} for pages other than the dashboard."""
    pages = dict(pages or {})

    @app.callback(Output(ids.PAGE, "children"), Input(ids.URL, "search"), Input(ids.URL, "pathname"))
    def render(search, pathname):
        lang = lang_from_search(search, ctx.settings.language)
        view = pages.get((pathname or "/").rstrip("/") or "/")
        return view(ctx, lang) if view else page(ctx, lang)
