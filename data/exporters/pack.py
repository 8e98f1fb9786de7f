"""The quarterly joint-meeting pack (联席会议材料): a paginated PDF and a PPTX.

`build_pack` assembles the pages from a loaded bundle (aggregates from per-building stats,
geo/stats): cover, coverage audit, life circles / service coverage, communities at a glance,
one page per community (map of its level-2 grids coloured by workload band, figures, key
groups, workload) and optionally per level-2 grid, plan changes (adopted plan vs the newest
draft, person-level: geo/plan.people_diff), open problems. `write_pdf` renders the pages as
one HTML document printed by headless Chromium (data/exporters/image.render_html, A4
landscape, one page per page); `write_pptx` writes the same pages as 16:9 slides with
python-pptx (tables as tables, maps as freeform shapes, so both are vector).

Roles: with personal=False (every role without personal access) sensitive key-group counts go
through geo/suppress (small cells "<5", complementary cells "—", workload estimated from the
published figures) and grid workers' names are masked (data/privacy). The pack never lists
households. Strings come from minsheng/i18n (a zh pack is Chinese only)."""
from __future__ import annotations

import html as htmllib
import math
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from data.exporters.common import in_force
from data.privacy import mask_name
from geo.validate import KIND_LABELS
from layers.style import BAND_COLORS
from minsheng.i18n import t

CARE_GROUPS = ("living_alone_elderly", "empty_nest_elderly")  # non-sensitive groups shown on the pages
ROWS_PER_PAGE = 16
GRID_ROWS_PER_PAGE = 12   # level-2 grids on a community page (more continue on the next page)
MAX_PROBLEMS = 24
MAX_FLOWS = 14


@dataclass
class Table:
    header: list
    rows: list                      # lists of str
    total: list | None = None       # the total row (str), shown last in bold
    numeric_from: int = 1           # columns from this index are right-aligned numbers


@dataclass
class MapShape:
    rings: list                     # arrays (n, 2) in 0..1 map coordinates (y down)
    fill: str
    label: str = ""
    label_xy: tuple = (0.5, 0.5)


@dataclass
class MapSpec:
    shapes: list
    aspect: float                   # width / height of the drawn extent
    legend: str = ""


@dataclass
class Page:
    kind: str
    title: str
    figures: list = field(default_factory=list)   # (value, label)
    tables: list = field(default_factory=list)
    map: MapSpec | None = None
    notes: list = field(default_factory=list)


@dataclass
class Pack:
    quarter: str
    lang: str
    pages: list
    snapshot: dict
    personal: bool
    seconds: dict = field(default_factory=dict)

    def kinds(self) -> list[str]:
        return [p.kind for p in self.pages]


# ---------------------------------------------------------------------------------------------
# helpers

def _n(x) -> str:
    return f"{int(round(float(x))):,}"


def _pct(x) -> str:
    return "—" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{100 * x:.1f}%"


def _delta(now, before) -> str:
    if before is None:
        return "—"
    d = float(now) - float(before)
    return f"{d:+,.0f}" if abs(d) >= 1 or d == 0 else f"{d:+.1f}"


def _band_label(status: str, lang: str) -> str:
    return t(f"band_{status}", lang) if status in ("low", "ok", "high") else "—"


def _detail(text: str, lang: str) -> str:
    """Problem details are written "中文 / English": the part in the pack's language."""
    parts = str(text).split(" / ", 1)
    return parts[0] if lang == "zh" or len(parts) == 1 else parts[1]


def quarter_label(quarter: str, lang: str) -> str:
    from data.snapshots import parse_quarter
    y, q = parse_quarter(quarter)
    return t("pack_quarter", lang).format(year=y, q=q)


def _map_of(geoms, fills, labels, *, max_points: int = 400) -> MapSpec | None:
    """Polygons (EPSG:4326) scaled into a 0..1 box (equirectangular with cos(lat), y down),
    simplified to about `max_points` vertices each."""
    geoms = np.asarray(geoms, dtype=object)
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    if not ok.any():
        return None
    minx, miny, maxx, maxy = shapely.total_bounds(geoms[ok])
    k = math.cos(math.radians((miny + maxy) / 2))
    w, h = max((maxx - minx) * k, 1e-9), max(maxy - miny, 1e-9)
    scale = max(w, h)
    tol = scale / 300
    shapes = []
    for g, fill, label in zip(geoms[ok], np.asarray(fills, dtype=object)[ok], np.asarray(labels, dtype=object)[ok]):
        g = shapely.simplify(g, tol, preserve_topology=True)  # tol: 1/300 of the extent, in degrees
        polys = list(getattr(g, "geoms", [g]))
        rings = []
        for p in polys:
            if p.is_empty or p.geom_type != "Polygon":
                continue
            c = np.asarray(p.exterior.coords)
            if len(c) > max_points:
                c = c[:: int(math.ceil(len(c) / max_points))]
            xy = np.column_stack([(c[:, 0] - minx) * k / w, (maxy - c[:, 1]) / h])
            rings.append(xy)
        if not rings:
            continue
        rp = shapely.point_on_surface(g)
        lxy = ((rp.x - minx) * k / w, (maxy - rp.y) / h)
        shapes.append(MapShape(rings, str(fill), str(label or ""), lxy))
    return MapSpec(shapes, w / h)


# ---------------------------------------------------------------------------------------------
# figures

def _fmt_ints(a) -> list[str]:
    return [f"{int(v):,}" for v in a]


def _suppressed_block(rows: pd.DataFrame, keys: list[str], personal: bool, threshold: int, rates: dict, *,
                      with_total: bool = True, catalogue=None):
    """Shown key-group cells, total row, shown workload per row and total for a table of rows
    (households, workload, key-group counts). Returns (cells: list of rows of str, total: list
    of str or None, workload strings, workload total string, workload values shown)."""
    from geo.suppress import public_workload, suppress_table
    from geo.workload import ALL
    small = _small_keys(catalogue)
    sens = [k for k in keys if k in small] if not personal else []
    v = rows[keys].to_numpy(dtype=np.int64)
    cells = np.empty(v.shape, dtype=object)
    for j in range(len(keys)):
        cells[:, j] = _fmt_ints(v[:, j])
    total = _fmt_ints(v.sum(axis=0)) if with_total else None
    wl = rows["workload"].to_numpy(dtype=float)
    approx = np.zeros(len(rows), dtype=bool)
    if sens:
        pos = [keys.index(k) for k in sens]
        hh = rows["households"].to_numpy(dtype=np.int64)
        sup = suppress_table(v[:, pos], hh, threshold=threshold, with_total=with_total, columns=sens)
        cells[:, pos] = sup.shown()
        if with_total:
            st = sup.shown_total()
            for i, j in enumerate(pos):
                total[j] = st[i]
        base = float(rates.get(ALL, 1 / 3))
        extra = np.array([max(float(rates.get(k, base)) - base, 0.0) for k in sens])
        other = wl - hh * base - (v[:, pos] * extra).sum(axis=1)  # the non-sensitive groups' visits
        wl = public_workload(hh, sup, rates, other)
        approx = (sup.mark > 0).any(axis=1)
    wl_s = [("≈" if a else "") + _n(x) for x, a in zip(wl, approx)]
    return cells.tolist(), total, wl_s, ("≈" if approx.any() else "") + _n(wl.sum()), wl


def _small_keys(catalogue=None) -> set[str]:
    return set(in_force(catalogue).small_cell_keys)


def _labels(lang, catalogue=None):
    return in_force(catalogue).key_group_labels(lang)


def _status(v, lo, hi) -> str:
    return "low" if v < lo else ("high" if v > hi else "ok")


def _newest_draft(bundle, adopted):
    p = bundle.plans
    d = p[(p["status"] == "draft") & (p["id"] != adopted)]
    if not len(d):
        return None
    return str(d.sort_values(["created_at", "id"], kind="stable").iloc[-1]["id"])


def _service_shares(bundle, stats, settings, plan_id) -> pd.DataFrame:
    """service_type, households, within, share (all) from walking distances and the stats frame."""
    if not len(bundle.service_points) or not len(bundle.walk_edges):
        return pd.DataFrame(columns=["service_type", "households", "within", "share"])
    from geo.network import build_walk_graph
    from geo.service_circle import CircleParams, service_distances
    params = CircleParams(minutes=settings.circle_minutes, speed_m_min=settings.walk_speed_m_min)
    d = service_distances(build_walk_graph(bundle.walk_edges), bundle.buildings, bundle.service_points, params)
    hh = stats.assign(building_id=stats["building_id"].astype(str)).set_index("building_id")["households"]
    d["households"] = d["building_id"].astype(str).map(hh).fillna(0).to_numpy()
    d["within_hh"] = d["households"] * d["within"]
    out = d.groupby("service_type", sort=True)[["households", "within_hh"]].sum().reset_index()
    out = out.rename(columns={"within_hh": "within"})
    out["share"] = out["within"] / out["households"].where(out["households"] > 0)
    return out


# ---------------------------------------------------------------------------------------------
# the pack

def build_pack(bundle, settings, quarter: str, *, lang: str = "zh", personal: bool = False,
               grid_pages: bool = False, previous: dict | None = None, plan_id: str | None = None,
               progress=None) -> Pack:
    """All pages of the pack and the quarter's snapshot payload (see module doc). previous: the
    snapshot of the quarter before (data/snapshots.read), for the change figures. progress:
    callable(done, total, what) called as pages are built."""
    from geo.coverage import audit_plan
    from geo.plan import people_diff, plan_from_bundle
    from geo.workload import rates_of, walk_lengths, walk_minutes
    from data.exporters.common import households_are_synthetic
    from data.snapshots import parse_quarter
    parse_quarter(quarter)
    quarter = quarter.upper()
    timings = {}
    t0 = time.perf_counter()
    report = progress or (lambda done, total, what: None)
    plan_id = plan_id or bundle.adopted_plan_id()
    stats = bundle.building_stats
    cat = settings.catalogue() if hasattr(settings, "catalogue") else in_force()
    keys = cat.keys
    grids = bundle.plan_grids(plan_id)
    hh_audit = stats  # the audit reads per-building aggregates (geo/stats.py)
    audit = audit_plan(grids, bundle.communities, bundle.buildings, bundle.plan_assignments(plan_id), hh_audit,
                       bands=settings, tag_keys=keys)
    timings["audit"] = time.perf_counter() - t0
    gt, ct = audit.grids, audit.communities
    labels = _labels(lang, cat)
    shown_keys = [k for k in CARE_GROUPS if k in keys] + [k for k in keys if k in _small_keys(cat)]
    thr = int(getattr(settings, "suppress_below", 5))
    visits = rates_of(settings)
    synthetic = households_are_synthetic(bundle) if "households" in bundle.layers else bool(
        len(stats) and stats["synthetic"].sum() == stats["households"].sum())
    plan_name = str(bundle.plans.loc[bundle.plans["id"] == plan_id, "name"].iloc[0]) if plan_id else "—"
    comm_ids = [str(c) for c in ct["id"]]
    n_steps = 6 + len(comm_ids) + (int((gt["level"] == 2).sum()) if grid_pages else 0)
    done = 0

    def step(what):
        nonlocal done
        done += 1
        report(done, n_steps, what)

    prev = previous or {}
    prev_tot = prev.get("totals", {})
    l2 = gt[gt["level"] == 2]
    l1 = gt[gt["level"] == 1]
    totals = {"communities": len(ct), "level1": int(len(l1)), "level2": int(len(l2)),
              "buildings": int(audit.totals["buildings"]), "households": int(audit.totals["households"]),
              "persons": int(audit.totals["persons"]), "workload": round(float(l2["workload"].sum()), 1),
              "households_in_grids": int(audit.totals["households_in_grids"]),
              "problems": len(audit.problems),
              "l2_in_band": int((l2["band"] == "ok").sum()), "l2_workload_in_band": int((l2["workload_band"] == "ok").sum())}
    pages: list[Page] = []
    qlabel = quarter_label(quarter, lang)
    # 1. cover
    notes = [t("pack_cover_plan", lang).format(plan=f"{plan_id} {plan_name}"),
             t("pack_generated", lang).format(ts=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))]
    if synthetic:
        notes.append(t("synthetic", lang))
    pages.append(Page("cover", t("pack_title", lang).format(quarter=qlabel), figures=[
        (_n(totals["communities"]), t("fig_communities", lang)),
        (f"{totals['level1']} / {totals['level2']}", t("fig_grids", lang)),
        (_n(totals["households"]), t("fig_households", lang)), (_n(totals["persons"]), t("fig_persons", lang)),
        (_n(totals["workload"]), t("workload", lang))], notes=notes))
    step("cover")
    # 2. coverage audit
    counts = audit.counts_by_kind()
    in_grids = totals["households_in_grids"] / totals["households"] if totals["households"] else float("nan")
    fig = [(f"{totals['l2_in_band']} / {totals['level2']}", t("households_in_band", lang)),
           (f"{totals['l2_workload_in_band']} / {totals['level2']}", t("workload_in_band", lang)),
           (_n(totals["problems"]), t("fig_problems", lang)), (_pct(in_grids), t("fig_in_grids", lang))]
    ptab = Table([t("problem_kind", lang), t("count", lang)],
                 [[KIND_LABELS[k][0 if lang == "zh" else 1], _n(v)] for k, v in counts.items()]) if counts else None
    cmp_rows = []
    for key, label in (("households", t("households", lang)), ("persons", t("persons", lang)),
                       ("workload", t("workload", lang)), ("l2_in_band", t("households_in_band", lang)),
                       ("l2_workload_in_band", t("workload_in_band", lang)), ("problems", t("fig_problems", lang))):
        before = prev_tot.get(key)
        cmp_rows.append([label, _n(totals[key]), "—" if before is None else _n(before), _delta(totals[key], before)])
    ctab = Table(["", quarter_label(quarter, lang), t("prev_value", lang), t("change", lang)], cmp_rows)
    notes = [t("pack_vs_previous", lang).format(q=quarter_label(prev["quarter"], lang)) if prev.get("quarter")
             else t("pack_no_previous", lang)]
    pages.append(Page("audit", t("pack_audit", lang), figures=fig, tables=[x for x in (ptab, ctab) if x],
                      notes=notes if counts else [t("no_problems", lang)] + notes))
    step("audit")
    # 3. life circles / service coverage
    t1 = time.perf_counter()
    sh = _service_shares(bundle, stats, settings, plan_id)
    prev_sh = prev.get("service_shares", {})
    rows = [[cat.service_type(r.service_type).label(lang) if cat.has_service_type(r.service_type)
             else str(r.service_type),
             _n(r.within), _n(r.households), _pct(r.share),
             "—" if r.service_type not in prev_sh else _pct(prev_sh[r.service_type])] for r in sh.itertuples()]
    circle_notes = [t("circle_explain", lang).format(speed=settings.walk_speed_m_min,
                                                     reach=settings.walk_speed_m_min * settings.circle_minutes)]
    if not len(sh):
        circle_notes = [t("pack_no_services", lang)]
    pages.append(Page("circle", t("pack_circle", lang) + f" · {settings.circle_minutes} {t('minutes', lang)}",
                      tables=[Table([t("service_type", lang), t("households_within", lang), t("households", lang),
                                     t("share_within", lang), t("prev_value", lang)], rows)] if rows else [],
                      notes=circle_notes))
    timings["circle"] = time.perf_counter() - t1
    step("circle")
    # 4. communities at a glance (suppressed over the whole table, then paginated)
    crow = ct.set_index("id")
    cblock = _suppressed_block(crow, shown_keys, personal, thr, visits, catalogue=cat)
    head = [t("community", lang), t("fig_grids", lang), t("households", lang), t("persons", lang),
            t("workload_short", lang), t("band", lang), t("workload_band", lang)] + [labels[k] for k in shown_keys]
    body = []
    for i, (cid, r) in enumerate(crow.iterrows()):
        body.append([str(r["name"] or cid), f"{int(r['level1_grids'])}/{int(r['level2_grids'])}", _n(r["households"]),
                     _n(r["persons"]), cblock[2][i], _band_label(r["band"], lang),
                     _band_label(_status(cblock[4][i], r["workload_low"], r["workload_high"]), lang)]
                    + cblock[0][i])
    tot = [t("total", lang), f"{totals['level1']}/{totals['level2']}", _n(crow["households"].sum()),
           _n(crow["persons"].sum()), cblock[3], "", ""] + list(cblock[1])
    sup_note = t("suppressed_note", lang).format(t=thr) if not personal else ""
    chunks = [body[i:i + ROWS_PER_PAGE] for i in range(0, max(len(body), 1), ROWS_PER_PAGE)]
    for j, chunk in enumerate(chunks):
        pages.append(Page("communities", t("pack_communities", lang) + (f" ({j + 1}/{len(chunks)})" if len(chunks) > 1
                                                                          else ""),
                          tables=[Table(head, chunk, tot if j == len(chunks) - 1 else None)],
                          notes=[x for x in (sup_note, t("workload_estimate", lang) if not personal else "") if x]))
    step("communities")
    # 5. one page per community (and optionally per level-2 grid)
    t2 = time.perf_counter()
    walk = pd.Series(dtype=float)
    try:
        from geo.crs import metric_crs
        bm = bundle.buildings.to_crs(metric_crs(bundle.buildings))
        xy = shapely.get_coordinates(shapely.centroid(np.asarray(bm.geometry.values)))
        bg = bundle.plan_assignments(plan_id).drop_duplicates("building_id").set_index("building_id")["grid_id"]
        walk = walk_minutes(walk_lengths(bundle.buildings["id"], xy, bg), settings.walk_speed_m_min)
    except Exception:  # noqa: BLE001 - walking time is optional; a project without footprints still gets its pack
        walk = pd.Series(dtype=float)
    geom = grids.set_index("id").geometry if len(grids) else pd.Series(dtype=object)
    by_comm = {c: g for c, g in l2.groupby("community_id", sort=False)}
    heads = grids.set_index("id")["head_name"] if "head_name" in grids.columns else pd.Series(dtype=object)
    ghead = ["#", t("grid", lang), t("grid_worker", lang), t("buildings", lang), t("households", lang),
             t("persons", lang), t("workload_short", lang), t("walk_round", lang), t("band", lang),
             t("workload_band", lang)] + [labels[k] for k in shown_keys]
    for cid in comm_ids:
        c = crow.loc[cid]
        g = by_comm.get(cid, l2.iloc[0:0]).set_index("id")
        blk = _suppressed_block(g, shown_keys, personal, thr, visits, catalogue=cat) if len(g) else None
        rows = []
        fills = []
        for i, (gid, r) in enumerate(g.iterrows()):
            wst = _status(blk[4][i], r["workload_low"], r["workload_high"])
            fills.append(BAND_COLORS.get(wst, "#cccccc"))
            name = heads.get(gid)
            worker = (str(name) if personal else mask_name(name)) if isinstance(name, str) and name else "—"
            wm = walk.get(gid)
            rows.append([_short(gid, cid), str(r["name"] or gid), worker or "—", _n(r["buildings"]), _n(r["households"]),
                         _n(r["persons"]), blk[2][i], "—" if wm is None or not np.isfinite(wm) else f"{wm:.0f} "
                         + t("minutes", lang), _band_label(r["band"], lang), _band_label(wst, lang)]
                        + blk[0][i])
        total = (["", t("total", lang), "", _n(g["buildings"].sum()), _n(g["households"].sum()), _n(g["persons"].sum()),
                  blk[3], "", "", ""] + list(blk[1])) if blk is not None else None
        mp = _map_of(geom.reindex(g.index).to_numpy(dtype=object), fills, [_short(x, cid) for x in g.index]) \
            if len(g) and len(geom) else None
        if mp is not None:
            mp.legend = t("map_legend_workload", lang)
        wl_c = float(np.sum(blk[4])) if blk is not None else 0.0
        figs = [(f"{int(c['level1_grids'])}/{int(c['level2_grids'])}", t("fig_grids", lang)),
                (_n(c["households"]), t("households", lang)), (_n(c["persons"]), t("persons", lang)),
                (("≈" if blk is not None and blk[3].startswith("≈") else "") + _n(wl_c), t("workload_short", lang))]
        pc = prev.get("communities", {}).get(cid)
        if pc:
            figs.append((_delta(c["households"], pc.get("households")), t("pack_vs_previous", lang).format(
                q=quarter_label(prev["quarter"], lang)) + " · " + t("households", lang)))
        cnotes = [x for x in (sup_note, t("workload_estimate", lang) if not personal else "") if x]
        ctitle = t("pack_community", lang).format(name=str(c["name"] or cid))
        parts = [rows[i:i + GRID_ROWS_PER_PAGE] for i in range(0, max(len(rows), 1), GRID_ROWS_PER_PAGE)]
        for j, part in enumerate(parts):
            pages.append(Page("community", ctitle + (f" ({j + 1}/{len(parts)})" if len(parts) > 1 else ""),
                              figures=figs if j == 0 else [], map=mp if j == 0 else None, notes=cnotes,
                              tables=[Table(ghead, part, total if j == len(parts) - 1 else None, numeric_from=3)]))
        step(f"community {cid}")
        if grid_pages:
            for i, (gid, r) in enumerate(g.iterrows()):
                one = _suppressed_block(g.loc[[gid]], shown_keys, personal, thr, visits, with_total=False,
                                        catalogue=cat)
                kg = Table([t("key_groups", lang), t("count", lang)],
                           [[labels[k], one[0][0][j]] for j, k in enumerate(shown_keys)])
                mp1 = _map_of(geom.reindex([gid]).to_numpy(dtype=object), [fills[i]], [str(r["name"] or gid)])
                pages.append(Page("grid", t("pack_grid", lang).format(name=str(r["name"] or gid)), figures=[
                    (_n(r["buildings"]), t("buildings", lang)), (_n(r["households"]), t("households", lang)),
                    (_n(r["persons"]), t("persons", lang)), (one[2][0], t("workload_short", lang))],
                    tables=[kg], map=mp1, notes=[x for x in (sup_note,) if x]))
                step(f"grid {gid}")
    timings["communities"] = time.perf_counter() - t2
    # 6. plan changes
    draft = _newest_draft(bundle, plan_id)
    if draft is None:
        pages.append(Page("changes", t("pack_changes", lang), notes=[t("pack_no_changes", lang)]))
    else:
        pa = plan_from_bundle(bundle, plan_id, settings=settings)
        pb = plan_from_bundle(bundle, draft, settings=settings)
        pd_ = people_diff(pa, pb, stats, tag_keys=keys)
        pages.extend(change_pages(pd_, bundle, lang, personal=personal, threshold=thr, plan_names=(plan_id, draft),
                                  catalogue=cat))
    step("changes")
    # 7. open problems
    probs = list(audit.problems)
    rows = [[KIND_LABELS.get(p.kind, (p.kind, p.kind))[0 if lang == "zh" else 1], _detail(p.detail, lang)]
            for p in probs[:MAX_PROBLEMS]]
    notes = [t("pack_more_problems", lang).format(n=len(probs) - MAX_PROBLEMS)] if len(probs) > MAX_PROBLEMS else []
    pages.append(Page("problems", t("pack_problems", lang),
                      tables=[Table([t("problem_kind", lang), t("problems", lang)], rows, numeric_from=99)] if rows
                      else [], notes=notes or ([] if rows else [t("pack_no_problems", lang)])))
    step("problems")
    snapshot = {
        "plan_id": plan_id, "version": bundle.version, "created_at": datetime.now(timezone.utc).isoformat(),
        "totals": totals, "problems_by_kind": counts,
        "service_shares": {str(r.service_type): (None if not np.isfinite(r.share) else round(float(r.share), 4))
                           for r in sh.itertuples()},
        "communities": {cid: {"households": int(crow.loc[cid, "households"]), "persons": int(crow.loc[cid, "persons"]),
                              "workload": float(crow.loc[cid, "workload"]),
                              **{k: int(crow.loc[cid, k]) for k in keys}} for cid in comm_ids},
        "grids": {str(r.id): {"households": int(r.households), "workload": float(r.workload), "band": r.band,
                              "workload_band": r.workload_band} for r in l2.itertuples()},
    }
    timings["total"] = time.perf_counter() - t0
    return Pack(quarter, lang, pages, snapshot, personal, timings)


def _short(grid_id, community_id) -> str:
    """A grid's label on its community map: the id without the community prefix (C001-02-03 -> 02-03)."""
    g, c = str(grid_id), str(community_id)
    return g[len(c):].lstrip("-_") or g if g.startswith(c) else g


def change_pages(diff, bundle, lang: str, *, personal: bool, threshold: int, plan_names=("", ""),
                 catalogue=None) -> list[Page]:
    """The person-level plan change (geo/plan.PeopleDiff) as pages: flows between grids and
    the grid workers' gains and losses. Used by the pack; /present shows the same figures."""
    flows, per = people_table(diff, bundle, lang, personal=personal, threshold=threshold, catalogue=catalogue)
    figs = [(_n(diff.households_moved), t("households", lang)), (_n(diff.persons_moved), t("persons", lang)),
            (_n(int((diff.per_grid["level"] == 2).sum()) if len(diff.per_grid) else 0), t("fig_grids_changed", lang)),
            (_n(sum(len(b) for b in diff.flows.loc[diff.flows["level"] == 2, "buildings"]) if len(diff.flows) else 0),
             t("fig_moved", lang))]
    title = t("pack_changes", lang) + f" · {plan_names[0]} → {plan_names[1]}"
    notes = [t("people_moved", lang).format(households=_n(diff.households_moved), persons=_n(diff.persons_moved))]
    if not personal:
        notes.append(t("suppressed_note", lang).format(t=threshold))
    return [Page("changes", title, figures=figs, tables=[flows], notes=notes),
            Page("changes", title + " · " + t("grid_worker", lang), tables=[per], notes=notes[1:])]


def people_table(diff, bundle, lang: str, *, personal: bool, threshold: int, max_rows: int = MAX_FLOWS,
                 catalogue=None):
    """(flows Table, per-grid Table) of a PeopleDiff, suppressed for roles without personal access."""
    labels = _labels(lang, catalogue)
    keys = [k for k in CARE_GROUPS if k in diff.tag_keys] + [k for k in diff.tag_keys if k in _small_keys(catalogue)]
    names = dict(zip(bundle.grids["id"].astype(str), bundle.grids["name"].astype(str)))
    f = diff.flows[diff.flows["level"] == 2].head(max_rows).reset_index(drop=True)
    if len(f):
        from geo.workload import rates_of
        blk = _suppressed_block(f.assign(workload=0.0), keys, personal, threshold, rates_of(None),
                                catalogue=catalogue)
        cells, total = blk[0], blk[1]
    else:
        cells, total = [], ["0" for _ in keys]
    none = t("no_grid", lang)
    rows = [[names.get(r.from_grid, r.from_grid) if r.from_grid else none,
             names.get(r.to_grid, r.to_grid) if r.to_grid else none,
             _n(len(r.buildings)) + ("" if len(r.buildings) > 2 else " (" + "、".join(r.buildings) + ")"),
             _n(r.households), _n(r.persons)] + cells[i] for i, r in enumerate(f.itertuples())]
    all2 = diff.flows[diff.flows["level"] == 2]
    tot = [t("total" if len(f) == len(all2) else "total_shown", lang), "", _n(sum(len(b) for b in f["buildings"])),
           _n(f["households"].sum()),
           _n(f["persons"].sum())] + list(total) if len(f) else None
    flows = Table([t("flow_from", lang), t("flow_to", lang), t("buildings_moved_list", lang), t("households", lang),
                   t("persons", lang)] + [labels[k] for k in keys], rows, tot, numeric_from=2)
    p = diff.per_grid
    p = p[p["level"] == 2] if len(p) else p
    p = p.reindex(p["households_net"].abs().sort_values(ascending=False).index).head(max_rows) if len(p) else p
    care = [k for k in CARE_GROUPS if k in diff.tag_keys]
    rows = []
    for r in p.itertuples():
        worker = r.head_name if isinstance(r.head_name, str) and r.head_name else None
        worker = (worker if personal else mask_name(worker)) if worker else "—"
        rows.append([str(r.name or r.id), worker, _n(getattr(r, "households_gained")), _n(getattr(r, "households_lost")),
                     f"{int(r.households_net):+d}", f"{int(r.persons_net):+d}"]
                    + [f"{int(getattr(r, k + '_net')):+d}" for k in care])
    per = Table([t("grid", lang), t("grid_worker", lang), t("gained", lang), t("lost", lang), t("net", lang),
                 t("persons", lang) + " " + t("net", lang)] + [labels[k] + " " + t("net", lang) for k in care], rows,
                numeric_from=2)
    return flows, per


# ---------------------------------------------------------------------------------------------
# PDF: one HTML document, A4 landscape pages, printed by headless Chromium

FONT = '"Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Micro Hei", sans-serif'
CSS = """
@page { size: 297mm 210mm; margin: 0; }
* { box-sizing: border-box; }
body { margin: 0; font-family: %s; color: #1d1d1f; }
.page { width: 297mm; height: 210mm; padding: 10mm 12mm 8mm; position: relative; overflow: hidden;
        page-break-after: always; break-after: page; }
.page:last-child { page-break-after: auto; break-after: auto; }
header { display: flex; justify-content: space-between; align-items: baseline; border-bottom: 2px solid #b8252c;
         padding-bottom: 2mm; margin-bottom: 4mm; }
h1 { font-size: 17pt; margin: 0; color: #8e1b21; }
.meta { font-size: 9pt; color: #666; white-space: nowrap; }
.figs { display: flex; flex-wrap: wrap; gap: 3mm; margin-bottom: 4mm; }
.fig { border: 1px solid #ddd; border-radius: 2mm; padding: 2mm 4mm; min-width: 36mm; background: #faf7f5; }
.fig b { display: block; font-size: 16pt; color: #8e1b21; }
.fig span { font-size: 8.5pt; color: #555; }
.top { display: flex; gap: 6mm; align-items: flex-start; }
.map { flex: 0 0 auto; border: 1px solid #ccc; background: #fff; }
.legend { font-size: 8pt; color: #555; margin-top: 1mm; }
table { border-collapse: collapse; width: 100%%; font-size: 8.5pt; margin-bottom: 4mm; }
th { background: #8e1b21; color: #fff; font-weight: 600; padding: 1.2mm 1.5mm; text-align: left; }
td { border-bottom: 1px solid #e3e3e3; padding: 1mm 1.5mm; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.total td { font-weight: 700; border-top: 1.5px solid #333; }
.cover { display: flex; flex-direction: column; justify-content: center; height: 150mm; }
.cover h1 { font-size: 28pt; border: 0; }
.cover .figs { margin-top: 12mm; }
.cover .fig b { font-size: 22pt; }
.notes { font-size: 8.5pt; color: #444; }
footer { position: absolute; bottom: 5mm; left: 12mm; right: 12mm; font-size: 7.5pt; color: #888;
         display: flex; justify-content: space-between; }
""" % FONT


def _e(s) -> str:
    return htmllib.escape(str(s), quote=True)


def _svg(mp: MapSpec, width_mm: float = 110, height_mm: float = 78) -> str:
    box_w, box_h = width_mm, height_mm
    if mp.aspect >= box_w / box_h:
        w, h = box_w, box_w / mp.aspect
    else:
        w, h = box_h * mp.aspect, box_h
    ox, oy = (box_w - w) / 2, (box_h - h) / 2
    parts = [f'<svg class="map" xmlns="http://www.w3.org/2000/svg" width="{box_w}mm" height="{box_h}mm" '
             f'viewBox="0 0 {box_w:.2f} {box_h:.2f}">']
    for s in mp.shapes:
        d = " ".join("M" + " L".join(f"{ox + x * w:.2f},{oy + y * h:.2f}" for x, y in r) + " Z" for r in s.rings)
        parts.append(f'<path d="{d}" fill="{_e(s.fill)}" fill-opacity="0.75" stroke="#333" stroke-width="0.25"/>')
    fs = max(1.6, min(3.0, 120 / max(len(mp.shapes), 1) ** 0.5 / 6))
    for s in mp.shapes:
        if s.label:
            lab = s.label[-6:] if len(s.label) > 6 else s.label
            parts.append(f'<text x="{ox + s.label_xy[0] * w:.2f}" y="{oy + s.label_xy[1] * h:.2f}" font-size="{fs:.2f}" '
                         f'text-anchor="middle" fill="#111">{_e(lab)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _html_table(tb: Table) -> str:
    def cls(i):
        return ' class="num"' if i >= tb.numeric_from else ""
    out = ["<table><thead><tr>" + "".join(f"<th{cls(i)}>{_e(h)}</th>" for i, h in enumerate(tb.header))
           + "</tr></thead><tbody>"]
    for r in tb.rows:
        out.append("<tr>" + "".join(f"<td{cls(i)}>{_e(v)}</td>" for i, v in enumerate(r)) + "</tr>")
    if tb.total:
        out.append('<tr class="total">' + "".join(f"<td{cls(i)}>{_e(v)}</td>" for i, v in enumerate(tb.total))
                   + "</tr>")
    return "".join(out) + "</tbody></table>"


def pack_html(pack: Pack, *, attribution: str = "") -> str:
    lang = pack.lang
    n = len(pack.pages)
    ql = quarter_label(pack.quarter, lang)
    body = []
    for i, p in enumerate(pack.pages):
        figs = ('<div class="figs">' + "".join(f'<div class="fig"><b>{_e(v)}</b><span>{_e(lbl)}</span></div>'
                                               for v, lbl in p.figures) + "</div>") if p.figures else ""
        notes = "".join(f'<p class="notes">{_e(x)}</p>' for x in p.notes)
        tables = "".join(_html_table(tb) for tb in p.tables)
        if p.kind == "cover":
            inner = f'<div class="cover"><h1>{_e(p.title)}</h1>{figs}{notes}</div>'
        elif p.map is not None:
            legend = f'<div class="legend">{_e(p.map.legend)}</div>' if p.map.legend else ""
            inner = (f'<div class="top"><div>{_svg(p.map)}{legend}</div><div>{figs}{notes}</div></div>{tables}')
        else:
            inner = figs + tables + notes
        head = "" if p.kind == "cover" else (f'<header><h1>{_e(p.title)}</h1>'
                                            f'<span class="meta">{_e(ql)}</span></header>')
        foot = (f'<footer><span>{_e(attribution)}</span>'
                f'<span>{_e(t("pack_page", lang).format(n=i + 1, total=n))}</span></footer>')
        body.append(f'<section class="page" data-kind="{_e(p.kind)}">{head}{inner}{foot}</section>')
    lang_attr = "zh-CN" if lang == "zh" else "en"
    return (f'<!DOCTYPE html><html lang="{lang_attr}"><head><meta charset="utf-8"><title>{_e(t("pack", lang))} '
            f'{_e(ql)}</title><style>{CSS}</style></head><body>{"".join(body)}</body></html>')


def write_pdf(pack: Pack, out, *, chromium: str | None = None, attribution: str = "", keep_html=None,
              engine: str | None = None, progress=None) -> Path:
    """The pack as a PDF. engine "reportlab" (default when installed): drawn directly, about a
    tenth of a second for a page less than printing HTML (bench_pack: 292 pages in a few
    seconds instead of 30-55 s of Chromium on this machine); "chromium": pack_html printed by
    headless Chromium (data/exporters/image.render_html). progress: callable(pages done, pages)
    (reportlab: after each page; Chromium prints every page in one call: once, at the end)."""
    if engine is None:
        engine = "reportlab" if cjk_truetype_font() else "chromium"
    if engine == "reportlab":
        return write_pdf_reportlab(pack, out, attribution=attribution, progress=progress)
    from data.exporters.image import render_html
    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="minsheng-pack-") as d:
        page = Path(d) / "pack.html"
        page.write_text(pack_html(pack, attribution=attribution), encoding="utf-8")
        if keep_html:
            Path(keep_html).write_text(page.read_text(encoding="utf-8"), encoding="utf-8")
        res = render_html(page, out, fmt="pdf", wait_ms=1000, timeout=600, chromium=chromium)
    if progress is not None:
        progress(len(pack.pages), len(pack.pages))
    return res


# reportlab embeds TrueType outlines only (Noto CJK is CFF): a TrueType CJK font, subset-embedded
TRUETYPE_CJK = ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
                "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
                "/usr/share/fonts/truetype/arphic/uming.ttc")


def cjk_truetype_font() -> str | None:
    """A TrueType CJK font for reportlab: MINSHENG_PDF_FONT, else the first of TRUETYPE_CJK present
    (Debian: fonts-wqy-zenhei), else None (the PDF is then printed by Chromium with Noto CJK)."""
    import os
    try:
        import reportlab  # noqa: F401
    except ImportError:
        return None
    for f in ([os.environ["MINSHENG_PDF_FONT"]] if os.environ.get("MINSHENG_PDF_FONT") else []) + list(TRUETYPE_CJK):
        if os.path.exists(f):
            return f
    return None


def write_pdf_reportlab(pack: Pack, out, *, attribution: str = "", progress=None) -> Path:
    """A4 landscape pages drawn with reportlab (tables via platypus Table, maps as paths)."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.pdfgen import canvas
    from reportlab.platypus import Table as RLTable, TableStyle
    path = cjk_truetype_font()
    if path is None:
        raise RuntimeError("no TrueType CJK font for reportlab (install fonts-wqy-zenhei or set MINSHENG_PDF_FONT)")
    font = "MinshengCJK"
    if font not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(font, path, subfontIndex=0) if path.endswith(".ttc") else TTFont(font, path))
    W, H = landscape(A4)
    mm = 72 / 25.4
    red = colors.HexColor("#8e1b21")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    c = canvas.Canvas(str(out), pagesize=(W, H), pageCompression=1)
    c.setTitle(f"{t('pack', pack.lang)} {pack.quarter}")
    ql = quarter_label(pack.quarter, pack.lang)
    n = len(pack.pages)
    left, right = 12 * mm, W - 12 * mm

    def text(x, y, s, size, color=colors.black, anchor="l"):
        c.setFont(font, size)
        c.setFillColor(color)
        (c.drawRightString if anchor == "r" else c.drawCentredString if anchor == "c" else c.drawString)(x, y, str(s))

    def figures(figs, x, y, big=16):
        for v, lbl in figs:
            w = max(36 * mm, pdfmetrics.stringWidth(str(v), font, big) + 8 * mm,
                    pdfmetrics.stringWidth(str(lbl), font, 8) + 8 * mm)
            c.setFillColor(colors.HexColor("#faf7f5"))
            c.setStrokeColor(colors.HexColor("#dddddd"))
            c.roundRect(x, y - 15 * mm, w, 15 * mm, 2 * mm, fill=1, stroke=1)
            text(x + 4 * mm, y - 8 * mm, v, big, red)
            text(x + 4 * mm, y - 12.5 * mm, lbl, 8, colors.HexColor("#555555"))
            x += w + 3 * mm
        return y - 19 * mm

    def notes(lines, x, y, width):
        for line in lines:
            text(x, y, line, 8.5, colors.HexColor("#444444"))
            y -= 5 * mm
        return y

    def table(tb: Table, x, y, width, bottom):
        rows = [tb.header] + tb.rows + ([tb.total] if tb.total else [])
        ncols = len(tb.header)
        rows = [[str(r[j]) if j < len(r) else "" for j in range(ncols)] for r in rows]
        size = 8.5
        nat = [max(pdfmetrics.stringWidth(r[j], font, size) for r in rows) + 4 for j in range(ncols)]
        if sum(nat) > width:
            size = max(5.5, size * width / sum(nat))
            nat = [max(pdfmetrics.stringWidth(r[j], font, size) for r in rows) + 4 for j in range(ncols)]
        widths = [w + (width - sum(nat)) / ncols for w in nat] if sum(nat) < width else nat
        row_h = min(size + 6, max((y - bottom) / max(len(rows), 1), size + 2))
        st = [("FONTNAME", (0, 0), (-1, -1), font), ("FONTSIZE", (0, 0), (-1, -1), size),
              ("BACKGROUND", (0, 0), (-1, 0), red), ("TEXTCOLOR", (0, 0), (-1, 0), colors.white),
              ("LINEBELOW", (0, 1), (-1, -1), 0.4, colors.HexColor("#e3e3e3")),
              ("VALIGN", (0, 0), (-1, -1), "MIDDLE"), ("TOPPADDING", (0, 0), (-1, -1), 1),
              ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5), ("LEFTPADDING", (0, 0), (-1, -1), 2),
              ("RIGHTPADDING", (0, 0), (-1, -1), 2)]
        if tb.numeric_from < ncols:
            st.append(("ALIGN", (tb.numeric_from, 0), (-1, -1), "RIGHT"))
        if tb.total:
            st += [("LINEABOVE", (0, -1), (-1, -1), 1, colors.black), ("TEXTCOLOR", (0, -1), (-1, -1), red)]
        rl = RLTable(rows, colWidths=widths, rowHeights=row_h, style=TableStyle(st))
        _, h = rl.wrapOn(c, width, y - bottom)
        rl.drawOn(c, x, y - h)
        return y - h - 4 * mm

    def draw_map(mp: MapSpec, x, y_top, bw, bh):
        if mp.aspect >= bw / bh:
            w, h = bw, bw / mp.aspect
        else:
            w, h = bh * mp.aspect, bh
        ox, oy = x + (bw - w) / 2, y_top - (bh - h) / 2
        c.setStrokeColor(colors.HexColor("#cccccc"))
        c.rect(x, y_top - bh, bw, bh, fill=0, stroke=1)
        c.setLineWidth(0.5)
        for s_ in mp.shapes:
            path = c.beginPath()
            for ring in s_.rings:
                path.moveTo(ox + ring[0, 0] * w, oy - ring[0, 1] * h)
                for px, py in ring[1:]:
                    path.lineTo(ox + px * w, oy - py * h)
                path.close()
            c.setFillColor(colors.HexColor(s_.fill), alpha=0.8)
            c.setStrokeColor(colors.HexColor("#333333"))
            c.drawPath(path, fill=1, stroke=1)
        if len(mp.shapes) <= 24:
            for s_ in mp.shapes:
                if s_.label:
                    text(ox + s_.label_xy[0] * w, oy - s_.label_xy[1] * h, s_.label[-6:], 6.5, colors.black, "c")
        if mp.legend:
            text(x, y_top - bh - 4 * mm, mp.legend, 7.5, colors.HexColor("#555555"))

    for i, p in enumerate(pack.pages):
        if p.kind == "cover":
            text(left, H - 70 * mm, p.title, 28, red)
            y = figures(p.figures, left, H - 85 * mm, big=22)
            notes(p.notes, left, y - 4 * mm, right - left)
        else:
            text(left, H - 16 * mm, p.title, 17, red)
            text(right, H - 16 * mm, ql, 9, colors.HexColor("#666666"), "r")
            c.setStrokeColor(red)
            c.setLineWidth(1.5)
            c.line(left, H - 19 * mm, right, H - 19 * mm)
            c.setLineWidth(1)
            y = H - 23 * mm
            if p.map is not None:
                draw_map(p.map, left, y, 110 * mm, 72 * mm)
                fy = figures(p.figures, left + 116 * mm, y)
                notes(p.notes, left + 116 * mm, fy, right - left - 116 * mm)
                y -= 82 * mm
            else:
                if p.figures:
                    y = figures(p.figures, left, y)
            for tb in p.tables:
                y = table(tb, left, y, right - left, 14 * mm)
            if p.map is None and p.notes:
                notes(p.notes, left, y, right - left)
        text(left, 6 * mm, attribution, 7, colors.HexColor("#888888"))
        text(right, 6 * mm, t("pack_page", pack.lang).format(n=i + 1, total=n), 7.5, colors.HexColor("#888888"), "r")
        c.showPage()
        if progress is not None:
            progress(i + 1, n)
    c.save()
    return out


# ---------------------------------------------------------------------------------------------
# PPTX: python-pptx, 16:9, the same pages. Shapes are written as DrawingML XML (one parse per
# shape) rather than through python-pptx's per-cell object API, which is ~20x slower for the
# hundreds of tables of a district pack.

PPT_FONT = "Noto Sans CJK SC"
EMU = 914400
_NS = ('xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" '
       'xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main" '
       'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"')


def _x(s) -> str:
    return htmllib.escape(str(s), quote=False)


def _emu(v: float) -> int:
    return int(round(v * EMU))


def _run(text, size, *, bold=False, color="1D1D1F") -> str:
    return (f'<a:r><a:rPr lang="zh-CN" sz="{int(size * 100)}" b="{1 if bold else 0}" dirty="0">'
            f'<a:solidFill><a:srgbClr val="{color.lstrip("#").upper()}"/></a:solidFill>'
            f'<a:latin typeface="{PPT_FONT}"/><a:ea typeface="{PPT_FONT}"/><a:cs typeface="{PPT_FONT}"/>'
            f'</a:rPr><a:t>{_x(text)}</a:t></a:r>')


class _Slide:
    def __init__(self, slide):
        self.slide = slide
        self.tree = slide.shapes._spTree
        self.next_id = 100
        self.xml: list[str] = []

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id

    def text(self, x, y, w, h, text, size, *, bold=False, color="1D1D1F", align="l"):
        lines = text if isinstance(text, list) else [text]
        paras = "".join(f'<a:p><a:pPr algn="{align}"/>{_run(line, size, bold=bold, color=color)}</a:p>'
                        for line in lines) or "<a:p/>"
        i = self._id()
        self.xml.append(
            f'<p:sp {_NS}><p:nvSpPr><p:cNvPr id="{i}" name="Text {i}"/><p:cNvSpPr txBox="1"/><p:nvPr/></p:nvSpPr>'
            f'<p:spPr><a:xfrm><a:off x="{_emu(x)}" y="{_emu(y)}"/><a:ext cx="{_emu(w)}" cy="{_emu(h)}"/></a:xfrm>'
            f'<a:prstGeom prst="rect"><a:avLst/></a:prstGeom><a:noFill/></p:spPr>'
            f'<p:txBody><a:bodyPr wrap="square" lIns="0" tIns="0" rIns="0" bIns="0"/><a:lstStyle/>{paras}'
            f'</p:txBody></p:sp>')

    def table(self, tb: Table, x, y, w, h_max) -> float:
        rows = [tb.header] + tb.rows + ([tb.total] if tb.total else [])
        nrows, ncols = len(rows), len(tb.header)
        row_h = min(0.3, h_max / max(nrows, 1))
        size = 10 if ncols <= 8 else (8 if ncols <= 13 else 7)
        # column widths: by the longest text of the column (CJK counted double), at least 0.5
        lens = [min(max(max(sum(2 if ord(ch) > 0x2e80 else 1 for ch in str(r[j] if j < len(r) else "")) + 1
                                for r in rows[1:] or rows), 7), 32) for j in range(ncols)]
        tot = float(sum(lens))
        widths = [_emu(w * ln / tot) for ln in lens]
        out = []
        for i, row in enumerate(rows):
            head = i == 0
            last = tb.total is not None and i == nrows - 1
            fill = "8E1B21" if head else ("FFFFFF" if i % 2 else "F6F2F0")
            cells = []
            for j in range(ncols):
                v = row[j] if j < len(row) else ""
                algn = "r" if j >= tb.numeric_from else "l"
                cells.append(f'<a:tc><a:txBody><a:bodyPr/><a:lstStyle/><a:p><a:pPr algn="{algn}"/>'
                             f'{_run(v, size, bold=head or last, color="FFFFFF" if head else "1D1D1F")}</a:p>'
                             f'</a:txBody><a:tcPr marL="38100" marR="38100" marT="12700" marB="12700" anchor="ctr">'
                             f'<a:solidFill><a:srgbClr val="{fill}"/></a:solidFill></a:tcPr></a:tc>')
            out.append(f'<a:tr h="{_emu(row_h)}">{"".join(cells)}</a:tr>')
        grid = "".join(f'<a:gridCol w="{cw}"/>' for cw in widths)
        i = self._id()
        self.xml.append(
            f'<p:graphicFrame {_NS}><p:nvGraphicFramePr><p:cNvPr id="{i}" name="Table {i}"/><p:cNvGraphicFramePr>'
            f'<a:graphicFrameLocks noGrp="1"/></p:cNvGraphicFramePr><p:nvPr/></p:nvGraphicFramePr>'
            f'<p:xfrm><a:off x="{_emu(x)}" y="{_emu(y)}"/><a:ext cx="{sum(widths)}" cy="{_emu(row_h * nrows)}"/></p:xfrm>'
            f'<a:graphic><a:graphicData uri="http://schemas.openxmlformats.org/drawingml/2006/table"><a:tbl>'
            f'<a:tblPr firstRow="1" bandRow="1"/><a:tblGrid>{grid}</a:tblGrid>{"".join(out)}</a:tbl></a:graphicData>'
            f'</a:graphic></p:graphicFrame>')
        return row_h * nrows

    def map(self, mp: MapSpec, x, y, w, h):
        if mp.aspect >= w / h:
            mw, mh = w, w / mp.aspect
        else:
            mw, mh = h * mp.aspect, h
        ox, oy = x + (w - mw) / 2, y + (h - mh) / 2
        cx, cy = _emu(mw), _emu(mh)
        for s in mp.shapes:
            paths = []
            for ring in s.rings:
                if len(ring) < 3:
                    continue
                px = np.rint(ring[:, 0] * cx).astype(np.int64)
                py = np.rint(ring[:, 1] * cy).astype(np.int64)
                pts = "".join(f'<a:lnTo><a:pt x="{a}" y="{b}"/></a:lnTo>' for a, b in zip(px[1:], py[1:]))
                paths.append(f'<a:path w="{cx}" h="{cy}"><a:moveTo><a:pt x="{px[0]}" y="{py[0]}"/></a:moveTo>{pts}'
                             f'<a:close/></a:path>')
            if not paths:
                continue
            i = self._id()
            self.xml.append(
                f'<p:sp {_NS}><p:nvSpPr><p:cNvPr id="{i}" name="{_x(s.label or i)}"/><p:cNvSpPr/><p:nvPr/></p:nvSpPr>'
                f'<p:spPr><a:xfrm><a:off x="{_emu(ox)}" y="{_emu(oy)}"/><a:ext cx="{cx}" cy="{cy}"/></a:xfrm>'
                f'<a:custGeom><a:avLst/><a:gdLst/><a:ahLst/><a:cxnLst/><a:rect l="0" t="0" r="r" b="b"/>'
                f'<a:pathLst>{"".join(paths)}</a:pathLst></a:custGeom>'
                f'<a:solidFill><a:srgbClr val="{s.fill.lstrip("#").upper()}"/></a:solidFill>'
                f'<a:ln w="6350"><a:solidFill><a:srgbClr val="333333"/></a:solidFill></a:ln></p:spPr></p:sp>')
        if len(mp.shapes) <= 16:
            for s in mp.shapes:
                if s.label:
                    lab = s.label[-6:]
                    self.text(ox + s.label_xy[0] * mw - 0.45, oy + s.label_xy[1] * mh - 0.08, 0.9, 0.2, lab, 7,
                              align="ctr")
        return mw, mh

    def flush(self):
        from pptx.oxml import parse_xml
        for x in self.xml:
            self.tree.append(parse_xml(x))
        self.xml = []


def write_pptx(pack: Pack, out, *, attribution: str = "", progress=None) -> Path:
    """The pack as 16:9 slides, one per page. progress: callable(pages done, pages)."""
    from pptx import Presentation
    from pptx.util import Inches
    lang = pack.lang
    prs = Presentation()
    prs.slide_width, prs.slide_height = Inches(13.333), Inches(7.5)
    blank = prs.slide_layouts[6]
    ql = quarter_label(pack.quarter, lang)
    n = len(pack.pages)
    red, grey = "8E1B21", "555555"
    for i, p in enumerate(pack.pages):
        s = _Slide(prs.slides.add_slide(blank))
        if p.kind == "cover":
            s.text(0.8, 2.0, 11.7, 1.2, p.title, 36, bold=True, color=red)
            fx = 0.8
            for v, lbl in p.figures:
                s.text(fx, 3.6, 2.3, 0.6, v, 26, bold=True, color=red)
                s.text(fx, 4.3, 2.3, 0.4, lbl, 12, color=grey)
                fx += 2.4
            s.text(0.8, 5.2, 11.7, 1.2, p.notes, 12, color="444444")
        else:
            s.text(0.5, 0.3, 10.5, 0.6, p.title, 22, bold=True, color=red)
            s.text(11.0, 0.4, 1.9, 0.4, ql, 11, color="666666")
            y = 1.0
            fx, fy = (5.4, y) if p.map is not None else (0.5, y)
            if p.map is not None:
                s.map(p.map, 0.5, y, 4.6, 2.7)
                if p.map.legend:
                    s.text(0.5, y + 2.75, 4.6, 0.25, p.map.legend, 8, color=grey)
            for v, lbl in p.figures:
                s.text(fx, fy, 1.8, 0.45, v, 18, bold=True, color=red)
                s.text(fx, fy + 0.5, 1.8, 0.45, lbl, 9, color=grey)
                fx += 1.9
            if p.figures:
                fy += 1.05
            if p.map is not None:
                s.text(5.4, fy, 7.4, 1.5, p.notes, 9, color="444444")
                ty = y + 3.1
            else:  # notes above the tables: table rows may wrap and grow in PowerPoint
                if p.notes:
                    s.text(0.5, fy, 12.3, 0.22 * len(p.notes), p.notes, 9, color="444444")
                    fy += 0.22 * len(p.notes) + 0.1
                ty = fy
            room = 6.95 - ty
            for tb in p.tables:
                h = s.table(tb, 0.5, ty, 12.3, room / max(len(p.tables), 1))
                ty += h + 0.15
        s.text(0.5, 7.1, 9.0, 0.3, attribution, 7, color="888888")
        s.text(10.8, 7.1, 2.1, 0.3, t("pack_page", lang).format(n=i + 1, total=n), 8, color="888888", align="r")
        s.flush()
        if progress is not None:
            progress(i + 1, n)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    prs.save(str(out))
    return out


# ---------------------------------------------------------------------------------------------
# one call for the CLI and the dashboard

def make_pack(bundle, settings, quarter: str, out_dir, *, lang: str = "zh", personal: bool = False,
              grid_pages: bool = False, store=None, user: str = "", formats=("pdf", "pptx"), freeze: bool = True,
              progress=None, chromium: str | None = None) -> dict:
    """Build the pack, write the requested formats into out_dir and freeze the quarter's
    snapshot in `store` (its quarter_snapshots table, data/snapshots; None = neither read the
    previous quarter nor freeze). A quarter frozen before is never overwritten: the pack is
    still written and "refused" holds the QuarterFrozen (worded by its text(lang)).

    progress: callable(done, total, what): while the pages are built, what is the step
    (cover, audit, community C001, ...) and done/total count the steps; while a file is
    written, what is "pdf" or "pptx" and done/total count its pages.

    Returns {"pack": Pack, "files": {fmt: Path}, "quarter": str, "snapshot": the payload frozen
    now or None, "frozen_now": bool, "refused": QuarterFrozen | None, "previous": dict | None,
    "seconds": {...}}."""
    from data import snapshots as snaps
    from data.schema import ATTRIBUTION
    from data.store import QuarterFrozen
    quarter = snaps.normal_quarter(quarter)
    previous = snaps.read(store, snaps.previous_quarter(quarter)) if store is not None else None
    report = progress or (lambda done, total, what: None)
    t0 = time.perf_counter()
    pack = build_pack(bundle, settings, quarter, lang=lang, personal=personal, grid_pages=grid_pages,
                      previous=previous, progress=progress)
    seconds = dict(pack.seconds)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{t('pack', lang)}-{quarter}" if lang == "zh" else f"joint-meeting-pack-{quarter}"
    files = {}
    for fmt in ("pdf", "pptx"):
        if fmt not in formats:
            continue
        report(0, len(pack.pages), fmt)
        t1 = time.perf_counter()
        pages_done = (lambda done, total, fmt=fmt: report(done, total, fmt))
        if fmt == "pdf":
            files[fmt] = write_pdf(pack, out_dir / f"{stem}.pdf", chromium=chromium, attribution=ATTRIBUTION,
                                   progress=pages_done)
        else:
            files[fmt] = write_pptx(pack, out_dir / f"{stem}.pptx", attribution=ATTRIBUTION, progress=pages_done)
        seconds[fmt] = time.perf_counter() - t1
    stored, refused = None, None
    if store is not None and freeze:
        try:
            stored = snaps.freeze(store, quarter, pack.snapshot, user)
        except QuarterFrozen as e:
            refused = e
    seconds["all"] = time.perf_counter() - t0
    return {"pack": pack, "files": files, "quarter": quarter, "snapshot": stored, "frozen_now": stored is not None,
            "refused": refused, "seconds": seconds, "previous": previous}
