"""The dashboard in real headless Chromium: what a user waits for and what the network carries.

    python benchmarks/bench_browser.py [--scales sample,0.1,1.0] [--runs 3] [--out results/browser.json]

For the shipped sample and synthetic districts (benchmarks/district.py: 10 % and 100 % of
300,000 buildings, GeoPackage store), served by the production server (gunicorn, as
`minsheng serve` runs it) on 127.0.0.1, medians over --runs of:

- first map: navigation start -> the map drawn with data; bytes of the whole page load;
- pan (drag half the map), zoom (mouse wheel), click a grid, switch tab, change the circle's
  minutes, planner assign (sign in, copy to a draft, zoom to street level, click two buildings,
  assign): for each, the server time (longest callback time-to-first-byte), the bytes of the
  callback answers and the time from the end of the gesture until the page shows the result
  (last map redraw or panel change, once no callback is in flight).

Timings come from Chrome's own network log (CDP) and performance.now() in the page."""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PASSWORD = "bench browser 1"

HOOK = r"""
window.__ms = {inflight: 0, last: 0, draws: 0};
const _fetch = window.fetch;
window.fetch = function () {
  const url = String(arguments[0] && arguments[0].url || arguments[0]);
  const mine = url.includes('_dash-update-component');
  if (mine) { window.__ms.inflight++; }
  return _fetch.apply(this, arguments).then(r => {
    if (mine) { r.clone().arrayBuffer().finally(() => { window.__ms.inflight--; }); }
    return r;
  }, e => { if (mine) window.__ms.inflight--; throw e; });
};
function hookPlot() {
  const gd = document.querySelector('#map .js-plotly-plot');
  if (!gd || !gd.on || gd.__msHooked) return;
  gd.__msHooked = true;
  gd.on('plotly_afterplot', () => { window.__ms.last = performance.now(); window.__ms.draws++; });
}
new MutationObserver(muts => {
  hookPlot();
  for (const m of muts) {
    if (m.target.closest && m.target.closest('#panel')) { window.__ms.last = performance.now(); break; }
  }
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(data: str, port: int):
    env = dict(os.environ, MINSHENG_HOME=tempfile.mkdtemp(prefix="bench-browser-home-"))
    cmd = [sys.executable, str(ROOT / "app.py"), "--port", str(port), "--data", data]
    log = open(Path(env["MINSHENG_HOME"]) / "server.log", "w")  # a pipe nobody reads would block the server
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log, text=True)
    deadline = time.monotonic() + 600
    import urllib.request
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
            return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(Path(log.name).read_text())
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("server did not start")


def browser(w=1600, h=1000):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from tests.browser import CHROMEDRIVER, CHROMIUM
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              f"--user-data-dir={tempfile.mkdtemp(prefix='bench-chrome-')}", f"--window-size={w},{h}", "--lang=zh-CN"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    d.set_page_load_timeout(300)
    d.execute_cdp_cmd("Network.enable", {})
    d.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
    d.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": HOOK})
    return d


def network(d) -> list[dict]:
    """Finished requests since the last call: url, bytes on the wire, time to first byte (ms)."""
    reqs: dict = {}
    for entry in d.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        p = msg.get("params", {})
        rid = p.get("requestId")
        if msg["method"] == "Network.responseReceived":
            t = p["response"].get("timing") or {}
            reqs.setdefault(rid, {})["url"] = p["response"]["url"]
            reqs[rid]["ttfb"] = (t.get("receiveHeadersEnd", 0) - t.get("sendEnd", 0)) if t else 0.0
        elif msg["method"] == "Network.loadingFinished":
            reqs.setdefault(rid, {})["bytes"] = p.get("encodedDataLength", 0)
    return [r for r in reqs.values() if "bytes" in r]


def settle(d, t0: float, quiet: float = 0.6, timeout: float = 300) -> float:
    """Wait until no callback has been in flight for `quiet` s; ms from t0 to the last change."""
    deadline = time.monotonic() + timeout
    calm_since = None
    while time.monotonic() < deadline:
        busy = d.execute_script("return window.__ms ? window.__ms.inflight : 1")
        if busy:
            calm_since = None
        elif calm_since is None:
            calm_since = time.monotonic()
        elif time.monotonic() - calm_since >= quiet:
            break
        time.sleep(0.05)
    last = d.execute_script("return window.__ms.last")
    return max(0.0, last - t0)


def measure(d, action) -> dict:
    network(d)
    action()
    t0 = d.execute_script("return performance.now()")  # the user has finished the gesture
    dom_ms = settle(d, t0)
    reqs = [r for r in network(d) if "_dash-update-component" in r.get("url", "")]
    return {"server_ms": max([r["ttfb"] for r in reqs], default=0.0),
            "bytes": sum(r["bytes"] for r in reqs), "dom_ms": dom_ms, "requests": len(reqs)}


def canvas(d):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(d, 300).until(EC.presence_of_element_located((By.CSS_SELECTOR, "#map canvas.maplibregl-canvas")))


def first_load(d, url: str) -> dict:
    network(d)
    d.get(url)
    canvas(d)
    settle(d, 0)
    drawn = d.execute_script("return window.__ms.last")
    nav = d.execute_script("return performance.timeOrigin") and 0.0
    reqs = network(d)
    return {"first_map_ms": drawn - nav, "bytes": sum(r["bytes"] for r in reqs), "requests": len(reqs)}


def wheel(d, steps: int):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.wheel_input import ScrollOrigin
    c = canvas(d)
    for _ in range(abs(steps)):
        ActionChains(d).scroll_from_origin(ScrollOrigin.from_element(c), 0, -240 if steps < 0 else 240).perform()
        time.sleep(0.15)


def drag(d, dx: int, dy: int):
    from selenium.webdriver.common.action_chains import ActionChains
    ActionChains(d).move_to_element(canvas(d)).click_and_hold().move_by_offset(dx // 2, dy // 2) \
        .move_by_offset(dx - dx // 2, dy - dy // 2).release().perform()


def click_centre(d, dx=0, dy=0):
    from selenium.webdriver.common.action_chains import ActionChains
    ActionChains(d).move_to_element_with_offset(canvas(d), dx, dy).pause(0.2).click().perform()


def tab(d, label: str):
    from selenium.webdriver.common.by import By
    d.find_element(By.XPATH, f"//*[contains(@class,'tab') and normalize-space()='{label}']").click()


def tier(d):
    from tests.test_browser_district import TIER_JS
    return d.execute_script(TIER_JS)


def street_zoom(d, max_steps=60):
    for _ in range(max_steps):
        if tier(d) == "building":
            return
        wheel(d, -2)
        settle(d, 0, quiet=0.4)
    raise RuntimeError(f"no street zoom (tier {tier(d)})")


def plan_grid_of(data: str):
    from data.gpkg_store import GpkgStore
    b = GpkgStore(data).read_model()
    return b.plan_assignments(b.adopted_plan_id()).set_index("building_id")["grid_id"]


def sibling_target(data: str, building_id: str) -> str:
    """A level-2 grid beside the building's own, in the same level-1 grid (a legal move)."""
    from data.gpkg_store import GpkgStore
    b = GpkgStore(data).read_model()
    plan = b.adopted_plan_id()
    grid = b.plan_assignments(plan).set_index("building_id")["grid_id"][building_id]
    g = b.plan_grids(plan)
    parent = g.set_index("id")["parent_id"][grid]
    return next(i for i in g.loc[(g["level"] == 2) & (g["parent_id"] == parent), "id"] if i != grid)


def assign_once(d, url, k: int, data: str) -> dict:
    """Planner: sign in, copy to a draft, zoom to street level, click two buildings, assign (measured)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait
    from tests.test_browser_district import PIXEL_JS
    wait = WebDriverWait(d, 300)
    d.get(url + "login")
    d.find_element(By.ID, "username").send_keys("bench")
    d.find_element(By.ID, "password").send_keys(PASSWORD)
    d.find_element(By.ID, "login-submit").click()
    canvas(d)
    settle(d, 0)
    tab(d, "网格规划")
    wait.until(EC.visibility_of_element_located((By.ID, "btn-copy-draft"))).click()
    from tests.browser import text_of
    wait.until(lambda x: "草案" in text_of(x, "#planner-plan"))
    settle(d, 0)
    street_zoom(d)
    picked = d.execute_script(
        "const gd = document.querySelector('#map .js-plotly-plot');"
        "const t = gd.data.find(t => t.type === 'scattermap' && t.customdata && t.mode === 'markers');"
        "if (!t) return null;"
        "const m = gd._fullLayout.map._subplot.map; const r = m.getCanvas().getBoundingClientRect();"
        "const keep = t.lon.map((x, i) => i).filter(i => { const p = m.project([t.lon[i], t.lat[i]]);"
        "  return p.x > 40 && p.y > 40 && p.x < r.width - 40 && p.y < r.height - 40; });"
        "return [keep.map(i => t.lon[i]), keep.map(i => t.lat[i]), keep.map(i => t.customdata[i])];")
    grid_of = plan_grid_of(data)
    by_grid: dict = {}
    for lon, lat, bid in zip(*picked):
        by_grid.setdefault(grid_of[bid], []).append((lon, lat, bid))
    two = next(v[:2] for v in by_grid.values() if len(v) >= 2)
    picked = [[x[0] for x in two], [x[1] for x in two], [x[2] for x in two]]
    from selenium.webdriver.common.action_chains import ActionChains
    for lon, lat in zip(picked[0], picked[1]):
        x, y = d.execute_script(PIXEL_JS, lon, lat)
        ActionChains(d).move_to_element_with_offset(canvas(d), int(x), int(y)).pause(0.2).click().perform()
        settle(d, 0, quiet=0.4)
    opts = d.execute_script("return Array.from(document.querySelectorAll('#planner-target')).length")
    assert opts
    d.find_element(By.ID, "planner-target").click()
    want = sibling_target(data, picked[2][0])
    search = d.find_element(By.CSS_SELECTOR, "input.dash-dropdown-search")
    search.send_keys(want)
    search.send_keys(Keys.ENTER)
    wait.until(lambda x: want in text_of(x, "#planner-target"))
    settle(d, 0, quiet=0.3)
    assert "已选楼栋: 2" in text_of(d, "#planner-counts")
    r = measure(d, lambda: d.find_element(By.ID, "btn-assign").click())
    print("assign:", d.find_element(By.ID, "planner-target").text, "|", d.find_element(By.ID, "planner-message").text,
          "|", d.find_element(By.ID, "planner-counts").text, file=sys.stderr)
    return r


def median_of(rows: list[dict]) -> dict:
    return {k: statistics.median(r[k] for r in rows) for k in rows[0]}


def run_scale(scale: str, runs: int) -> dict:
    from benchmarks.district import district_gpkg
    if scale == "sample":  # a working copy of the shipped sample
        import shutil
        from minsheng.settings import sample_path
        data = str(Path(tempfile.mkdtemp(prefix="bench-browser-")) / "sample.gpkg")
        shutil.copyfile(sample_path(), data)
    else:
        data = str(district_gpkg(float(scale)))
    from data.auth_store import add_user, get_user
    from data.gpkg_store import GpkgStore
    from minsheng.auth import hash_password
    st = GpkgStore(data)
    if get_user(st, "bench") is None:
        add_user(st, "bench", hash_password(PASSWORD), "planner")
    port = free_port()
    t0 = time.perf_counter()
    proc = serve(data, port)
    ready = time.perf_counter() - t0
    url = f"http://127.0.0.1:{port}/"
    out = {"scale": scale, "ready_s": ready}
    d = browser()
    try:
        loads = [first_load(d, url) for _ in range(runs)]
        out["first_load"] = median_of(loads)
        acts: dict = {k: [] for k in ("pan", "zoom", "click_grid", "switch_tab", "circle_minutes", "assign")}
        for i in range(runs):
            first_load(d, url)
            acts["zoom"].append(measure(d, lambda: wheel(d, -6)))
            acts["pan"].append(measure(d, lambda: drag(d, 500, 300)))
            acts["click_grid"].append(measure(d, lambda: click_centre(d, 30 * i, 20 * i)))
            acts["switch_tab"].append(measure(d, lambda: tab(d, "网格覆盖检查")))
            tab(d, "十分钟服务圈")
            settle(d, 0)
            from selenium.webdriver.common.by import By
            labels = d.find_elements(By.CSS_SELECTOR, "#circle-minutes label")
            acts["circle_minutes"].append(measure(d, lambda: labels[(i + 2) % len(labels)].click()))
        for i in range(runs):
            acts["assign"].append(assign_once(d, url, i, data))
        out.update({k: median_of(v) for k, v in acts.items() if v})
    finally:
        d.quit()
        proc.terminate()
        proc.wait(30)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scales", default="sample,0.1,1.0")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "browser.json"))
    a = ap.parse_args(argv)
    results = []
    for scale in a.scales.split(","):
        r = run_scale(scale, a.runs)
        results.append(r)
        print(json.dumps(r, ensure_ascii=False), flush=True)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(results, indent=1, ensure_ascii=False))
    print(table(results))
    return 0


def table(results) -> str:
    lines = ["| | " + " | ".join(r["scale"] for r in results) + " |", "|---|" + "---|" * len(results)]
    lines.append("| app ready (s) | " + " | ".join(f"{r['ready_s']:.1f}" for r in results) + " |")
    lines.append("| first map drawn (ms) / page bytes | " + " | ".join(
        f"{r['first_load']['first_map_ms']:.0f} / {r['first_load']['bytes'] / 1e6:.2f} MB" for r in results) + " |")
    for k in ("pan", "zoom", "click_grid", "switch_tab", "circle_minutes", "assign"):
        if all(k in r for r in results):
            lines.append(f"| {k}: server ms / KB / DOM ms | " + " | ".join(
                f"{r[k]['server_ms']:.0f} / {r[k]['bytes'] / 1e3:.0f} / {r[k]['dom_ms']:.0f}" for r in results) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
