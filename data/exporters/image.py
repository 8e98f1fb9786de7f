"""PNG / PDF of a map: the offline HTML export rendered by headless Chromium.

Chromium is looked up as /usr/bin/chromium, then chromium / chromium-browser / google-chrome on
PATH (or the MINSHENG_CHROMIUM environment variable / chromium= argument). Network, sync and
component updates are disabled; a throw-away profile directory is used for each run.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-extensions",
         "--disable-default-apps", "--mute-audio", "--hide-scrollbars", "--no-default-browser-check")


class ChromiumMissing(RuntimeError):
    """No headless Chromium to render PNG/PDF; HTML and Excel exports still work."""


def find_chromium(chromium: str | None = None) -> str:
    for c in ([chromium] if chromium else []) + ([os.environ["MINSHENG_CHROMIUM"]] if os.environ.get("MINSHENG_CHROMIUM")
                                                 else []) + list(CANDIDATES):
        p = c if os.path.isabs(c) and os.access(c, os.X_OK) else shutil.which(c)
        if p:
            return p
    raise ChromiumMissing("PNG/PDF export needs Chromium (looked for " + ", ".join(
        ([chromium] if chromium else []) + list(CANDIDATES)) + "); install it (e.g. apt-get install chromium) "
        "or set MINSHENG_CHROMIUM, or export HTML instead")


def render_html(html_path, out, *, fmt: str | None = None, width: int = 1600, height: int = 1000,
                wait_ms: int = 3000, timeout: float = 90.0, chromium: str | None = None, work_dir=None) -> Path:
    """Render a local HTML file to PNG (screenshot of width x height) or PDF (landscape print).
    work_dir: where Chromium's throwaway profile goes (default: the system temp dir)."""
    html_path, out = Path(html_path).resolve(), Path(out).resolve()
    fmt = (fmt or out.suffix.lstrip(".")).lower()
    if fmt not in ("png", "pdf"):
        raise ValueError(f"image format must be png or pdf, got {fmt!r}")
    exe = find_chromium(chromium)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="minsheng-chromium-", dir=work_dir) as profile:
        tmp_out = Path(profile) / f"render.{fmt}"
        args = [exe, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
                f"--virtual-time-budget={wait_ms}"]
        if fmt == "png":
            args.append(f"--screenshot={tmp_out}")
        else:
            args += [f"--print-to-pdf={tmp_out}", "--no-pdf-header-footer"]
        args.append(html_path.as_uri())
        try:
            proc = subprocess.run(args, capture_output=True, timeout=timeout, text=True)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"Chromium did not finish rendering {html_path.name} within {timeout:.0f} s") from None
        if not tmp_out.exists() or tmp_out.stat().st_size == 0:
            tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
            raise RuntimeError(f"Chromium failed to render {html_path.name} (exit {proc.returncode}): {tail}")
        shutil.move(str(tmp_out), out)
    return out


def export_image(bundle, out, plan_id: str | None = None, *, fmt: str | None = None, allow_personal: bool = False,
                 lang: str = "zh", width: int = 1600, height: int = 1000, chromium: str | None = None,
                 bounds=None, catalogue=None, work_dir=None) -> Path:
    """The map of a plan as PNG or PDF (offline HTML rendered by headless Chromium). bounds:
    (minlon, minlat, maxlon, maxlat) to show (default: the whole project). work_dir: where the
    intermediate HTML and Chromium's profile go (default: the system temp dir; a background job
    passes its private folder, data/scratch, so a cancelled job leaves nothing behind)."""
    from data.exporters.html import export_html
    find_chromium(chromium)  # fail before doing any work
    with tempfile.TemporaryDirectory(prefix="minsheng-map-", dir=work_dir) as d:
        page = export_html(bundle, Path(d) / "map.html", plan_id, allow_personal=allow_personal, lang=lang,
                           bounds=bounds, catalogue=catalogue)
        return render_html(page, out, fmt=fmt, width=width, height=height, chromium=chromium, work_dir=work_dir)
