"""Export routes of the dashboard (same exporters and the same rules as `minsheng export`) and the
small 导出 (Export) header menu.

    /export/map.html      offline folium map (data.exporters.html.export_html)
    /export/map.png|pdf   the same map rendered by headless Chromium (data.exporters.image)
    /export/grids.xlsx    per-grid tables (data.exporters.excel.export_excel)
    /export/project.gpkg  GIS layers (data.exporters.gis.export_gis)
    /export/project.geojson  one map layer as GeoJSON (?layer=grids by default; communities,
                          grids, buildings or service_points)
    /export/pack.pdf|pptx the joint-meeting pack of ?quarter=2026Q4 (callbacks/pack_view: the
                          dashboard's button runs the same as a background job with progress)

Query: ?plan=ID (default: the adopted plan), lang=zh|en, personal=1, and for the map formats
bbox=minlon,minlat,maxlon,maxlat (the dashboard's current view; default: the whole project).
Personal data only for a role allowed to see every grid's (admin); otherwise personal=1 is
refused with 403 (a grid worker's own-grid ledger has its own route in callbacks/auth.py).
Personal exports and refusals go to the audit log (ids and formats, never the data). No
Chromium -> 503 with a readable message. Files are streamed as attachments named
民生地图-<plan>-<date>.<ext> (RFC 5987 filename*, with an ASCII fallback)."""
from __future__ import annotations

import html as _html
import os
import shutil
import tempfile
from datetime import date
from pathlib import Path
from urllib.parse import quote

import flask
from dash import ALL, Input, Output, State, html

from callbacks import ids
from callbacks.auth import audit_refusal, current_user
from minsheng.i18n import t

MIMETYPES = {
    "html": "text/html; charset=utf-8",
    "png": "image/png",
    "pdf": "application/pdf",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "gpkg": "application/geopackage+sqlite3",
    "geojson": "application/geo+json",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}
GEOJSON_LAYERS = ("grids", "communities", "buildings", "service_points")
EXPORT_LINK = "export-link"
MENU_ITEMS = (("html", "/export/map.html"), ("png", "/export/map.png"), ("pdf", "/export/map.pdf"),
              ("xlsx", "/export/grids.xlsx"), ("gpkg", "/export/project.gpkg"),
              ("geojson", "/export/project.geojson"))
PERSONAL_ITEMS = ("xlsx", "gpkg")   # offered with personal data to roles that may export it
JOB_ITEMS = {"png": ids.EXPORT_PNG, "pdf": ids.EXPORT_PDF}  # the menu runs these as background jobs
JOB_STAGES = 3  # building the map, rendering it (Chromium), sending it
CHUNK = 1 << 16


def download_name(lang: str, plan_id: str, ext: str, part: str = "", today: date | None = None) -> str:
    """民生地图-P1-2026-11-23.xlsx (Minsheng-Map-... in English)."""
    stem = "民生地图" if lang == "zh" else "Minsheng-Map"
    bits = [stem, str(plan_id or "plan"), *([part] if part else []), (today or date.today()).isoformat()]
    return "-".join(bits) + f".{ext}"


def content_disposition(name: str) -> str:
    """attachment; filename="<ASCII fallback>"; filename*=UTF-8''<percent-encoded> (RFC 6266/5987)."""
    ascii_name = name.encode("ascii", "ignore").decode().replace('"', "").lstrip("-") or "export"
    if not name.isascii():
        ascii_name = "minsheng-map-" + ascii_name
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


def parse_bbox(raw: str | None):
    """'minlon,minlat,maxlon,maxlat' -> tuple, None when absent; ValueError when malformed."""
    if not raw:
        return None
    from data.exporters.html import check_bounds
    return check_bounds(raw.split(","))


def _message(status: int, text: str, lang: str):
    page = (f'<!doctype html><html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8">'
            f'<title>{_html.escape(t("title", lang))}</title></head><body style="font:18px sans-serif;margin:40px">'
            f'<h1>{_html.escape(t("title", lang))}</h1><p id="export-error">{_html.escape(text)}</p>'
            f'<p><a href="/?lang={lang}">{_html.escape(t("present_exit", lang))}</a></p></body></html>')
    return flask.Response(page, status=status, mimetype="text/html")


def _stream(path: Path, tmpdir: str, fmt: str, name: str) -> flask.Response:
    """Stream the written file in chunks; the temporary directory is gone before the first byte."""
    f = open(path, "rb")
    size = os.fstat(f.fileno()).st_size
    shutil.rmtree(tmpdir, ignore_errors=True)   # the open file stays readable (POSIX)

    def chunks():
        with f:
            while True:
                block = f.read(CHUNK)
                if not block:
                    break
                yield block
    return flask.Response(chunks(), mimetype=MIMETYPES[fmt], direct_passthrough=True,
                          headers={"Content-Disposition": content_disposition(name), "Content-Length": str(size),
                                   "Cache-Control": "no-store"})


def write_export(bundle, settings, out: Path, fmt: str, plan_id: str, *, lang: str, personal: bool, bbox=None,
                 layer: str = "grids", width: int = 1600, height: int = 1000, work_dir=None) -> Path:
    """Run the exporter of `fmt` into `out` (the CLI's calls, with the dashboard's settings and
    catalogue). work_dir: where PNG/PDF rendering keeps its intermediate files."""
    cat = settings.catalogue()
    if fmt == "html":
        from data.exporters.html import export_html
        return export_html(bundle, out, plan_id, allow_personal=personal, lang=lang, bounds=bbox, catalogue=cat)
    if fmt in ("png", "pdf"):
        from data.exporters.image import export_image
        return export_image(bundle, out, plan_id, fmt=fmt, allow_personal=personal, lang=lang, bounds=bbox,
                            width=width, height=height, catalogue=cat, work_dir=work_dir)
    if fmt == "xlsx":
        from data.exporters.excel import export_excel
        return export_excel(bundle, out, plan_id, allow_personal=personal, lang=lang, bands=settings, catalogue=cat)
    from data.exporters.gis import DEFAULT_LAYERS, export_gis
    layers = DEFAULT_LAYERS if fmt == "gpkg" else (layer,)
    return export_gis(bundle, out, layers, plan_id, fmt=fmt, allow_personal=personal, catalogue=cat)[0]


def _int_arg(args, key: str, default: int, lo: int = 400, hi: int = 4000) -> int:
    try:
        return min(max(int(args.get(key, default)), lo), hi)
    except (TypeError, ValueError):
        return default


def register(app, ctx):
    server = app.server

    def export(fmt: str, part: str = ""):
        from data.bundle import DataError
        from data.exporters import record_export
        from data.exporters.image import ChromiumMissing
        args = flask.request.args
        lang = args.get("lang", ctx.settings.language)
        lang = lang if lang in ("zh", "en") else "zh"
        personal = args.get("personal", "") in ("1", "true", "yes")
        user = current_user(ctx)
        b = ctx.bundle()
        plan_id = args.get("plan") or b.adopted_plan_id()
        if plan_id not in set(b.plans["id"].astype(str)):
            return _message(404, f"{t('plan', lang)} {plan_id!s}: ?", lang)
        who = user.username or "anonymous"
        if personal and not user.can("all_personal"):
            audit_refusal(ctx, who, "export_refused", f"plan:{plan_id}", f"{fmt} personal=1")
            return _message(403, t("export_forbidden", lang), lang)
        layer = args.get("layer", "grids") if fmt == "geojson" else ""
        if fmt == "geojson" and layer not in GEOJSON_LAYERS:
            return _message(400, f"layer: {', '.join(GEOJSON_LAYERS)}", lang)
        try:
            bbox = parse_bbox(args.get("bbox")) if fmt in ("html", "png", "pdf") else None
        except ValueError as e:
            return _message(400, f"bbox: {e}", lang)
        name = download_name(lang, plan_id, fmt, part=layer if fmt == "geojson" else "")
        tmpdir = tempfile.mkdtemp(prefix="minsheng-export-")
        try:
            out = write_export(b, ctx.settings, Path(tmpdir) / f"export.{fmt}", fmt, plan_id, lang=lang,
                               personal=personal, bbox=bbox, layer=layer, work_dir=tmpdir,
                               width=_int_arg(args, "width", 1600), height=_int_arg(args, "height", 1000))
        except ChromiumMissing:
            shutil.rmtree(tmpdir, ignore_errors=True)
            return _message(503, t("export_no_chromium", lang), lang)
        except (DataError, ValueError) as e:
            shutil.rmtree(tmpdir, ignore_errors=True)
            return _message(400, str(e), lang)
        except BaseException:
            shutil.rmtree(tmpdir, ignore_errors=True)
            raise
        if personal:
            record_export(ctx.store, fmt=fmt, out=name, user=who, allow_personal=True, plan_id=plan_id)
        return _stream(Path(out), tmpdir, fmt, name)

    @server.route("/export/map.<fmt>")
    def export_map(fmt):
        if fmt not in ("html", "png", "pdf"):
            flask.abort(404)
        return export(fmt)

    @server.route("/export/grids.xlsx")
    def export_grids():
        return export("xlsx")

    @server.route("/export/project.<fmt>")
    def export_project(fmt):
        if fmt not in ("gpkg", "geojson"):
            flask.abort(404)
        return export(fmt)

    @server.route("/export/pack.<fmt>")
    def export_pack(fmt):
        """The joint-meeting pack (data/exporters/pack) of ?quarter=2026Q4 (default: this quarter),
        with the rules of the dashboard's pack job (callbacks/pack_view.make_pack_file): aggregates
        only (suppressed, masked) unless ?personal=1 by a role allowed to; planners and admins
        freeze the quarter's snapshot (write-once), other roles read the previous quarter only."""
        from callbacks.pack_view import PackRefused, make_pack_file
        if fmt not in ("pdf", "pptx"):
            flask.abort(404)
        args = flask.request.args
        lang = args.get("lang", ctx.settings.language)
        lang = lang if lang in ("zh", "en") else "zh"
        personal = args.get("personal", "") in ("1", "true", "yes")
        tmpdir = tempfile.mkdtemp(prefix="minsheng-pack-")
        try:
            res = make_pack_file(ctx, current_user(ctx), args.get("quarter") or current_quarter(), fmt, lang,
                                 personal, tmpdir)
        except PackRefused as e:
            shutil.rmtree(tmpdir, ignore_errors=True)
            return _message(e.status, e.text(lang), lang)
        except BaseException:
            shutil.rmtree(tmpdir, ignore_errors=True)
            raise
        out = res["files"][fmt]
        return _stream(out, tmpdir, fmt, out.name)

    from dash import Input as In, Output as Out, State as St, ctx as dash_ctx, no_update

    from callbacks.jobs import background_options

    @app.callback(Out(ids.EXPORT_DOWNLOAD, "data"), Out(ids.EXPORT_MSG, "children"),
                  In(ids.EXPORT_PNG, "n_clicks"), In(ids.EXPORT_PDF, "n_clicks"),
                  St(ids.PLAN, "value"), St(ids.MAP, "relayoutData"),
                  St(ids.LANG, "data"), prevent_initial_call=True,
                  **background_options(ids.EXPORT_PROGRESS, ids.EXPORT_CANCEL, tuple(JOB_ITEMS.values())))
    def export_job(set_progress, _png, _pdf, plan_id, relayout, lang):
        """The PNG/PDF map of the chosen plan and view (the same exporter as /export/map.png|pdf
        and `minsheng export`), made outside the request, then sent as a download. (The
        joint-meeting pack has its own job: callbacks/pack_view.)"""
        import base64

        from data.bundle import DataError
        from data.exporters.image import ChromiumMissing
        from data.scratch import private_dir
        lang = lang if lang in ("zh", "en") else ctx.settings.language
        trig = dash_ctx.triggered_id
        fmt = next((f for f, i in JOB_ITEMS.items() if i == trig), "png")
        b = ctx.bundle()
        plan_id = plan_id if isinstance(plan_id, str) and plan_id in set(b.plans["id"].astype(str)) \
            else b.adopted_plan_id()
        set_progress("1")
        try:
            with private_dir("export") as d:
                name = download_name(lang, plan_id, fmt)
                out = write_export(b, ctx.settings, Path(d) / f"export.{fmt}", fmt, plan_id, lang=lang,
                                   personal=False, bbox=bbox_of_view(relayout), work_dir=d)
                set_progress("2")
                data = Path(out).read_bytes()
        except ChromiumMissing:
            return no_update, html.P(t("export_no_chromium", lang), className="error")
        except (DataError, ValueError, RuntimeError) as e:  # RuntimeError: Chromium failed (its message)
            return no_update, html.P(str(e), className="error")
        set_progress("3")
        return ({"content": base64.b64encode(data).decode(), "filename": name, "base64": True,
                 "type": MIMETYPES[fmt]}, html.P(t("export_ready", lang).format(name=name), id="export-ready"))

    # the menu's links follow the plan chosen in the header and, for maps, the current view
    app.clientside_callback(
        """function(plan, relayout, hrefs) {
            var box = null, d = relayout && relayout['map._derived'];
            if (d && d.coordinates && d.coordinates.length === 4) {
                var xs = d.coordinates.map(function (c) { return c[0]; });
                var ys = d.coordinates.map(function (c) { return c[1]; });
                box = [Math.min.apply(null, xs), Math.min.apply(null, ys), Math.max.apply(null, xs),
                       Math.max.apply(null, ys)].map(function (v) { return v.toFixed(6); }).join(',');
            }
            return (hrefs || []).map(function (h) {
                var u = new URL(h, window.location.origin);
                if (plan) { u.searchParams.set('plan', plan); }
                if (box && u.pathname.indexOf('/export/map.') === 0) { u.searchParams.set('bbox', box); }
                return u.pathname + u.search;
            });
        }""",
        Output({"type": EXPORT_LINK, "key": ALL}, "href"), Input(ids.PLAN, "value"), Input(ids.MAP, "relayoutData"),
        State({"type": EXPORT_LINK, "key": ALL}, "href"))


def current_quarter(today: date | None = None) -> str:
    d = today or date.today()
    return f"{d.year}Q{(d.month - 1) // 3 + 1}"


def menu(lang: str, user) -> html.Details:
    """The header's 导出 (Export) menu: map (HTML/PNG/PDF), Excel, GIS, presentation mode and the
    joint-meeting pack (callbacks/pack_view).
    Personal-data variants only for roles allowed to export them (checked again on the server).
    PNG and PDF are rendered by a background job (progress, cancel) and then downloaded."""
    from dash import dcc

    from callbacks.jobs import progress_box
    links = [html.Button(t(f"export_{fmt}", lang), id=JOB_ITEMS[fmt], n_clicks=0, className="export-item export-job")
             if fmt in JOB_ITEMS else
             html.A(t(f"export_{fmt}", lang), href=f"{path}?lang={lang}", id={"type": EXPORT_LINK, "key": fmt},
                    className="export-item", target="_blank" if fmt == "html" else None)
             for fmt, path in MENU_ITEMS]
    if user is not None and user.can("all_personal"):
        links += [html.A(t(f"export_{fmt}", lang) + t("export_personal", lang),
                         href=f"{path}?lang={lang}&personal=1", id={"type": EXPORT_LINK, "key": f"{fmt}-personal"},
                         className="export-item personal")
                  for fmt, path in MENU_ITEMS if fmt in PERSONAL_ITEMS]
    links.append(html.A(t("present", lang), href=f"/present?lang={lang}", id="present-link",
                        className="export-item present-item"))
    from callbacks.pack_view import controls
    return html.Details(id="export-menu", className="export-menu", children=[
        html.Summary(t("export", lang)),
        html.Div(links + [progress_box(ids.EXPORT_PROGRESS, ids.EXPORT_CANCEL, lang, stages=JOB_STAGES,
                                       label="export_progress", cancel="export_cancel"),
                          html.Div(id=ids.EXPORT_MSG, className="message"), dcc.Download(id=ids.EXPORT_DOWNLOAD)]
                 + controls(lang, user), className="export-list"),
    ])


def bbox_of_view(relayout) -> tuple | None:
    """The map's current view (relayoutData "map._derived" corners, as the menu links use), or None."""
    d = relayout.get("map._derived") if isinstance(relayout, dict) else None
    c = d.get("coordinates") if isinstance(d, dict) else None
    try:
        xs, ys = [float(p[0]) for p in c], [float(p[1]) for p in c]
        if len(xs) != 4:
            return None
        return parse_bbox(",".join(f"{v:.6f}" for v in (min(xs), min(ys), max(xs), max(ys))))
    except (TypeError, ValueError, IndexError, KeyError):
        return None
