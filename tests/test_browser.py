"""Load the dashboard in headless Chromium: the layered map and the grid panel appear."""
import pytest

from tests.browser import driver, served_sample as served, text_of  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser

def test_map_renders_and_grid_panel_opens(served, driver, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(served.url)
    wait = WebDriverWait(driver, 60)
    canvas = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#map canvas.maplibregl-canvas")))
    wait.until(lambda d: "社区" in text_of(d, "#map .legend"))
    legend = driver.find_element(By.CSS_SELECTOR, "#map .legend").text
    for name in ("一级网格", "二级网格"):
        assert name in legend
    # service types are told apart by colour: the list beside the map is their legend
    assert "卫生服务站" in driver.find_element(By.ID, "service-types").text
    assert len(driver.find_elements(By.CSS_SELECTOR, "#service-types .swatch")) >= 5
    assert "OpenStreetMap contributors" in driver.find_element(By.ID, "attribution").text
    assert canvas.size["height"] > 400 and canvas.size["width"] > 600
    # click the middle of the map: every point of the area lies in one level-2 grid
    ActionChains(driver).move_to_element(canvas).pause(0.5).click().perform()
    title = wait.until(EC.visibility_of_element_located((By.ID, "panel-title")))
    assert "网格" in title.text
    facts = driver.find_element(By.ID, "grid-facts").text
    assert "户数" in facts and "网格编码" in facts
    driver.save_screenshot(str(tmp_path / "dashboard.png"))
    # English switch
    driver.find_element(By.ID, "lang-switch").click()
    wait.until(lambda d: "Level-1 grids" in text_of(d, "#map .legend"))
