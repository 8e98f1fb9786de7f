"""Gate editing and siting scenarios over HTTP, as the browser sends them: a planner adds,
moves and closes a gate (stored, audited, and the circles follow), a viewer is refused on the
server; a proposed site is moved on the map and re-scored; scenarios are saved (planners
only), listed and reloaded. Run on both stores."""
import json
import re

import geopandas as gpd
import numpy as np
import pytest
import shapely

from app import create_app
from callbacks import circle_view, ids
from callbacks import life_circle_model as lcm
from minsheng.settings import Settings
from tests import auth_client
from tests.auth_client import KEY, PASSWORD, project_store, store_params
from tests.test_app import params

COMPOUND = "w1041416781"     # 大华花园别墅: closed, one gate, no mapped paths inside
OLD_GATE = "n10703769520"


@pytest.fixture(params=store_params())
def setup(request, tmp_path):
    store, kw = project_store(request.param, tmp_path, request,
                              users=(("plan", "planner", None), ("view", "viewer", None)))
    app = create_app(Settings(secret_key=KEY, **kw), store=store)
    yield app, store
    if hasattr(store, "close"):
        store.close()


def client_for(app, user):
    c = app.server.test_client()
    assert auth_client.login(c, user, PASSWORD)[1].status_code == 302
    return c


def fire(app, client, output_key: str, trigger: tuple, values: dict) -> dict:
    """Call the callback whose output list contains ``output_key`` with ``trigger`` (id, prop,
    value) changed and the other inputs and states from ``values`` {(id, prop): value};
    returns {id: {prop: value}} of the outputs that changed."""
    key = next(k for k in list(app.callback_map) if output_key in k)
    spec = app.callback_map[key]
    outs = [o.rsplit(".", 1) for o in key.strip(".").split("...")]
    vals = dict(values)
    vals[trigger[:2]] = trigger[2]

    def item(d):
        return {"id": d["id"], "property": d["property"], "value": vals.get((d["id"], d["property"]))}
    r = client.post("/_dash-update-component", json={
        "output": key, "outputs": [{"id": i, "property": p} for i, p in outs],
        "inputs": [item(d) for d in spec["inputs"]], "state": [item(d) for d in spec["state"]],
        "changedPropIds": [f"{trigger[0]}.{trigger[1]}"]})
    assert r.status_code in (200, 204), r.data[:300]
    return {} if r.status_code == 204 else {i: {p.split("@")[0]: v for p, v in d.items()}
                                            for i, d in json.loads(r.data)["response"].items()}


def gate_edit(app, client, trigger, *, mode="inspect", pick=None, closed=(COMPOUND,), shut=(OLD_GATE,),
              view="circle", lang="zh"):
    return fire(app, client, "gate-message.children", trigger, {
        (ids.CLICK_MODE, "value"): mode, (ids.GATE_PICK, "value"): pick,
        (ids.GATED_COMPOUNDS, "value"): list(closed), (ids.SHUT_GATES, "value"): list(shut),
        (ids.VIEW, "value"): view, (ids.LANG, "data"): lang})


def inside_distances(ctx, closed, shut, stype="market"):
    from geo.gates import compound_zones
    b = ctx.bundle()
    cg = lcm.compounds_gates(ctx)
    net = lcm.network(ctx, tuple(closed), tuple(shut))
    inside = b.buildings["id"][compound_zones(b.buildings.geometry, cg.compounds, (COMPOUND,),
                                              crs=net.graph.crs) == COMPOUND]
    d = circle_view.distances(ctx, 10, 80, tuple(sorted(closed)), tuple(sorted(shut)))
    d = d[d.building_id.isin(set(inside)) & (d.service_type == stype)]
    return d.set_index("building_id")["walk_m"].sort_index().to_numpy()


def boundary_click(ctx, far_from):
    """A click 6 m outside the compound's wall, at the boundary point farthest from ``far_from``."""
    from geo.crs import metric_crs
    c = lcm.compounds_gates(ctx).compounds
    crs = metric_crs(c)
    poly = c[c["id"] == COMPOUND].to_crs(crs).geometry.iloc[0]
    ring = poly.boundary
    ref = gpd.GeoSeries([far_from], crs=4326).to_crs(crs).iloc[0]
    pts = [ring.interpolate(f, normalized=True) for f in np.linspace(0, 1, 200, endpoint=False)]
    on = max(pts, key=lambda q: q.distance(ref))
    out = shapely.Point(on.x + 6 * (on.x - poly.centroid.x) / on.distance(poly.centroid),
                        on.y + 6 * (on.y - poly.centroid.y) / on.distance(poly.centroid))
    p = gpd.GeoSeries([out], crs=crs).to_crs(4326).iloc[0]
    return {"points": [{"lon": p.x, "lat": p.y, "curveNumber": 3, "pointNumber": 0}]}, on, crs


def test_planner_adds_moves_and_closes_a_gate_and_the_circles_follow(setup):
    app, store = setup
    ctx = app.server.config["MINSHENG_CONTEXT"]
    planner, viewer = client_for(app, "plan"), client_for(app, "view")
    gates0 = store.load().gates
    old = gates0.set_index("id").loc[OLD_GATE, "geometry"]
    # the compound with its only gate shut: its residents are cut off
    assert not np.isfinite(inside_distances(ctx, (COMPOUND,), (OLD_GATE,))).any()
    click, on, crs = boundary_click(ctx, old)
    v0 = store.version()
    # a viewer is refused on the server, whatever the client sends; nothing is written
    res = gate_edit(app, viewer, (ids.MAP, "clickData", click), mode="gate_add")
    assert res[ids.GATE_MSG]["children"] == "只有规划人员和管理员可以编辑大门"
    res = gate_edit(app, viewer, (ids.BTN_GATE_CLOSE, "n_clicks", 1), pick=OLD_GATE)
    assert "只有规划人员" in res[ids.GATE_MSG]["children"]
    assert store.version() == v0 and len(store.load().gates) == len(gates0)
    # the planner adds a gate: it snaps onto the boundary, is stored open, and the residents get out
    res = gate_edit(app, planner, (ids.MAP, "clickData", click), mode="gate_add")
    assert res[ids.GATE_PICK]["value"] == "G1" and "已新增大门 G1" in res[ids.GATE_MSG]["children"]
    assert 4 <= int(re.search(r"距点击处 (\d+) 米", res[ids.GATE_MSG]["children"]).group(1)) <= 8
    assert res[ids.SHUT_GATES]["value"] == [OLD_GATE] and res[ids.GATED_COMPOUNDS]["value"] == [COMPOUND]
    assert any(o["value"] == "G1" for o in res[ids.SHUT_GATES]["options"])
    stored = store.load()
    g1 = stored.gates.set_index("id").loc["G1"]
    assert g1["compound_id"] == COMPOUND and not g1["closed"]
    g1m = gpd.GeoSeries([g1.geometry], crs=4326).to_crs(crs).iloc[0]
    ring = lcm.compounds_gates(ctx).compounds.set_index("id").loc[[COMPOUND]].to_crs(crs).boundary.iloc[0]
    assert g1m.distance(ring) < 0.05 and g1m.distance(on) < 3        # on the boundary, where clicked
    assert store.version() != v0
    assert stored.audit_log.iloc[-1][["user", "action", "object"]].tolist() == ["plan", "add_gate", "gate:G1"]
    added = inside_distances(ctx, (COMPOUND,), (OLD_GATE,))
    assert np.isfinite(added).all()
    # move it: a click near the old gate puts it on the boundary there; the walks change
    near_old = {"points": [{"lon": old.x + 0.00005, "lat": old.y, "curveNumber": 3, "pointNumber": 0}]}
    res = gate_edit(app, planner, (ids.MAP, "clickData", near_old), mode="gate_move", pick="G1")
    assert "大门 G1 已移到「大华花园别墅」的边界上" == res[ids.GATE_MSG]["children"]
    moved = store.load().gates.set_index("id").loc["G1", "geometry"]
    assert moved.distance(old) < 0.0002 and moved.distance(g1.geometry) > 0.0005
    after_move = inside_distances(ctx, (COMPOUND,), (OLD_GATE,))
    assert np.isfinite(after_move).all() and not np.allclose(after_move, added)
    # close it at night: stored closed, the shut list gains it, and the residents are cut off again
    res = gate_edit(app, planner, (ids.BTN_GATE_CLOSE, "n_clicks", 1), pick="G1")
    assert res[ids.GATE_MSG]["children"] == "大门 G1 已关闭（夜间）"
    shut = res[ids.SHUT_GATES]["value"]
    assert sorted(shut) == sorted(["G1", OLD_GATE]) and store.load().gates.set_index("id").loc["G1", "closed"]
    assert not np.isfinite(inside_distances(ctx, (COMPOUND,), shut)).any()
    res = gate_edit(app, planner, (ids.BTN_GATE_OPEN, "n_clicks", 1), pick="G1", shut=shut, lang="en")
    assert res[ids.GATE_MSG]["children"] == "Gate G1 is now open" and res[ids.SHUT_GATES]["value"] == [OLD_GATE]
    log = store.load().audit_log
    assert log["action"].tolist()[-4:] == ["add_gate", "move_gate", "close_gate", "open_gate"]
    # the map draws the new gate (clickable: customdata names it) and the panel explains through it
    fig = call_map(app, ctx, closed=(COMPOUND,), shut=(OLD_GATE,))
    gate_pts = [cd for tr in fig["data"] for cd in (tr.get("customdata") or []) if str(cd).startswith("gate:")]
    assert "gate:G1" in gate_pts and "gate:" + OLD_GATE in gate_pts
    # a click on a gate marker in inspect mode selects it (for everyone)
    res = gate_edit(app, viewer, (ids.MAP, "clickData", {"points": [{"lon": 1, "lat": 1, "customdata": "gate:G1"}]}))
    assert res[ids.GATE_PICK]["value"] == "G1"
    # a click far from any compound adds nothing
    n = len(store.load().gates)
    far = {"points": [{"lon": old.x + 0.02, "lat": old.y + 0.02}]}
    res = gate_edit(app, planner, (ids.MAP, "clickData", far), mode="gate_add")
    assert "米内没有小区边界" in res[ids.GATE_MSG]["children"] and len(store.load().gates) == n


def call_map(app, ctx, **kw):
    from tests.dash_client import call
    b = ctx.bundle()
    return call(app, f"{ids.MAP}.figure", params(b, view="circle", stype="market", **kw) + [(ids.FOCUS, "data", None)])


def site_edit(app, client, trigger, *, raw=None, mode="inspect", pick=None, k=2, capacity=None, saved=None,
              stype="clinic", minutes=5):
    return fire(app, client, "siting.data...site-pick.options", trigger, {
        (ids.CIRCLE_TYPE, "value"): stype, (ids.SITE_K, "value"): k, (ids.SITE_WEIGHT, "value"): "households",
        (ids.SITE_CAPACITY, "value"): capacity, (ids.SITING, "data"): raw, (ids.CLICK_MODE, "value"): mode,
        (ids.SITE_PICK, "value"): pick, (ids.CIRCLE_MINUTES, "value"): minutes, (ids.CIRCLE_SPEED, "value"): 80,
        (ids.GATED_COMPOUNDS, "value"): [], (ids.SHUT_GATES, "value"): [], (ids.SITE_SAVED, "value"): saved,
        (ids.VIEW, "value"): "circle", (ids.LANG, "data"): "zh"})


def site_save(app, client, raw, name, minutes=5):
    return fire(app, client, "site-saved.options", (ids.BTN_SITE_SAVE, "n_clicks", 1), {
        (ids.SITING, "data"): raw, (ids.SITE_NAME, "value"): name, (ids.CIRCLE_MINUTES, "value"): minutes,
        (ids.CIRCLE_SPEED, "value"): 80, (ids.GATED_COMPOUNDS, "value"): [], (ids.SHUT_GATES, "value"): [],
        (ids.LANG, "data"): "zh"})


def test_move_a_proposed_site_rescore_save_and_reload(setup):
    from tests.dash_client import call
    app, store = setup
    ctx = app.server.config["MINSHENG_CONTEXT"]
    planner, viewer = client_for(app, "plan"), client_for(app, "view")
    b = ctx.bundle()
    reach = circle_view.circle_params(5, 80).threshold_m("clinic")
    # propose 2 clinics, at most 300 households each
    res = site_edit(app, viewer, (ids.BTN_SITE, "n_clicks", 1), capacity=300)
    raw = res[ids.SITING]["data"]
    assert json.loads(raw) == {"stype": "clinic", "k": 2, "weight": "households", "capacity": 300}
    assert [o["value"] for o in res[ids.SITE_PICK]["options"]] == [1, 2]
    solved, _ = lcm.scenario(ctx, "clinic", reach, 2, "households", capacity=300)
    assert solved.backend == "capacitated" and (solved.gain_by_choice <= 300 + 1e-6).all()
    # click proposed site 2, then a building far from both: the scenario now lists points and is re-scored
    res = site_edit(app, viewer, (ids.MAP, "clickData", {"points": [{"customdata": ["site:2", "x"]}]}), raw=raw,
                    mode="site_move")
    assert res[ids.SITE_PICK]["value"] == 2 and "已选择建议新址 2" in res[ids.SITE_MSG]["children"]
    ids_now = b.buildings["id"].to_numpy()[solved.chosen].tolist()
    target = b.buildings["id"].iloc[0] if b.buildings["id"].iloc[0] not in ids_now else b.buildings["id"].iloc[1]
    res = site_edit(app, viewer, (ids.MAP, "clickData", {"points": [{"location": target}]}), raw=raw,
                    mode="site_move", pick=2)
    moved_raw = res[ids.SITING]["data"]
    moved = json.loads(moved_raw)
    assert moved["points"] == [ids_now[0], target] and moved["capacity"] == 300
    rescored, _ = lcm.scenario(ctx, "clinic", reach, 2, "households", capacity=300, points=tuple(moved["points"]))
    assert rescored.chosen.tolist() == [int(solved.chosen[0]), int(np.flatnonzero(b.buildings["id"] == target)[0])]
    assert rescored.covered_after <= solved.covered_after + 1e-6 and rescored.covered_after != solved.covered_after
    panel = str(call(app, f"{ids.PANEL}.children", params(b, view="circle", stype="clinic", minutes=5,
                                                          siting=moved_raw)))
    assert "（已调整）" in panel and "人数覆盖比例" in panel and "每处新址最多服务 300（住户数）" in panel
    fig = lcm.scenario_figures(ctx, rescored)
    assert f"{fig['households']['after']:,.0f}" in panel and f"{fig['persons']['after']:,.0f}" in panel
    assert "site-chart" in panel
    en = str(call(app, f"{ids.PANEL}.children", params(b, view="circle", stype="clinic", minutes=5, lang="en",
                                                       siting=moved_raw)))
    assert "Share of persons covered" in en and "(adjusted)" in en and "人数" not in en
    # a click on the map without a picked site moves nothing
    res = site_edit(app, viewer, (ids.MAP, "clickData", {"points": [{"location": target}]}), raw=raw,
                    mode="site_move", pick=None)
    assert ids.SITING not in res and "请先点击要移动的建议新址" in res[ids.SITE_MSG]["children"]
    # saving: planners only, checked on the server
    res = site_save(app, viewer, moved_raw, "试一试")
    assert res[ids.SITE_MSG]["children"] == "只有规划人员和管理员可以保存方案" and store.scenarios().empty
    res = site_save(app, planner, moved_raw, "")
    assert "请输入方案名称" in res[ids.SITE_MSG]["children"] and store.scenarios().empty
    v = store.version()
    res = site_save(app, planner, moved_raw, "东区两处卫生站")
    assert res[ids.SITE_MSG]["children"] == "方案「东区两处卫生站」已保存（S1）" and res[ids.SITE_SAVED]["value"] == "S1"
    assert res[ids.SITE_SAVED]["options"][0]["value"] == "S1" and "东区两处卫生站" in res[ids.SITE_SAVED]["options"][0]["label"]
    row = store.scenario("S1")
    assert row["points"] == moved["points"] and row["capacity"] == 300 and row["minutes"] == 5
    assert row["covered_after"] == pytest.approx(rescored.covered_after) and row["created_by"] == "plan"
    assert store.version() == v      # a saved scenario changes no dataset layer
    assert store.load().audit_log.iloc[-1][["user", "action", "object"]].tolist() == ["plan", "save_scenario",
                                                                                      "scenario:S1"]
    # reload (anyone): the scenario and the controls it was made with come back
    res = site_edit(app, viewer, (ids.BTN_SITE_LOAD, "n_clicks", 1), saved="S1", stype="market", minutes=15,
                    k=5)
    back = json.loads(res[ids.SITING]["data"])
    assert back["points"] == moved["points"] and back["name"] == "东区两处卫生站" and back["capacity"] == 300
    assert res[ids.CIRCLE_TYPE]["value"] == "clinic" and res[ids.CIRCLE_MINUTES]["value"] == 5
    assert res[ids.SITE_K]["value"] == 2 and res[ids.SITE_CAPACITY]["value"] == 300
    assert res[ids.SITE_MSG]["children"] == "已载入方案「东区两处卫生站」"
    panel = str(call(app, f"{ids.PANEL}.children", params(b, view="circle", stype="clinic", minutes=5,
                                                          siting=res[ids.SITING]["data"])))
    assert f"{fig['households']['after']:,.0f}" in panel and "已载入方案「东区两处卫生站」" in panel
    # a second page load lists the saved scenario
    page = str(call(app, f"{ids.PAGE}.children", [(ids.URL, "search", ""), (ids.URL, "pathname", "/")],
                    client=planner))
    assert "东区两处卫生站" in page


CLICKS = ["x", {"points": "x"}, {"points": [1]}, {"points": [{"lon": "1", "lat": None}]},
          {"points": [{"lon": float("inf"), "lat": 0}]}, {"points": [{"location": {"a": 1}}]},
          {"points": [{"customdata": ["site:99"]}]}, {"points": [{"customdata": {"x": 1}}]}]


def test_malformed_clicks_and_scenarios_are_answered_not_500(setup):
    app, store = setup
    planner = client_for(app, "plan")
    v = store.version()
    for click in CLICKS:
        for mode in ("gate_add", "gate_move", "inspect", {"x": 1}):
            res = gate_edit(app, planner, (ids.MAP, "clickData", click), mode=mode, pick={"x": 1}, closed="x",
                            shut=[1])
            assert not res or isinstance(res[ids.GATE_MSG]["children"], str)
        for raw in (None, "{", "[]", json.dumps({"stype": "clinic", "k": 99}),
                    json.dumps({"stype": "clinic", "k": 2, "points": [1, 2]})):
            site_edit(app, planner, (ids.MAP, "clickData", click), raw=raw, mode="site_move", pick="1")
    for raw in (None, "{", json.dumps({"stype": "clinic", "k": 2, "capacity": True})):
        assert "没有可保存的方案" in site_save(app, planner, raw, "x")[ids.SITE_MSG]["children"]
    res = site_save(app, planner, json.dumps({"stype": "clinic", "k": 2}), {"x": 1})
    assert "请输入方案名称" in res[ids.SITE_MSG]["children"]
    res = site_edit(app, planner, (ids.BTN_SITE, "n_clicks", 1), k="lots", capacity=-3)
    assert "1–20" in res[ids.SITE_MSG]["children"] and ids.SITING not in res
    res = site_edit(app, planner, (ids.BTN_SITE_LOAD, "n_clicks", 1), saved={"x": 1})
    assert res[ids.SITE_MSG]["children"] == "请先在列表中选择一个已保存的方案"
    # a scenario weighted by a sensitive key group is never scored for the map (crafted by a client)
    from tests.dash_client import call
    b = app.server.config["MINSHENG_CONTEXT"].bundle()
    for weight, shown in (("released_prisoner", False), ("disabled", False), ("empty_nest_elderly", True)):
        raw = json.dumps({"stype": "clinic", "k": 1, "weight": weight})
        panel = str(call(app, f"{ids.PANEL}.children", params(b, view="circle", stype="clinic", siting=raw)))
        assert ("site-compare" in panel) == shown, weight
    assert store.version() == v and store.scenarios().empty
    assert not set(store.load().audit_log["action"]) & {"add_gate", "move_gate", "close_gate", "save_scenario"}
