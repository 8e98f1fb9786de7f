"""The map's level of detail for one answer: spatial indexes of the read model (built once per
dataset version and plan) and the viewport -> tier decision of geo/lod.

The browser reports what it shows (a clientside callback turns plotly's relayoutData into
``{"bbox", "zoom"}`` in the viewport store, only when the view leaves the extent already loaded
or the zoom changes by half a level); the server answers with the features of the padded
viewport at the tier that fits (geo/lod.BUDGET) and what that covers (the "loaded" store)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geo.lod import BUDGET, SIMPLIFY, FeatureIndex, Viewport, choose_tier, expand, view_bounds
from layers.base import view_of


@dataclass(frozen=True)
class BaseIndex:
    """Plan-independent layers: buildings (unsimplified), streets, service points."""
    buildings: FeatureIndex
    streets: FeatureIndex
    points: FeatureIndex


@dataclass(frozen=True)
class PlanIndex:
    """One plan's areas, simplified per tier."""
    communities: FeatureIndex
    level1: FeatureIndex
    level2: FeatureIndex


def base_index(ctx) -> BaseIndex:
    b = ctx.bundle()
    return ctx.cached("lod_base", (), lambda: BaseIndex(
        FeatureIndex(b.buildings["id"], b.buildings.geometry.values),
        FeatureIndex(np.arange(len(b.walk_edges)), b.walk_edges.geometry.values),
        FeatureIndex(b.service_points["id"], b.service_points.geometry.values)))


def plan_index(ctx, plan_id: str) -> PlanIndex:
    b = ctx.bundle()

    def compute():
        grids = b.plan_grids(plan_id)
        g1, g2 = grids[grids["level"] == 1], grids[grids["level"] == 2]
        return PlanIndex(FeatureIndex(b.communities["id"], b.communities.geometry.values, SIMPLIFY["community"]),
                         FeatureIndex(g1["id"], g1.geometry.values, SIMPLIFY["level1"]),
                         FeatureIndex(g2["id"], g2.geometry.values, SIMPLIFY["grid"]))
    return ctx.cached("lod_plan", (plan_id,), compute)


def data_bounds(ctx) -> tuple:
    b = ctx.bundle()
    for layer in (b.buildings, b.communities, b.walk_edges):
        if len(layer):
            return tuple(float(v) for v in layer.total_bounds)
    return (116.30, 39.95, 116.40, 40.05)


def read_viewport(data) -> tuple | None:
    """(bbox, zoom) from the viewport store, or None when it is missing or malformed."""
    if not isinstance(data, dict):
        return None
    raw = data.get("bbox")
    bbox = None
    if isinstance(raw, list) and len(raw) == 4 and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                       for v in raw):
        bbox = view_bounds([raw[0:2], raw[2:4]])
    zoom = data.get("zoom")
    if bbox is None or isinstance(zoom, bool) or not isinstance(zoom, (int, float)) or not 0 <= zoom <= 24:
        return None
    return bbox, float(zoom)


def resolve(ctx, plan_id: str, viewport=None, focus=None) -> Viewport:
    """The tier and padded extent of an answer: the focus (a problem zoomed to), else what the
    browser shows, else the whole area."""
    vp = read_viewport(viewport)
    if focus is not None:
        bbox, zoom = tuple(focus), view_of(focus)["zoom"]
    elif vp is not None:
        bbox, zoom = vp
    else:
        bbox = data_bounds(ctx)
        zoom = view_of(bbox)["zoom"]
    padded = expand(bbox)
    counts = {"building": base_index(ctx).buildings.count(padded), "grid": plan_index(ctx, plan_id).level2.count(padded)}
    return Viewport(choose_tier(counts, budget(ctx)), tuple(round(v, 6) for v in padded), round(zoom, 2))


def budget(ctx) -> dict:
    """geo/lod.BUDGET with the deployment's building and grid budgets."""
    s = ctx.settings
    return dict(BUDGET, building=int(s.map_budget_buildings), grid=int(s.map_budget_grids))


# -- pieces every view draws, limited to the viewport ------------------------------------------

def _in_view(index: FeatureIndex, vp: Viewport, budget: int | None = None):
    pos = index.query(vp.bbox)
    return pos if budget is None or len(pos) <= budget else None


def streets(ctx, vp: Viewport, name: str) -> list:
    """Streets at street zoom (buildings tier) when they fit."""
    from layers.lod import outline
    from layers.style import STREET_LINE
    from geo.lod import BUDGET
    if vp.tier != "building":
        return []
    idx = base_index(ctx).streets
    pos = _in_view(idx, vp, BUDGET["street"])
    return [] if pos is None else [outline(idx.geoms[pos], name, STREET_LINE, 1.2)]


def outlines(ctx, plan_id: str, vp: Viewport, layer: str, name: str, color: str, width: float) -> list:
    """Outlines of communities / level1 / level2 areas in view (level-1 only when they fit)."""
    from layers.lod import outline
    from geo.lod import BUDGET
    idx = getattr(plan_index(ctx, plan_id), layer)
    pos = _in_view(idx, vp, BUDGET["level1"] if layer == "level1" and vp.tier == "community" else None)
    return [] if pos is None else [outline(idx.geoms[pos], name, color, width)]


def areas(ctx, plan_id: str, vp: Viewport, layer: str, color_of, name: str, hover_of=None, opacity: float = 0.6,
          line_color: str = "#ffffff", line_width: float = 0.5, legend=(), showlegend: bool = False) -> list:
    """Areas of a layer in view filled with color_of[id] (clickable: customdata = id), with
    legend swatches (label, colour)."""
    from layers.lod import fill, swatch
    idx = getattr(plan_index(ctx, plan_id), layer)
    pos = idx.query(vp.bbox)
    ids = idx.ids[pos]
    get = color_of.get if hasattr(color_of, "get") else (lambda i, d=None: color_of(i))
    out = [fill(idx.feature_collection(pos, 6 if vp.tier == "building" else 5), ids, [get(i, "#cccccc") for i in ids], name,
                hover=None if hover_of is None else [hover_of.get(i, i) for i in ids], opacity=opacity,
                line_color=line_color, line_width=line_width, customdata=ids, showlegend=showlegend)]
    return out + [swatch(label, c, f"{name}-legend") for label, c in legend]


def building_positions(ctx, vp: Viewport):
    return base_index(ctx).buildings.query(vp.bbox) if vp.tier == "building" else np.array([], dtype=int)


def building_fill(ctx, pos, colors, name: str, hover=None, customdata=None, opacity: float = 0.85,
                  showlegend: bool = False, line_width: float = 0.3) -> dict:
    from layers.lod import fill
    idx = base_index(ctx).buildings
    return fill(idx.feature_collection(pos), idx.ids[pos], colors, name, hover=hover, opacity=opacity,
                line_color="#444", line_width=line_width, showlegend=showlegend,
                customdata=idx.ids[pos] if customdata is None else customdata)


def points_in_view(ctx, vp: Viewport):
    from geo.lod import BUDGET
    return _in_view(base_index(ctx).points, vp, None if vp.tier == "building" else BUDGET["points"])


def share_areas(ctx, plan_id: str, vp: Viewport, table, name: str, lang: str, share_col: str = "share") -> list:
    """Zoomed out, the share of a figure per community (community tier) or level-2 grid (grid
    tier) as filled areas in fixed classes, with legend. table: rows of scope, scope_id, share."""
    from layers.lod import share_classes
    from layers.style import COMMUNITY_LINE, LEVEL2_LINE
    scope, layer = ("community", "communities") if vp.tier == "community" else ("grid", "level2")
    rows = table[table["scope"] == scope]
    share = dict(zip(rows["scope_id"].astype(str), rows[share_col].astype(float)))
    idx = getattr(plan_index(ctx, plan_id), layer)
    ids = list(idx.ids)
    cols, legend = share_classes([share.get(i, float("nan")) for i in ids])
    names = (ctx.bundle().communities if layer == "communities" else ctx.bundle().plan_grids(plan_id)) \
        .set_index("id")["name"]
    hover = {i: f"<b>{names.get(i, i)}</b><br>{name}: " +
                ("—" if not np.isfinite(share.get(i, np.nan)) else f"{100 * share[i]:.1f}%") for i in ids}
    return areas(ctx, plan_id, vp, layer, dict(zip(ids, cols)), name, hover_of=hover, opacity=0.7,
                 line_color=COMMUNITY_LINE if layer == "communities" else LEVEL2_LINE, line_width=1,
                 legend=legend)


def warm(ctx) -> None:
    """What the first visitors' answers need, computed once in the background after a served
    start (spatial indexes, grid colours and figures, the audit, the default circle's
    distances): otherwise the first click of the day pays for it."""
    import logging
    import time
    log = logging.getLogger("minsheng.warm")
    t0 = time.perf_counter()
    try:
        from callbacks import circle_view, coverage_view, overview
        from callbacks.life_circle_model import default_closed
        b = ctx.bundle()
        plan = b.adopted_plan_id()
        base_index(ctx)
        if plan is None:
            return
        plan_index(ctx, plan)
        overview.colors(ctx, plan)
        overview.grid_figures(ctx, plan)
        coverage_view.audit(ctx, plan)
        closed, shut = (tuple(sorted(x)) for x in default_closed(ctx))
        s = ctx.settings
        circle_view.distances(ctx, float(s.circle_minutes), float(s.walk_speed_m_min), closed, shut)
        log.info("warmed up in %.1f s", time.perf_counter() - t0)
    except Exception as e:  # noqa: BLE001 - warming is an optimisation: a failure only costs the first click
        log.warning("warm-up stopped: %s", type(e).__name__)


def warm_in_background(ctx) -> None:
    import threading
    threading.Thread(target=warm, args=(ctx,), name="minsheng-warm", daemon=True).start()
