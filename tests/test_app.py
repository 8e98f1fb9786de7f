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
    return app.server.config["MINSHENG_CONTEXT"].bundle()


def _map(app, bundle, layers=ALL_LAYERS, lang="zh", stypes=None):
    stypes = sorted(set(bundle.service_points["type"])) if stypes is None else stypes
    return call(app, f"{ids.MAP}.figure", [(ids.LAYERS, "value", list(layers)), (ids.STYPES, "value", stypes),
                                           (ids.PLAN, "value", bundle.adopted_plan_id()), (ids.LANG, "data", lang)])


def test_page_has_attribution_and_chinese_default(app):
    page = str(call(app, f"{ids.PAGE}.children", [(ids.URL, "search", "")]))
    assert ATTRIBUTION in page
    assert "民生地图" in page and "English" in page and "?lang=en" in page


def test_english_switch(app):
    page = str(call(app, f"{ids.PAGE}.children", [(ids.URL, "search", "?lang=en")]))
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
    assert [tr.get("name") for tr in fig["data"]] == ["社区"]


def test_grid_panel_after_click(app, bundle):
    plan = bundle.adopted_plan_id()
    g2 = bundle.plan_grids(plan)
    gid = g2.loc[g2["level"] == 2, "id"].iloc[0]
    sel = call(app, f"{ids.SELECTED_GRID}.data", [(ids.MAP, "clickData", {"points": [{"location": gid}]})])
    assert sel == gid
    panel = call(app, f"{ids.PANEL}.children", [(ids.SELECTED_GRID, "data", gid), (ids.PLAN, "value", plan),
                                                (ids.LANG, "data", "zh")])
    text = str(panel)
    a = bundle.plan_assignments(plan)
    bids = set(a.loc[a["grid_id"] == gid, "building_id"])
    hh = bundle.households[bundle.households["building_id"].isin(bids)]
    assert str(len(hh)) in text and str(int(hh["persons"].sum())) in text
    assert "空巢老人" in text and "归正人员" not in text  # sensitive groups hidden from the viewer panel
    phone = str(g2.set_index("id").loc[gid, "head_phone"])
    assert phone not in text and phone[-4:] in text  # masked


def test_summary_panel_without_selection(app, bundle):
    panel = call(app, f"{ids.PANEL}.children", [(ids.SELECTED_GRID, "data", None),
                                                (ids.PLAN, "value", bundle.adopted_plan_id()), (ids.LANG, "data", "en")])
    assert f"{len(bundle.households):,}" in str(panel) and "Area summary" in str(panel)
