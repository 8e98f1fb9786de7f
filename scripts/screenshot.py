"""Screenshot the running dashboard the way a user sees it (headless Chromium).

    python scripts/screenshot.py http://127.0.0.1:8050/ out.png [--click] [--tab VALUE] [--wait 3]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv=None) -> int:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.wheel_input import ScrollOrigin
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.browser import chrome, quit_chrome
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("out")
    p.add_argument("--click", action="store_true", help="click the middle of the map first")
    p.add_argument("--tab", help="click the tab with this visible text")
    p.add_argument("--wait", type=float, default=2.0)
    p.add_argument("--size", default="1500,900")
    p.add_argument("--scroll", type=int, default=0, help="mouse-wheel steps over the map centre (negative: zoom in)")
    a = p.parse_args(argv)
    w, h = (int(v) for v in a.size.split(","))
    d = chrome(w, h)
    try:
        d.get(a.url)
        wait = WebDriverWait(d, 60)
        canvas = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#map canvas.maplibregl-canvas")))
        if a.tab:
            d.find_element(By.XPATH, f"//*[contains(@class,'tab') and normalize-space()='{a.tab}']").click()
            time.sleep(a.wait)
        for _ in range(abs(a.scroll)):
            ActionChains(d).scroll_from_origin(ScrollOrigin.from_element(canvas), 0, 120 if a.scroll > 0 else -120) \
                .perform()
            time.sleep(0.4)
        if a.scroll:
            time.sleep(a.wait)
        if a.click:
            ActionChains(d).move_to_element(canvas).pause(0.3).click().perform()
        time.sleep(a.wait)
        d.save_screenshot(a.out)
    finally:
        quit_chrome(d)
    print(a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
