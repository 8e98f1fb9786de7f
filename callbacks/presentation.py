"""Presentation mode (/present) for the quarterly joint meeting (联席会议): full screen, large
type, one slide at a time: (1) overview of communities and grids, (2) grid coverage, (3) the
ten-minute service circle, (4) the plan change (adopted plan vs the newest draft).

Aggregates only, whatever the signed-in role: the slides draw grids, buildings and counts,
never names, phones or tags of households or grid heads. Navigation: the previous/next
buttons, the keyboard (assets/present.js clicks the buttons on ←/→, PageUp/PageDown — what a
presenter's clicker sends), ?slide=N in the URL (1-based; kept up to date while navigating).
Slides clamp at both ends (→ on the last slide stays there), so a clicker never jumps back
to the start in front of the audience."""
from __future__ import annotations

from urllib.parse import parse_qs

import pandas as pd
import plotly.graph_objects as go
from dash import Input, Output, State, ctx as dash_ctx, dcc, html, no_update

from callbacks import circle_view, coverage_view, ids
from callbacks.params import ViewParams
from data.exporters.common import households_are_synthetic
from data.schema import ATTRIBUTION
from layers.base import fill_trace, view_of
from minsheng.i18n import t

ROOT = "present-root"
LANG = "present-lang"
SLIDE = "present-slide"
BODY = "present-body"
PREV = "present-prev"
NEXT = "present-next"
FULLSCREEN = "present-fullscreen"
URL_SYNC = "present-url-sync"
FS_STATE = "present-fs-state"
FIT_STATE = "present-fit-state"
MAP = "present-map"
TITLE = "present-title"
COUNTER = "present-counter"

SLIDES = ("overview", "coverage", "circle", "plan")
CIRCLE_TYPES = ("elderly_care", "elderly_station", "clinic", "market")  # first two present: 1st drawn, both counted
CIRCLE_GROUP = "empty_nest_elderly"
OVERVIEW_LAYERS = ("communities", "level1", "level2", "buildings", "streets")
MOVED_COLOR = "#e4007f"
LEGEND_FONT = 20
# the map area a 1280x720 projector leaves under the title and the figure strip: the extent is
# fitted into it, so it fills (and is fully visible on) any larger screen too
# (assets/present.js re-fits to the map's real size in the browser, and again on resize)
FIT_PX = (1100, 540)


def slide_from_search(search: str | None) -> int:
    """?slide=N (1-based) -> 0-based index, clamped; anything else -> 0."""
    raw = parse_qs((search or "").lstrip("?")).get("slide", ["1"])[0]
    try:
        n = int(raw)
    except ValueError:
        return 0
    return min(max(n, 1), len(SLIDES)) - 1


def step(current, delta: int) -> int:
    cur = 0 if current is None else int(current)
    return min(max(cur + delta, 0), len(SLIDES) - 1)


# ---------------------------------------------------------------------------------------------
# layout

def layout(ctx, lang: str):
    """The /present page: no side panels; the slide fills the viewport; nav at the bottom."""
    return html.Div(id=ROOT, className="present", lang="zh-CN" if lang == "zh" else "en", children=[
        dcc.Store(id=LANG, data=lang),
        dcc.Store(id=SLIDE),
        dcc.Store(id=URL_SYNC),
        dcc.Store(id=FS_STATE),
        dcc.Store(id=FIT_STATE),
        html.Div(id=BODY, className="present-body"),
        html.Nav(className="present-nav", children=[
            html.Button("‹", id=PREV, n_clicks=0, title=f"{t('present_prev', lang)} (←)", className="present-btn"),
            html.Button("›", id=NEXT, n_clicks=0, title=f"{t('present_next', lang)} (→)", className="present-btn"),
            html.Button(t("present_fullscreen", lang), id=FULLSCREEN, n_clicks=0,
                        title=f"{t('present_fullscreen', lang)} (F)", className="present-btn present-btn-text"),
            html.A("✕", href="/" if lang == "zh" else "/?lang=en", id="present-exit", className="present-btn",
                   title=t("present_exit", lang)),
        ]),
    ])


def _figure_strip(items) -> html.Div:
    """items: (value, label) pairs; a plain string starts a group (a kicker such as the service type)."""
    return html.Div(className="present-strip", id="present-strip", children=[
        html.Div(item, className="present-kicker") if isinstance(item, str) else
        html.Div(className="present-fig", children=[html.Div(item[0], className="present-fig-value"),
                                                     html.Div(item[1], className="present-fig-label")])
        for item in items])


def figure(ctx, params) -> go.Figure:
    """The dashboard's map of a view (a plain dict there) as a Figure to restyle for projection."""
    from callbacks.views import figure as view_figure
    return go.Figure(view_figure(ctx, params))


def _style(fig, bounds):
    """Projector styling of a dashboard map figure: big legend, extent fitted to the slide."""
    fig.update_layout(
        map=view_of(bounds, *FIT_PX), uirevision=None, meta={"fit": [float(v) for v in bounds]}, hoverlabel={"font": {"size": 18}},
        legend={"x": 0.005, "y": 0.99, "xanchor": "left", "yanchor": "top", "font": {"size": LEGEND_FONT},
                "bgcolor": "rgba(255,255,255,0.92)", "bordercolor": "#666", "borderwidth": 1,
                "itemsizing": "constant", "itemwidth": 40})
    # streets are self-evident: keep the legend short enough for a 720-line projector
    fig.update_traces(showlegend=False, selector={"name": t("layer_streets", "zh")})
    fig.update_traces(showlegend=False, selector={"name": t("layer_streets", "en")})
    fig.update_traces(marker={"size": 16}, selector={"type": "scattermap", "mode": "markers"})
    return fig


def _n(x) -> str:
    return f"{int(x):,}"


def _pct(x) -> str:
    return "—" if x is None or x != x else f"{100 * x:.0f}%"


# ---------------------------------------------------------------------------------------------
# slides: each returns (title, figure-strip items, plotly figure, overlay component or None)

def slide_overview(ctx, lang):
    b = ctx.bundle()
    plan = b.adopted_plan_id()
    g = b.plan_grids(plan)
    items = [(_n(len(b.communities)), t("fig_communities", lang)),
             (f"{int((g['level'] == 1).sum())} / {int((g['level'] == 2).sum())}", t("fig_grids", lang)),
             (_n(b.building_stats["households"].sum()), t("fig_households", lang)),
             (_n(b.building_stats["persons"].sum()), t("fig_persons", lang))]
    fig = figure(ctx, ViewParams(view="overview", plan_id=plan, lang=lang, layers=OVERVIEW_LAYERS))
    return t("slide_overview", lang), items, _style(fig, b.buildings.total_bounds), None


def slide_coverage(ctx, lang):
    b = ctx.bundle()
    plan = b.adopted_plan_id()
    a = coverage_view.audit(ctx, plan)
    g2 = a.grids[a.grids["level"] == 2]
    bands = g2["band"].value_counts()
    tot = a.totals
    in_grids = tot["households_in_grids"] / tot["households"] if tot["households"] else float("nan")
    items = [(f"{int(bands.get('ok', 0))} / {len(g2)}", t("fig_in_band", lang)),
             (f"{int(bands.get('low', 0))} / {int(bands.get('high', 0))}", t("fig_low_high", lang)),
             (_n(len(a.problems)), t("fig_problems", lang)),
             (_pct(in_grids), t("fig_in_grids", lang))]
    fig = figure(ctx, ViewParams(view="coverage", plan_id=plan, lang=lang, level=2))
    return t("slide_coverage", lang), items, _style(fig, b.buildings.total_bounds), None


def _circle_types(b) -> list[str]:
    present = set(b.service_points["type"])
    chosen = [k for k in CIRCLE_TYPES if k in present][:2]
    return chosen or sorted(present)[:1]


def slide_circle(ctx, lang):
    b = ctx.bundle()
    plan = b.adopted_plan_id()
    minutes, speed = ctx.settings.circle_minutes, ctx.settings.walk_speed_m_min
    types = _circle_types(b)
    sh = circle_view.shares(ctx, plan, minutes, speed) if types else None
    cat = ctx.settings.catalogue()
    group = next((g for g in cat.key_groups if g.key == CIRCLE_GROUP and not g.sensitive), None)
    items = []
    for k in types:
        s = sh[(sh["service_type"] == k) & (sh["scope"] == "all")]
        items.append(f"{cat.service_type(k).label(lang)}:" if lang == "en" else f"{cat.service_type(k).label(lang)}：")
        overall = s[s["group"] == "all"]
        items.append((_pct(overall["share"].iloc[0]) if len(overall) else "—", t("fig_households", lang)))
        grp = s[s["group"] == CIRCLE_GROUP]
        if group is not None and len(grp) and k == types[0]:
            items.append((_pct(grp["share"].iloc[0]), group.label(lang)))
    stype = types[0] if types else ""
    fig = figure(ctx, ViewParams(view="circle", plan_id=plan, lang=lang, stype=stype, minutes=minutes, speed=speed))
    title = t("slide_circle", lang).format(minutes=float(minutes),
                                           stype=cat.service_type(stype).label(lang) if stype else "—")
    return title, items, _style(fig, b.buildings.total_bounds), None


def plans_to_compare(b) -> tuple[str, str] | None:
    """(adopted plan, newest draft), or None when the store holds fewer than two plans / no draft."""
    plans = b.plans
    if len(plans) < 2:
        return None
    adopted = b.adopted_plan_id() or str(plans["id"].iloc[0])
    drafts = plans[(plans["status"] == "draft") & (plans["id"] != adopted)]
    if not len(drafts):
        return None
    newest = drafts.sort_values(["created_at", "id"], kind="stable").iloc[-1]
    return adopted, str(newest["id"])


def _plan_pair(ctx, a: str, bid: str):
    """The two plans compared on the slide, with one shared PlanContext (built once)."""
    from geo.plan import make_context, plan_from_bundle

    def compute():
        b = ctx.bundle()
        pctx = make_context(b.buildings, b.communities, settings=ctx.settings)
        return (plan_from_bundle(b, a, settings=ctx.settings, context=pctx),
                plan_from_bundle(b, bid, settings=ctx.settings, context=pctx))
    return ctx.cached("present_plan_pair", (a, bid), compute)


def plan_diff(ctx, a: str, bid: str):
    from geo.plan import diff_plans
    return ctx.cached("present_plan_diff", (a, bid), lambda: diff_plans(
        *_plan_pair(ctx, a, bid), ctx.bundle().building_stats, bands=ctx.settings))


def plan_people(ctx, a: str, bid: str):
    """Households, persons and key groups changing grid from plan a to plan bid (geo/plan.people_diff)."""
    from geo.plan import people_diff
    return ctx.cached("present_people_diff", (a, bid), lambda: people_diff(
        *_plan_pair(ctx, a, bid), ctx.bundle().building_stats, tag_keys=ctx.settings.catalogue().keys))


def _plan_name(b, pid) -> str:
    row = b.plans[b.plans["id"] == pid]
    return str(row["name"].iloc[0]) if len(row) else str(pid)


def slide_plan(ctx, lang):
    b = ctx.bundle()
    pair = plans_to_compare(b)
    bounds = b.buildings.total_bounds
    if pair is None:
        plan = b.adopted_plan_id()
        fig = figure(ctx, ViewParams(view="overview", plan_id=plan, lang=lang, layers=OVERVIEW_LAYERS))
        rows = [html.Tr([html.Th("ID"), html.Th(t("plan", lang)), html.Th("")])] + [
            html.Tr([html.Td(str(r.id)), html.Td(str(r.name)), html.Td(t(f"plan_status_{r.status}", lang))])
            for r in b.plans.itertuples()]
        note = t("plans_single_note" if len(b.plans) < 2 else "plans_no_draft_note", lang)
        overlay = html.Div(className="present-overlay", id="present-plans", children=[
            html.Table(rows, className="present-table"), html.P(note, className="present-note")])
        items = [(_n(len(b.plans)), t("slide_plans", lang))]
        return t("slide_plans", lang), items, _style(fig, bounds), overlay
    a, d = pair
    diff = plan_diff(ctx, a, d)
    fig = figure(ctx, ViewParams(view="overview", plan_id=d, lang=lang,
                                 layers=("communities", "level1", "level2", "streets")))
    moved_ids = set(diff.moved["building_id"])
    moved = b.buildings[b.buildings["id"].isin(moved_ids)]
    if len(moved):
        fig.add_trace(fill_trace(moved, moved["id"], [MOVED_COLOR] * len(moved),
                                 f"{t('moved_buildings', lang)} ({len(moved)})", opacity=0.9,
                                 line_color="#222", line_width=0.5))
    cov = diff.coverage
    cov = cov[cov["level"] == 2].copy()
    cov["delta"] = cov["households_b"].fillna(0).astype(int) - cov["households_a"].fillna(0).astype(int)
    changed = cov[cov["delta"] != 0]
    names = dict(zip(b.grids["id"], b.grids["name"]))
    top = changed.reindex(changed["delta"].abs().sort_values(ascending=False).index).head(8)
    rows = [html.Tr([html.Th(t("grid", lang)), html.Th(t("plan_before", lang)), html.Th(t("plan_after", lang)),
                     html.Th("±")])] + [
        html.Tr([html.Td(str(names.get(r.id, r.id))),
                 html.Td("—" if pd.isna(r.households_a) else int(r.households_a), className="num"),
                 html.Td("—" if pd.isna(r.households_b) else int(r.households_b), className="num"),
                 html.Td(f"{int(r.delta):+d}", className="num")]) for r in top.itertuples()]
    bal = diff.balance
    l2a, l2b = bal.get("a", {}).get("level2", {}), bal.get("b", {}).get("level2", {})
    people = plan_people(ctx, a, d)
    items = [(_n(len(diff.moved)), t("fig_moved", lang)),
             (_n(len(changed)), t("fig_grids_changed", lang)),
             (f"{_n(people.households_moved)} / {_n(people.persons_moved)}",
              f"{t('fig_households', lang)} / {t('fig_persons', lang)} · {t('people_change', lang)}"),
             (f"{l2a.get('in_band', '—')} → {l2b.get('in_band', '—')}", t("fig_in_band_before_after", lang))]
    overlay = None
    if len(top):
        from callbacks.planner_view import table_of
        from data.exporters.pack import people_table
        # aggregates only on a slide, whatever the role: names masked, small sensitive counts suppressed
        _, per = people_table(people, b, lang, personal=False, threshold=ctx.settings.suppress_below, max_rows=6,
                              catalogue=ctx.settings.catalogue())
        per_html = table_of(per, "present-people")
        per_html.className = "present-table"
        overlay = html.Div(className="present-overlay", id="present-plan-table",
                           children=[html.Table(rows, className="present-table"), per_html])
    title = t("slide_plan", lang).format(a=a, b=f"{d} {_plan_name(b, d)}")
    return title, items, _style(fig, bounds), overlay


BUILDERS = {"overview": slide_overview, "coverage": slide_coverage, "circle": slide_circle, "plan": slide_plan}


def render_slide(ctx, index: int, lang: str) -> list:
    index = min(max(int(index or 0), 0), len(SLIDES) - 1)
    b = ctx.bundle()
    title, items, fig, overlay = BUILDERS[SLIDES[index]](ctx, lang)
    notice = t("synthetic", lang) if households_are_synthetic(b) else ""
    return [
        html.Header(className="present-header", children=[
            html.H1(title, id=TITLE, className="present-title"),
            html.Div(f"{index + 1} / {len(SLIDES)}", id=COUNTER, className="present-counter"),
        ]),
        _figure_strip(items),
        html.Div(className="present-map-wrap", children=[
            dcc.Graph(id=MAP, figure=fig, className="present-map", responsive=True,
                      config={"displayModeBar": False, "scrollZoom": True, "displaylogo": False}),
            *([overlay] if overlay is not None else []),
        ]),
        html.Footer(className="present-footer", children=[
            html.Span(ATTRIBUTION, id="present-attribution"),
            html.Span(f" · {notice}" if notice else "", id="present-synthetic"),
            html.Span(f"{t('title', lang)} · {t('present_keys', lang)}", className="present-keys"),
        ]),
    ]


# ---------------------------------------------------------------------------------------------
# callbacks

def register(app, ctx):
    @app.callback(Output(SLIDE, "data"), Input(NEXT, "n_clicks"), Input(PREV, "n_clicks"),
                  Input(ids.URL, "search"), State(SLIDE, "data"))
    def navigate(_next, _prev, search, current):
        trig = dash_ctx.triggered_id
        if trig == NEXT:
            return step(current, +1)
        if trig == PREV:
            return step(current, -1)
        return slide_from_search(search)

    @app.callback(Output(BODY, "children"), Input(SLIDE, "data"), Input(LANG, "data"))
    def show(index, lang):
        if index is None:
            return no_update
        return render_slide(ctx, index, lang if lang in ("zh", "en") else ctx.settings.language)

    # keep ?slide=N in the address bar without re-rendering the page (replaceState, no Dash update)
    app.clientside_callback(
        """function(index, lang) {
            if (index === null || index === undefined) { return window.dash_clientside.no_update; }
            var q = new URLSearchParams(window.location.search);
            q.set('slide', String(index + 1));
            window.history.replaceState(null, '', window.location.pathname + '?' + q.toString());
            return index;
        }""",
        Output(URL_SYNC, "data"), Input(SLIDE, "data"), State(LANG, "data"))

    # the Fullscreen API needs a user gesture: the button click (or F, which clicks it)
    app.clientside_callback(
        """function(n) {
            if (!n) { return window.dash_clientside.no_update; }
            var el = document.documentElement;
            if (!document.fullscreenElement) {
                if (el.requestFullscreen) { el.requestFullscreen().catch(function () {}); }
                return true;
            }
            if (document.exitFullscreen) { document.exitFullscreen().catch(function () {}); }
            return false;
        }""",
        Output(FS_STATE, "data"), Input(FULLSCREEN, "n_clicks"))

    # fit the map to the extent for the size it really has on this screen (assets/present.js)
    app.clientside_callback(
        """function(fig) {
            var tries = 0;
            (function again() {
                if (window.minshengPresentFit && window.minshengPresentFit()) {
                    setTimeout(window.minshengPresentFit, 800);  // once more when the style has settled
                } else if (tries++ < 60) {
                    setTimeout(again, 150);
                }
            })();
            return window.dash_clientside.no_update;
        }""",
        Output(FIT_STATE, "data"), Input(MAP, "figure"))
