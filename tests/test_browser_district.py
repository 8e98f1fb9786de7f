"""Real browser on a synthetic district (benchmarks/synthetic_city.py) with small map budgets,
so that the whole area opens at the community tier: a person clicks a community, zooms in
with the mouse wheel and clicks a level-2 grid, zooms to street level and clicks a building;
a planner selects two buildings with real clicks at street zoom and assigns them."""
import io
import time

import pytest

from tests.browser import Served, chrome, quit_chrome, text_of

pytestmark = pytest.mark.browser
PASSWORD = "district planner 7"
BUDGET = {"map_budget_buildings": 400, "map_budget_grids": 60}


@pytest.fixture(scope="module")
def district(tmp_path_factory):
    from benchmarks.synthetic_city import make_city
    from data.bundle import make_bundle
    from data.gpkg_store import GpkgStore
    from minsheng.cli import main
    path = tmp_path_factory.mktemp("district") / "district.gpkg"
    layers = make_city(n_grids=200, n_buildings=3000, n_households=20_000, with_streets=True)
    GpkgStore(path).write_all(make_bundle(layers))
    import sys
    old = sys.stdin
    sys.stdin = io.StringIO(PASSWORD + "\n")
    try:
        assert main(["users", "add", "--data", str(path), "--username", "plan", "--role", "planner",
                     "--password-stdin"]) == 0
    finally:
        sys.stdin = old
    return path, layers


@pytest.fixture(scope="module")
def served(district):
    from app import create_app
    from minsheng.settings import Settings
    s = Served(create_app(Settings(data=str(district[0]), secret_key="d" * 40, **BUDGET)))
    yield s
    s.close()


TIER_JS = """
const gd = document.querySelector('#map .js-plotly-plot');
if (!gd || !gd.data) return null;
const locs = gd.data.filter(t => t.type === 'choroplethmap' && t.locations && t.locations.length)
                    .map(t => String(t.locations[0]));
if (locs.some(l => l.startsWith('B'))) return 'building';
if (locs.some(l => l.startsWith('G'))) return 'grid';
if (locs.some(l => l.startsWith('C'))) return 'community';
return null;
"""

PIXEL_JS = """
const gd = document.querySelector('#map .js-plotly-plot');
const m = gd._fullLayout.map._subplot.map;
const p = m.project([arguments[0], arguments[1]]);
const r = m.getCanvas().getBoundingClientRect();
return [p.x - r.width / 2, p.y - r.height / 2];
"""


def _canvas(d):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(d, 60).until(EC.presence_of_element_located((By.CSS_SELECTOR, "#map canvas.maplibregl-canvas")))


def _tier(d):
    return d.execute_script(TIER_JS)


def _zoom_to(d, tier, steps=40):
    """Mouse-wheel in over the map centre until the map shows `tier`."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.wheel_input import ScrollOrigin
    canvas = _canvas(d)
    for _ in range(steps):
        if _tier(d) == tier:
            return
        ActionChains(d).scroll_from_origin(ScrollOrigin.from_element(canvas), 0, -240).perform()
        time.sleep(0.6)
    for _ in range(20):
        if _tier(d) == tier:
            return
        time.sleep(0.5)
    raise AssertionError(f"the map never showed the {tier} tier (shows {_tier(d)})")


def _click_at(d, lon, lat):
    from selenium.webdriver.common.action_chains import ActionChains
    x, y = d.execute_script(PIXEL_JS, lon, lat)
    ActionChains(d).move_to_element_with_offset(_canvas(d), int(round(x)), int(round(y))).pause(0.3).click().perform()


COLOR_JS = """
const gd = document.querySelector('#map .js-plotly-plot');
for (const t of gd.data) {
  if (t.type !== 'choroplethmap' || !t.locations) continue;
  const i = t.locations.indexOf(arguments[0]);
  if (i >= 0) return t.colorscale[2 * t.z[i]][1];
}
return null;
"""


def _color(d, building_id):
    """The fill colour the map draws a building with."""
    return d.execute_script(COLOR_JS, building_id)


def _center(d):
    return d.execute_script("const gd = document.querySelector('#map .js-plotly-plot');"
                            "const c = gd._fullLayout.map._subplot.map.getCenter(); return [c.lng, c.lat];")


def test_click_at_every_zoom_opens_its_panel(served, district):
    import shapely
    from selenium.webdriver.support.ui import WebDriverWait
    _, layers = district
    d = chrome(1600, 1000)
    try:
        d.get(served.url)
        wait = WebDriverWait(d, 60)
        _canvas(d)
        wait.until(lambda x: _tier(x) == "community")
        # zoomed out: a community, filled by its households
        comm = layers["communities"].iloc[len(layers["communities"]) // 2]
        pt = shapely.point_on_surface(comm.geometry)
        _click_at(d, pt.x, pt.y)
        wait.until(lambda x: str(comm["name"]) in text_of(x, "#panel-title"))
        assert "社区" in text_of(d, "#grid-facts") and "户数" in text_of(d, "#grid-facts")
        # mid zoom: level-2 grids
        _zoom_to(d, "grid")
        lon, lat = _center(d)
        g2 = layers["grids"][layers["grids"]["level"] == 2]
        hit = g2[g2.contains(shapely.Point(lon, lat))]
        assert len(hit) == 1
        _click_at(d, lon, lat)
        wait.until(lambda x: str(hit["name"].iloc[0]) in text_of(x, "#panel-title"))
        assert "二级网格" in text_of(d, "#grid-facts")
        # street zoom: buildings in view only; a click on a building opens its grid
        _zoom_to(d, "building")
        sent = d.execute_script("const gd = document.querySelector('#map .js-plotly-plot');"
                                "return gd.data.filter(t => t.type === 'choroplethmap')"
                                ".map(t => t.locations.length);")
        assert 0 < max(sent) <= BUDGET["map_budget_buildings"]  # never the district's 3,000 buildings
        lon, lat = _center(d)
        b = layers["buildings"]
        near = b.iloc[int(b.distance(shapely.Point(lon, lat)).to_numpy().argmin())]
        c = near.geometry.centroid
        _click_at(d, c.x, c.y)
        grid = layers["assignments"].set_index("building_id")["grid_id"][near["id"]]
        name = layers["grids"].set_index("id")["name"][grid]
        wait.until(lambda x: str(name) in text_of(x, "#panel-title"))
    finally:
        quit_chrome(d)


def test_planner_selects_and_assigns_at_street_zoom(served, district):
    import shapely
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait
    _, layers = district
    d = chrome(1600, 1000)
    try:
        wait = WebDriverWait(d, 60)
        d.get(served.url + "login")
        d.find_element(By.ID, "username").send_keys("plan")
        d.find_element(By.ID, "password").send_keys(PASSWORD)
        d.find_element(By.ID, "login-submit").click()
        _canvas(d)
        d.find_element(By.XPATH, "//*[contains(@class,'tab') and normalize-space()='网格规划']").click()
        wait.until(EC.visibility_of_element_located((By.ID, "btn-copy-draft"))).click()
        wait.until(lambda x: "草案" in text_of(x, "#planner-plan"))
        _zoom_to(d, "building")
        lon, lat = _center(d)
        b, a = layers["buildings"], layers["assignments"].set_index("building_id")["grid_id"]
        order = b.distance(shapely.Point(lon, lat)).to_numpy().argsort()
        first = b.iloc[order[0]]
        src = a[first["id"]]
        same = [i for i in order[:60] if a[b.iloc[i]["id"]] == src][:2]
        moving = [b.iloc[i]["id"] for i in same]
        for i in same:
            c = b.iloc[i].geometry.centroid
            _click_at(d, c.x, c.y)
            time.sleep(0.5)
        wait.until(lambda x: "已选楼栋: 2" in text_of(x, "#planner-counts"))
        before = _color(d, moving[0])
        assert before and before == _color(d, moving[1])
        parent = layers["grids"].set_index("id")["parent_id"][src]
        g2 = layers["grids"]
        target = next(g for g in g2.loc[(g2["level"] == 2) & (g2["parent_id"] == parent), "id"] if g != src)
        d.find_element(By.ID, "planner-target").click()
        search = wait.until(EC.visibility_of_element_located((By.CSS_SELECTOR, "input.dash-dropdown-search")))
        search.send_keys(target)
        search.send_keys(Keys.ENTER)
        wait.until(lambda x: target in text_of(x, "#planner-target"))
        d.find_element(By.ID, "btn-assign").click()
        wait.until(EC.presence_of_element_located((By.ID, "live-figures")))
        assert "编辑步数: 1" in text_of(d, "#planner-counts")
        # the buildings moved on the map: their fill colour is now the target grid's
        wait.until(lambda x: _color(x, moving[0]) != before)
        assert _color(d, moving[0]) == _color(d, moving[1])
        in_target = [i for i in order[:200] if a[b.iloc[i]["id"]] == target]
        if in_target:
            assert _color(d, moving[0]) == _color(d, b.iloc[in_target[0]]["id"])
    finally:
        quit_chrome(d)
