"""Real browser: a planner signs in, copies the plan to a draft, clicks two buildings, assigns
them to another grid and sees the touched grids' figures change."""
import io
import os
import shutil
import time

import pytest

from app import create_app
from data.gpkg_store import GpkgStore
from minsheng.cli import main
from minsheng.settings import Settings, sample_path
from tests.browser import text_of, Served, chrome, quit_chrome

pytestmark = pytest.mark.browser
PASSWORD = "correct horse 9"


@pytest.fixture
def served(tmp_path, monkeypatch):
    path = tmp_path / "p.gpkg"
    shutil.copyfile(sample_path(), path)
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["users", "add", "--data", str(path), "--username", "plan", "--role", "planner",
                 "--password-stdin"]) == 0
    s = Served(create_app(Settings(data=str(path), secret_key="y" * 32)))
    yield s, path
    s.close()


def test_planner_assigns_buildings_in_the_browser(served, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    s, path = served
    d = chrome()
    shots = os.environ.get("MINSHENG_SHOTS")
    try:
        wait = WebDriverWait(d, 60)
        d.get(s.url + "login")
        d.find_element(By.ID, "username").send_keys("plan")
        d.find_element(By.ID, "password").send_keys(PASSWORD)
        d.find_element(By.ID, "login-submit").click()
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#map canvas.maplibregl-canvas")))
        assert "规划员" in d.find_element(By.ID, "user-badge").text
        d.find_element(By.XPATH, "//*[contains(@class,'tab') and normalize-space()='网格规划']").click()
        wait.until(EC.visibility_of_element_located((By.ID, "btn-copy-draft"))).click()
        wait.until(lambda x: "草案" in text_of(x, "#planner-plan"))
        # pick the two first buildings of the biggest grid through the app's own click handling
        b = GpkgStore(path).load()
        plan_id = b.plans["id"].iloc[-1]
        a = b.plan_assignments(plan_id)
        src = a.loc[a["building_id"].isin(set(b.households["building_id"])), "grid_id"].value_counts().index[0]
        homes = set(b.households["building_id"])
        moving = [x for x in a.loc[a["grid_id"] == src, "building_id"] if x in homes][:2]
        g2 = b.plan_grids(plan_id)
        parent = g2.set_index("id").loc[src, "parent_id"]
        target = next(g for g in g2.loc[(g2["level"] == 2) & (g2["parent_id"] == parent), "id"] if g != src)
        order = list(b.buildings["id"])
        for bid in moving:  # a click on a building footprint (trace 1 of the planner map), as plotly reports it
            d.execute_script(
                "const gd = document.querySelector('#map .js-plotly-plot');"
                "gd.emit('plotly_click', {points: [{curveNumber: 1, pointNumber: arguments[0],"
                " location: arguments[1]}]});", order.index(bid), bid)
            time.sleep(0.4)
        wait.until(lambda x: "已选楼栋: 2" in text_of(x, "#planner-counts"))
        d.find_element(By.ID, "planner-target").click()  # Dash 4 dropdown: open, search, pick
        search = wait.until(EC.visibility_of_element_located((By.CSS_SELECTOR, "input.dash-dropdown-search")))
        search.send_keys(target)
        search.send_keys(Keys.ENTER)
        wait.until(lambda x: target in text_of(x, "#planner-target"))
        d.find_element(By.ID, "btn-assign").click()
        wait.until(EC.presence_of_element_located((By.ID, "live-figures")))
        live = d.find_element(By.ID, "live-figures").text
        hh = b.households[b.households["building_id"].isin(moving)]
        assert f"-{len(hh)}" in live and f"+{len(hh)}" in live
        assert "编辑步数: 1" in d.find_element(By.ID, "planner-counts").text
        if shots:
            d.save_screenshot(os.path.join(shots, "planner.png"))
        d.find_element(By.ID, "btn-save").click()
        wait.until(lambda x: "已保存" in text_of(x, "#planner-message"))
        saved = GpkgStore(path).load().plan_assignments(plan_id).set_index("building_id")["grid_id"]
        assert all(saved[m] == target for m in moving)
    finally:
        quit_chrome(d)
