"""Grid coverage view: grids coloured by households vs band, gaps/overlaps drawn, a problem
list that zooms to each problem."""
from __future__ import annotations

import numpy as np
from dash import html

from geo.coverage import audit_bundle
from layers.coverage import coverage_traces, problem_traces
from layers.style import COMMUNITY_LINE, LEVEL1_LINE
from minsheng.i18n import t
from callbacks.params import PANEL_ROWS, more_rows
from callbacks import ids


def audit(ctx, plan_id: str):
    b = ctx.bundle()
    keys = ctx.settings.catalogue().keys
    return ctx.cached("audit", (plan_id,), lambda: audit_bundle(b, plan_id, ctx.settings, tag_keys=keys))


def traces(ctx, p, vp) -> list:
    """Grids of the chosen level coloured by band in view (communities by their band when
    zoomed out), problems on top, outlines of the levels above."""
    from callbacks import lod
    from callbacks.overview import grid_figures
    from layers.coverage import BAND_STYLE
    b = ctx.bundle()
    a = audit(ctx, p.plan_id)
    out = lod.streets(ctx, vp, t("layer_streets", p.lang))
    if vp.tier == "community":
        figs = grid_figures(ctx, p.plan_id)
        band = {str(i): BAND_STYLE.get(str(figs["band"].get(i, "")), ("#cccccc",))[0] for i in b.communities["id"]}
        hover = {str(i): f"<b>{n}</b><br>{int(figs['households'].get(i, 0)):,} {t('households_unit', p.lang)} · "
                         f"{t('band_' + str(figs['band'].get(i, 'ok')), p.lang)}"
                 for i, n in zip(b.communities["id"], b.communities["name"])}
        out += lod.areas(ctx, p.plan_id, vp, "communities", band, t("band_by_community", p.lang), hover_of=hover,
                         opacity=0.7, line_color=COMMUNITY_LINE, line_width=1.5,
                         legend=[(t(f"band_{k}", p.lang), v[0]) for k, v in BAND_STYLE.items()])
        out += lod.outlines(ctx, p.plan_id, vp, "level1", t("layer_level1", p.lang), LEVEL1_LINE, 1.5)
        return out + problem_traces(a.problems, p.lang)
    grids = b.plan_grids(p.plan_id)
    idx = lod.plan_index(ctx, p.plan_id)
    in_view = set(idx.level2.ids[idx.level2.query(vp.bbox)]) | set(idx.level1.ids[idx.level1.query(vp.bbox)])
    shown = grids[grids["id"].astype(str).isin(in_view)]
    return (out + coverage_traces(a, shown, level=p.level, lang=p.lang)
            + lod.outlines(ctx, p.plan_id, vp, "level1", t("layer_level1", p.lang), LEVEL1_LINE, 2)
            + lod.outlines(ctx, p.plan_id, vp, "communities", t("layer_communities", p.lang), COMMUNITY_LINE, 4))


def problem_bounds(ctx, plan_id: str, index: int):
    """lon/lat bounds of problem `index`: its own geometry, else the objects it names."""
    a = audit(ctx, plan_id)
    if not 0 <= index < len(a.problems):
        return None
    prob = a.problems[index]
    if prob.geometry is not None and not prob.geometry.is_empty:
        return tuple(prob.geometry.bounds)
    b = ctx.bundle()
    named = [f[f["id"].astype(str).isin([str(i) for i in prob.ids])]
             for f in (b.plan_grids(plan_id), b.buildings, b.communities)]
    named = [f for f in named if len(f)]
    if not named:
        return None
    bounds = np.array([f.total_bounds for f in named])
    return (bounds[:, 0].min(), bounds[:, 1].min(), bounds[:, 2].max(), bounds[:, 3].max())


def panel(ctx, p, user) -> list:
    a = audit(ctx, p.plan_id)
    counts = a.counts_by_kind()
    head = [html.H2(t("tab_coverage", p.lang))]
    if a.ok:
        head.append(html.P(html.Span(t("no_problems", p.lang), className="badge ok"), id="coverage-status"))
    else:
        head.append(html.P(f"{t('problems', p.lang)}: {len(a.problems)}", id="coverage-status"))
        from geo.validate import KIND_LABELS
        head.append(html.Table([html.Tr([html.Td(KIND_LABELS[k][0 if p.lang == 'zh' else 1]),
                                         html.Td(n, className="num")]) for k, n in counts.items()]))
        head.append(html.P(t("click_problem", p.lang), className="hint"))
    items = [html.Div(f"{i + 1}. {prob.detail}", id={"type": ids.PROBLEM, "index": i}, className="problem",
                      n_clicks=0)
             for i, prob in enumerate(a.problems[:200])]
    g = a.grids
    out_band = g[(g["level"] == p.level) & (g["band"] != "ok")]
    band_rows = [html.Tr([html.Td(str(r.name_) if hasattr(r, "name_") else str(r.id)),
                          html.Td(int(r.households), className="num"),
                          html.Td(html.Span(t(f"band_{r.band}", p.lang), className=f"badge {r.band}"))])
                 for r in out_band.head(PANEL_ROWS).itertuples()]
    return head + [html.Div(items, id="problem-list"), more_rows(len(a.problems), p.lang) if len(a.problems) > 200 else None,
                   html.H3(t("out_of_band_grids", p.lang)),
                   html.Table(band_rows) if band_rows else html.P("—"), more_rows(len(out_band), p.lang)]
