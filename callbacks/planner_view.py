"""Planner view: paint buildings into grids on a draft plan (click, box or lasso select, then
assign), undo/redo, live figures of touched grids and the audit, save with a version check,
adopt, and a diff against another plan.

The edit state lives in the browser (dcc.Store: plan id, the stored plan version it started
from, the edits as JSON, a cursor); the server replays the edits on the stored plan with the
pure functions of geo/plan, so any server process can answer (stateless behind WSGI)."""
from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import shapely
from dash import html

from geo.coverage import audit_plan
from geo.validate import KIND_LABELS
from geo.plan import Edit, boundary_changes, diff_plans, live_figures, plan_from_bundle
from layers.base import line_coords
from layers.style import COMMUNITY_LINE, LEVEL1_LINE, LEVEL2_LINE
from minsheng.i18n import t

EMPTY_STATE = {"plan_id": None, "base_version": None, "edits": [], "cursor": 0}
PROPOSE_STAGES = 4  # reading the plan, proposing, saving the draft, figures
BALANCES = ("households", "workload", "both")


def active_edits(state) -> str:
    """The applied edits (up to the cursor) as canonical JSON: the cache key of an edited plan."""
    state = state or EMPTY_STATE
    return json.dumps(state.get("edits", [])[:state.get("cursor", 0)], sort_keys=True, ensure_ascii=False)


def stored_plan(ctx, plan_id: str):
    b = ctx.bundle()
    return ctx.cached("plan_value", (plan_id,), lambda: plan_from_bundle(b, plan_id, settings=ctx.settings))


def edited_plan(ctx, plan_id: str, edits_json: str):
    def compute():
        plan = stored_plan(ctx, plan_id)
        for op, params in json.loads(edits_json):
            plan = Edit.of(op, **params)(plan)
        return plan
    return ctx.cached("plan_edited", (plan_id, edits_json), compute)


def edited_grids(ctx, plan_id: str, edits_json: str):
    """Grids of the edited plan with boundaries derived from its buildings."""
    b = ctx.bundle()
    if edits_json == "[]":
        return b.plan_grids(plan_id)

    def compute():
        before, after = stored_plan(ctx, plan_id), edited_plan(ctx, plan_id, edits_json)
        stored = b.plan_grids(plan_id)
        fast = regrouped(ctx, plan_id, before, after)
        if fast is not None:  # buildings changed grid inside their communities: dissolve cached cells
            rows, gone = fast, set()
        else:  # re-derive the communities the edits touched (geo/plan.boundary_changes, as a save does)
            ch = boundary_changes(before, after, b.buildings, b.communities)
            rows, gone = ch.grids, set(ch.deleted_grids)
        gone |= set(rows["id"])
        kept = stored[~stored["id"].isin(gone)]
        rows = rows.to_crs(stored.crs) if rows.crs is not None and stored.crs is not None else rows
        return pd.concat([kept, rows[[c for c in stored.columns if c in rows.columns]]], ignore_index=True)
    return ctx.cached("plan_boundaries", (plan_id, edits_json), compute)


def _building_community(plan) -> pd.Series:
    """building id -> community id through its level-2 grid."""
    return plan.building_grid().map(plan.community_of_grid())


def community_cells(ctx, plan_id: str, community: str):
    """The tessellation cells of the stored plan's buildings in one community (geo/tessellate),
    indexed by building id: a cell depends only on the community's set of buildings, so it is
    computed once per (dataset version, plan, community) and reused by every edit."""
    from geo.tessellate import building_cells
    b = ctx.bundle()

    def compute():
        bc = ctx.cached("building_community", (plan_id,), lambda: _building_community(stored_plan(ctx, plan_id)))
        ids = set(bc.index[(bc == community).to_numpy()])
        bs = b.buildings[b.buildings["id"].isin(ids)]
        extent = b.communities.loc[b.communities["id"] == community].geometry
        extent = extent.to_crs(bs.crs).iloc[0] if len(extent) else None
        if extent is None or not len(bs):
            return gpd.GeoSeries([], index=pd.Index([], dtype=object), crs=b.buildings.crs)
        cells = building_cells(bs.geometry, extent)
        return gpd.GeoSeries(cells.values, index=pd.Index(bs["id"].to_numpy(), dtype=object), crs=bs.crs)
    return ctx.cached("community_cells", (plan_id, community), compute)


def regrouped(ctx, plan_id: str, before, after):
    """Boundaries of every grid of the communities an edit touched, dissolved from the cached
    cells — or None when a community's set of buildings (hence its cells) or its grids changed
    in a way that needs a new tessellation (then geo/plan.boundary_changes)."""
    from geo.plan import touched_grids
    from geo.tessellate import dissolve_cells
    bc_b = ctx.cached("building_community", (plan_id,), lambda: _building_community(before))
    bc_a = _building_community(after)
    cog_a, cog_b = after.community_of_grid(), before.community_of_grid()
    touched = touched_grids(before, after)
    comms = {c for g in touched for c in (cog_a.get(g), cog_b.get(g)) if isinstance(c, str)}
    if not comms or set(after.grids["id"]) != set(before.grids["id"]):
        return None
    for c in comms:
        if set(bc_b.index[(bc_b == c).to_numpy()]) != set(bc_a.index[(bc_a == c).to_numpy()]):
            return None
    cells = pd.concat([community_cells(ctx, plan_id, c) for c in sorted(comms)])
    grid = after.building_grid().reindex(cells.index)
    parent = after.parent_of()
    g2 = dissolve_cells(cells, grid.to_numpy())
    g1 = dissolve_cells(cells, grid.map(parent).to_numpy())
    geom = pd.concat([g2.geometry, g1.geometry])
    rows = after.grids[after.grids["id"].map(cog_a).isin(comms).to_numpy()].copy()
    vals = geom.reindex(pd.Index(rows["id"], dtype=object)).to_numpy(dtype=object)
    from geo.tessellate import EMPTY
    vals = np.where(pd.isna(vals), EMPTY, vals)
    return gpd.GeoDataFrame(rows.drop(columns=[c for c in ("geometry",) if c in rows.columns]),
                            geometry=gpd.GeoSeries(vals, index=rows.index, crs=cells.crs), crs=cells.crs)


def plan_audit(ctx, plan_id: str, edits_json: str):
    b = ctx.bundle()
    plan = edited_plan(ctx, plan_id, edits_json)
    return ctx.cached("plan_audit", (plan_id, edits_json), lambda: audit_plan(
        edited_grids(ctx, plan_id, edits_json), b.communities, b.buildings, plan.assignments.assign(plan_id=plan_id),
        b.building_stats, bands=ctx.settings, tag_keys=ctx.settings.catalogue().keys))


def stable_color(palette: dict, grid_id: str) -> str:
    """A grid's colour: the stored plan's, else (a grid the planner created) one fixed by its id."""
    import zlib
    from layers.style import GRID_PALETTE
    c = palette.get(grid_id)
    return c if c is not None else GRID_PALETTE[zlib.crc32(str(grid_id).encode()) % len(GRID_PALETTE)]


def traces(ctx, p, vp) -> list:
    """The edited plan in view: zoomed out the communities (zoom in to select); level-2 grids
    in their colours; at street zoom the buildings by grid and the anchors box/lasso select."""
    from callbacks import lod
    from callbacks.overview import colors
    from layers.lod import fill, outline
    from geo.lod import FeatureIndex, round_geoms
    b = ctx.bundle()
    palette = colors(ctx, p.plan_id)
    if vp.tier == "community":
        return (lod.outlines(ctx, p.plan_id, vp, "communities", t("layer_communities", p.lang), COMMUNITY_LINE, 3)
                + lod.outlines(ctx, p.plan_id, vp, "level1", t("layer_level1", p.lang), LEVEL1_LINE, 1.5))
    grids = edited_grids(ctx, p.plan_id, p.edits)
    gidx = ctx.cached("planner_grid_index", (p.plan_id, p.edits), lambda: {
        lv: FeatureIndex(grids.loc[grids["level"] == lv, "id"], grids.loc[grids["level"] == lv].geometry.values)
        for lv in (1, 2)})
    g2, g1 = gidx[2], gidx[1]
    pos2, pos1 = g2.query(vp.bbox), g1.query(vp.bbox)
    names = dict(zip(grids["id"].astype(str), grids["name"]))
    out = lod.streets(ctx, vp, t("layer_streets", p.lang))
    if vp.tier == "grid":
        ids2 = g2.ids[pos2]
        out.append(fill(g2.feature_collection(pos2), ids2, [stable_color(palette, i) for i in ids2],
                        t("layer_level2", p.lang), hover=[f"<b>{names.get(i, i)}</b>" for i in ids2], opacity=0.6,
                        line_color=LEVEL2_LINE, line_width=0.5, customdata=ids2))
    else:
        plan = edited_plan(ctx, p.plan_id, p.edits)
        pos = lod.building_positions(ctx, vp)
        bids = b.buildings["id"].to_numpy()[pos]
        gid = pd.Series(bids).map(plan.building_grid()).fillna("").to_numpy()
        bnames = b.buildings["name"].to_numpy()[pos]
        hover = [f"<b>{n if isinstance(n, str) else ''}</b><br>{t('grid', p.lang)}: {names.get(g, '—')}"
                 for n, g in zip(bnames, gid)]
        out.append(lod.building_fill(ctx, pos, [stable_color(palette, g) if g else "#bbbbbb" for g in gid],
                                     t("layer_buildings", p.lang), hover=hover, customdata=list(bids),
                                     showlegend=True))
        xy = shapely.get_coordinates(shapely.point_on_surface(b.buildings.geometry.values[pos]))
        # building anchors: what box and lasso select pick up
        out.append(go.Scattermap(lon=xy[:, 0].round(6).tolist(), lat=xy[:, 1].round(6).tolist(), mode="markers",
                                 marker={"size": 5, "color": "#333"}, customdata=list(bids),
                                 name=t("select_anchor", p.lang), hoverinfo="skip", showlegend=True).to_plotly_json())
    out.append(outline(round_geoms(g2.geoms[pos2]), t("layer_level2", p.lang), LEVEL2_LINE, 1.5))
    out.append(outline(round_geoms(g1.geoms[pos1]), t("layer_level1", p.lang), LEVEL1_LINE, 3))
    out += lod.outlines(ctx, p.plan_id, vp, "communities", t("layer_communities", p.lang), COMMUNITY_LINE, 4.5)
    return out


def selection_trace(ctx, selection) -> go.Scattermap:
    b = ctx.bundle()
    sel = b.buildings[b.buildings["id"].isin(list(selection))]
    lon, lat = line_coords(sel.geometry.values)
    return go.Scattermap(lon=lon, lat=lat, mode="lines", line={"color": "#ffd400", "width": 4},
                         name="selection", showlegend=False, hoverinfo="skip")


def _badge(status, lang):
    return html.Span(t(f"band_{status}", lang) if status in ("ok", "low", "high") else status,
                     className=f"badge {status}")


def panel(ctx, p, user) -> list:
    b = ctx.bundle()
    if not user.can("plan"):
        return [html.H2(t("tab_planner", p.lang)), html.P(t("planner_forbidden", p.lang), id="planner-forbidden")]
    status = str(b.plans.set_index("id")["status"].get(p.plan_id, ""))
    out = [html.H2(t("tab_planner", p.lang)),
           html.P(f"{t('plan', p.lang)} {p.plan_id} · {t('status_' + status, p.lang) if status else ''}",
                  id="planner-plan")]
    if status != "draft":
        return out + [html.P(t("planner_copy_first", p.lang), className="hint")]
    edits = json.loads(p.edits)
    stored = stored_plan(ctx, p.plan_id)
    if p.selection:  # warm the selection's community cells: the assign that follows only dissolves them
        comm = stored.building_grid().reindex(list(p.selection)).map(stored.community_of_grid())
        for c in sorted(set(comm.dropna())):
            community_cells(ctx, p.plan_id, c)
    edited = edited_plan(ctx, p.plan_id, p.edits)
    out.append(html.P(f"{t('edits', p.lang)}: {len(edits)} · {t('selected_buildings', p.lang)}: {len(p.selection)}",
                      id="planner-counts"))
    out += live_table(ctx, stored, edited, p.lang, personal=user.can("all_personal"))
    audit = plan_audit(ctx, p.plan_id, p.edits)
    counts = audit.counts_by_kind()
    out += [html.H3(t("tab_coverage", p.lang)),
            html.P(t("no_problems", p.lang) if audit.ok else
                   "；".join(f"{KIND_LABELS[k][0 if p.lang == 'zh' else 1]}: {n}" for k, n in counts.items()),
                   id="planner-audit")]
    if p.compare and p.compare != p.plan_id:
        out += diff_panel(ctx, p.compare, edited, p.lang, personal=user.can("all_personal"))
    return out



def live_table(ctx, stored, edited, lang, *, personal: bool) -> list:
    """Households and workload (visits per month) of the grids an edit touched, before → after,
    each against its band. Without personal access the workload is the estimate from published
    figures (geo/suppress: small sensitive counts never change a figure by an exact amount)."""
    from geo.suppress import suppressed_rows
    from geo.workload import rates_of
    cat = ctx.settings.catalogue()
    keys = cat.keys
    live = live_figures(stored, edited, ctx.bundle().building_stats, bands=ctx.settings, tag_keys=keys)
    if not len(live):
        return []
    before = live_figures(edited, stored, ctx.bundle().building_stats, bands=ctx.settings, tag_keys=keys)
    before = before[before["band"] != "removed"].set_index("id")
    rates = rates_of(ctx.settings)
    if personal:
        wl_after = live["workload"].to_numpy(dtype=float)
        wl_before = before["workload"].reindex(live["id"]).to_numpy(dtype=float)
        approx = False
    else:
        small = list(cat.small_cell_keys)
        _, wl_after, a1 = suppressed_rows(live, small, rates, threshold=ctx.settings.suppress_below)
        b_rows = before.reindex(live["id"]).fillna(0)
        _, wl_before, a2 = suppressed_rows(b_rows.reset_index(), small, rates, threshold=ctx.settings.suppress_below)
        approx = bool(a1.any() or a2.any())
        wl_before = np.where(live["id"].isin(before.index).to_numpy(), wl_before, np.nan)
    ap = "≈" if approx else ""
    rows = [html.Tr([html.Th(t("grid", lang)), html.Th(t("households", lang)), html.Th("±"),
                     html.Th(t("band", lang)), html.Th(t("workload_short", lang)), html.Th(t("workload_band", lang))])]
    for i, r in enumerate(live.itertuples()):
        wb = "—" if not np.isfinite(wl_before[i]) else f"{ap}{wl_before[i]:,.0f}"
        wst = "removed" if r.band == "removed" else ctx.settings.workload_band(int(r.level)).status(wl_after[i])
        rows.append(html.Tr([html.Td(str(r.name or r.id)),
                             html.Td(f"{int(r.households_before)} → {int(r.households)}", className="num"),
                             html.Td(f"{int(r.delta):+d}", className="num"), html.Td(_badge(r.band, lang)),
                             html.Td(f"{wb} → {ap}{wl_after[i]:,.0f}", className="num"),
                             html.Td(_badge(wst, lang))]))
    return [html.H3(t("touched_grids", lang)), html.Table(rows, id="live-figures")]


def table_of(tb, id_=None) -> html.Table:
    """A data.exporters.pack.Table as an html.Table (the pack's, /present's and the planner's tables)."""
    def td(i, v):
        return html.Td(v, className="num" if i >= tb.numeric_from else None)
    rows = [html.Tr([html.Th(h) for h in tb.header])]
    rows += [html.Tr([td(i, v) for i, v in enumerate(r)]) for r in tb.rows]
    if tb.total:
        rows.append(html.Tr([td(i, v) for i, v in enumerate(tb.total)], className="total"))
    return html.Table(rows, id=id_) if id_ else html.Table(rows)


def people_panel(ctx, plan_a, plan_b, lang, *, personal: bool, id_prefix: str = "planner") -> list:
    """Households, persons and key groups changing grid (geo/plan.people_diff), per grid worker."""
    from data.exporters.pack import people_table
    from geo.plan import people_diff
    b = ctx.bundle()
    d = people_diff(plan_a, plan_b, ctx.bundle().building_stats, tag_keys=ctx.settings.catalogue().keys)
    flows, per = people_table(d, b, lang, personal=personal, threshold=ctx.settings.suppress_below, max_rows=10,
                              catalogue=ctx.settings.catalogue())
    out = [html.H3(t("people_change", lang)),
           html.P(t("people_moved", lang).format(households=f"{d.households_moved:,}", persons=f"{d.persons_moved:,}"),
                  id=f"{id_prefix}-people")]
    if len(d.flows):
        out += [table_of(flows, f"{id_prefix}-flows"), table_of(per, f"{id_prefix}-workers")]
        if not personal:
            out.append(html.P(t("suppressed_note", lang).format(t=ctx.settings.suppress_below), className="hint"))
    return out


def diff_panel(ctx, other_id: str, edited, lang, *, personal: bool = False) -> list:
    b = ctx.bundle()
    d = diff_plans(stored_plan(ctx, other_id), edited, b.building_stats, bands=ctx.settings)
    cov = d.coverage
    changed = cov[(cov["households_a"].fillna(-1) != cov["households_b"].fillna(-1))]
    rows = [html.Tr([html.Th(t("grid", lang)), html.Th(other_id), html.Th(edited.plan_id)])]
    rows += [html.Tr([html.Td(r.id), html.Td("—" if pd.isna(r.households_a) else int(r.households_a), className="num"),
                      html.Td("—" if pd.isna(r.households_b) else int(r.households_b), className="num")])
             for r in changed.itertuples()]
    return [html.H3(f"{t('compare_with', lang)} {other_id}"),
            html.P(f"{t('moved_buildings', lang)}: {len(d.moved)} · {t('grids_added', lang)}: {len(d.added)} · "
                   f"{t('grids_removed', lang)}: {len(d.removed)}", id="planner-diff"),
            html.Table(rows)] + people_panel(ctx, stored_plan(ctx, other_id), edited, lang, personal=personal)


def fresh_state(ctx, plan_id: str) -> dict:
    from data.plans import plan_version
    return {"plan_id": plan_id, "base_version": plan_version(ctx.bundle(), plan_id), "edits": [], "cursor": 0}


def plan_options(ctx, lang: str) -> list:
    p = ctx.bundle().plans
    fmt = "{}（{}）" if lang == "zh" else "{} ({})"
    return [{"label": fmt.format(n, t("status_" + s, lang)), "value": i} for i, n, s in zip(p["id"], p["name"], p["status"])]


def register(app, ctx):
    from dash import Input, Output, State, ctx as dash_ctx, no_update

    from callbacks import ids
    from callbacks.auth import current_user
    from data.plans import adopt_plan, archive_plan, copy_plan_to_draft, save_edits
    from data.store import ConflictError
    from geo.plan import PlanEditError

    @app.callback(Output(ids.PLANNER_SELECTION, "data"),
                  Input(ids.MAP, "selectedData"), Input(ids.MAP, "clickData"), Input(ids.BTN_CLEAR, "n_clicks"),
                  State(ids.VIEW, "value"), State(ids.PLANNER_SELECTION, "data"), prevent_initial_call=True)
    def select(selected, click, _clear, view, current):
        if view != "planner":
            return no_update
        trig = dash_ctx.triggered_id
        if trig == ids.BTN_CLEAR:
            return []
        known = set(ctx.bundle().buildings["id"])
        if dash_ctx.triggered and dash_ctx.triggered[0]["prop_id"].endswith("selectedData"):
            picked = [pt.get("customdata") for pt in (selected or {}).get("points", [])]
            return sorted({b for b in picked if b in known})
        pts = (click or {}).get("points") or []
        bid = pts[0].get("customdata") if pts else None
        if bid not in known:
            return no_update
        cur = set(current or [])
        return sorted(cur ^ {bid})  # click toggles

    @app.callback(Output(ids.PLANNER_STATE, "data"), Output(ids.PLANNER_MSG, "children"),
                  Output(ids.PLAN, "options"), Output(ids.PLAN, "value"),
                  Output(ids.PLANNER_SELECTION, "data", allow_duplicate=True),
                  Input(ids.BTN_ASSIGN, "n_clicks"), Input(ids.BTN_UNDO, "n_clicks"), Input(ids.BTN_REDO, "n_clicks"),
                  Input(ids.BTN_SAVE, "n_clicks"), Input(ids.BTN_ADOPT, "n_clicks"), Input(ids.BTN_COPY, "n_clicks"),
                  Input(ids.BTN_ARCHIVE, "n_clicks"), State(ids.PLANNER_STATE, "data"), State(ids.PLANNER_SELECTION, "data"),
                  State(ids.PLANNER_TARGET, "value"), State(ids.PLAN, "value"), State(ids.LANG, "data"),
                  prevent_initial_call=True)
    def act(_a, _u, _r, _s, _ad, _c, _ar, state, selection, target, plan_id, lang):
        trig = dash_ctx.triggered_id
        user = current_user(ctx)
        lang = lang or "zh"
        if not user.can("plan"):
            return no_update, t("planner_forbidden", lang), no_update, no_update, no_update
        plan_id = plan_id or ctx.bundle().adopted_plan_id()
        if not state or state.get("plan_id") != plan_id:
            state = fresh_state(ctx, plan_id)
        edits, cursor = list(state["edits"]), int(state["cursor"])
        try:
            if trig == ids.BTN_ASSIGN:
                if not selection or not target:
                    return no_update, t("planner_help", lang), no_update, no_update, no_update
                new = edits[:cursor] + [["move_buildings", {"building_ids": list(selection), "to_grid_id": target}]]
                edited_plan(ctx, plan_id, json.dumps(new, sort_keys=True, ensure_ascii=False))  # validate now
                return {**state, "edits": new, "cursor": len(new)}, "", no_update, no_update, []
            if trig == ids.BTN_UNDO:
                return {**state, "cursor": max(cursor - 1, 0)}, "", no_update, no_update, no_update
            if trig == ids.BTN_REDO:
                return {**state, "cursor": min(cursor + 1, len(edits))}, "", no_update, no_update, no_update
            if trig == ids.BTN_SAVE:
                # replayed on the plan as stored now, checked against the version the planner began from
                edits_now = json.loads(active_edits(state))
                v = save_edits(ctx.store, plan_id, state["base_version"], edits_now, user.username,
                               bundle=ctx.bundle(), context=stored_plan(ctx, plan_id).context)
                ctx.reload()
                return fresh_state(ctx, plan_id), t("saved", lang).format(v=v), plan_options(ctx, lang), plan_id, []
            if trig == ids.BTN_ADOPT:
                if cursor:
                    return no_update, t("unsaved", lang), no_update, no_update, no_update
                adopt_plan(ctx.store, plan_id, user.username, bundle=ctx.bundle())
                ctx.reload()
                return (fresh_state(ctx, plan_id), t("adopted_msg", lang).format(p=plan_id), plan_options(ctx, lang),
                        plan_id, [])
            if trig == ids.BTN_ARCHIVE:
                archive_plan(ctx.store, plan_id, user.username)
                ctx.reload()
                adopted = ctx.bundle().adopted_plan_id()
                return (fresh_state(ctx, adopted), t("archived_msg", lang).format(p=plan_id), plan_options(ctx, lang),
                        adopted, [])
            if trig == ids.BTN_COPY:
                name = f"{ctx.bundle().plans.set_index('id')['name'].get(plan_id, plan_id)} · {t('status_draft', lang)}"
                new_id = copy_plan_to_draft(ctx.store, plan_id, name, user.username)
                ctx.reload()
                return (fresh_state(ctx, new_id), t("copied", lang).format(p=new_id), plan_options(ctx, lang),
                        new_id, [])
        except ConflictError:
            return no_update, t("conflict", lang), no_update, no_update, no_update
        except (PlanEditError, ValueError) as e:
            return no_update, str(e), no_update, no_update, no_update
        return no_update, no_update, no_update, no_update, no_update

    from callbacks.jobs import background_options

    @app.callback(Output(ids.PROPOSE_MSG, "children"), Output(ids.PLAN, "options", allow_duplicate=True),
                  Output(ids.PLAN, "value", allow_duplicate=True), Input(ids.BTN_PROPOSE, "n_clicks"),
                  State(ids.PLAN, "value"), State(ids.PROPOSE_BALANCE, "value"), State(ids.LANG, "data"),
                  prevent_initial_call=True,
                  **background_options(ids.PROPOSE_PROGRESS, ids.PROPOSE_CANCEL, (ids.BTN_PROPOSE,)))
    def propose(set_progress, n, plan_id, balance, lang):
        """An automatic proposal from the chosen plan, saved as a new draft (data/plans.propose_to_draft,
        as `minsheng propose`), in a background job: the chosen plan is never changed, and a
        cancelled job writes nothing (it is killed before or inside the draft's one transaction)."""
        from data.plans import propose_to_draft
        from geo.plan import balance_summary, grid_figures
        lang = lang if lang in ("zh", "en") else "zh"
        user = current_user(ctx)
        if not user.can("plan"):
            return html.P(t("planner_forbidden", lang), className="error"), no_update, no_update
        if not n:
            return no_update, no_update, no_update
        b = ctx.bundle()
        base_id = plan_id if isinstance(plan_id, str) and plan_id in set(b.plans["id"].astype(str)) \
            else b.adopted_plan_id()
        balance = balance if balance in BALANCES else "households"
        set_progress("1")
        stage = {"propose": "2", "save": "3"}
        name = f"{b.plans.set_index('id')['name'].get(base_id, base_id)} · {t('propose_name', lang)}"
        try:
            new_id, _v, _prop, base, plan = propose_to_draft(
                ctx.store, base_id, name, user.username, settings=ctx.settings, balance=balance,
                progress=lambda s: set_progress(stage[s]))
        except ConflictError:
            return html.P(t("conflict", lang), className="error"), no_update, no_update
        except (PlanEditError, ValueError) as e:
            return html.P(str(e), className="error"), no_update, no_update
        set_progress("4")
        stats = ctx.reload().building_stats  # this job's own write: read the new version now
        before, after = (balance_summary(grid_figures(x, stats, bands=ctx.settings, tag_keys=[]))["level2"]
                         for x in (base, plan))
        msg = t("propose_done", lang).format(plan=new_id, before=before["in_band"], after=after["in_band"],
                                             n=after["grids"])
        return html.P(msg, id="propose-done"), plan_options(ctx, lang), new_id

    @app.callback(Output(ids.PLANNER_TARGET, "options"), Input(ids.PLAN, "value"), Input(ids.PLANNER_STATE, "data"))
    def targets(plan_id, state):
        plan_id = plan_id or ctx.bundle().adopted_plan_id()
        edits = active_edits(state) if state and state.get("plan_id") == plan_id else "[]"
        g = edited_plan(ctx, plan_id, edits).grids
        g2 = g[g["level"] == 2].sort_values("id")
        return [{"label": f"{n} ({i})", "value": i} for i, n in zip(g2["id"], g2["name"])]
