"""Real-browser helpers: the app served on 127.0.0.1 and headless Debian Chromium via chromedriver."""
from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading

import pytest

CHROMIUM = os.environ.get("MINSHENG_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("MINSHENG_CHROMEDRIVER", "/usr/bin/chromedriver")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    def __init__(self, app):
        from werkzeug.serving import make_server
        self.port = free_port()
        self.server = make_server("127.0.0.1", self.port, app.server, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.port}/"

    def close(self):
        self.server.shutdown()


def chrome(width=1500, height=900):
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        if os.environ.get("MINSHENG_SKIP_BROWSER") == "1":
            pytest.skip("MINSHENG_SKIP_BROWSER=1 and no Chromium")
        pytest.fail(f"headless Chromium not found ({CHROMIUM}, {CHROMEDRIVER}): "
                    "install Debian packages chromium and chromium-driver (bash run.sh test does)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="minsheng-chrome-")
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
              "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
              f"--user-data-dir={profile}", f"--window-size={width},{height}", "--lang=zh-CN"):
        opts.add_argument(a)
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    drv.set_page_load_timeout(60)
    drv._minsheng_profile = profile
    return drv


def quit_chrome(drv):
    drv.quit()
    shutil.rmtree(drv._minsheng_profile, ignore_errors=True)


def text_of(driver, css: str) -> str:
    """Text of the first element matching css, "" while Dash re-renders it (stale or absent)."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By
    try:
        return driver.find_element(By.CSS_SELECTOR, css).text
    except (NoSuchElementException, StaleElementReferenceException):
        return ""


@pytest.fixture(scope="module")
def served_sample():
    """The dashboard on the shipped sample, served on 127.0.0.1 for the module's tests."""
    from app import create_app
    s = Served(create_app())
    yield s
    s.close()


@pytest.fixture(scope="module")
def driver():
    """One headless Chromium (1280x800) for the module's tests."""
    d = chrome(1280, 800)
    yield d
    quit_chrome(d)
