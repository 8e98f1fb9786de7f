"""A grid plan as an immutable value, and plan edits as pure functions (DESIGN.md: planner).

A `Plan` is the plan's grids (id, level, parent_id, code, name, head_name, head_phone) and
its assignments (building_id -> level-2 grid_id). Geometry is never stored in the value: grid
boundaries are derived from the buildings (`boundaries`, geo/tessellate), so no edit can
open a gap or an overlap. Every edit (`move_buildings`, `split_grid`, `merge_grids`,
`create_grid`, `delete_grid`, `rename_grid`, `set_grid_head`) checks its inputs, raises
`PlanEditError` (a ValueError) with a clear message when they do not hold, and returns a new
Plan; the input is never changed. Structural edits renumber the 20-digit grid codes of the
parents they touch (geo/codes) when the plan carries a `PlanContext` (building positions and
community numbers).

`EditHistory` is an undo/redo value; `touched_grids` / `live_figures` give the live figures a
planner watches; `diff_plans` compares two plans. Pure: frames in, values out, no I/O.
Messages name grid and building ids only, never a head's name or phone.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import pandas as pd

GRID_COLUMNS = ("id", "level", "parent_id", "code", "name", "head_name", "head_phone")
ASSIGNMENT_COLUMNS = ("building_id", "grid_id")
PHONE_RE = re.compile(r"^\+?[0-9][0-9 \-]{5,18}[0-9]$")


class PlanEditError(ValueError):
    """An edit whose inputs do not hold; the plan is unchanged."""


# ---------------------------------------------------------------------------------------------
# values

@dataclass(frozen=True)
class PlanContext:
    """What code renumbering needs besides the plan: metric positions of buildings and the
    3-digit numbers of communities, plus the code prefix parts. Shared by all plans of a
    session (it does not take part in plan equality)."""
    building_xy: pd.DataFrame          # index building id, columns x, y (metric)
    community_numbers: pd.Series       # community id -> 1..999
    object_code: str = "1001"
    county_code: str = "110108"
    street_code: str = "012"
    row_height_m: float = 150.0
    community_streets: pd.Series | None = None  # community id -> 3-digit street code (default street_code)

    @property
    def community_ids(self) -> tuple[str, ...]:
        return tuple(str(c) for c in self.community_numbers.index)


def _norm_grids(grids: pd.DataFrame) -> pd.DataFrame:
    g = pd.DataFrame({c: (grids[c] if c in grids.columns else None) for c in GRID_COLUMNS}).reset_index(drop=True)
    g["id"] = g["id"].astype(str).astype(object)
    g["level"] = pd.to_numeric(g["level"], errors="raise").astype(np.int64)
    for c in ("parent_id", "code", "name", "head_name", "head_phone"):
        s = g[c].astype(object)
        g[c] = s.where(s.notna(), None).map(lambda v: v if v is None else str(v)).astype(object)
    return g


def _norm_assignments(a: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame({"building_id": a["building_id"].astype(str).to_numpy(dtype=object),
                        "grid_id": a["grid_id"].astype(str).to_numpy(dtype=object)})
    return out


@dataclass(frozen=True, eq=False)
class Plan:
    """One grid plan. Treat the frames as read-only (every edit returns a new Plan).

    grids: id, level (1/2), parent_id, code, name, head_name, head_phone.
    assignments: building_id, grid_id (a level-2 grid), one row per building.
    communities: known community ids (parents of level-1 grids); default: those in use.
    context: optional PlanContext for code renumbering (not part of equality)."""
    plan_id: str
    grids: pd.DataFrame
    assignments: pd.DataFrame
    communities: tuple = ()
    context: PlanContext | None = field(default=None, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "plan_id", str(self.plan_id))
        object.__setattr__(self, "grids", _norm_grids(self.grids))
        object.__setattr__(self, "assignments", _norm_assignments(self.assignments))
        comms = tuple(str(c) for c in self.communities)
        if not comms:
            comms = tuple(sorted(set(self.grids.loc[self.grids["level"] == 1, "parent_id"].dropna())))
            if self.context is not None:
                comms = tuple(sorted(set(comms) | set(self.context.community_ids)))
        object.__setattr__(self, "communities", comms)

    def __eq__(self, other) -> bool:
        if not isinstance(other, Plan):
            return NotImplemented
        return (self.plan_id == other.plan_id and set(self.communities) == set(other.communities)
                and _canon(self.grids, "id").equals(_canon(other.grids, "id"))
                and _canon(self.assignments, "building_id").equals(_canon(other.assignments, "building_id")))

    __hash__ = None  # frames are not hashable

    # -- lookups ---------------------------------------------------------------------------
    @property
    def grid_ids(self) -> pd.Index:
        return pd.Index(self.grids["id"], dtype=object)

    def grid(self, grid_id: str) -> dict:
        _require_grid(self, grid_id)
        return self.grids.loc[self.grids["id"] == str(grid_id)].iloc[0].to_dict()

    def level_of(self) -> pd.Series:
        return pd.Series(self.grids["level"].to_numpy(), index=self.grid_ids)

    def parent_of(self) -> pd.Series:
        return pd.Series(self.grids["parent_id"].to_numpy(dtype=object), index=self.grid_ids)

    def building_grid(self) -> pd.Series:
        """building id -> level-2 grid id."""
        return pd.Series(self.assignments["grid_id"].to_numpy(dtype=object),
                         index=pd.Index(self.assignments["building_id"], dtype=object))

    def community_of_grid(self) -> pd.Series:
        """grid id -> community id (level-1: its parent; level-2: its parent's parent)."""
        parent = self.parent_of()
        lev = self.level_of()
        c1 = parent[lev == 1]
        c2 = parent[lev == 2].map(c1)
        return pd.concat([c1, c2]).reindex(self.grid_ids)

    def level1_of_building(self) -> pd.Series:
        return self.building_grid().map(self.parent_of())

    def community_of_building(self) -> pd.Series:
        return self.building_grid().map(self.community_of_grid())

    def buildings_of(self, grid_id: str) -> list[str]:
        """Buildings of a level-2 grid, or of every level-2 grid under a level-1 grid."""
        g = self.grid(grid_id)
        bg = self.building_grid()
        if g["level"] == 2:
            return sorted(bg.index[bg.to_numpy() == str(grid_id)])
        kids = set(self.grids.loc[self.grids["parent_id"] == str(grid_id), "id"])
        return sorted(bg.index[bg.isin(kids).to_numpy()])

    def children_of(self, grid_or_community_id: str) -> list[str]:
        return sorted(self.grids.loc[self.grids["parent_id"] == str(grid_or_community_id), "id"])


def _canon(df: pd.DataFrame, key: str) -> pd.DataFrame:
    out = df.sort_values(key, kind="stable").reset_index(drop=True)
    return out.astype(object).where(out.notna(), None)


def plan_from_frames(plan_id: str, grids: pd.DataFrame, assignments: pd.DataFrame, *, communities=(),
                     context: PlanContext | None = None) -> Plan:
    """A Plan from contract frames (extra columns such as plan_id and geometry are dropped)."""
    return Plan(plan_id, grids, assignments, tuple(communities), context)


def make_context(buildings, communities, *, settings=None) -> PlanContext:
    """PlanContext from the buildings and communities layers (GeoDataFrames, EPSG:4326) and
    Settings-like code parts (grid_object_code, county_code, street_code, and the deployment's
    street_codes per street name and community_codes per community id or name: geo.codes.community_parts)."""
    import shapely

    from geo.codes import community_numbers, community_parts, own_street_codes
    from geo.crs import metric_crs

    crs = metric_crs(buildings) if len(buildings) else "EPSG:32650"
    pts = buildings.geometry.representative_point().to_crs(crs)
    xy = shapely.get_coordinates(pts.values) if len(buildings) else np.zeros((0, 2))
    bxy = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1]}, index=pd.Index(buildings["id"].astype(str), dtype=object))
    cxy = shapely.get_coordinates(communities.geometry.representative_point().to_crs(crs).values) \
        if len(communities) else np.zeros((0, 2))
    nums = community_numbers(communities["code"].to_numpy(dtype=object), cxy)
    s = settings
    street = getattr(s, "street_code", "012")
    def col(c):
        return communities[c].to_numpy(dtype=object) if c in communities.columns else [None] * len(communities)
    streets, nums = community_parts(communities["id"].to_numpy(dtype=object), col("name"), col("street"), nums,
                                    street_codes=getattr(s, "street_codes", ()),
                                    community_codes=getattr(s, "community_codes", ()), default_street=street,
                                    own_streets=own_street_codes(col("code")))
    cid = pd.Index(communities["id"].astype(str), dtype=object)
    return PlanContext(bxy, pd.Series(nums, index=cid),
                       object_code=getattr(s, "grid_object_code", "1001"),
                       county_code=getattr(s, "county_code", "110108"),
                       street_code=street, community_streets=pd.Series(streets, index=cid, dtype=object))


def plan_from_bundle(bundle, plan_id: str | None = None, *, settings=None, context: PlanContext | None = None) -> Plan:
    """The Plan `plan_id` (default: the adopted plan) of a loaded data.bundle.Bundle, with a
    PlanContext for code renumbering (built from the bundle unless given)."""
    plan_id = plan_id or bundle.adopted_plan_id()
    known = set(bundle.plans["id"].astype(str))
    if plan_id not in known:
        raise PlanEditError(f"unknown plan {plan_id!r} (plans: {', '.join(sorted(known)) or 'none'})")
    ctx = context or make_context(bundle.buildings, bundle.communities, settings=settings)
    return Plan(plan_id, bundle.plan_grids(plan_id), bundle.plan_assignments(plan_id),
                tuple(bundle.communities["id"].astype(str)), ctx)


# ---------------------------------------------------------------------------------------------
# checks shared by the edits

def _require_grid(plan: Plan, grid_id, level: int | None = None, what: str = "grid") -> None:
    hit = plan.grids["id"] == str(grid_id)
    if not hit.any():
        raise PlanEditError(f"网格 {grid_id} 不存在 / unknown {what} {grid_id!r} in plan {plan.plan_id}")
    if level is not None:
        lev = int(plan.grids.loc[hit, "level"].iloc[0])
        if lev != level:
            raise PlanEditError(f"网格 {grid_id} 是{lev}级网格 / {what} {grid_id!r} is a level-{lev} grid; "
                                f"a level-{level} grid is needed here"
                                + (" (buildings belong to level-2 grids)" if level == 2 else ""))


def _ids(values, what: str) -> list[str]:
    if isinstance(values, (str, bytes)):
        values = [values]
    out = [str(v) for v in values]
    if not out:
        raise PlanEditError(f"没有选择{what} / no {what} given")
    return list(dict.fromkeys(out))


def _require_buildings(plan: Plan, building_ids) -> list[str]:
    ids = _ids(building_ids, "楼栋 buildings")
    known = pd.Index(plan.assignments["building_id"])
    unknown = [b for b in ids if b not in known]
    if unknown:
        shown = ", ".join(unknown[:10]) + (" ..." if len(unknown) > 10 else "")
        raise PlanEditError(f"{len(unknown)} 个楼栋不在方案中 / {len(unknown)} unknown building(s) in plan "
                            f"{plan.plan_id}: {shown}")
    return ids


def _check_name(name) -> str:
    if name is None or not str(name).strip():
        raise PlanEditError("网格名称不能为空 / a grid name must not be empty")
    name = str(name).strip()
    if len(name) > 100:
        raise PlanEditError("网格名称过长 / a grid name must be at most 100 characters")
    return name


def next_grid_id(plan: Plan, parent_id: str) -> str:
    """The id a new grid under `parent_id` gets: '<parent>-NN' with the smallest NN not in use."""
    used = set(plan.grids["id"])
    n = len(plan.children_of(parent_id)) + 1
    while f"{parent_id}-{n:02d}" in used:
        n += 1
    return f"{parent_id}-{n:02d}"


def _with(plan: Plan, *, grids=None, assignments=None, renumber: tuple = ()) -> Plan:
    new = replace(plan, grids=plan.grids if grids is None else grids,
                  assignments=plan.assignments if assignments is None else assignments)
    if renumber and plan.context is not None:
        new = renumber_codes(new, parents=renumber)
    return new


# ---------------------------------------------------------------------------------------------
# edits

EMPTY_POLICIES = ("refuse", "keep", "delete")


def move_buildings(plan: Plan, building_ids, to_grid_id: str, *, empty: str = "refuse",
                   allow_cross_community: bool = False) -> Plan:
    """Move buildings to the level-2 grid `to_grid_id`.

    empty: what to do when the move leaves a level-2 grid without buildings — "refuse"
    (PlanEditError, the default; merge the grids instead), "keep" (an empty grid stays, the
    audit flags it), "delete" (the empty grid is removed and its siblings renumbered).
    Moving a building into another community is refused unless allow_cross_community
    (community boundaries are fixed; the building would lie outside its grid)."""
    if empty not in EMPTY_POLICIES:
        raise PlanEditError(f"empty must be one of {EMPTY_POLICIES}, got {empty!r}")
    ids = _require_buildings(plan, building_ids)
    _require_grid(plan, to_grid_id, 2, "target grid")
    to = str(to_grid_id)
    bg = plan.building_grid()
    moving = pd.Index(ids)
    src = bg.reindex(moving)
    if (src == to).all():
        return plan
    if not allow_cross_community:
        cog = plan.community_of_grid()
        target_c = cog.get(to)
        other = src[src.map(cog).to_numpy() != target_c]
        if len(other):
            raise PlanEditError(f"{len(other)} 个楼栋属于其他社区 / {len(other)} building(s) ({', '.join(other.index[:5])}) "
                                f"belong to another community than target grid {to} ({target_c})")
    a = plan.assignments.copy()
    a.loc[a["building_id"].isin(moving).to_numpy(), "grid_id"] = to
    counts = a["grid_id"].value_counts()
    emptied = sorted(set(src.unique()) - set(counts.index) - {to})
    grids = plan.grids
    renumber: tuple = ()
    if emptied:
        if empty == "refuse":
            raise PlanEditError(f"移动后网格 {', '.join(emptied)} 将没有楼栋 / moving these buildings would leave grid(s) "
                                f"{', '.join(emptied)} without buildings; merge the grids instead, or move with "
                                f"empty='keep' or empty='delete'")
        if empty == "delete":
            grids = grids[~grids["id"].isin(emptied)].reset_index(drop=True)
            parents = set(plan.parent_of().reindex(emptied).dropna())
            orphaned = {p for p in parents if not (grids["parent_id"] == p).any()}  # level-1 left empty
            comms = set(plan.parent_of().reindex(sorted(orphaned)).dropna())
            grids = grids[~grids["id"].isin(orphaned)].reset_index(drop=True)
            renumber = tuple(sorted((parents - orphaned) | comms))
    return _with(plan, grids=grids, assignments=a, renumber=renumber)


def split_grid(plan: Plan, grid_id: str, building_ids_for_new_grid, new_name: str | None = None, *,
               new_grid_id: str | None = None) -> Plan:
    """Split a level-2 grid: the given buildings (some, not all, of its buildings) form a new
    level-2 grid under the same level-1 grid (id `new_grid_id` or next_grid_id(parent); name
    `new_name` or '<parent name>N号微网格'; no head yet)."""
    _require_grid(plan, grid_id, 2, "grid to split")
    gid = str(grid_id)
    ids = _require_buildings(plan, building_ids_for_new_grid)
    bg = plan.building_grid()
    elsewhere = [b for b in ids if bg[b] != gid]
    if elsewhere:
        raise PlanEditError(f"{len(elsewhere)} 个楼栋不属于网格 {gid} / building(s) {', '.join(elsewhere[:10])} are not in "
                            f"grid {gid}")
    n_in = int((bg == gid).sum())
    if len(ids) >= n_in:
        raise PlanEditError(f"拆分需要留下至少一栋楼 / a split must leave at least one of the {n_in} buildings in "
                            f"grid {gid}")
    g = plan.grid(gid)
    parent = g["parent_id"]
    new_id = str(new_grid_id) if new_grid_id is not None else next_grid_id(plan, parent)
    if (plan.grids["id"] == new_id).any():
        raise PlanEditError(f"网格编号 {new_id} 已存在 / grid id {new_id!r} already exists")
    if new_name is None:
        pname = plan.grid(parent)["name"] or parent
        new_name = f"{pname}{new_id.rsplit('-', 1)[-1].lstrip('0') or '0'}号微网格"
    row = pd.DataFrame([{"id": new_id, "level": 2, "parent_id": parent, "code": None,
                         "name": _check_name(new_name), "head_name": None, "head_phone": None}])
    grids = pd.concat([plan.grids, row], ignore_index=True)
    a = plan.assignments.copy()
    a.loc[a["building_id"].isin(ids).to_numpy(), "grid_id"] = new_id
    return _with(plan, grids=grids, assignments=a, renumber=(parent,))


def merge_grids(plan: Plan, grid_ids, into: str | None = None) -> Plan:
    """Merge grids of one level and one parent into `into` (default: the first given).
    Level 2: their buildings move to `into`; level 1: their level-2 grids move under `into`.
    The others are removed; `into` keeps its name, code sequence and head."""
    ids = _ids(grid_ids, "网格 grids")
    into = str(into) if into is not None else ids[0]
    if into not in ids:
        ids = [into] + ids
    if len(ids) < 2:
        raise PlanEditError("合并至少需要两个网格 / merging needs at least two grids")
    for g in ids:
        _require_grid(plan, g)
    sel = plan.grids.set_index("id").loc[ids]
    levels = sorted(set(sel["level"].astype(int)))
    if len(levels) > 1:
        raise PlanEditError(f"只能合并同级网格 / only grids of one level can be merged: {', '.join(ids)} are levels "
                            f"{', '.join(map(str, levels))}")
    parents = sorted(set(sel["parent_id"].astype(str)))
    if len(parents) > 1:
        raise PlanEditError(f"只能合并同一上级下的网格 / only grids under one parent can be merged: {', '.join(ids)} have "
                            f"parents {', '.join(parents)}")
    others = [g for g in ids if g != into]
    if levels[0] == 2:
        a = plan.assignments.copy()
        a.loc[a["grid_id"].isin(others).to_numpy(), "grid_id"] = into
        grids = plan.grids[~plan.grids["id"].isin(others)].reset_index(drop=True)
        return _with(plan, grids=grids, assignments=a, renumber=(parents[0],))
    grids = plan.grids.copy()
    grids.loc[grids["parent_id"].isin(others).to_numpy() & (grids["level"] == 2).to_numpy(), "parent_id"] = into
    grids = grids[~grids["id"].isin(others)].reset_index(drop=True)
    return _with(plan, grids=grids, renumber=(parents[0], into))


def create_grid(plan: Plan, parent_id: str, level: int, name: str, *, grid_id: str | None = None) -> Plan:
    """Add an empty grid: level 1 under a community, level 2 under a level-1 grid. Its id is
    `grid_id` or next_grid_id(plan, parent_id); fill it with move_buildings."""
    level = int(level)
    if level not in (1, 2):
        raise PlanEditError(f"层级应为1或2 / level must be 1 or 2, got {level}")
    parent_id = str(parent_id)
    if level == 1:
        if parent_id not in plan.communities:
            raise PlanEditError(f"社区 {parent_id} 不存在 / unknown community {parent_id!r} (communities: "
                                f"{', '.join(plan.communities)})")
    else:
        if not (plan.grids["id"] == parent_id).any() or parent_id in plan.communities:
            raise PlanEditError(f"一级网格 {parent_id} 不存在 / unknown level-1 grid {parent_id!r}")
        _require_grid(plan, parent_id, 1, "parent grid")
    new_id = str(grid_id) if grid_id is not None else next_grid_id(plan, parent_id)
    if (plan.grids["id"] == new_id).any() or new_id in plan.communities:
        raise PlanEditError(f"网格编号 {new_id} 已存在 / grid id {new_id!r} already exists")
    row = pd.DataFrame([{"id": new_id, "level": level, "parent_id": parent_id, "code": None,
                         "name": _check_name(name), "head_name": None, "head_phone": None}])
    return _with(plan, grids=pd.concat([plan.grids, row], ignore_index=True), renumber=(parent_id,))


def delete_grid(plan: Plan, grid_id: str) -> Plan:
    """Remove an empty grid (a level-2 grid without buildings, a level-1 grid without level-2 grids)."""
    _require_grid(plan, grid_id)
    gid = str(grid_id)
    g = plan.grid(gid)
    if g["level"] == 2 and (plan.assignments["grid_id"] == gid).any():
        raise PlanEditError(f"网格 {gid} 还有楼栋 / grid {gid} still has buildings; move them or merge the grid")
    if g["level"] == 1 and plan.children_of(gid):
        raise PlanEditError(f"网格 {gid} 还有二级网格 / grid {gid} still has level-2 grids; merge it instead")
    grids = plan.grids[plan.grids["id"] != gid].reset_index(drop=True)
    return _with(plan, grids=grids, renumber=(g["parent_id"],))


def rename_grid(plan: Plan, grid_id: str, name: str) -> Plan:
    _require_grid(plan, grid_id)
    grids = plan.grids.copy()
    grids.loc[grids["id"] == str(grid_id), "name"] = _check_name(name)
    return _with(plan, grids=grids)


def set_grid_head(plan: Plan, grid_id: str, name: str | None, phone: str | None) -> Plan:
    """Set (or, with None/"", clear) a grid's head (网格长 / 网格员). The values are personal
    data: error messages never repeat them."""
    _require_grid(plan, grid_id)
    name = None if name is None or not str(name).strip() else str(name).strip()
    phone = None if phone is None or not str(phone).strip() else str(phone).strip()
    if name is not None and len(name) > 50:
        raise PlanEditError("姓名过长 / the head's name must be at most 50 characters")
    if phone is not None and not PHONE_RE.match(phone):
        raise PlanEditError("电话号码格式不正确 / the phone number is not valid (digits, spaces, '-' and a leading "
                            "'+' only, 7-20 characters)")
    if phone is not None and name is None:
        raise PlanEditError("有电话时需要姓名 / a phone number needs a name")
    grids = plan.grids.copy()
    hit = (grids["id"] == str(grid_id)).to_numpy()
    grids.loc[hit, "head_name"] = name
    grids.loc[hit, "head_phone"] = phone
    return _with(plan, grids=grids)


def renumber_codes(plan: Plan, parents=None) -> Plan:
    """Regenerate 20-digit codes (geo/codes.generate_codes, reading order of each grid's
    buildings) for the grids under `parents` (community or level-1 grid ids; a community's
    level-1 grids carry their level-2 grids along) or, with parents=None, for every grid.
    Needs plan.context; without it the plan is returned unchanged."""
    ctx = plan.context
    if ctx is None or len(plan.grids) == 0:
        return plan
    from geo.codes import generate_codes
    g = plan.grids
    lev = g["level"].to_numpy()
    bg = plan.building_grid()
    xy = ctx.building_xy.reindex(bg.index)
    l2_xy = xy.groupby(bg.to_numpy()).mean()
    l1_xy = xy.groupby(bg.map(plan.parent_of()).to_numpy()).mean()
    pos = pd.concat([l2_xy, l1_xy[~l1_xy.index.isin(l2_xy.index)]]).reindex(plan.grid_ids)
    codes = generate_codes(g["id"].to_numpy(), lev, g["parent_id"].to_numpy(dtype=object), pos.to_numpy(),
                           ctx.community_numbers.index.to_numpy(), ctx.community_numbers.to_numpy(),
                           object_code=ctx.object_code, county=ctx.county_code, street=ctx.street_code,
                           row_height_m=ctx.row_height_m,
                           streets=None if ctx.community_streets is None else ctx.community_streets.reindex(
                               ctx.community_numbers.index).fillna(ctx.street_code).to_numpy())
    if parents is None:
        affected = np.ones(len(g), dtype=bool)
    else:
        ps = {str(p) for p in parents}
        # a community in scope renumbers its level-1 grids (and so their level-2 grids); a
        # level-1 grid in scope renumbers its level-2 grids only (its own sequence is shared
        # with its siblings)
        l1_hit = set(g.loc[(lev == 1) & g["parent_id"].isin(ps).to_numpy(), "id"])
        affected = g["id"].isin(l1_hit).to_numpy() | g["parent_id"].isin(ps | l1_hit).to_numpy()
    new = g.copy()
    vals = codes.reindex(g["id"]).to_numpy(dtype=object)
    new.loc[affected, "code"] = vals[affected]
    # a level-2 code extends its parent's code as it stands (the parent may be out of scope)
    l2 = affected & (lev == 2)
    pcode = new["parent_id"].map(pd.Series(new["code"].to_numpy(dtype=object), index=new["id"]))
    ok = l2 & pcode.notna().to_numpy() & new["code"].notna().to_numpy()
    new.loc[ok, "code"] = pcode[ok].str[:18] + new.loc[ok, "code"].str[18:]
    return replace(plan, grids=new)


# ---------------------------------------------------------------------------------------------
# structure check (ids only) and boundaries

def structure_problems(plan: Plan, building_ids=None) -> list[str]:
    """Plan invariants that need no geometry, as messages (empty = fine): grid ids unique,
    levels 1/2, level-1 parents are communities, level-2 parents are level-1 grids, every
    building (of `building_ids`, default: those assigned) assigned exactly once, to a
    level-2 grid."""
    out = []
    g = plan.grids
    if g["id"].duplicated().any():
        out.append(f"duplicate grid ids: {sorted(g.loc[g['id'].duplicated(), 'id'])[:10]}")
    if not g["level"].isin([1, 2]).all():
        out.append("grid level must be 1 or 2")
    comms = set(plan.communities)
    bad1 = g[(g["level"] == 1) & ~g["parent_id"].isin(comms)]
    if len(bad1):
        out.append(f"level-1 grids with an unknown community: {sorted(bad1['id'])[:10]}")
    l1 = set(g.loc[g["level"] == 1, "id"])
    bad2 = g[(g["level"] == 2) & ~g["parent_id"].isin(l1)]
    if len(bad2):
        out.append(f"level-2 grids whose parent is not a level-1 grid: {sorted(bad2['id'])[:10]}")
    a = plan.assignments
    if a["building_id"].duplicated().any():
        out.append(f"buildings assigned twice: {sorted(a.loc[a['building_id'].duplicated(), 'building_id'])[:10]}")
    l2 = set(g.loc[g["level"] == 2, "id"])
    bad_a = a[~a["grid_id"].isin(l2)]
    if len(bad_a):
        out.append(f"buildings assigned to a missing or level-1 grid: {sorted(bad_a['building_id'])[:10]}")
    if building_ids is not None:
        want = pd.Index([str(b) for b in building_ids])
        missing = want.difference(pd.Index(a["building_id"]))
        if len(missing):
            out.append(f"{len(missing)} buildings in no grid: {list(missing[:10])}")
        extra = pd.Index(a["building_id"]).difference(want)
        if len(extra):
            out.append(f"{len(extra)} assigned buildings are unknown: {list(extra[:10])}")
    return out


def boundaries(plan: Plan, buildings, communities):
    """Grid boundaries of the plan derived from its buildings (geo/tessellate): the plan's
    grids as a GeoDataFrame with MultiPolygon geometry in the buildings' CRS (empty for a grid
    without buildings). No gaps and no overlaps by construction."""
    from geo.tessellate import derive_grid_boundaries
    return derive_grid_boundaries(plan.grids, plan.assignments, buildings, communities)


@dataclass(frozen=True)
class PlanChanges:
    """The rows a save of ``after`` over ``before`` must write (see boundary_changes)."""
    grids: object                 # GeoDataFrame: grids to (re)write, with derived boundaries
    deleted_grids: tuple          # grid ids that no longer exist
    assignments: pd.DataFrame     # building_id, grid_id rows that are new or changed
    unassigned: tuple             # building ids no longer assigned


def boundary_changes(before: Plan, after: Plan, buildings, communities) -> PlanChanges:
    """What changed from ``before`` to ``after``, with boundaries re-derived only where they can
    differ: a building's cell depends only on the buildings of its community, so only the
    communities that gained, lost or re-grouped a building (or hold a grid whose row changed)
    are tessellated again. Equal to boundaries(after) on every grid it returns."""
    from geo.tessellate import derive_grid_boundaries
    bb, ba = before.building_grid(), after.building_grid()
    bb = bb[~bb.index.duplicated()]
    ba = ba[~ba.index.duplicated()]
    allb = bb.index.union(ba.index)
    old, new = bb.reindex(allb), ba.reindex(allb)
    moved = allb[(old.fillna("\0") != new.fillna("\0")).to_numpy()]
    g_b = _canon(before.grids, "id").set_index("id")
    g_a = _canon(after.grids, "id").set_index("id")
    common = g_a.index.intersection(g_b.index)
    def text(df):  # missing values compare equal whatever their spelling (None / NaN / <NA>)
        return df.astype(object).where(df.notna(), "\0").astype(str)
    row_changed = common[(text(g_a.loc[common]) != text(g_b.loc[common])).any(axis=1).to_numpy()]
    added = g_a.index.difference(g_b.index)
    deleted = g_b.index.difference(g_a.index)
    touched = set(old[moved].dropna()) | set(new[moved].dropna()) | set(row_changed) | set(added) | set(deleted)
    comm_b, comm_a = before.community_of_grid(), after.community_of_grid()
    comms = {c for g in touched for c in (comm_b.get(g), comm_a.get(g)) if isinstance(c, str)}
    keep = after.grids[after.grids["id"].map(comm_a).isin(comms).to_numpy()
                       | after.grids["id"].isin(touched).to_numpy()]
    a = after.assignments
    a = a[a["grid_id"].isin(set(keep["id"])).to_numpy()]
    c = communities[communities["id"].astype(str).isin(comms).to_numpy()]
    b = buildings[buildings["id"].astype(str).isin(set(a["building_id"])).to_numpy()]
    grids = derive_grid_boundaries(keep, a, b, c) if len(keep) else \
        derive_grid_boundaries(after.grids.iloc[0:0], a.iloc[0:0], buildings.iloc[0:0], communities.iloc[0:0])
    changed = new[moved].dropna()
    return PlanChanges(grids, tuple(deleted), pd.DataFrame({"building_id": changed.index.astype(str),
                                                             "grid_id": changed.to_numpy(dtype=object)}),
                       tuple(str(x) for x in moved[new[moved].isna().to_numpy()]))


# ---------------------------------------------------------------------------------------------
# edits as values, and the undo/redo history

@dataclass(frozen=True)
class Edit:
    """One edit as a value: op is a key of EDIT_OPS, params its keyword arguments."""
    op: str
    params: tuple = ()  # ((name, value), ...), values hashable (tuples for lists)

    @staticmethod
    def of(op: str, **params) -> "Edit":
        if op not in EDIT_OPS:
            raise PlanEditError(f"unknown edit {op!r} (known: {', '.join(EDIT_OPS)})")
        return Edit(op, tuple((k, tuple(v) if isinstance(v, (list, set, pd.Index, np.ndarray)) else v)
                              for k, v in params.items()))

    def __call__(self, plan: Plan) -> Plan:
        return EDIT_OPS[self.op](plan, **dict(self.params))

    def describe(self) -> str:
        """A short audit-safe description (no head names or phones)."""
        p = dict(self.params)
        if self.op == "set_grid_head":
            return f"set_grid_head grid={p.get('grid_id')}"
        parts = []
        for k, v in p.items():
            if isinstance(v, tuple) and len(v) > 5:
                v = f"{len(v)} items"
            parts.append(f"{k}={v}")
        return f"{self.op} " + " ".join(parts)


EDIT_OPS: dict[str, Callable[..., Plan]] = {
    "move_buildings": move_buildings, "split_grid": split_grid, "merge_grids": merge_grids,
    "create_grid": create_grid, "delete_grid": delete_grid, "rename_grid": rename_grid,
    "set_grid_head": set_grid_head, "renumber_codes": renumber_codes,
}


@dataclass(frozen=True)
class EditHistory:
    """Undo/redo as a value. `current` is the plan now; `past` holds (plan before, edit) pairs,
    newest last; `future` holds (plan after, edit) pairs undone, next redo last."""
    current: Plan
    past: tuple = ()
    future: tuple = ()
    limit: int = 200

    @property
    def can_undo(self) -> bool:
        return bool(self.past)

    @property
    def can_redo(self) -> bool:
        return bool(self.future)

    @property
    def edits(self) -> tuple:
        """The edits leading from the oldest kept plan to `current`, oldest first."""
        return tuple(e for _, e in self.past)

    @property
    def original(self) -> Plan:
        return self.past[0][0] if self.past else self.current


def start_history(plan: Plan, limit: int = 200) -> EditHistory:
    return EditHistory(plan, (), (), limit)


def apply(history: EditHistory, edit) -> EditHistory:
    """Apply an Edit (or any Plan -> Plan callable) to history.current. Raises the edit's
    PlanEditError with the history unchanged. A no-op edit is not recorded. Clears redo."""
    after = edit(history.current)
    if after is history.current or after == history.current:
        return history
    past = (history.past + ((history.current, edit),))[-history.limit:]
    return replace(history, current=after, past=past, future=())


def undo(history: EditHistory) -> EditHistory:
    if not history.past:
        return history
    before, edit = history.past[-1]
    return replace(history, current=before, past=history.past[:-1],
                   future=history.future + ((history.current, edit),))


def redo(history: EditHistory) -> EditHistory:
    if not history.future:
        return history
    after, edit = history.future[-1]
    return replace(history, current=after, past=history.past + ((history.current, edit),),
                   future=history.future[:-1])


# ---------------------------------------------------------------------------------------------
# live figures and diffs

def touched_grids(before: Plan, after: Plan) -> tuple[str, ...]:
    """Grid ids that differ between the two plans: added, removed, a changed building set,
    parent, code, name or head — plus the level-1 parents of touched level-2 grids."""
    ga = before.grids.set_index("id")
    gb = after.grids.set_index("id")
    ids_a, ids_b = set(ga.index), set(gb.index)
    out = (ids_a ^ ids_b)
    common = sorted(ids_a & ids_b)
    cols = ["level", "parent_id", "code", "name", "head_name", "head_phone"]
    x = ga.loc[common, cols].astype(object).where(ga.loc[common, cols].notna(), None)
    y = gb.loc[common, cols].astype(object).where(gb.loc[common, cols].notna(), None)
    out |= set(np.asarray(common, dtype=object)[(x.to_numpy() != y.to_numpy()).any(axis=1)]) if common else set()
    m = before.assignments.merge(after.assignments, on="building_id", how="outer", suffixes=("_a", "_b"))
    moved = m[m["grid_id_a"].astype(object).ne(m["grid_id_b"].astype(object))]
    out |= set(moved["grid_id_a"].dropna()) | set(moved["grid_id_b"].dropna())
    pa, pb = before.parent_of(), after.parent_of()
    parents = set()
    for g in out:
        for p in (pa, pb):
            if g in p.index and pd.notna(p[g]):
                parents.add(p[g])
    grid_ids = ids_a | ids_b
    out |= {p for p in parents if p in grid_ids}
    return tuple(sorted(out))


def grid_figures(plan: Plan, households: pd.DataFrame, *, bands=None, tag_keys=None, grid_ids=None) -> pd.DataFrame:
    """Per-grid figures of the plan (geo/coverage.grid_table: buildings, households, persons,
    key-group counts, band_low, band_high, band), optionally restricted to `grid_ids`."""
    from geo.coverage import grid_table
    from geo.validate import plan_index
    comm = pd.DataFrame({"id": list(plan.communities)})
    bld = pd.DataFrame({"id": plan.assignments["building_id"].to_numpy()})
    ix = plan_index(plan.grids, comm, bld, plan.assignments)
    t = grid_table(plan.grids, households, ix, bands=bands, tag_keys=tag_keys)
    if grid_ids is not None:
        t = t[t["id"].isin(list(grid_ids))].reset_index(drop=True)
    return t


def live_figures(before: Plan, after: Plan, households: pd.DataFrame, *, bands=None, tag_keys=None) -> pd.DataFrame:
    """Figures of the grids an edit touched (see touched_grids), from `after`, with
    households_before (0 for a new grid), delta and band_before. Removed grids appear with
    zero counts after and band "removed"."""
    touched = touched_grids(before, after)
    a = grid_figures(after, households, bands=bands, tag_keys=tag_keys, grid_ids=touched)
    b = grid_figures(before, households, bands=bands, tag_keys=tag_keys, grid_ids=touched)
    removed = b[~b["id"].isin(a["id"])]
    if len(removed):
        gone = removed.copy()
        num = [c for c in gone.columns if c not in ("id", "level", "parent_id", "community_id", "code", "name",
                                                     "band_low", "band_high", "band", "workload_low",
                                                     "workload_high", "workload_band")]
        gone[num] = 0
        gone["band"] = "removed"
        if "workload_band" in gone.columns:
            gone["workload_band"] = "removed"
        a = pd.concat([a, gone], ignore_index=True)
    hb = b.set_index("id")["households"]
    a["households_before"] = a["id"].map(hb).fillna(0).astype(np.int64)
    a["delta"] = a["households"] - a["households_before"]
    a["band_before"] = a["id"].map(b.set_index("id")["band"]).fillna("new")
    return a.sort_values(["level", "id"], kind="stable").reset_index(drop=True)


@dataclass(frozen=True)
class PlanDiff:
    plan_a: str
    plan_b: str
    moved: pd.DataFrame          # building_id, from_grid, to_grid (None = not assigned)
    added: tuple                 # grid ids in b only
    removed: tuple               # grid ids in a only
    renamed: pd.DataFrame        # id, name_a, name_b
    head_changed: tuple          # grid ids whose head changed (names/phones never shown)
    reparented: pd.DataFrame     # id, parent_a, parent_b
    recoded: pd.DataFrame        # id, code_a, code_b
    coverage: pd.DataFrame       # id, level, households_a, households_b, band_a, band_b
    balance: dict                # {"a": {...}, "b": {...}} share in band, CV per level
    problems: dict = field(default_factory=dict)  # {"a": counts_by_kind, "b": ...} when geometry given

    @property
    def is_empty(self) -> bool:
        return not (len(self.moved) or self.added or self.removed or len(self.renamed) or self.head_changed
                    or len(self.reparented) or len(self.recoded))

    def to_dict(self) -> dict:
        def rows(df):
            return json.loads(df.to_json(orient="records", force_ascii=False))
        return {"plan_a": self.plan_a, "plan_b": self.plan_b, "moved": rows(self.moved),
                "added": list(self.added), "removed": list(self.removed), "renamed": rows(self.renamed),
                "head_changed": list(self.head_changed), "reparented": rows(self.reparented),
                "recoded": rows(self.recoded), "coverage": rows(self.coverage), "balance": self.balance,
                "problems": self.problems}


def balance_summary(table: pd.DataFrame) -> dict:
    """Per level: grids, share within band, coefficient of variation of households, min, max."""
    out = {}
    for lev in (1, 2):
        t = table[table["level"] == lev]
        hh = t["households"].to_numpy(dtype=float)
        out[f"level{lev}"] = {
            "grids": int(len(t)), "in_band": int((t["band"] == "ok").sum()),
            "share_in_band": round(float((t["band"] == "ok").mean()), 4) if len(t) else None,
            "cv": round(float(hh.std() / hh.mean()), 4) if len(t) and hh.mean() > 0 else None,
            "min": int(hh.min()) if len(t) else None, "max": int(hh.max()) if len(t) else None}
    return out


def workload_summary(table: pd.DataFrame) -> dict:
    """balance_summary on the workload columns (visits per month) of a grid table."""
    t = table.assign(households=table["workload"], band=table["workload_band"])
    out = {}
    for lev in (1, 2):
        x = t[t["level"] == lev]
        w = x["households"].to_numpy(dtype=float)
        out[f"level{lev}"] = {
            "grids": int(len(x)), "in_band": int((x["band"] == "ok").sum()),
            "share_in_band": round(float((x["band"] == "ok").mean()), 4) if len(x) else None,
            "cv": round(float(w.std() / w.mean()), 4) if len(x) and w.mean() > 0 else None,
            "min": round(float(w.min()), 1) if len(x) else None, "max": round(float(w.max()), 1) if len(x) else None}
    return out


def diff_plans(plan_a: Plan, plan_b: Plan, households: pd.DataFrame | None = None, *, buildings=None,
               communities=None, bands=None, audit: bool = False) -> PlanDiff:
    """What changed from plan_a to plan_b: buildings moved, grids added / removed / renamed /
    re-parented / re-coded / with a new head, and per-grid households and band status before
    and after. With audit=True (needs buildings and communities) both plans are audited
    (derived boundaries, geo/coverage.audit_plan) and problem counts by kind reported."""
    m = plan_a.assignments.merge(plan_b.assignments, on="building_id", how="outer", suffixes=("_a", "_b"))
    ga_, gb_ = m["grid_id_a"].astype(object), m["grid_id_b"].astype(object)
    ch = ~(ga_.isna() & gb_.isna()) & (ga_.ne(gb_) | ga_.isna() | gb_.isna())
    moved = pd.DataFrame({"building_id": m.loc[ch, "building_id"].to_numpy(dtype=object),
                          "from_grid": ga_[ch].where(ga_[ch].notna(), None).to_numpy(dtype=object),
                          "to_grid": gb_[ch].where(gb_[ch].notna(), None).to_numpy(dtype=object)}
                         ).sort_values("building_id").reset_index(drop=True)
    A, B = plan_a.grids.set_index("id"), plan_b.grids.set_index("id")
    added = tuple(sorted(set(B.index) - set(A.index)))
    removed = tuple(sorted(set(A.index) - set(B.index)))
    common = sorted(set(A.index) & set(B.index))

    def changed(col, name_a, name_b):
        x, y = A.loc[common, col].astype(object), B.loc[common, col].astype(object)
        x, y = x.where(x.notna(), None), y.where(y.notna(), None)
        mask = (x.to_numpy() != y.to_numpy())
        return pd.DataFrame({"id": np.asarray(common, dtype=object)[mask], name_a: x.to_numpy()[mask],
                             name_b: y.to_numpy()[mask]})
    renamed = changed("name", "name_a", "name_b")
    reparented = changed("parent_id", "parent_a", "parent_b")
    recoded = changed("code", "code_a", "code_b")
    hc = pd.concat([changed("head_name", "x", "y")["id"], changed("head_phone", "x", "y")["id"]])
    head_changed = tuple(sorted(set(hc)))
    coverage = pd.DataFrame(columns=["id", "level", "households_a", "households_b", "band_a", "band_b"])
    balance: dict = {}
    if households is not None:
        ta = grid_figures(plan_a, households, bands=bands, tag_keys=[])
        tb = grid_figures(plan_b, households, bands=bands, tag_keys=[])
        cov = ta[["id", "level", "households", "band"]].merge(tb[["id", "level", "households", "band"]], on="id",
                                                              how="outer", suffixes=("_a", "_b"))
        cov["level"] = cov["level_a"].fillna(cov["level_b"]).astype("Int64")
        coverage = cov[["id", "level", "households_a", "households_b", "band_a", "band_b"]].sort_values(
            ["level", "id"]).reset_index(drop=True)
        coverage["households_a"] = coverage["households_a"].astype("Int64")
        coverage["households_b"] = coverage["households_b"].astype("Int64")
        balance = {"a": balance_summary(ta), "b": balance_summary(tb)}
    problems: dict = {}
    if audit:
        if buildings is None or communities is None or households is None:
            raise PlanEditError("audit=True needs households, buildings and communities")
        from geo.coverage import audit_plan
        for key, p in (("a", plan_a), ("b", plan_b)):
            res = audit_plan(boundaries(p, buildings, communities), communities, buildings,
                             p.assignments, households, bands=bands, tag_keys=[])
            problems[key] = res.counts_by_kind()
    return PlanDiff(plan_a.plan_id, plan_b.plan_id, moved, added, removed, renamed, head_changed, reparented,
                    recoded, coverage, balance, problems)


# ---------------------------------------------------------------------------------------------
# person-level account of a plan change

@dataclass(frozen=True)
class PeopleDiff:
    """Who changes grid from plan_a to plan_b, counted from per-building stats (geo/stats).

    flows: one row per (level, from_grid, to_grid) with buildings (tuple of ids), households,
    persons and one column per key group — level 2 for the level-2 grids, level 1 for the
    moves that also change level-1 grid. per_grid: one row per level-2 and level-1 grid that
    gains or loses: id, level, name, head_name (of plan_b, or plan_a for a removed grid: the
    grid worker / head; mask it for roles without personal access), then for households,
    persons and each key group `<col>_gained`, `<col>_lost`, `<col>_net`, plus
    buildings_gained / buildings_lost (tuples of ids)."""
    plan_a: str
    plan_b: str
    flows: pd.DataFrame
    per_grid: pd.DataFrame
    tag_keys: tuple

    @property
    def households_moved(self) -> int:
        f = self.flows
        return int(f.loc[f["level"] == 2, "households"].sum()) if len(f) else 0

    @property
    def persons_moved(self) -> int:
        f = self.flows
        return int(f.loc[f["level"] == 2, "persons"].sum()) if len(f) else 0


def people_diff(plan_a: Plan, plan_b: Plan, stats: pd.DataFrame, *, tag_keys=None) -> PeopleDiff:
    """The person-level change (see PeopleDiff). stats: a stats frame or a households frame."""
    from geo.stats import as_stats, tag_columns
    st = as_stats(stats, tag_keys)
    keys = tuple(tag_keys) if tag_keys is not None else tuple(tag_columns(st))
    cols = ["households", "persons", *keys]
    m = plan_a.assignments.merge(plan_b.assignments, on="building_id", how="outer", suffixes=("_a", "_b"))
    ga_, gb_ = m["grid_id_a"].astype(object), m["grid_id_b"].astype(object)
    ch = ~(ga_.isna() & gb_.isna()) & (ga_.ne(gb_) | ga_.isna() | gb_.isna())
    mv = pd.DataFrame({"building_id": m.loc[ch, "building_id"].astype(str).to_numpy(dtype=object),
                       "from_grid": ga_[ch].to_numpy(dtype=object), "to_grid": gb_[ch].to_numpy(dtype=object)})
    s = st.assign(building_id=st["building_id"].astype(str)).set_index("building_id")[cols]
    mv = mv.join(s, on="building_id")
    mv[cols] = mv[cols].fillna(0).astype(np.int64)
    pa, pb = plan_a.parent_of(), plan_b.parent_of()
    mv["from_l1"] = mv["from_grid"].map(pa)
    mv["to_l1"] = mv["to_grid"].map(pb)
    none = "\x00"  # groupby key for "no grid" (a building added to or dropped from the plan)

    def flows_of(frm, to, level):
        f = mv.assign(f=mv[frm].fillna(none), t=mv[to].fillna(none))
        f = f[f["f"] != f["t"]]
        if not len(f):
            return pd.DataFrame(columns=["level", "from_grid", "to_grid", "buildings", *cols])
        g = f.groupby(["f", "t"], sort=True)
        out = g[cols].sum().reset_index()
        out["buildings"] = g["building_id"].agg(lambda x: tuple(sorted(x))).to_numpy()
        out = out.rename(columns={"f": "from_grid", "t": "to_grid"})
        out[["from_grid", "to_grid"]] = out[["from_grid", "to_grid"]].replace(none, None)
        out.insert(0, "level", level)
        return out[["level", "from_grid", "to_grid", "buildings", *cols]]
    flows = pd.concat([flows_of("from_grid", "to_grid", 2), flows_of("from_l1", "to_l1", 1)], ignore_index=True)
    flows = flows.sort_values(["level", "households"], ascending=[False, False], kind="stable").reset_index(drop=True)
    rows = []
    for level in (2, 1):
        f = flows[flows["level"] == level]
        gained = f.dropna(subset=["to_grid"]).groupby("to_grid")
        lost = f.dropna(subset=["from_grid"]).groupby("from_grid")
        ids = sorted(set(gained.groups) | set(lost.groups))
        if not ids:
            continue
        gs = gained[cols].sum().reindex(ids).fillna(0).astype(np.int64)
        ls = lost[cols].sum().reindex(ids).fillna(0).astype(np.int64)
        r = pd.DataFrame({"id": ids, "level": level})
        for c in cols:
            r[f"{c}_gained"] = gs[c].to_numpy()
            r[f"{c}_lost"] = ls[c].to_numpy()
            r[f"{c}_net"] = r[f"{c}_gained"] - r[f"{c}_lost"]
        bg = gained["buildings"].agg(lambda x: tuple(sorted(b for t in x for b in t)))
        bl = lost["buildings"].agg(lambda x: tuple(sorted(b for t in x for b in t)))
        r["buildings_gained"] = [bg.get(i, ()) for i in ids]
        r["buildings_lost"] = [bl.get(i, ()) for i in ids]
        rows.append(r)
    per = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["id", "level"])
    info = pd.concat([plan_b.grids, plan_a.grids[~plan_a.grids["id"].isin(plan_b.grids["id"])]])
    info = info.drop_duplicates("id").set_index("id")
    per.insert(2, "name", per["id"].map(info["name"]) if "name" in info.columns else None)
    per.insert(3, "head_name", per["id"].map(info["head_name"]) if "head_name" in info.columns else None)
    return PeopleDiff(plan_a.plan_id, plan_b.plan_id, flows, per.reset_index(drop=True), keys)
