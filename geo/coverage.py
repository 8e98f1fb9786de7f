"""Grid coverage and balance per grid, community and plan (DESIGN.md: coverage (a)).

`audit_plan` is the entry point: topology problems (geo/validate.py), code problems
(geo/codes.py), households per grid against the configured band per level, grids without
a head, and the per-grid and per-community tables. Pure: frames in, frames out.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd

from geo.codes import check_codes
from geo.stats import as_stats, tag_columns
from geo.validate import KINDS, PlanIndex, Problem, Tolerances, plan_index, problems_frame, validate_plan

COUNT_COLUMNS = ("buildings", "households", "persons")


def _band_of(bands, level: int):
    """(low, high) for a level (0 = community) from Settings-like `.band(level)`, a mapping
    level -> Band/(low, high), or None (project defaults from minsheng.settings)."""
    if bands is None:
        from minsheng.settings import Settings
        bands = Settings()
    b = bands.band(level) if hasattr(bands, "band") else bands[level]
    return (b.low, b.high) if hasattr(b, "low") else (int(b[0]), int(b[1]))


def _workload_band_of(bands, level: int):
    """(low, high) visits per month for a level from Settings-like `.workload_band(level)`, a
    mapping ("workload", level) -> Band/(low, high), or None (project defaults)."""
    if bands is None or not (hasattr(bands, "workload_band") or (isinstance(bands, dict) and ("workload", level) in bands)):
        from minsheng.settings import Settings
        bands = Settings()
    b = bands.workload_band(level) if hasattr(bands, "workload_band") else bands[("workload", level)]
    return (b.low, b.high) if hasattr(b, "low") else (float(b[0]), float(b[1]))


def _status(values, lows, highs):
    return np.where(lows < 0, "", np.where(values < lows, "low", np.where(values > highs, "high", "ok")))


def grid_table(grids: pd.DataFrame, households: pd.DataFrame, index: PlanIndex, *, bands=None,
               tag_keys=None, visits=None) -> pd.DataFrame:
    """One row per grid of the plan: id, level, parent_id, community_id, code, name, buildings,
    households, persons, one column per key-group key (households carrying the tag),
    band_low, band_high, band ("low" / "ok" / "high"), workload (visits per month,
    geo/workload), workload_low, workload_high, workload_band.

    `households`: a households frame or a per-building stats frame (geo/stats). visits: the
    visit-frequency rates (geo/workload.rates_of; default: Settings-like `bands` when it has
    visit_frequency, else the shipped table). Counts follow the assignments (each building's
    first assignment to a known level-2 grid); a level-1 grid sums its level-2 grids.
    Households of unknown or unassigned buildings are not counted here (see plan_totals)."""
    from geo.stats import as_stats
    from geo.workload import building_workload
    ix = index
    st = as_stats(households, tag_keys)
    tag_keys = list(tag_keys) if tag_keys is not None else tag_columns_of(st)
    if visits is None and hasattr(bands, "visit_frequency"):
        visits = bands
    gids = ix.grid_ids
    pos = pd.Series(np.arange(len(gids)), index=gids)
    pos = pos[~pos.index.duplicated()]
    n = len(gids)
    # building -> row of its level-2 grid
    b_row = ix.building_grid.map(pos)
    s_row = st["building_id"].astype("string").map(b_row).fillna(-1).to_numpy(dtype=np.int64)
    has = s_row >= 0
    l2 = np.zeros((n, 3 + len(tag_keys)), dtype=np.int64)
    l2[:, 0] = np.bincount(b_row.to_numpy(dtype=np.int64), minlength=n)
    for j, col in enumerate(["households", "persons", *tag_keys], start=1):
        l2[:, j] = np.rint(np.bincount(s_row[has], weights=st[col].to_numpy(dtype=float)[has], minlength=n))
    wl2 = np.bincount(s_row[has], weights=building_workload(st, visits).to_numpy()[has], minlength=n)
    # level-1 = sum of its level-2 grids
    level = ix.level.to_numpy()
    parent = ix.parent.to_numpy(dtype=object)
    kids = np.flatnonzero(level == 2)
    ppos = pd.Series(parent[kids], dtype=object).map(pos).to_numpy(dtype=float)
    okp = ~np.isnan(ppos)
    okp[okp] = level[ppos[okp].astype(int)] == 1
    counts = l2.copy()
    counts[level != 2] = 0
    np.add.at(counts, ppos[okp].astype(int), l2[kids[okp]])
    wl = np.where(level == 2, wl2, 0.0)
    np.add.at(wl, ppos[okp].astype(int), wl2[kids[okp]])
    cols = list(COUNT_COLUMNS) + tag_keys
    df = pd.DataFrame(counts, columns=cols)
    lows = np.full(n, -1, dtype=np.int64)
    highs = np.full(n, -1, dtype=np.int64)
    wlows = np.full(n, -1.0)
    whighs = np.full(n, -1.0)
    for lev in (1, 2):
        lo, hi = _band_of(bands, lev)
        lows[level == lev], highs[level == lev] = lo, hi
        wlo, whi = _workload_band_of(bands, lev)
        wlows[level == lev], whighs[level == lev] = wlo, whi
    status = _status(df["households"].to_numpy(), lows, highs)
    wl = np.round(wl, 1)
    head = pd.DataFrame({
        "id": gids.to_numpy(), "level": pd.array(np.where(np.isnan(level), pd.NA, level), dtype="Int64"),
        "parent_id": parent, "community_id": ix.community_of_grid.to_numpy(dtype=object),
        "code": _col(grids, "code"), "name": _col(grids, "name")})
    return pd.concat([head, df, pd.DataFrame({"band_low": lows, "band_high": highs, "band": status,
                                              "workload": wl, "workload_low": wlows, "workload_high": whighs,
                                              "workload_band": _status(wl, wlows, whighs)})], axis=1)


def tag_columns_of(stats: pd.DataFrame) -> list[str]:
    from geo.stats import tag_columns
    return tag_columns(stats)


NON_COUNT = ("id", "level", "parent_id", "community_id", "code", "name", *COUNT_COLUMNS, "band_low", "band_high",
             "band", "workload", "workload_low", "workload_high", "workload_band")


def _col(df, name):
    return df[name].to_numpy(dtype=object) if name in df.columns else np.full(len(df), None, dtype=object)


def community_table(communities: pd.DataFrame, table: pd.DataFrame, index: PlanIndex, *, bands=None
                    ) -> pd.DataFrame:
    """Per-community rollup of grid_table: id, code, name, level1_grids, level2_grids, buildings,
    households, persons, key-group columns, band_low, band_high, band."""
    tag_cols = [c for c in table.columns if c not in NON_COUNT]
    l1 = table[table["level"] == 1]
    sums = l1.groupby("community_id")[list(COUNT_COLUMNS) + tag_cols].sum()
    wsum = l1.groupby("community_id")["workload"].sum() if "workload" in l1.columns else None
    n1 = l1.groupby("community_id").size()
    n2 = table[table["level"] == 2].groupby("community_id").size()
    ids = index.community_ids
    out = pd.DataFrame({"id": ids.to_numpy(), "code": _col(communities, "code"), "name": _col(communities, "name"),
                        "level1_grids": n1.reindex(ids).fillna(0).astype(int).to_numpy(),
                        "level2_grids": n2.reindex(ids).fillna(0).astype(int).to_numpy()})
    out = pd.concat([out, sums.reindex(ids).fillna(0).astype(np.int64).reset_index(drop=True)], axis=1)
    lo, hi = _band_of(bands, 0)
    hh = out["households"].to_numpy()
    out["band_low"], out["band_high"] = lo, hi
    out["band"] = np.where(hh < lo, "low", np.where(hh > hi, "high", "ok"))
    if wsum is not None:
        wl = np.round(wsum.reindex(ids).fillna(0.0).to_numpy(dtype=float), 1)
        wlo, whi = _workload_band_of(bands, 0)
        out["workload"], out["workload_low"], out["workload_high"] = wl, wlo, whi
        out["workload_band"] = np.where(wl < wlo, "low", np.where(wl > whi, "high", "ok"))
    return out


def plan_totals(households: pd.DataFrame, index: PlanIndex) -> dict:
    """Where every household is: in a grid, in a building without a grid, or without a building.
    ``households``: a stats frame (geo/stats.py) or household rows."""
    st = as_stats(households)
    hb = st["building_id"].astype("string")
    known = hb.isin(index.building_ids).to_numpy()
    in_grid = hb.isin(index.building_grid.index).to_numpy()
    hh = st["households"].to_numpy(dtype=np.int64)
    persons = st["persons"].to_numpy(dtype=np.int64)
    return {"buildings": int(len(index.building_ids)), "buildings_in_grids": int(len(index.building_grid)),
            "households": int(hh.sum()), "households_in_grids": int(hh[in_grid].sum()),
            "households_unassigned_building": int(hh[known & ~in_grid].sum()),
            "households_orphan": int(hh[~known].sum()),
            "persons": int(persons.sum()), "persons_in_grids": int(persons[in_grid].sum())}


def band_problems(table: pd.DataFrame, communities_table: pd.DataFrame) -> list[Problem]:
    out = []
    for rows, what in ((communities_table, ("社区", "community")), (table, ("网格", "grid"))):
        bad = rows[rows["band"].isin(["low", "high"])]
        for r in bad.itertuples(index=False):
            lev = f"{what[1]}" if what[1] == "community" else f"level-{r.level} grid"
            zh = "偏少" if r.band == "low" else "偏多"
            out.append(Problem("out_of_band", (str(r.id),),
                               f"{what[0]} {r.id} 有 {r.households} 户, {zh} (应为 {r.band_low}–{r.band_high}) / "
                               f"{lev} {r.id} has {r.households} households, {r.band} "
                               f"(band {r.band_low}–{r.band_high})"))
    return out


def head_problems(grids: pd.DataFrame) -> list[Problem]:
    """Grids without a head (网格长/网格员). Never reveals a head's name."""
    if "head_name" not in grids.columns:
        missing = np.ones(len(grids), dtype=bool)
    else:
        h = grids["head_name"].astype("string").str.strip()
        missing = (h.isna() | (h == "")).to_numpy()
    ids = grids["id"].astype(str).to_numpy()
    levels = pd.to_numeric(grids["level"], errors="coerce").to_numpy()
    return [Problem("missing_head", (ids[i],),
                    f"网格 {ids[i]} 没有{'网格长' if levels[i] == 1 else '网格员'} / grid {ids[i]} has no "
                    f"{'grid head' if levels[i] == 1 else 'grid worker'}") for i in np.flatnonzero(missing)]


def code_problems(grids: pd.DataFrame, *, prefix: str | None = None) -> list[Problem]:
    found = check_codes(grids["id"].astype(str).to_numpy(), grids["level"].to_numpy(),
                        grids["parent_id"].to_numpy(dtype=object), _col(grids, "code"), prefix=prefix)
    return [Problem("bad_code", tuple(ids), detail) for ids, detail in found]


@dataclass(frozen=True)
class Audit:
    problems: tuple          # Problem, ordered by kind (KINDS order) then ids
    grids: pd.DataFrame      # grid_table
    communities: pd.DataFrame  # community_table
    totals: dict             # plan_totals
    timings: dict = field(default_factory=dict, compare=False)  # seconds per phase

    @property
    def ok(self) -> bool:
        return not self.problems

    def counts_by_kind(self) -> dict:
        c = pd.Series([p.kind for p in self.problems], dtype=object).value_counts()
        return {k: int(c[k]) for k in KINDS if k in c.index}

    def problems_frame(self, crs="EPSG:4326") -> gpd.GeoDataFrame:
        return problems_frame(self.problems, crs)

    def to_dict(self, columns=None) -> dict:
        """{"ok", "problems": [{kind, ids, detail}], "grids": [rows]} (JSON-ready). `columns`:
        grid-table columns to include (default: all)."""
        g = self.grids if columns is None else self.grids[list(columns)]
        rows = g.astype(object).where(g.notna(), None).to_dict(orient="records")
        rows = [{k: (v.item() if isinstance(v, np.generic) else v) for k, v in r.items()} for r in rows]
        return {"ok": self.ok, "problems": [p.as_dict() for p in self.problems], "grids": rows}


def audit_plan(grids: gpd.GeoDataFrame, communities: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame,
               assignments: pd.DataFrame, households: pd.DataFrame, *, bands=None, tag_keys=None,
               tolerances: Tolerances | None = None, code_prefix: str | None = None,
               kinds=None) -> Audit:
    """Full audit of one plan. grids/assignments: that plan's rows only. bands: Settings-like
    (`.band(level)`, 0 = community) or {level: Band or (low, high)}; tag_keys: key-group keys
    for the table columns (default: tags present); code_prefix: expected 13-digit
    object+county+street prefix of grid codes (None = not checked); kinds: subset of KINDS to
    report (default all). Timings: "geometry" (validate_plan) and "tables" (counts, bands,
    heads, codes) plus the validate phases."""
    timings: dict = {}
    t0 = time.perf_counter()
    ix = plan_index(grids, communities, buildings, assignments)
    problems = validate_plan(grids, communities, buildings, assignments, households, tolerances=tolerances,
                             index=ix, timings=timings)
    t1 = time.perf_counter()
    table = grid_table(grids, households, ix, bands=bands, tag_keys=tag_keys)
    ctable = community_table(communities, table, ix, bands=bands)
    totals = plan_totals(households, ix)
    problems += band_problems(table, ctable) + head_problems(grids) + code_problems(grids, prefix=code_prefix)
    t2 = time.perf_counter()
    rank = {k: i for i, k in enumerate(KINDS)}
    if kinds is not None:
        problems = [p for p in problems if p.kind in set(kinds)]
    problems = sorted(problems, key=lambda p: (rank.get(p.kind, len(rank)), p.ids))
    timings.update({"geometry": t1 - t0, "tables": t2 - t1, "total": t2 - t0})
    return Audit(tuple(problems), table, ctable, totals, timings)


def audit_bundle(bundle, plan_id: str | None = None, settings=None, *, tag_keys=None,
                 tolerances: Tolerances | None = None, code_prefix: str | None = None) -> Audit:
    """audit_plan on a loaded data.bundle.Bundle (default: its adopted plan); `settings`
    (minsheng.settings.Settings) gives the household bands per level."""
    plan_id = plan_id or bundle.adopted_plan_id()
    return audit_plan(bundle.plan_grids(plan_id), bundle.communities, bundle.buildings,
                      bundle.plan_assignments(plan_id), bundle.building_stats, bands=settings, tag_keys=tag_keys,
                      tolerances=tolerances, code_prefix=code_prefix)
