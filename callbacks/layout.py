"""Page layout. Language comes from the URL (?lang=en); Chinese is the default."""
from __future__ import annotations

from dash import Input, Output, dcc, html

from callbacks import ids
from data.catalogue import service_types
from data.schema import ATTRIBUTION
from layers.overview import ALL_LAYERS
from minsheng.i18n import t


def lang_from_search(search: str | None, default: str) -> str:
    """?lang=en in the page URL switches the language; anything else keeps the default."""
    from urllib.parse import parse_qs
    lang = parse_qs((search or "").lstrip("?")).get("lang", [default])[0]
    return lang if lang in ("zh", "en") else default


def shell():
    """The static shell; the page itself is rendered for the URL's language by a callback."""
    return html.Div([dcc.Location(id=ids.URL), html.Div(id=ids.PAGE)])


def page(ctx, lang: str):
    bundle = ctx.bundle()
    plans = bundle.plans
    plan_id = bundle.adopted_plan_id()
    present = set(bundle.service_points["type"])
    st_opts = [{"label": s.label(lang), "value": s.key} for s in service_types() if s.key in present]
    meta = bundle.meta_dict
    other = "en" if lang == "zh" else "zh"
    return html.Div(className="page", children=[
        dcc.Store(id=ids.LANG, data=lang),
        dcc.Store(id=ids.SELECTED_GRID),
        html.Header(className="header", children=[
            html.Div([html.H1(t("title", lang)), html.Div(t("subtitle", lang), className="subtitle")]),
            html.Div(className="header-right", children=[
                html.Label(t("plan", lang)),
                dcc.Dropdown(id=ids.PLAN, clearable=False, value=plan_id, style={"width": "260px"},
                             options=[{"label": f"{n} ({s})", "value": i}
                                      for i, n, s in zip(plans["id"], plans["name"], plans["status"])]),
                html.A("English" if lang == "zh" else "中文", href=f"?lang={other}", className="lang-switch",
                       id="lang-switch"),
            ]),
        ]),
        dcc.Tabs(id=ids.VIEW, value="overview", className="tabs", style={"height": "40px"}, children=[
            dcc.Tab(label=t("tab_overview", lang), value="overview"),
        ]),
        html.Div(className="body", children=[
            html.Aside(className="controls", children=[
                html.H3(t("layers", lang)),
                dcc.Checklist(id=ids.LAYERS, value=list(ALL_LAYERS), className="checklist",
                              options=[{"label": t(f"layer_{k}", lang), "value": k} for k in ALL_LAYERS]),
                html.H3(t("service_types", lang)),
                dcc.Checklist(id=ids.STYPES, value=[o["value"] for o in st_opts], options=st_opts,
                              className="checklist"),
                html.Div(id=ids.VIEW_CONTROLS),
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


def register(app, ctx):
    @app.callback(Output(ids.PAGE, "children"), Input(ids.URL, "search"))
    def render(search):
        return page(ctx, lang_from_search(search, ctx.settings.language))
