"""Presentation mode (/present): slides over HTTP as the browser gets them, zh and en; titles,
map figures with a big legend, attribution, synthetic notice; ?slide=N; clamped navigation;
the plan-change slide with two plans; never personal data, whatever the role."""
import io
import json
import shutil

import pytest

from app import create_app
from callbacks import ids
from callbacks import presentation as P
from data.gpkg_store import GpkgStore
from data.schema import ATTRIBUTION
from minsheng.cli import main
from minsheng.settings import Settings, sample_path
from tests.dash_client import _spec, call
from tests import auth_client

PASSWORD = "correct horse 9"


@pytest.fixture(scope="module")
def app():
    return create_app()


@pytest.fixture(scope="module")
def two_plans(tmp_path_factory):
    """The sample plus a draft P2 in which a few inhabited buildings moved, and an admin."""
    from data.plans import copy_plan_to_draft, load_plan, save_plan
    from geo.plan import move_buildings
    path = tmp_path_factory.mktemp("present") / "p.gpkg"
    shutil.copyfile(sample_path(), path)
    store = GpkgStore(path)
    pid = copy_plan_to_draft(store, "P1", "2027 调整草案", "tester")
    plan, version = load_plan(store, pid)
    a, g = plan.assignments, plan.grids
    inhabited = set(store.load().households["building_id"])
    per_grid = a[a["building_id"].isin(inhabited)].groupby("grid_id").size().sort_values()
    src = per_grid.index[-1]
    parent = g.loc[g["id"] == src, "parent_id"].iloc[0]
    dst = g.loc[(g["parent_id"] == parent) & (g["level"] == 2) & (g["id"] != src), "id"].iloc[0]
    moved = [b for b in a.loc[a["grid_id"] == src, "building_id"] if b in inhabited][:3]
    save_plan(store, move_buildings(plan, moved, dst), version, "tester")
    mp = pytest.MonkeyPatch()
    mp.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["users", "add", "--data", str(path), "--username", "admin", "--role", "admin",
                 "--password-stdin"]) == 0
    mp.undo()
    return path, pid, moved, src, dst


@pytest.fixture(scope="module")
def app2(two_plans):
    return create_app(Settings(data=str(two_plans[0]), secret_key="test-secret-key-0123456789abcdefgh"))


def slide(app, index, lang="zh", client=None):
    return call(app, f"{P.BODY}.children", [(P.SLIDE, "data", index), (P.LANG, "data", lang)], client=client)


def find(node, cid):
    """The component with id `cid` in a rendered layout (dicts/lists as Dash sends them)."""
    if isinstance(node, dict):
        if node.get("props", {}).get("id") == cid:
            return node
        for v in node.values():
            hit = find(v, cid)
            if hit is not None:
                return hit
    elif isinstance(node, list):
        for v in node:
            hit = find(v, cid)
            if hit is not None:
                return hit
    return None


def text_of(node) -> str:
    if isinstance(node, str):
        return node
    if isinstance(node, dict):
        return text_of(node.get("props", {}).get("children"))
    if isinstance(node, list):
        return " ".join(text_of(c) for c in node)
    return "" if node is None else str(node)


def strings(node, out=None) -> list:
    """Every string in a payload (labels, hover texts, names), without the coordinates."""
    out = [] if out is None else out
    if isinstance(node, str):
        out.append(node)
    elif isinstance(node, dict):
        for v in node.values():
            strings(v, out)
    elif isinstance(node, list) and node and not isinstance(node[0], (int, float)):
        for v in node:
            strings(v, out)
    return out


def nav(app, trigger, current, search=""):
    """The navigate callback with `trigger` as the changed input (next / prev / URL search)."""
    inputs = [(P.NEXT, "n_clicks", 1), (P.PREV, "n_clicks", 1), (ids.URL, "search", search)]
    prop = "search" if trigger == ids.URL else "n_clicks"
    r = app.server.test_client().post("/_dash-update-component", json={
        "output": f"{P.SLIDE}.data", "outputs": {"id": P.SLIDE, "property": "data"},
        "inputs": [_spec(i, p, v) for i, p, v in inputs], "changedPropIds": [f"{trigger}.{prop}"],
        "state": [_spec(P.SLIDE, "data", current)]})
    assert r.status_code == 200, r.data[:300]
    return json.loads(r.data)["response"][P.SLIDE]["data"]


def test_present_page_by_pathname(app):
    page = call(app, f"{ids.PAGE}.children", [(ids.URL, "search", ""), (ids.URL, "pathname", "/present")])
    for cid in (P.PREV, P.NEXT, P.FULLSCREEN, P.BODY, P.SLIDE):
        assert find(page, cid) is not None, cid
    assert find(page, ids.PANEL) is None and find(page, ids.CONTROLS_OVERVIEW) is None  # no side panels
    assert find(page, P.LANG)["props"]["data"] == "zh"
    en = call(app, f"{ids.PAGE}.children", [(ids.URL, "search", "?lang=en&slide=2"), (ids.URL, "pathname", "/present")])
    assert find(en, P.LANG)["props"]["data"] == "en"
    dash = call(app, f"{ids.PAGE}.children", [(ids.URL, "search", ""), (ids.URL, "pathname", "/")])
    assert find(dash, P.BODY) is None and find(dash, ids.MAP) is not None


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_slide_has_title_map_legend_attribution(app, lang):
    titles = []
    for i in range(len(P.SLIDES)):
        body = slide(app, i, lang)
        title = text_of(find(body, P.TITLE))
        assert title and title not in titles
        titles.append(title)
        assert text_of(find(body, P.COUNTER)) == f"{i + 1} / {len(P.SLIDES)}"
        fig = find(body, P.MAP)["props"]["figure"]
        assert fig["data"] and any(tr["type"] in ("choroplethmap", "scattermap") for tr in fig["data"])
        assert "map" in fig["layout"] and fig["layout"]["meta"]["fit"]
        assert fig["layout"]["legend"]["font"]["size"] >= 18
        assert sum(tr.get("showlegend", True) is not False for tr in fig["data"]) >= 3
        assert ATTRIBUTION in text_of(find(body, "present-attribution"))
        notice = text_of(find(body, "present-synthetic"))
        assert ("合成数据" in notice) if lang == "zh" else ("synthetic" in notice)
        strip = text_of(find(body, "present-strip"))
        assert any(ch.isdigit() for ch in strip)
    if lang == "zh":
        assert titles[0] == "社区与网格总览" and "服务圈" in titles[2]
    else:
        assert titles[0] == "Communities and grids" and "circle" in titles[2]
        assert not any("\u4e00" <= ch <= "\u9fff" for ch in " ".join(titles[:3]))


def test_overview_strip_figures(app):
    b = app.server.config["MINSHENG_CONTEXT"].store.load()
    strip = text_of(find(slide(app, 0), "present-strip"))
    assert f"{len(b.households):,}" in strip and f"{int(b.households['persons'].sum()):,}" in strip
    g = b.plan_grids(b.adopted_plan_id())
    assert f"{int((g['level'] == 1).sum())} / {int((g['level'] == 2).sum())}" in strip


def test_coverage_and_circle_slides_use_the_views(app):
    ctx = app.server.config["MINSHENG_CONTEXT"]
    b = ctx.bundle()
    from callbacks import circle_view, coverage_view
    a = coverage_view.audit(ctx, b.adopted_plan_id())
    cov = slide(app, 1)
    assert f"{int((a.grids[a.grids['level'] == 2]['band'] == 'ok').sum())} / " in text_of(find(cov, "present-strip"))
    names = {tr.get("name", "") for tr in find(cov, P.MAP)["props"]["figure"]["data"]}
    assert any("户数适中" in n for n in names)
    circ = slide(app, 2)
    sh = circle_view.shares(ctx, b.adopted_plan_id(), ctx.settings.circle_minutes, ctx.settings.walk_speed_m_min)
    stype = P._circle_types(b)[0]
    share = sh[(sh["service_type"] == stype) & (sh["scope"] == "all") & (sh["group"] == "all")]["share"].iloc[0]
    assert f"{100 * share:.0f}%" in text_of(find(circ, "present-strip"))
    assert "空巢老人" in text_of(find(circ, "present-strip"))


def test_slide_from_url_and_clamped_navigation(app):
    assert nav(app, ids.URL, None, "?slide=3") == 2
    assert nav(app, ids.URL, 2, "?lang=en&slide=1") == 0
    assert nav(app, ids.URL, None, "?slide=99") == len(P.SLIDES) - 1
    assert nav(app, ids.URL, None, "?slide=abc") == 0
    assert nav(app, ids.URL, None, "") == 0
    assert nav(app, P.NEXT, 0, "?slide=1") == 1
    assert nav(app, P.NEXT, 1, "?slide=1") == 2          # the URL's slide no longer matters
    assert nav(app, P.NEXT, len(P.SLIDES) - 1) == len(P.SLIDES) - 1  # clamped, no wrap to the start
    assert nav(app, P.PREV, 2) == 1
    assert nav(app, P.PREV, 0) == 0
    assert P.slide_from_search("?slide=0") == 0


def test_single_plan_slide_lists_plans(app):
    body = slide(app, 3)
    table = text_of(find(body, "present-plans"))
    assert "P1" in table and "已采用" in table and "草案" in table  # status + the note about drafts
    assert "Grid plans" == text_of(find(slide(app, 3, "en"), P.TITLE))


def test_plan_change_slide(app2, two_plans):
    _, pid, moved, src, dst = two_plans
    body = slide(app2, 3)
    assert text_of(find(body, P.TITLE)) .startswith("网格方案调整：P1 → P2")
    strip = text_of(find(body, "present-strip"))
    assert f"{len(moved)} 楼栋调整" in strip
    fig = find(body, P.MAP)["props"]["figure"]
    moved_tr = [tr for tr in fig["data"] if tr.get("name", "").startswith("调整的楼栋")]
    assert len(moved_tr) == 1 and sorted(moved_tr[0]["locations"]) == sorted(moved)
    b = app2.server.config["MINSHENG_CONTEXT"].store.load()
    names = dict(zip(b.grids["id"], b.grids["name"]))
    table = text_of(find(body, "present-plan-table"))
    assert names[src] in table and names[dst] in table and "调整前" in table
    en = slide(app2, 3, "en")
    assert text_of(find(en, P.TITLE)).startswith("Plan change: P1 → P2")


def test_no_personal_data_on_any_slide_even_for_admin(app2):
    b = app2.server.config["MINSHENG_CONTEXT"].store.load()
    admin = app2.server.test_client()
    assert auth_client.login(admin, "admin", PASSWORD)[1].status_code == 302
    secrets = set(b.households["head_name"].dropna().astype(str)) | set(b.households["phone"].dropna().astype(str))
    secrets |= set(b.grids["head_name"].dropna().astype(str)) | set(b.grids["head_phone"].dropna().astype(str))
    secrets = {s for s in secrets if len(s) >= 2}
    assert len(secrets) > 1000
    for client in (None, admin):
        for lang in ("zh", "en"):
            for i in range(len(P.SLIDES)):
                text = "\n".join(strings(slide(app2, i, lang, client=client)))
                leaked = [s for s in secrets if s in text]
                assert not leaked, (i, lang, len(leaked))
