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

from data.catalogue import key_groups, service_type
from data.privacy import mask_name
from geo.validate import KIND_LABELS
from layers.style import BAND_COLORS
from minsheng.i18n import t

CARE_GROUPS = ("living_alone_elderly", "empty_nest_elderly")  # non-sensitive groups shown on the pages
ROWS_PER_PAGE = 16
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

def _suppressed_block(rows: pd.DataFrame, keys: list[str], personal: bool, threshold: int, visits, *,
                      with_total: bool = True):
    """Shown key-group cells, total row, shown workload per row and total for a table of rows
    (households, persons, workload, key-group counts). Returns (cells DataFrame of str,
    total Series of str or None, workload strings, workload total string, workload values)."""
    from geo.suppress import public_workload, suppress_table
    sens = [k for k in keys if k in _small_keys()]
    plain = [k for k in keys if k not in sens]
    cells = pd.DataFrame(index=rows.index)
    for k in plain:
        cells[k] = rows[k].astype(np.int64).map(_n)
    total = pd.Series({k: _n(rows[k].sum()) for k in plain}, dtype=object) if with_total else None
    if personal or not sens:
        for k in sens:
            cells[k] = rows[k].astype(np.int64).map(_n)
            if with_total:
                total[k] = _n(rows[k].sum())
        wl = rows["workload"].to_numpy(dtype=float)
        return cells[keys], (total[keys] if with_total else None), [_n(v) for v in wl], _n(wl.sum()), wl
    s = suppress_table(rows[sens].astype(np.int64), rows["households"].to_numpy(), threshold=threshold,
                       with_total=with_total)
    shown = s.shown()
    for k in sens:
        cells[k] = shown[k]
    if with_total:
        st = s.shown_total()
        for k in sens:
            total[k] = st[k]
    wl = public_workload(rows, s, visits)
    approx = (s.mark > 0).any(axis=1).to_numpy()
    wl_s = [("≈" if a else "") + _n(v) for v, a in zip(wl, approx)]
    return cells[keys], (total[keys] if with_total else None), wl_s, ("≈" if approx.any() else "") + _n(wl.sum()), wl


def _small_keys() -> set[str]:
    from data.catalogue import small_cell_keys
    return set(small_cell_keys())


def _labels(lang):
    return {k.key: k.label(lang) for k in key_groups()}


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
    from geo.stats import stats_of_bundle
    from geo.workload import walk_lengths, walk_minutes
    from data.exporters.common import households_are_synthetic
    from data.snapshots import parse_quarter
    parse_quarter(quarter)
    quarter = quarter.upper()
    timings = {}
    t0 = time.perf_counter()
    report = progress or (lambda done, total, what: None)
    plan_id = plan_id or bundle.adopted_plan_id()
    stats = stats_of_bundle(bundle)
    keys = [k.key for k in key_groups()]
    grids = bundle.plan_grids(plan_id)
    hh_audit = bundle.households if "households" in bundle.layers and len(bundle.households) else stats
    audit = audit_plan(grids, bundle.communities, bundle.buildings, bundle.plan_assignments(plan_id), hh_audit,
                       bands=settings, tag_keys=keys)
    timings["audit"] = time.perf_counter() - t0
    gt, ct = audit.grids, audit.communities
    labels = _labels(lang)
    shown_keys = [k for k in CARE_GROUPS if k in keys] + [k for k in keys if k in _small_keys()]
    thr = int(getattr(settings, "suppress_below", 5))
    visits = settings
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
    rows = [[service_type(r.service_type).label(lang) if _known_type(r.service_type) else str(r.service_type),
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
    cblock = _suppressed_block(crow, shown_keys, personal, thr, visits)
    head = [t("community", lang), t("fig_grids", lang), t("households", lang), t("persons", lang),
            t("workload_short", lang), t("band", lang), t("workload_band", lang)] + [labels[k] for k in shown_keys]
    body = []
    for i, (cid, r) in enumerate(crow.iterrows()):
        body.append([str(r["name"] or cid), f"{int(r['level1_grids'])}/{int(r['level2_grids'])}", _n(r["households"]),
                     _n(r["persons"]), cblock[2][i], _band_label(r["band"], lang),
                     _band_label(_status(cblock[4][i], r["workload_low"], r["workload_high"]), lang)]
                    + list(cblock[0].iloc[i]))
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
    ghead = [t("grid", lang), t("grid_worker", lang), t("buildings", lang), t("households", lang),
             t("persons", lang), t("workload_short", lang), t("walk_round", lang), t("band", lang),
             t("workload_band", lang)] + [labels[k] for k in shown_keys]
    for cid in comm_ids:
        c = crow.loc[cid]
        g = by_comm.get(cid, l2.iloc[0:0]).set_index("id")
        blk = _suppressed_block(g, shown_keys, personal, thr, visits) if len(g) else None
        rows = []
        fills = []
        for i, (gid, r) in enumerate(g.iterrows()):
            wst = _status(blk[4][i], r["workload_low"], r["workload_high"])
            fills.append(BAND_COLORS.get(wst, "#cccccc"))
            name = heads.get(gid)
            worker = (str(name) if personal else mask_name(name)) if isinstance(name, str) and name else "—"
            wm = walk.get(gid)
            rows.append([str(r["name"] or gid), worker or "—", _n(r["buildings"]), _n(r["households"]),
                         _n(r["persons"]), blk[2][i], "—" if wm is None or not np.isfinite(wm) else f"{wm:.0f} "
                         + t("minutes", lang), _band_label(r["band"], lang), _band_label(wst, lang)]
                        + list(blk[0].iloc[i]))
        total = ([t("total", lang), "", _n(g["buildings"].sum()), _n(g["households"].sum()), _n(g["persons"].sum()),
                  blk[3], "", "", ""] + list(blk[1])) if blk is not None else None
        mp = _map_of(geom.reindex(g.index).to_numpy(dtype=object), fills, list(g["name"].fillna("").astype(str))) \
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
        pages.append(Page("community", t("pack_community", lang).format(name=str(c["name"] or cid)), figures=figs,
                          tables=[Table(ghead, rows, total)], map=mp,
                          notes=[x for x in (sup_note, t("workload_estimate", lang) if not personal else "") if x]))
        step(f"community {cid}")
        if grid_pages:
            for i, (gid, r) in enumerate(g.iterrows()):
                one = _suppressed_block(g.loc[[gid]], shown_keys, personal, thr, visits, with_total=False)
                kg = Table([t("key_groups", lang), t("count", lang)],
                           [[labels[k], one[0].iloc[0][k]] for k in shown_keys])
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
        pages.extend(change_pages(pd_, bundle, lang, personal=personal, threshold=thr, plan_names=(plan_id, draft)))
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


def _known_type(key) -> bool:
    try:
        service_type(str(key))
        return True
    except KeyError:
        return False


def change_pages(diff, bundle, lang: str, *, personal: bool, threshold: int, plan_names=("", "")) -> list[Page]:
    """The person-level plan change (geo/plan.PeopleDiff) as pages: flows between grids and
    the grid workers' gains and losses. Used by the pack; /present shows the same figures."""
    flows, per = people_table(diff, bundle, lang, personal=personal, threshold=threshold)
    figs = [(_n(diff.households_moved), t("households", lang)), (_n(diff.persons_moved), t("persons", lang)),
            (_n(int((diff.flows["level"] == 2).sum()) if len(diff.flows) else 0), t("fig_grids_changed", lang)),
            (_n(sum(len(b) for b in diff.flows.loc[diff.flows["level"] == 2, "buildings"]) if len(diff.flows) else 0),
             t("fig_moved", lang))]
    title = t("pack_changes", lang) + f" · {plan_names[0]} → {plan_names[1]}"
    notes = [t("people_moved", lang).format(households=_n(diff.households_moved), persons=_n(diff.persons_moved))]
    if not personal:
        notes.append(t("suppressed_note", lang).format(t=threshold))
    return [Page("changes", title, figures=figs, tables=[flows], notes=notes),
            Page("changes", title + " · " + t("grid_worker", lang), tables=[per], notes=notes[1:])]


def people_table(diff, bundle, lang: str, *, personal: bool, threshold: int, max_rows: int = MAX_FLOWS):
    """(flows Table, per-grid Table) of a PeopleDiff, suppressed for roles without personal access."""
    labels = _labels(lang)
    keys = [k for k in CARE_GROUPS if k in diff.tag_keys] + [k for k in diff.tag_keys if k in _small_keys()]
    names = dict(zip(bundle.grids["id"].astype(str), bundle.grids["name"].astype(str)))
    f = diff.flows[diff.flows["level"] == 2].head(max_rows).reset_index(drop=True)
    if len(f):
        blk = _suppressed_block(f.assign(workload=0.0), keys, personal, threshold, None)
        cells, total = blk[0], blk[1]
    else:
        cells, total = pd.DataFrame(columns=keys), pd.Series({k: "0" for k in keys})
    none = t("no_grid", lang)
    rows = [[names.get(r.from_grid, r.from_grid) if r.from_grid else none,
             names.get(r.to_grid, r.to_grid) if r.to_grid else none,
             _n(len(r.buildings)) + ("" if len(r.buildings) > 4 else " (" + "、".join(r.buildings) + ")"),
             _n(r.households), _n(r.persons)] + list(cells.iloc[i]) for i, r in enumerate(f.itertuples())]
    tot = [t("total", lang), "", _n(sum(len(b) for b in f["buildings"])), _n(f["households"].sum()),
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


def write_pdf(pack: Pack, out, *, chromium: str | None = None, attribution: str = "", keep_html=None) -> Path:
    from data.exporters.image import render_html
    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="minsheng-pack-") as d:
        page = Path(d) / "pack.html"
        page.write_text(pack_html(pack, attribution=attribution), encoding="utf-8")
        if keep_html:
            Path(keep_html).write_text(page.read_text(encoding="utf-8"), encoding="utf-8")
        return render_html(page, out, fmt="pdf", wait_ms=1000, timeout=600, chromium=chromium)


# ---------------------------------------------------------------------------------------------
# PPTX: python-pptx, 16:9, the same pages

PPT_FONT = "Noto Sans CJK SC"


def _font(run, size, *, bold=False, color=None):
    from pptx.dml.color import RGBColor
    from pptx.oxml.ns import qn
    from pptx.util import Pt
    f = run.font
    f.size = Pt(size)
    f.bold = bold
    f.name = PPT_FONT
    rpr = run._r.get_or_add_rPr()
    for tag in ("a:ea", "a:cs"):
        el = rpr.find(qn(tag))
        if el is None:
            el = rpr.makeelement(qn(tag), {})
            rpr.append(el)
        el.set("typeface", PPT_FONT)
    if color:
        f.color.rgb = RGBColor.from_string(color.lstrip("#"))


def _text(slide, x, y, w, h, text, size, *, bold=False, color="1d1d1f", align=None):
    from pptx.util import Inches
    box = slide.shapes.add_textbox(Inches(x), Inches(y), Inches(w), Inches(h))
    tf = box.text_frame
    tf.word_wrap = True
    lines = text if isinstance(text, list) else [text]
    for i, line in enumerate(lines):
        para = tf.paragraphs[0] if i == 0 else tf.add_paragraph()
        if align is not None:
            para.alignment = align
        r = para.add_run()
        r.text = str(line)
        _font(r, size, bold=bold, color=color)
    return box


def _ppt_table(slide, tb: Table, x, y, w, h_max):
    from pptx.dml.color import RGBColor
    from pptx.enum.text import PP_ALIGN
    from pptx.util import Inches, Pt
    nrows = len(tb.rows) + 1 + (1 if tb.total else 0)
    ncols = len(tb.header)
    row_h = min(0.3, h_max / max(nrows, 1))
    size = 10 if ncols <= 8 else (8 if ncols <= 13 else 7)
    shape = slide.shapes.add_table(nrows, ncols, Inches(x), Inches(y), Inches(w), Inches(row_h * nrows))
    table = shape.table
    rows = [tb.header] + tb.rows + ([tb.total] if tb.total else [])
    for i, row in enumerate(rows):
        table.rows[i].height = Inches(row_h)
        for j in range(ncols):
            cell = table.cell(i, j)
            cell.margin_left = cell.margin_right = Pt(3)
            cell.margin_top = cell.margin_bottom = Pt(1)
            tf = cell.text_frame
            para = tf.paragraphs[0]
            para.alignment = PP_ALIGN.RIGHT if j >= tb.numeric_from and i > 0 else PP_ALIGN.LEFT
            r = para.add_run()
            r.text = str(row[j]) if j < len(row) else ""
            head = i == 0
            _font(r, size, bold=head or (tb.total is not None and i == nrows - 1), color="ffffff" if head else None)
            if head:
                cell.fill.solid()
                cell.fill.fore_color.rgb = RGBColor(0x8E, 0x1B, 0x21)
            else:
                cell.fill.solid()
                cell.fill.fore_color.rgb = RGBColor(0xFF, 0xFF, 0xFF) if i % 2 else RGBColor(0xF6, 0xF2, 0xF0)
    return row_h * nrows


def _ppt_map(slide, mp: MapSpec, x, y, w, h):
    from pptx.dml.color import RGBColor
    from pptx.util import Inches, Pt
    if mp.aspect >= w / h:
        mw, mh = w, w / mp.aspect
    else:
        mw, mh = h * mp.aspect, h
    ox, oy = x + (w - mw) / 2, y + (h - mh) / 2
    emu = 914400
    for s in mp.shapes:
        for ring in s.rings:
            pts = [(int((ox + px * mw) * emu), int((oy + py * mh) * emu)) for px, py in ring]
            if len(pts) < 3:
                continue
            fb = slide.shapes.build_freeform(pts[0][0], pts[0][1], scale=1.0)
            fb.add_line_segments(pts[1:], close=True)
            shp = fb.convert_to_shape()
            shp.fill.solid()
            shp.fill.fore_color.rgb = RGBColor.from_string(s.fill.lstrip("#"))
            shp.line.color.rgb = RGBColor(0x33, 0x33, 0x33)
            shp.line.width = Pt(0.5)
    return mw, mh


def write_pptx(pack: Pack, out, *, attribution: str = "") -> Path:
    from pptx import Presentation
    from pptx.util import Inches
    lang = pack.lang
    prs = Presentation()
    prs.slide_width, prs.slide_height = Inches(13.333), Inches(7.5)
    blank = prs.slide_layouts[6]
    ql = quarter_label(pack.quarter, lang)
    n = len(pack.pages)
    for i, p in enumerate(pack.pages):
        s = prs.slides.add_slide(blank)
        if p.kind == "cover":
            _text(s, 0.8, 2.0, 11.7, 1.2, p.title, 36, bold=True, color="8e1b21")
            fx = 0.8
            for v, lbl in p.figures:
                _text(s, fx, 3.6, 2.3, 0.6, v, 26, bold=True, color="8e1b21")
                _text(s, fx, 4.2, 2.3, 0.4, lbl, 12, color="555555")
                fx += 2.4
            _text(s, 0.8, 5.2, 11.7, 1.2, p.notes, 12, color="444444")
        else:
            _text(s, 0.5, 0.25, 10.5, 0.6, p.title, 22, bold=True, color="8e1b21")
            _text(s, 11.0, 0.35, 1.9, 0.4, ql, 11, color="666666")
            y = 1.0
            if p.map is not None:
                _ppt_map(s, p.map, 0.5, y, 4.6, 2.7)
                if p.map.legend:
                    _text(s, 0.5, y + 2.7, 4.6, 0.3, p.map.legend, 8, color="555555")
                fx, fy = 5.4, y
            else:
                fx, fy = 0.5, y
            for v, lbl in p.figures:
                _text(s, fx, fy, 1.8, 0.45, v, 18, bold=True, color="8e1b21")
                _text(s, fx, fy + 0.45, 1.8, 0.5, lbl, 9, color="555555")
                fx += 1.9
            if p.figures:
                fy += 1.0
            if p.map is not None:
                _text(s, 5.4, fy, 7.4, 1.6, p.notes, 9, color="444444")
                ty = y + 3.05
            else:
                ty = fy
            for tb in p.tables:
                ty += _ppt_table(s, tb, 0.5, ty, 12.3, 7.0 - ty - (0.5 if p.map is None and p.notes else 0)) + 0.15
            if p.map is None and p.notes:
                _text(s, 0.5, min(ty, 6.5), 12.3, 0.6, p.notes, 9, color="444444")
        _text(s, 0.5, 7.1, 9.0, 0.3, attribution, 7, color="888888")
        _text(s, 10.8, 7.1, 2.1, 0.3, t("pack_page", lang).format(n=i + 1, total=n), 8, color="888888")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    prs.save(str(out))
    return out
