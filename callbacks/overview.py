"""Overview: the layered livelihood map and the grid side panel."""
from __future__ import annotations

import pandas as pd
from dash import html

from data.privacy import mask_name, mask_phone
from geo.coverage import community_table, grid_table
from geo.validate import plan_index
from layers.overview import grid_colors, service_point_traces
from layers.style import COMMUNITY_LINE, GRID_PALETTE, LEVEL1_LINE
from minsheng.i18n import t


def households_per_building(ctx):
    b = ctx.bundle()
    return ctx.cached("households_per_building", (),
                      lambda: b.building_stats.set_index("building_id")["households"])


def grid_figures(ctx, plan_id: str):
    """Per grid id (levels 1 and 2) and community id: buildings, households, persons, key groups
    (geo/coverage tables: the same figures as the audit, the exports and the CLI)."""
    def compute():
        b = ctx.bundle()
        grids = b.plan_grids(plan_id)
        ix = plan_index(grids, b.communities, b.buildings, b.plan_assignments(plan_id))
        keys = ctx.settings.catalogue().keys
        table = grid_table(grids, b.building_stats, ix, bands=ctx.settings, tag_keys=keys)
        comm = community_table(b.communities, table, ix, bands=ctx.settings)
        cols = ["buildings", "households", "persons", "workload", "workload_band", *keys, "band"]
        return pd.concat([table.set_index("id")[cols], comm.set_index("id")[cols]])
    return ctx.cached("grid_figures", (plan_id,), compute)


def colors(ctx, plan_id: str) -> dict:
    """Palette colour per level-2 grid of a stored plan, neighbours distinct (computed once per
    plan version, so a grid keeps its colour while a planner edits its neighbours)."""
    b = ctx.bundle()
    return ctx.cached("grid_colors", (plan_id,), lambda: grid_colors(
        b.plan_grids(plan_id).pipe(lambda g: g[g["level"] == 2]).reset_index(drop=True)))


def _grid_hover(ctx, plan_id, lang) -> dict:
    b = ctx.bundle()

    def compute():
        figs = grid_figures(ctx, plan_id)["households"]
        g = b.plan_grids(plan_id)
        out = {str(i): f"<b>{n}</b><br>{t('households', lang)}: {int(figs.get(i, 0)):,}"
               for i, n in zip(g["id"], g["name"])}
        out.update({str(i): f"<b>{n}</b><br>{t('households', lang)}: {int(figs.get(i, 0)):,}"
                    for i, n in zip(b.communities["id"], b.communities["name"])})
        return out
    return ctx.cached("grid_hover", (plan_id, lang), compute)


def traces(ctx, p, vp) -> list:
    """The checked layers at the viewport's tier (geo/lod): communities filled by households
    when zoomed out, level-2 grids by their colour in between, buildings at street zoom."""
    from callbacks import lod
    from layers.lod import count_classes, swatch
    from layers.style import LEVEL2_LINE
    b = ctx.bundle()
    L, lang = p.layers, p.lang
    hover = _grid_hover(ctx, p.plan_id, lang)
    palette = colors(ctx, p.plan_id)
    out = []
    if vp.tier == "community":
        if "communities" in L:
            figs = grid_figures(ctx, p.plan_id)["households"]
            ids_ = list(b.communities["id"].astype(str))
            cols, legend = count_classes([figs.get(i, 0) for i in ids_])
            out += lod.areas(ctx, p.plan_id, vp, "communities", dict(zip(ids_, cols)), t("layer_communities", lang),
                             hover_of=hover, opacity=0.75, line_color=COMMUNITY_LINE, line_width=1.5,
                             legend=[(f"{lab} {t('households_unit', lang)}", c) for lab, c in legend])
        if "level1" in L:
            out += lod.outlines(ctx, p.plan_id, vp, "level1", t("layer_level1", lang), LEVEL1_LINE, 1.5)
    else:
        if "streets" in L:
            out += lod.streets(ctx, vp, t("layer_streets", lang))
        if "level2" in L:
            grid_tier = vp.tier == "grid"
            out += lod.areas(ctx, p.plan_id, vp, "level2", palette if grid_tier else {}, t("layer_level2", lang),
                             hover_of=hover, opacity=0.6 if grid_tier else 0.05, line_color=LEVEL2_LINE,
                             line_width=1 if not grid_tier else 0.5)
            if not grid_tier:
                out += lod.outlines(ctx, p.plan_id, vp, "level2", t("layer_level2", lang), LEVEL2_LINE, 1)
        if "buildings" in L and vp.tier == "building":
            pos = lod.building_positions(ctx, vp)
            if len(pos):
                bids = b.buildings["id"].to_numpy()[pos]
                gid = pd.Series(bids).map(b.plan_assignments(p.plan_id).set_index("building_id")["grid_id"])
                hh = households_per_building(ctx).reindex(bids).fillna(0).astype(int).to_numpy()
                names = b.buildings["name"].to_numpy()[pos]
                gname = b.plan_grids(p.plan_id).set_index("id")["name"]
                hov = [f"<b>{n if isinstance(n, str) else ''}</b><br>{t('grid', lang)}: {gname.get(g, '—')}"
                       f"<br>{t('households', lang)}: {h}" for n, g, h in zip(names, gid, hh)]
                out.append(lod.building_fill(ctx, pos, [palette.get(g, "#bbbbbb") for g in gid],
                                             t("legend_buildings", lang), hover=hov, customdata=gid.fillna("").tolist()))
                out.append(swatch(t("legend_buildings", lang), GRID_PALETTE[0]))
        if "level1" in L:
            out += lod.outlines(ctx, p.plan_id, vp, "level1", t("layer_level1", lang), LEVEL1_LINE, 2.5)
        if "communities" in L:
            out += lod.outlines(ctx, p.plan_id, vp, "communities", t("layer_communities", lang), COMMUNITY_LINE, 4.5)
    if "services" in L:
        pos = lod.points_in_view(ctx, vp)
        if pos is not None and len(pos):
            # their legend is the service-type list beside the map (a swatch per type)
            out += service_point_traces(b.service_points.iloc[pos], lang, set(p.stypes), showlegend=False,
                                        catalogue=ctx.settings.catalogue())
    return out


def panel(ctx, p, user) -> list:
    b = ctx.bundle()
    figs = grid_figures(ctx, p.plan_id)
    grids = b.plan_grids(p.plan_id).set_index("id")
    personal = user.can("all_personal")  # small cells are suppressed for every other role
    if p.selected and p.selected not in grids.index and p.selected in set(b.communities["id"]):
        comm = b.communities.set_index("id")[["name", "code"]].assign(level=0, head_name=None, head_phone=None)
        return grid_panel(ctx, comm, p.selected, figs, p.lang, personal=personal)
    if not p.selected or p.selected not in grids.index:
        return summary_panel(ctx, p.plan_id, p.lang, figs)
    return grid_panel(ctx, grids, p.selected, figs, p.lang, personal=personal) + ledger(ctx, p, user, grids)


def ledger(ctx, p, user, grids) -> list:
    """The selected grid's households this user may see (callbacks.auth.visible_households:
    resolved here, on the server, against the adopted plan for grid workers)."""
    from callbacks.auth import visible_households
    hh = visible_households(ctx, user, p.plan_id, p.selected)
    if hh is None:
        return [html.P(t("personal_hidden", p.lang), className="hint", id="personal-hidden")]
    b = ctx.bundle()
    names = dict(zip(b.buildings["id"], b.buildings["name"]))
    labels = ctx.settings.catalogue().key_group_labels(p.lang)
    rows = [html.Tr([html.Th(h) for h in ("楼栋 / Bldg", "单元-房", "人", t("key_groups", p.lang),
                                           t("head", p.lang)[:2], t("phone", p.lang))])]
    rows += [html.Tr([html.Td(names.get(r.building_id, r.building_id)), html.Td(f"{r.unit}-{r.room}"),
                      html.Td(r.persons, className="num"), html.Td("、".join(labels.get(k, k) for k in r.tags)),
                      html.Td(r.head_name), html.Td(r.phone)]) for r in hh.head(300).itertuples()]
    return [html.H3(f"{t('household_ledger', p.lang)} ({len(hh)})"),
            html.A(t("export_csv", p.lang), href=f"/export/households/{p.plan_id}/{p.selected}.csv",
                   id="export-ledger"),
            html.Table(rows, id="ledger", className="ledger")]


def _row(label, value, cls="num"):
    return html.Tr([html.Td(label), html.Td(value, className=cls)])


def summary_panel(ctx, plan_id, lang, figs):
    b = ctx.bundle()
    g = b.plan_grids(plan_id)
    return [
        html.H2(t("summary", lang)),
        html.Table([
            _row(t("communities_n", lang), f"{len(b.communities):,}"),
            _row(t("grids1_n", lang), f"{int((g['level'] == 1).sum()):,}"),
            _row(t("grids2_n", lang), f"{int((g['level'] == 2).sum()):,}"),
            _row(t("buildings", lang), f"{len(b.buildings):,}"),
            _row(t("households", lang), f"{int(b.building_stats['households'].sum()):,}"),
            _row(t("persons", lang), f"{int(b.building_stats['persons'].sum()):,}"),
            _row(t("service_points_n", lang), f"{len(b.service_points):,}"),
        ]),
        html.P(t("click_grid", lang), className="hint"),
    ]


def grid_panel(ctx, grids, grid_id, figs, lang, *, personal: bool = False):
    """Facts of one grid: households, persons, workload (visits per month) against both bands and
    the key groups. Without personal access small-cell groups show "<5" (geo/suppress) and the
    workload is the estimate from the published figures (≈); sensitive groups follow the same rule."""
    from geo.suppress import suppressed_rows
    from geo.workload import rates_of
    s = ctx.settings
    g = grids.loc[grid_id]
    f = figs.loc[grid_id] if grid_id in figs.index else None
    level = int(g["level"])
    hh = int(f["households"]) if f is not None else 0
    status = str(f["band"]) if f is not None else s.band(level).status(0)  # geo/coverage: computed once
    band = s.band(level)
    wband = s.workload_band(level)
    cat = s.catalogue()
    small = list(cat.small_cell_keys)
    shown = {}
    wl, approx = (float(f["workload"]) if f is not None else 0.0), False
    if f is not None and not personal:
        row = figs.loc[[grid_id]]
        cells, pub, apx = suppressed_rows(row, small, rates_of(s), threshold=s.suppress_below)
        shown = {k: cells[0][i] for i, k in enumerate([k for k in small if k in row.columns])}
        wl, approx = float(pub[0]), bool(apx[0])
    wstatus = wband.status(wl)
    kg_rows = [_row(k.label(lang), shown.get(k.key, int(f[k.key])) if f is not None else 0)
               for k in cat.key_groups if personal or k.small_cell or not k.sensitive]
    return [
        html.H2(str(g["name"]), id="panel-title"),
        html.Table([
            _row(t({0: "community_one", 1: "level1"}.get(level, "level2"), lang), str(grid_id), cls=""),
            _row(t("code", lang), str(g["code"]), cls=""),
            *([_row(t("head", lang), mask_name(g["head_name"]) or t("missing", lang), cls=""),
               _row(t("phone", lang), mask_phone(g["head_phone"]) or "—", cls="")] if level else []),
            _row(t("buildings", lang), int(f["buildings"]) if f is not None else 0),
            _row(t("households", lang), hh),
            _row(t("persons", lang), int(f["persons"]) if f is not None else 0),
            _row(t("band", lang), html.Span([f"{band.low}–{band.high} ",
                                            html.Span(t(f"band_{status}", lang), className=f"badge {status}")]),
                 cls=""),
            _row(t("workload", lang), f"{'≈' if approx else ''}{wl:,.0f}", cls="num"),
            _row(t("workload_band", lang), html.Span([f"{wband.low:g}–{wband.high:g} ",
                                                     html.Span(t(f"band_{wstatus}", lang),
                                                               className=f"badge {wstatus}")]), cls=""),
        ], id="grid-facts"),
        html.H3(t("key_groups", lang)),
        html.Table(kg_rows, id="key-groups"),
        *([html.P(t("suppressed_note", lang).format(t=s.suppress_below), className="hint", id="suppressed-note")]
          if not personal else []),
    ]
