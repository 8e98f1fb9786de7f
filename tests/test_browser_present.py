"""Presentation mode in headless Chromium: the map draws, the keyboard (what a presenter's clicker
sends) changes slides, the counter and ?slide=N follow."""
import pytest

from tests.browser import driver, served_sample as served, text_of  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser

def test_present_keyboard_navigation(served, driver, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(served.url + "present")
    wait = WebDriverWait(driver, 60)
    canvas = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#present-map canvas.maplibregl-canvas")))
    assert canvas.size["width"] > 800 and canvas.size["height"] > 300
    title = driver.find_element(By.ID, "present-title")
    first = title.text
    assert first == "社区与网格总览"
    assert float(title.value_of_css_property("font-size").rstrip("px")) >= 36
    assert driver.find_element(By.ID, "present-counter").text == "1 / 4"
    assert "OpenStreetMap contributors" in driver.find_element(By.ID, "present-attribution").text
    wait.until(lambda d: "社区" in text_of(d, "#present-map .legend"))
    assert not driver.find_elements(By.ID, "map")  # no dashboard map / side panels here

    body = driver.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.ARROW_RIGHT)
    wait.until(lambda d: text_of(d, "#present-counter") == "2 / 4")
    wait.until(lambda d: text_of(d, "#present-title") not in ("", first))
    assert "覆盖" in driver.find_element(By.ID, "present-title").text
    assert "slide=2" in driver.current_url
    body.send_keys(Keys.PAGE_DOWN)
    wait.until(lambda d: text_of(d, "#present-counter") == "3 / 4")
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#present-map canvas.maplibregl-canvas")))
    body.send_keys(Keys.PAGE_UP)
    wait.until(lambda d: text_of(d, "#present-counter") == "2 / 4")
    driver.save_screenshot(str(tmp_path / "present.png"))

    driver.get(served.url + "present?slide=4&lang=en")
    wait.until(lambda d: text_of(d, "#present-counter") == "4 / 4")
    body = driver.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.ARROW_RIGHT)  # clamped at the last slide
    driver.find_element(By.ID, "present-prev").click()
    wait.until(lambda d: text_of(d, "#present-counter") == "3 / 4")
    assert "circle" in driver.find_element(By.ID, "present-title").text
