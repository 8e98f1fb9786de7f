"""Life-circle check view: buildings coloured by the requirements of one tier they fail, shares
of households and persons meeting each tier (key groups at their own walking profile), and
the check table: which requirement each grid fails, by how many households."""
from __future__ import annotations

import numpy as np
from dash import html

from callbacks import life_circle_model as lcm
from callbacks.circle_view import _pct, gate_traces
from layers.life_circle import compliance_traces
from layers.service_circle import service_point_trace
from layers.style import COMMUNITY_LINE, LEVEL1_LINE
from minsheng.i18n import t
from callbacks.params import PANEL_ROWS, more_rows


def _sep(lang) -> str:
    return "、" if lang == "zh" else ", "


def _short(tier, lang) -> str:
    """A narrow column header: 街坊 / Block, else the tier's minutes."""
    return t("lc_block_short", lang) if tier.key == "block" else f"{tier.minutes:g} {t('minutes', lang)}"


def _tier(ctx, p):
    cat = lcm.catalogue(ctx)
    keys = [x.key for x in cat.tiers]
    return cat.tier(p.tier if p.tier in keys else keys[0])


def traces(ctx, p, vp) -> list:
    """Zoomed out: the share of households meeting the tier per community / level-2 grid. At
    street zoom: buildings by the requirements they fail, the points the tier needs, the gates."""
    from callbacks import lod
    b = ctx.bundle()
    cat = lcm.catalogue(ctx)
    tier = _tier(ctx, p)
    reqs = {r.key: r for r in cat.requirements_of(tier.key)}
    present = set(b.service_points["type"])
    needed = [k for k in dict.fromkeys(x for r in reqs.values() for x in r.types) if k in present]
    if vp.tier != "building":
        sh = lcm.shares(ctx, p.plan_id, p.closed, p.shut)
        sh = sh[(sh["tier"] == tier.key) & (sh["group"] == "all")]
        out = lod.share_areas(ctx, p.plan_id, vp, sh, f"{t('share_compliant', p.lang)} · {tier.label(p.lang)}", p.lang)
        return out + lod.outlines(ctx, p.plan_id, vp, "level1", t("layer_level1", p.lang), LEVEL1_LINE, 1.5)
    state = lcm.building_state(ctx, tier.key, p.profile, p.closed, p.shut)
    pos = lod.building_positions(ctx, vp)
    shown = b.buildings.iloc[pos]
    state = state[state["building_id"].isin(set(shown["id"]))]
    hover = {bid: f"{bid}<br>{int(m)}/{int(n)}" + (
        "<br>" + _sep(p.lang).join(reqs[k].label(p.lang) for k in f.split(";") if k in reqs) if f else "")
        for bid, m, n, f in zip(state["building_id"], state["met"], state["requirements"], state["failed"])}
    out = lod.streets(ctx, vp, t("layer_streets", p.lang))
    out += compliance_traces(shown, state, (t("lc_ok", p.lang), t("lc_fail_one", p.lang),
                                            t("lc_fail_many", p.lang)), hover)
    out += (lod.outlines(ctx, p.plan_id, vp, "level1", t("layer_level1", p.lang), LEVEL1_LINE, 2)
            + lod.outlines(ctx, p.plan_id, vp, "communities", t("layer_communities", p.lang), COMMUNITY_LINE, 4))
    out += gate_traces(ctx, p)
    pts = b.service_points.iloc[lod.points_in_view(ctx, vp)]
    cat = ctx.settings.catalogue()
    for key in needed:
        st = cat.service_type(key)
        out.append(service_point_trace(pts, key, color=st.color, name=st.label(p.lang)))
    return out


def panel(ctx, p, user) -> list:
    b = ctx.bundle()
    cat = lcm.catalogue(ctx)
    tier = _tier(ctx, p)
    prof = cat.profile(p.profile) if p.profile in [x.key for x in cat.profiles] else cat.profiles[0]
    reqs = cat.requirements_of(tier.key)
    reach = tier.reach_m * prof.speed_m_min / ctx.settings.walk_speed_m_min
    sh = lcm.shares(ctx, p.plan_id, p.closed, p.shut)
    allsh = sh[sh["scope"] == "all"]
    groups = {g.key: g for g in ctx.settings.catalogue().key_groups}
    head = [html.Tr([html.Th("")] + [html.Th(_short(x, p.lang), title=x.label(p.lang)) for x in cat.tiers])]
    body = []
    for group in dict.fromkeys(allsh["group"]):
        part = allsh[allsh["group"] == group].set_index("tier")
        label = t("lc_everyone", p.lang) if group == "all" else (
            f"{groups[group].label(p.lang)} · {cat.profile_of_group(group).label(p.lang)}")
        body.append(html.Tr([html.Td(label)] + [html.Td(_pct(part["share"].get(x.key, np.nan)), className="num")
                                                for x in cat.tiers]))
        if group == "all":
            body.append(html.Tr([html.Td(t("lc_persons", p.lang))] + [
                html.Td(_pct(part["share_persons"].get(x.key, np.nan)), className="num") for x in cat.tiers]))
    out = [html.H2(t("lc_title", p.lang).format(tier=tier.label(p.lang)), id="lc-title"),
           html.P(t("lc_explain", p.lang).format(reqs=_sep(p.lang).join(r.label(p.lang) for r in reqs), reach=reach,
                                                 profile=prof.label(p.lang))),
           html.H3(t("lc_shares_head", p.lang)), html.Table(head + body, id="lc-shares")]
    if p.closed:
        o = lcm.shares(ctx, p.plan_id, (), ())
        o = o[(o["scope"] == "all") & (o["group"] == "all")].set_index("tier")["share"]
        c = allsh[allsh["group"] == "all"].set_index("tier")["share"]
        out.append(html.P(t("gate_effect", p.lang).format(tier=tier.label(p.lang), open=_pct(o.get(tier.key)),
                                                          closed=_pct(c.get(tier.key))), id="gate-effect"))
    fails = lcm.failures(ctx, p.plan_id, prof.key, p.closed, p.shut)
    fails = fails[fails["tier"] == tier.key]
    grids = b.plan_grids(p.plan_id).set_index("id")
    rl = {r.key: r.label(p.lang) for r in reqs}
    rows = [html.Tr([html.Th(t("grid", p.lang)), html.Th(t("lc_requirement", p.lang)),
                     html.Th(t("lc_households_failing", p.lang))])]
    worst = fails.groupby("scope_id", sort=False)["households_failing"].sum().sort_values(ascending=False)
    shown = set(worst.index[:PANEL_ROWS])
    for gid, part in fails[fails["scope_id"].isin(shown)].groupby("scope_id", sort=False):
        name = str(grids["name"].get(gid, gid))
        for i, r in enumerate(part.itertuples()):
            rows.append(html.Tr([html.Td(name if i == 0 else ""), html.Td(rl.get(r.requirement, r.requirement)),
                                 html.Td(f"{int(r.households_failing)} / {int(r.households)}", className="num")]))
    out += [html.H3(t("lc_check_table", p.lang)),
            html.Table(rows, id="lc-check") if len(fails) else html.P(t("lc_all_ok", p.lang)),
            more_rows(len(worst), p.lang)]
    for scope, key in (("community", "lc_by_community"), ("street", "lc_by_street")):
        part = sh[(sh["scope"] == scope) & (sh["group"] == "all") & (sh["tier"] == tier.key)]
        if not len(part):
            continue
        total = len(part)
        part = part.sort_values("share", kind="stable").head(PANEL_ROWS)  # the least served first
        names = b.communities.set_index("id")["name"] if scope == "community" else {}
        out += [html.H3(t(key, p.lang)), html.Table(
            [html.Tr([html.Th(t(scope, p.lang)), html.Th(t("households", p.lang)), html.Th(t("lc_share", p.lang)),
                      html.Th(t("lc_persons", p.lang))])]
            + [html.Tr([html.Td(str(names.get(r.scope_id, r.scope_id))), html.Td(f"{int(r.households):,}", className="num"),
                        html.Td(_pct(r.share), className="num"), html.Td(_pct(r.share_persons), className="num")])
               for r in part.itertuples()], id=f"lc-{scope}"), more_rows(total, p.lang)]
    return out
