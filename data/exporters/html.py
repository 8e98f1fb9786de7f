"""Standalone folium HTML map that works offline.

folium pulls Leaflet, jQuery, Bootstrap and Font Awesome from CDNs. This exporter uses only
Leaflet features (GeoJson layers, circle markers, the layer control, tooltips), so it drops
every CDN <script>/<link> and inlines the vendored Leaflet 1.9.4 (data/exporters/vendor/,
BSD-2-Clause), with the layer-control icon as a data URI: the file needs no network. There is
no tile layer by default (tiles=None); streets (walk_edges) and buildings are drawn from the
project instead. tiles="OpenStreetMap" (or any folium tiles name/URL) adds an online base map.

Layers (switchable): communities, level-1 grids, level-2 grids, buildings coloured by grid,
streets, and service points by type; a legend and the ODbL attribution are always visible.
Personal data (grid heads' names and phones) are masked unless allow_personal=True.
"""
from __future__ import annotations

import base64
import html as htmllib
import json
import os
import re
import tempfile
from importlib import resources
from pathlib import Path

import folium
import geopandas as gpd
from branca.element import Element

from data.exporters.common import households_are_synthetic, in_force, palette, plan_layers, resolve_plan
from data.privacy import mask_grids
from data.schema import ATTRIBUTION, SYNTHETIC_NOTICE_EN, SYNTHETIC_NOTICE_ZH

LAYER_NAMES = {
    "zh": {"communities": "社区", "level1": "一级网格", "level2": "二级网格", "buildings": "楼栋（按网格着色）",
           "streets": "街巷", "service": "服务点"},
    "en": {"communities": "Communities", "level1": "Level-1 grids", "level2": "Level-2 grids",
           "buildings": "Buildings (by grid)", "streets": "Streets", "service": "Service points"},
}
_CDN_TAG = re.compile(r'<script[^>]+src="https?://[^"]*"[^>]*>\s*</script>\s*|<link[^>]+href="https?://[^"]*"[^>]*/?>\s*')


def _vendor(name: str) -> bytes:
    return resources.files("data").joinpath("exporters", "vendor", name).read_bytes()


def offline_assets() -> str:
    """<style>/<script> with Leaflet inlined (images as data URIs)."""
    css = _vendor("leaflet.css").decode()
    for img in ("layers.png", "layers-2x.png"):
        uri = "data:image/png;base64," + base64.b64encode(_vendor(f"images/{img}")).decode()
        css = css.replace(f"url(images/{img})", f"url({uri})")
    js = _vendor("leaflet.js").decode().replace("</script", "<\\/script")
    return f"<style>{css}</style>\n<script>{js}</script>\n"


def escape_text(s):
    """HTML-escape every text value of a Series (folium's tooltips put properties into innerHTML;
    names, addresses and heads are user-controlled). Non-text values stay as they are."""
    return s.map(lambda v: htmllib.escape(v, quote=True) if isinstance(v, str) else v)


def _geojson(gdf: gpd.GeoDataFrame, props: list[str]) -> dict:
    """GeoJSON of `props` (those present); every shown text property HTML-escaped ("_" columns
    are styling values computed here)."""
    keep = [c for c in props if c in gdf.columns]
    data = gdf[keep].astype(object).where(gdf[keep].notna(), None)
    for c in keep:
        if not c.startswith("_"):
            data[c] = escape_text(data[c])
    g = gpd.GeoDataFrame(data, geometry=gdf.geometry.values, crs=4326)
    return json.loads(g.to_json(drop_id=True))


def build_map(bundle, plan_id: str | None = None, *, allow_personal: bool = False, lang: str = "zh",
              tiles: str | None = None, title: str | None = None, bounds=None, catalogue=None) -> folium.Map:
    """The folium Map (CDN-based as folium makes it; export_html makes it offline). bounds:
    (minlon, minlat, maxlon, maxlat) to open on (e.g. the dashboard's current view); default:
    the whole project. catalogue: the service types in force (Settings.catalogue())."""
    plan_id = resolve_plan(bundle, plan_id)
    names = LAYER_NAMES[lang]
    lay = plan_layers(bundle, plan_id)
    lay["level1"] = mask_grids(lay["level1"], allow_personal)
    lay["level2"] = mask_grids(lay["level2"], allow_personal)
    extent = gpd.GeoSeries(list(bundle.buildings.geometry.values) + list(bundle.communities.geometry.values),
                           crs=4326).total_bounds if len(bundle.buildings) or len(bundle.communities) else None
    if bounds is not None:
        extent = check_bounds(bounds)
    m = folium.Map(location=[39.9, 116.4] if extent is None else [(extent[1] + extent[3]) / 2, (extent[0] + extent[2]) / 2],
                   zoom_start=15, tiles=tiles, control_scale=True, prefer_canvas=False,
                   attribution_control=False)
    if extent is not None:
        m.fit_bounds([[extent[1], extent[0]], [extent[3], extent[2]]])
    head = "负责人" if lang == "zh" else "Head"
    phone = "电话" if lang == "zh" else "Phone"
    nm, cd = ("名称", "编码") if lang == "zh" else ("Name", "Code")

    # streets first (drawn under everything)
    if len(bundle.walk_edges):
        folium.GeoJson(_geojson(bundle.walk_edges, ["name"]), name=names["streets"],
                       style_function=lambda f: {"color": "#9e9e9e", "weight": 2, "opacity": 0.8}).add_to(m)
    if len(lay["communities"]):
        folium.GeoJson(_geojson(lay["communities"], ["name", "code"]), name=names["communities"],
                       style_function=lambda f: {"color": "#c0392b", "weight": 4, "fill": False, "dashArray": "8 4"},
                       tooltip=folium.GeoJsonTooltip(["name", "code"], aliases=[nm, cd])).add_to(m)
    # buildings coloured by their level-2 grid
    l2 = lay["level2"]
    colors = dict(zip(l2["id"], palette(len(l2))))
    b = lay["buildings"].copy()
    b["_color"] = b["grid_id"].map(colors).fillna("#555555")
    b["grid_name"] = b["grid_id"].map(dict(zip(l2["id"], l2["name"])))
    folium.GeoJson(_geojson(b, ["name", "address", "grid_name", "_color"]), name=names["buildings"],
                   style_function=lambda f: {"color": "#333333", "weight": 0.5, "fillColor": f["properties"]["_color"],
                                             "fillOpacity": 0.75},
                   tooltip=folium.GeoJsonTooltip(["name", "grid_name"],
                                                 aliases=[nm, "网格" if lang == "zh" else "Grid"])).add_to(m)
    for key, color, weight in (("level2", "#2c3e50", 1.5), ("level1", "#8e44ad", 3)):
        g = lay[key]
        if len(g):
            g = g.assign(_color=g["id"].map(colors).fillna(color)) if key == "level2" else g.assign(_color=color)
            fields = ["name", "code", "head_name", "head_phone"]
            folium.GeoJson(_geojson(g, fields + ["_color"]), name=names[key],
                           style_function=lambda f, c=color, w=weight: {"color": c, "weight": w,
                                                                        "fillColor": f["properties"]["_color"],
                                                                        "fillOpacity": 0.08},
                           tooltip=folium.GeoJsonTooltip(fields, aliases=[nm, cd, head, phone])).add_to(m)
    # service points by type: one switchable layer each
    sp = bundle.service_points
    cat = {s.key: s for s in in_force(catalogue).service_types}
    present = [k for k in cat if k in set(sp["type"])]
    for k in present:
        s = cat[k]
        pts = sp[sp["type"] == k]
        fg = folium.FeatureGroup(name=htmllib.escape(f"{names['service']}: {s.label(lang)}"))
        folium.GeoJson(_geojson(pts, ["name"]), marker=folium.CircleMarker(radius=6, weight=1, fill=True),
                       style_function=lambda f, c=s.color: {"color": "#ffffff", "fillColor": c, "fillOpacity": 0.95},
                       tooltip=folium.GeoJsonTooltip(["name"], aliases=[htmllib.escape(s.label(lang))])).add_to(fg)
        fg.add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)

    legend_rows = "".join(
        f'<div><span style="display:inline-block;width:12px;height:12px;border-radius:6px;background:{cat[k].color};'
        f'margin-right:6px"></span>{htmllib.escape(cat[k].label(lang))}</div>' for k in present)
    line = lambda c, w, dash, label: (  # noqa: E731
        f'<div><span style="display:inline-block;width:22px;border-top:{w}px {dash} {c};margin-right:6px;'
        f'vertical-align:middle"></span>{label}</div>')
    legend = (f'<div id="ms-legend" style="position:fixed;bottom:60px;left:10px;z-index:1000;background:#fff;'
              f'padding:8px 10px;border:1px solid #999;font:13px sans-serif;max-height:60vh;overflow:auto">'
              f'<b>{"图例" if lang == "zh" else "Legend"}</b>'
              + line("#c0392b", 3, "dashed", names["communities"]) + line("#8e44ad", 3, "solid", names["level1"])
              + line("#2c3e50", 2, "solid", names["level2"]) + line("#9e9e9e", 2, "solid", names["streets"])
              + '<div><span style="display:inline-block;width:22px;height:10px;margin-right:6px;background:'
              + 'linear-gradient(90deg,' + ",".join(palette(4)) + ')"></span>' + names["buildings"] + "</div>"
              + f'<div style="margin-top:4px"><b>{names["service"]}</b></div>' + legend_rows + "</div>")
    notice = (f" · {SYNTHETIC_NOTICE_ZH if lang == 'zh' else SYNTHETIC_NOTICE_EN}"
              if households_are_synthetic(bundle) else "")
    attribution = (f'<div id="ms-attribution" style="position:fixed;bottom:0;right:0;z-index:1000;'
                   f'background:rgba(255,255,255,.85);padding:2px 6px;font:12px sans-serif">'
                   f'{htmllib.escape(ATTRIBUTION)}{htmllib.escape(notice)}</div>')
    plan_label = ""
    if plan_id is not None:
        p = bundle.plans[bundle.plans["id"] == plan_id].iloc[0]
        plan_label = f" — {p['name']}"
    title = title if title is not None else f"{'民生地图' if lang == 'zh' else 'Minsheng Map'}{plan_label}"
    heading = (f'<div id="ms-title" style="position:fixed;top:10px;left:60px;z-index:1000;background:#fff;'
               f'padding:4px 10px;border:1px solid #999;font:bold 16px sans-serif">{htmllib.escape(title)}</div>')
    m.get_root().html.add_child(Element(legend + attribution + heading))
    m.get_root().header.add_child(Element(f"<title>{htmllib.escape(title)}</title>"))
    return m


def check_bounds(bounds) -> tuple[float, float, float, float]:
    """(minlon, minlat, maxlon, maxlat) as floats; ValueError unless a real lon/lat box."""
    try:
        x0, y0, x1, y1 = (float(v) for v in bounds)
    except (TypeError, ValueError):
        raise ValueError("bounds must be four numbers: minlon,minlat,maxlon,maxlat") from None
    if not (-180 <= x0 < x1 <= 180 and -90 <= y0 < y1 <= 90):
        raise ValueError(f"bounds {x0},{y0},{x1},{y1} is not a lon/lat box (minlon<maxlon, minlat<maxlat)")
    return x0, y0, x1, y1


def render_offline(m: folium.Map) -> str:
    """The map's HTML with every CDN asset removed and Leaflet inlined."""
    html = m.get_root().render()
    html = _CDN_TAG.sub("", html)
    return html.replace("<head>", "<head>\n" + offline_assets(), 1) if "<head>" in html else offline_assets() + html


def export_html(bundle, path, plan_id: str | None = None, *, allow_personal: bool = False, lang: str = "zh",
                tiles: str | None = None, title: str | None = None, bounds=None, catalogue=None) -> Path:
    """Write the standalone HTML map (atomically). With tiles=None it needs no network at all.
    bounds: (minlon, minlat, maxlon, maxlat) the map opens on (default: the whole project)."""
    m = build_map(bundle, plan_id, allow_personal=allow_personal, lang=lang, tiles=tiles, title=title, bounds=bounds,
                  catalogue=catalogue)
    text = render_offline(m)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".html", dir=path.parent, prefix=f".{path.stem}-")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
    return path
