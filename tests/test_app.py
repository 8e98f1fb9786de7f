"""The dashboard app on the shipped sample: layout, map layers, grid panel, language."""
import pytest

from app import create_app
from callbacks import ids
from data.schema import ATTRIBUTION
from layers.overview import ALL_LAYERS
from tests.dash_client import call


@pytest.fixture(scope="module")
def app():
    return create_app()


@pytest.fixture(scope="module")
def bundle(app):
    return app.server.config["MINSHENG_CONTEXT"].store.load()  # the whole dataset (households too)


def params(bundle, view="overview", layers=ALL_LAYERS, lang="zh", stypes=None, selected=None, level=2,
           stype="elderly_care", minutes=10, speed=80, state=None, selection=(), compare=None, plan=None,
           tier="10min", profile="general", closed=(), shut=(), building=None, siting=None):
    stypes = sorted(set(bundle.service_points["type"])) if stypes is None else stypes
    return [(ids.VIEW, "value", view), (ids.LAYERS, "value", list(layers)), (ids.STYPES, "value", stypes),
            (ids.PLAN, "value", plan or bundle.adopted_plan_id()), (ids.LANG, "data", lang),
            (ids.SELECTED_GRID, "data", selected), (ids.COV_LEVEL, "value", level), (ids.CIRCLE_TYPE, "value", stype),
            (ids.CIRCLE_MINUTES, "value", minutes), (ids.CIRCLE_SPEED, "value", speed),
            (ids.PLANNER_STATE, "data", state), (ids.PLANNER_SELECTION, "data", list(selection)),
            (ids.PLANNER_COMPARE, "value", compare), (ids.LC_TIER, "value", tier), (ids.LC_PROFILE, "value", profile),
            (ids.GATED_COMPOUNDS, "value", list(closed)), (ids.SHUT_GATES, "value", list(shut)),
            (ids.CIRCLE_BUILDING, "data", building), (ids.SITING, "data", siting)]


def map_inputs(bundle, focus=None, viewport=None, **kw):
    """The map callback's inputs: the view parameters, the focus and the browser's viewport."""
    return params(bundle, **kw) + [(ids.FOCUS, "data", focus), (ids.VIEWPORT, "data", viewport)]


def _map(app, bundle, focus=None, viewport=None, **kw):
    return call(app, f"{ids.MAP}.figure", map_inputs(bundle, focus, viewport, **kw), state=[(ids.LOADED, "data", None)])


def named(fig) -> list:
    """Names of the figure's traces, without the empty overlay slots."""
    return [tr.get("name") for tr in fig["data"] if tr.get("name")]


def _panel(app, bundle, **kw):
    return call(app, f"{ids.PANEL}.children", params(bundle, **kw))


def test_page_has_attribution_and_chinese_default(app):
    page = str(call(app, f"{ids.PAGE}.children", [(ids.URL, "search", ""), (ids.URL, "pathname", "/")]))
    assert ATTRIBUTION in page
    assert "民生地图" in page and "English" in page and "?lang=en" in page


def test_english_switch(app):
    page = str(call(app, f"{ids.PAGE}.children", [(ids.URL, "search", "?lang=en"), (ids.URL, "pathname", "/")]))
    assert "Minsheng Map" in page and "民生地图" not in page and "中文" in page
    fig = _map(app, app.server.config["MINSHENG_CONTEXT"].bundle(), lang="en")
    names = {tr.get("name") for tr in fig["data"]}
    assert "Level-1 grids" in names and "Communities" in names


def test_map_has_every_layer_with_legend(app, bundle):
    fig = _map(app, bundle)
    names = [tr.get("name") for tr in fig["data"]]
    for n in ("社区", "一级网格", "二级网格", "街巷"):
        assert n in names
    buildings = [tr for tr in fig["data"] if tr["type"] == "choroplethmap" and len(tr["locations"]) == len(bundle.buildings)]
    assert len(buildings) == 1
    points = [tr for tr in fig["data"] if tr["type"] == "scattermap" and tr.get("legendgroup") == "services"]
    assert sum(len(tr["lon"]) for tr in points) == len(bundle.service_points)
    assert fig["layout"]["map"]["style"] == "white-bg"  # drawn offline, no tiles needed


def test_layers_toggle_off(app, bundle):
    fig = _map(app, bundle, layers=["communities"], stypes=[])
    assert named(fig) == ["社区"]


def test_grid_panel_after_click(app, bundle):
    plan = bundle.adopted_plan_id()
    g2 = bundle.plan_grids(plan)
    gid = g2.loc[g2["level"] == 2, "id"].iloc[0]
    sel = call(app, f"{ids.SELECTED_GRID}.data", [(ids.MAP, "clickData", {"points": [{"location": gid}]})])
    assert sel == gid
    panel = _panel(app, bundle, selected=gid)
    text = str(panel)
    a = bundle.plan_assignments(plan)
    bids = set(a.loc[a["grid_id"] == gid, "building_id"])
    hh = bundle.households[bundle.households["building_id"].isin(bids)]
    assert str(len(hh)) in text and str(int(hh["persons"].sum())) in text
    assert "空巢老人" in text and "工作量" in text
    # small counts of sensitive groups show as "<5" for the viewer (geo/suppress), never the count
    n_rp = int(hh["tags"].map(lambda tg: "released_prisoner" in tg).sum())
    assert n_rp < 5 and "归正人员" in text and "<5" in text and "≈" in text
    phone = str(g2.set_index("id").loc[gid, "head_phone"])
    assert phone not in text and phone[-4:] in text  # masked


def test_summary_panel_without_selection(app, bundle):
    panel = _panel(app, bundle, lang="en")
    assert f"{len(bundle.households):,}" in str(panel) and "Area summary" in str(panel)


def test_selected_grid_is_highlighted(app, bundle):
    g2 = bundle.plan_grids(bundle.adopted_plan_id())
    gid = g2.loc[g2["level"] == 2, "id"].iloc[3]
    fig = _map(app, bundle, selected=gid)
    sel = [tr for tr in fig["data"] if tr.get("name") == "selected"]
    assert len(sel) == 1 and len(sel[0]["lon"]) > 4
    assert all(tr.get("name") != "selected" for tr in _map(app, bundle)["data"])


def test_selecting_a_grid_patches_only_the_overlay(app, bundle):
    """Once the map holds a figure, a click on a grid sends a patch of the overlay slots, not
    the figure again (and nothing for the 'loaded' store)."""
    g2 = bundle.plan_grids(bundle.adopted_plan_id())
    gid = g2.loc[g2["level"] == 2, "id"].iloc[3]
    out = ids.MAP + ".figure"
    c = app.server.test_client()
    loaded = call(app, f"{ids.LOADED}.data", map_inputs(bundle), state=[(ids.LOADED, "data", None)], client=c)
    assert loaded["tier"] == "building" and loaded["n"] > 0
    patch = call(app, out, map_inputs(bundle, selected=gid), state=[(ids.LOADED, "data", loaded)], client=c,
                 changed=[ids.SELECTED_GRID])
    assert isinstance(patch, dict) and patch.get("__dash_patch_update") == "__dash_patch_update"
    ops = patch["operations"]
    assert ops and all(op["location"][0] == "data" and op["location"][1] >= loaded["n"] for op in ops)
    assert any(op["params"]["value"].get("name") == "selected" for op in ops)


def test_coverage_view_draws_bands_and_lists_problems(app, bundle):
    from geo.coverage import audit_bundle
    from minsheng.settings import Settings
    audit = audit_bundle(bundle, bundle.adopted_plan_id(), Settings())
    fig = _map(app, bundle, view="coverage")
    names = " ".join(str(tr.get("name")) for tr in fig["data"])
    assert "户数适中" in names  # band legend
    panel = str(_panel(app, bundle, view="coverage"))
    if audit.ok:
        assert "未发现问题" in panel
    else:
        assert f"发现的问题: {len(audit.problems)}" in panel
        assert audit.problems[0].detail in panel


def test_problem_click_zooms_the_map(app, bundle):
    from callbacks import coverage_view
    ctx = app.server.config["MINSHENG_CONTEXT"]
    audit = coverage_view.audit(ctx, bundle.adopted_plan_id())
    if not audit.problems:
        pytest.skip("the sample plan has no problems to zoom to")
    focus = call(app, f"{ids.FOCUS}.data", [({"type": ids.PROBLEM, "index": 0}, "n_clicks", 1)],
                 state=[(ids.PLAN, "value", bundle.adopted_plan_id())])
    assert focus and focus[0] < focus[2] and focus[1] < focus[3]
    fig = _map(app, bundle, view="coverage", focus=focus)
    whole = _map(app, bundle, view="coverage")
    assert fig["layout"]["map"]["zoom"] > whole["layout"]["map"]["zoom"]


def test_circle_view(app, bundle):
    fig = _map(app, bundle, view="circle", stype="clinic", minutes=10)
    names = [str(tr.get("name")) for tr in fig["data"]]
    assert any("卫生服务站" in n and "10" in n for n in names)  # the circle layer
    assert "服务圈内" in names and "服务圈外" in names
    panel = str(_panel(app, bundle, view="circle", stype="clinic", minutes=10))
    assert "卫生服务站" in panel and "各网格圈外户数" in panel
    # slower walkers reach fewer households
    ctx = app.server.config["MINSHENG_CONTEXT"]
    from callbacks import circle_view
    fast = circle_view.shares(ctx, bundle.adopted_plan_id(), 10, 80)
    slow = circle_view.shares(ctx, bundle.adopted_plan_id(), 10, 60)
    pick = lambda s: s[(s.scope == "all") & (s.group == "all") & (s.service_type == "clinic")]["within"].iloc[0]
    assert pick(slow) < pick(fast)
    gb = circle_view.shares(ctx, bundle.adopted_plan_id(), 10, 0)  # GB 50180: 500 m instead of 800 m
    assert pick(gb) < pick(fast)
    assert "500" in str(_panel(app, bundle, view="circle", stype="clinic", minutes=10, speed=0))


def test_life_circle_check_view(app, bundle):
    fig = _map(app, bundle, view="lifecircle", tier="10min")
    names = [str(tr.get("name")) for tr in fig["data"]]
    assert "本层级全部达标" in names and "缺 1 项" in names
    panel = str(_panel(app, bundle, view="lifecircle", tier="10min"))
    assert "十分钟生活圈达标检查" in panel and "各网格未达标项目" in panel and "小学" in panel
    assert "老年人步速" in panel                            # key groups under their own profile
    assert "轮椅" not in panel  # 残疾人 is health data (sensitive): not in an anonymous viewer's aggregates
    en = str(_panel(app, bundle, view="lifecircle", tier="5min", lang="en"))
    assert "5-minute life circle" in en and "Nursery" in en and "托儿所" not in en


def test_gated_compounds_in_both_views(app, bundle):
    ctx = app.server.config["MINSHENG_CONTEXT"]
    from callbacks import life_circle_model as lcm
    closed, shut = lcm.default_closed(ctx)
    assert closed                                           # the sample's OSM gates close some compounds
    fig = _map(app, bundle, view="lifecircle", closed=closed, shut=shut)
    names = [str(tr.get("name")) for tr in fig["data"]]
    assert "封闭小区围墙" in names and "开放的大门" in names
    panel = str(_panel(app, bundle, view="lifecircle", closed=closed, shut=shut))
    assert "封闭小区的影响" in panel
    op = lcm.shares(ctx, bundle.adopted_plan_id())
    cl = lcm.shares(ctx, bundle.adopted_plan_id(), closed, shut)
    pick = lambda s: s[(s.scope == "all") & (s.group == "all") & (s.tier == "10min")]["households_ok"].iloc[0]
    assert pick(cl) < pick(op)                              # walls lengthen walks on the sample
    fig = _map(app, bundle, view="circle", stype="clinic", closed=closed, shut=shut)
    assert "封闭小区围墙" in [str(tr.get("name")) for tr in fig["data"]]


def test_why_outside_and_siting_in_the_circle_view(app, bundle):
    import json
    ctx = app.server.config["MINSHENG_CONTEXT"]
    from callbacks import circle_view
    table = circle_view.distances(ctx, 5, 80)
    t = table[(table.service_type == "clinic") & ~table.within & (table.walk_m < 1e9)]
    bid = t.building_id.iloc[0]
    fig = _map(app, bundle, view="circle", stype="clinic", minutes=5, building=bid)
    path = [tr for tr in fig["data"] if tr.get("name") == "步行路线"]
    assert path and len(path[0]["lon"]) >= 2
    panel = str(_panel(app, bundle, view="circle", stype="clinic", minutes=5, building=bid))
    assert f"{t.walk_m.iloc[0]:.0f} 米" in panel and "超出" in panel
    scen = json.dumps({"stype": "clinic", "k": 2, "weight": "households"})
    fig = _map(app, bundle, view="circle", stype="clinic", minutes=5, siting=scen)
    assert any(tr.get("name") == "建议新址" for tr in fig["data"])
    panel = str(_panel(app, bundle, view="circle", stype="clinic", minutes=5, siting=scen))
    assert "选址方案：新增 2 处卫生服务站" in panel and "现状" in panel


def test_every_dropdown_speaks_the_page_language(app):
    """Dropdowns have texts of their own (the search box, "no options"): in the page's language."""
    from dash import dcc

    def dropdowns(c):
        out = [c] if isinstance(c, dcc.Dropdown) else []
        kids = getattr(c, "children", None)
        for k in (kids if isinstance(kids, (list, tuple)) else [kids]):
            if k is not None and not isinstance(k, (str, int, float)):
                out += dropdowns(k)
        return out
    from callbacks.layout import page
    ctx = app.server.config["MINSHENG_CONTEXT"]
    with app.server.test_request_context():
        for lang, word in (("zh", "搜索"), ("en", "Search")):
            found = dropdowns(page(ctx, lang))
            assert len(found) >= 5
            assert all(getattr(d, "labels", {}).get("search") == word for d in found), [d.id for d in found]
