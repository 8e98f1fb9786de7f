"""Map traces as plain dicts (no plotly validation or deep copies: a district answer is built in
milliseconds) for the level-of-detail tiers of geo/lod, and the classifications they colour by."""
from __future__ import annotations

import numpy as np

from layers.base import line_coords
from layers.style import SEQUENTIAL, SHARE_BREAKS, SHARE_COLORS


def fill(fc: dict, locations, colors, name: str, hover=None, opacity: float = 0.6, line_color: str = "#ffffff",
         line_width: float = 0.5, customdata=None, showlegend: bool = False, legendgroup: str | None = None) -> dict:
    """Polygons of a FeatureCollection, one colour each (a stepped colour scale over the distinct colours)."""
    colors = list(colors)
    uniq = list(dict.fromkeys(colors)) or ["#cccccc"]
    index = {c: k for k, c in enumerate(uniq)}
    n = len(uniq)
    scale = []
    for k, c in enumerate(uniq):
        scale += [[k / n, c], [(k + 1) / n, c]]
    tr = {"type": "choroplethmap", "geojson": fc, "locations": [str(i) for i in locations],
          "z": [index[c] for c in colors], "zmin": -0.5 if n == 1 else 0, "zmax": n - 1 if n > 1 else 0.5,
          "colorscale": scale, "showscale": False, "name": name, "showlegend": showlegend,
          "legendgroup": legendgroup or name,
          "marker": {"opacity": opacity, "line": {"color": line_color, "width": line_width}}}
    if hover is not None:
        tr.update(hovertext=list(hover), hoverinfo="text")
    else:
        tr["hoverinfo"] = "skip"
    if customdata is not None:
        tr["customdata"] = list(customdata)
    return tr


def outline(geoms, name: str, color: str, width: float, showlegend: bool = True) -> dict:
    lon, lat = line_coords(geoms)
    return {"type": "scattermap", "lon": lon, "lat": lat, "mode": "lines", "name": name,
            "line": {"color": color, "width": width}, "hoverinfo": "skip", "showlegend": showlegend,
            "legendgroup": name}


def swatch(name: str, color: str, group: str | None = None) -> dict:
    """A legend entry with a colour (an empty point trace)."""
    return {"type": "scattermap", "lon": [None], "lat": [None], "mode": "markers", "name": name,
            "marker": {"size": 12, "color": color}, "legendgroup": group or name, "showlegend": True,
            "hoverinfo": "skip"}


def empty(name: str = "") -> dict:
    """A placeholder trace (overlay slots keep their index so a highlight is a patch of one slot)."""
    return {"type": "scattermap", "lon": [], "lat": [], "mode": "lines", "name": name, "showlegend": False,
            "hoverinfo": "skip"}


def count_classes(values, k: int = 5) -> tuple[list, list]:
    """Quantile classes of counts (households, a key group): colour per value and legend
    (label, colour) pairs, breaks rounded to readable numbers."""
    v = np.asarray(values, dtype=float)
    if not len(v):
        return [], []
    qs = np.unique(np.round(np.quantile(v, np.linspace(0, 1, k + 1)[1:-1])))
    qs = np.array([_nice(q) for q in qs if q > 0])
    qs = np.unique(qs)
    cls = np.searchsorted(qs, v, side="right")
    palette = SEQUENTIAL[-(len(qs) + 1):] if len(qs) + 1 <= len(SEQUENTIAL) else SEQUENTIAL
    colors = [palette[min(c, len(palette) - 1)] for c in cls]
    edges = [0, *qs.tolist()]
    legend = []
    for i, c in enumerate(palette[:len(edges)]):
        lo = edges[i]
        hi = edges[i + 1] if i + 1 < len(edges) else None
        legend.append((f"{lo:,.0f}–{hi:,.0f}" if hi is not None else f"≥ {lo:,.0f}", c))
    return colors, legend


def share_classes(values) -> tuple[list, list]:
    """Fixed classes of a share (0–1): colour per value and legend (label, colour) pairs; no data grey."""
    v = np.asarray(values, dtype=float)
    cls = np.searchsorted(np.asarray(SHARE_BREAKS[1:-1]), np.nan_to_num(v, nan=-1), side="right")
    colors = ["#cccccc" if not np.isfinite(x) else SHARE_COLORS[c] for x, c in zip(v, cls)]
    legend = [(f"{int(100 * lo)}–{int(100 * hi)}%", c)
              for lo, hi, c in zip(SHARE_BREAKS[:-1], SHARE_BREAKS[1:], SHARE_COLORS)]
    return colors, legend


def _nice(x: float) -> float:
    if x < 10:
        return float(round(x))
    mag = 10 ** int(np.floor(np.log10(x)) - 1)
    return float(round(x / mag) * mag)
