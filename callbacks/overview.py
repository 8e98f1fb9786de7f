"""Overview: the layered livelihood map and the grid side panel."""
from __future__ import annotations

from dash import html

from data.catalogue import key_groups
from geo.ledger import building_totals
from layers.overview import LAYER_ORDER, overview_traces
from minsheng.i18n import t


def mask_phone(p) -> str:
    p = str(p or "")
    return p[:3] + "****" + p[-4:] if len(p) >= 7 else ("—" if not p else "****")


def totals(ctx):
    b = ctx.bundle()
    keys = tuple(g.key for g in key_groups())
    return ctx.cached("building_totals", keys, lambda: building_totals(b.households, keys))


def grid_figures(ctx, plan_id: str):
    """Per grid id (level 1 and 2) and community id: buildings, households, persons, key groups."""
    def compute():
        b = ctx.bundle()
        bt = totals(ctx)
        grids = b.plan_grids(plan_id)
        a = b.plan_assignments(plan_id)[["building_id", "grid_id"]]
        per_b = a.merge(bt, left_on="building_id", right_index=True, how="left").fillna(0)
        per_b["buildings"] = 1
        cols = [c for c in per_b.columns if c not in ("building_id", "grid_id")]
        g2 = per_b.groupby("grid_id")[cols].sum()
        parent = grids.set_index("id")["parent_id"]
        g1 = g2.groupby(g2.index.map(parent)).sum()
        comm = g1.groupby(g1.index.map(parent)).sum()
        import pandas as pd
        return pd.concat([g2, g1, comm]).astype(int)
    return ctx.cached("grid_figures", (plan_id,), compute)


def traces(ctx, p) -> list:
    """Traces of the checked layers, each layer built once per (dataset version, plan, language)."""
    b = ctx.bundle()
    hh = totals(ctx)["households"]
    out = []
    for layer in LAYER_ORDER:
        if layer in p.layers:
            key = (layer, p.plan_id, p.lang, p.stypes if layer == "services" else ())
            out += ctx.cached("overview_layer", key, lambda layer=layer: overview_traces(
                b, p.plan_id, p.lang, (layer,), set(p.stypes), hh))
    return out


def panel(ctx, p, user) -> list:
    b = ctx.bundle()
    figs = grid_figures(ctx, p.plan_id)
    grids = b.plan_grids(p.plan_id).set_index("id")
    if not p.selected or p.selected not in grids.index:
        return summary_panel(ctx, p.plan_id, p.lang, figs)
    return grid_panel(ctx, grids, p.selected, figs, p.lang) + ledger(ctx, p, user, grids)


def ledger(ctx, p, user, grids) -> list:
    """The selected grid's households: only for a user allowed to see them (checked here, on the server)."""
    parents = grids["parent_id"].to_dict()
    if not user.may_see_personal(p.selected, parents):
        return [html.P(t("personal_hidden", p.lang), className="hint", id="personal-hidden")]
    b = ctx.bundle()
    a = b.plan_assignments(p.plan_id)
    bids = set(a.loc[a["grid_id"] == p.selected, "building_id"])
    hh = b.households[b.households["building_id"].isin(bids)]
    names = dict(zip(b.buildings["id"], b.buildings["name"]))
    labels = {g.key: g.label(p.lang) for g in key_groups()}
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
            _row(t("communities_n", lang), len(b.communities)),
            _row(t("grids1_n", lang), int((g["level"] == 1).sum())),
            _row(t("grids2_n", lang), int((g["level"] == 2).sum())),
            _row(t("buildings", lang), len(b.buildings)),
            _row(t("households", lang), f"{len(b.households):,}"),
            _row(t("persons", lang), f"{int(b.households['persons'].sum()):,}"),
            _row(t("service_points_n", lang), len(b.service_points)),
        ]),
        html.P(t("click_grid", lang), className="hint"),
    ]


def grid_panel(ctx, grids, grid_id, figs, lang):
    s = ctx.settings
    g = grids.loc[grid_id]
    f = figs.loc[grid_id] if grid_id in figs.index else None
    level = int(g["level"])
    hh = int(f["households"]) if f is not None else 0
    status = s.band(level).status(hh)
    band = s.band(level)
    kg_rows = [_row(k.label(lang), int(f[k.key]) if f is not None else 0)
               for k in key_groups() if not k.sensitive]
    return [
        html.H2(str(g["name"]), id="panel-title"),
        html.Table([
            _row(t("level1" if level == 1 else "level2", lang), str(grid_id), cls=""),
            _row(t("code", lang), str(g["code"]), cls=""),
            _row(t("head", lang), str(g["head_name"] or t("missing", lang)), cls=""),
            _row(t("phone", lang), mask_phone(g["head_phone"]), cls=""),
            _row(t("buildings", lang), int(f["buildings"]) if f is not None else 0),
            _row(t("households", lang), hh),
            _row(t("persons", lang), int(f["persons"]) if f is not None else 0),
            _row(t("band", lang), html.Span([f"{band.low}–{band.high} ",
                                            html.Span(t(f"band_{status}", lang), className=f"badge {status}")]),
                 cls=""),
        ], id="grid-facts"),
        html.H3(t("key_groups", lang)),
        html.Table(kg_rows, id="key-groups"),
    ]
