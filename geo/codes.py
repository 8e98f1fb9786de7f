"""Grid codes after CJ/T 349-2010, 20 digits, generated and validated (never typed by hand).

Layout used by this project (all digits):
    OOOO CCCCCC SSS MMM GG HH
    |    |      |   |   |  +- level-2 grid sequence (00 for a level-1 grid)
    |    |      |   |   +---- level-1 grid sequence within the community
    |    |      |   +-------- community code (3 digits)
    |    |      +------------ street (街道) code (3 digits)
    |    +------------------- county code (GB/T 2260, 6 digits)
    +------------------------ object code (4 digits, settings.grid_object_code)
Sequences are numbered left-to-right, top-to-bottom (rows of `row_height_m`, north first).
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

CODE_RE = re.compile(r"^\d{20}$")


def reading_order(points_xy: np.ndarray, row_height_m: float = 200.0) -> np.ndarray:
    """Rank (0..n-1) of points in reading order: rows north->south, then west->east.

    points_xy: (n, 2) metric coordinates (x east, y north)."""
    if len(points_xy) == 0:
        return np.zeros(0, dtype=int)
    y_top = points_xy[:, 1].max()
    row = np.floor((y_top - points_xy[:, 1]) / row_height_m).astype(int)
    order = np.lexsort((points_xy[:, 0], row))
    rank = np.empty(len(order), dtype=int)
    rank[order] = np.arange(len(order))
    return rank


def sequence_within(groups: pd.Series, points_xy: np.ndarray, row_height_m: float = 200.0) -> np.ndarray:
    """1-based reading-order sequence of each item within its group (vectorised).

    Rows of `row_height_m` are counted down from the group's northernmost point, items are
    ordered west->east within a row. Items without a position (NaN) come last, in input order."""
    n = len(groups)
    if n == 0:
        return np.zeros(0, dtype=int)
    g, _ = pd.factorize(pd.Series(np.asarray(groups, dtype=object)).astype(str))
    xy = np.asarray(points_xy, dtype=float).reshape(n, 2)
    missing = ~np.isfinite(xy).all(axis=1)
    y = np.where(missing, -np.inf, xy[:, 1])
    y_top = pd.Series(np.where(missing, np.nan, xy[:, 1])).groupby(g).transform("max").to_numpy()
    with np.errstate(invalid="ignore"):
        row = np.where(missing, np.inf, np.floor((y_top - np.where(missing, 0.0, y)) / row_height_m))
    x = np.where(missing, np.arange(n), xy[:, 0])
    order = np.lexsort((np.arange(n), x, missing, row, g))
    sorted_g = g[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_g)) + 1]
    pos = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))
    seq = np.empty(n, dtype=int)
    seq[order] = pos + 1
    return seq


def compose(object_code: str, county: str, street: str, community: int, l1: int, l2: int = 0) -> str:
    parts = [(object_code, 4, "object code"), (county, 6, "county code"), (street, 3, "street code")]
    for value, width, what in parts:
        if not (len(value) == width and value.isdigit()):
            raise ValueError(f"{what} must be {width} digits, got {value!r}")
    for value, what in ((community, "community"), (l1, "level-1 sequence"), (l2, "level-2 sequence")):
        if not 0 <= value <= (999 if what == "community" else 99):
            raise ValueError(f"{what} {value} out of range")
    return f"{object_code}{county}{street}{community:03d}{l1:02d}{l2:02d}"


def parse(code: str) -> dict:
    if not CODE_RE.match(code or ""):
        raise ValueError(f"grid code must be 20 digits, got {code!r}")
    return {"object": code[:4], "county": code[4:10], "street": code[10:13], "community": int(code[13:16]),
            "level1": int(code[16:18]), "level2": int(code[18:20])}


def is_valid(code: str) -> bool:
    try:
        p = parse(code)
    except ValueError:
        return False
    # a community-level code (NN..N MMM 00 00), a level-1 code (GG > 0, HH = 00) or a level-2 code
    # (GG > 0, HH > 0); the community number is never 000 and HH > 0 needs GG > 0
    return p["community"] > 0 and (p["level1"] > 0 or p["level2"] == 0)


def community_numbers(community_codes, points_xy: np.ndarray, row_height_m: float = 200.0) -> np.ndarray:
    """3-digit community number of each community: the last three digits of its own code when
    every community has a numeric code and those numbers are distinct and non-zero, else its
    reading-order position (1-based) among all communities."""
    codes = pd.Series(np.asarray(community_codes, dtype=object)).astype("string")
    numeric = codes.str.fullmatch(r"\d{3,}").fillna(False).to_numpy(dtype=bool)
    if len(codes) and numeric.all():
        nums = codes.str[-3:].astype(int).to_numpy()
        if (nums > 0).all() and len(np.unique(nums)) == len(nums):
            return nums
    return sequence_within(pd.Series(np.zeros(len(codes), dtype=int)), points_xy, row_height_m)


def own_street_codes(community_codes_) -> list:
    """The street part (digits 7-9) of each community's own 12-digit code (GB/T 2260 county,
    street, community), else None."""
    out = []
    for c in np.asarray(community_codes_, dtype=object):
        c = "" if c is None or c != c else str(c)
        out.append(c[6:9] if len(c) == 12 and c.isdigit() else None)
    return out


def community_parts(community_ids, community_names, community_streets, own_numbers, *, street_codes=(),
                    community_codes=(), default_street: str = "012", own_streets=None) -> tuple[np.ndarray, np.ndarray]:
    """(street code, community number) of each community for its grid codes.

    street: the deployment's code for the community's street (``street_codes``: ((street name,
    3 digits), ...), settings [codes.streets]), else the street part of the community's own code
    (``own_streets``, see own_street_codes), else ``default_street``. number: the deployment's
    code for the community (``community_codes``: ((community id or name, 3 digits), ...),
    settings [codes.communities]; the id wins), else ``own_numbers`` (see community_numbers). A
    community without a given code whose number is already used in its street by one with a
    given code takes the smallest free number of that street (in input order), so communities
    never share a code."""
    ids = [str(x) for x in np.asarray(community_ids, dtype=object)]
    names = [("" if v is None or v != v else str(v)) for v in np.asarray(community_names, dtype=object)]
    strt = [("" if v is None or v != v else str(v)) for v in np.asarray(community_streets, dtype=object)]
    sc, cc = dict(street_codes or ()), dict(community_codes or ())
    own = list(own_streets) if own_streets is not None else [None] * len(ids)
    streets = np.array([sc.get(s) or o or default_street for s, o in zip(strt, own)], dtype=object)
    given = [cc.get(i, cc.get(n)) for i, n in zip(ids, names)]
    nums = np.asarray(own_numbers, dtype=int).copy()
    for k, g in enumerate(given):
        if g is not None:
            nums[k] = int(g)
    fixed = np.array([g is not None for g in given], dtype=bool)
    for st in dict.fromkeys(streets):
        here = np.flatnonzero(streets == st)
        mine = nums[here[fixed[here]]]
        if len(np.unique(mine)) < len(mine):
            d = int(pd.Series(mine).value_counts().index[0])
            raise ValueError(f"community code {d:03d} is given to more than one community of street code {st}")
        used = set(mine.tolist())
        for k in here[~fixed[here]]:
            if int(nums[k]) in used or not 1 <= nums[k] <= 999:
                free = next((n for n in range(1, 1000) if n not in used), None)
                if free is None:
                    raise ValueError(f"street code {st} has more than 999 communities: give their streets "
                                     f"codes in the settings file ([codes.streets])")
                nums[k] = free
            used.add(int(nums[k]))
    return streets, nums


def generate_codes(grid_ids, levels, parent_ids, points_xy: np.ndarray, community_ids, community_numbers_,
                   *, object_code: str, county: str, street: str, row_height_m: float = 200.0,
                   streets=None) -> pd.Series:
    """20-digit codes for every grid of a plan, indexed by grid id.

    Level-1 grids are numbered within their community, level-2 grids within their level-1
    grid, left-to-right, top-to-bottom (`points_xy`: metric representative points aligned
    with grid_ids). `community_ids`/`community_numbers_`: the plan's communities and their
    3-digit numbers (see community_numbers, community_parts); `streets`: each community's
    3-digit street code (aligned with community_ids; default `street` for all). A grid whose
    parent chain is unknown gets None. Raises ValueError when a sequence exceeds 99 (the code
    has two digits per level)."""
    ids = pd.Index(np.asarray(grid_ids, dtype=object).astype(str))
    level = pd.to_numeric(pd.Series(np.asarray(levels)), errors="coerce").to_numpy()
    parent = pd.Series(np.asarray(parent_ids, dtype=object), index=ids).astype("string")
    xy = np.asarray(points_xy, dtype=float).reshape(len(ids), 2)
    cnum = pd.Series(np.asarray(community_numbers_, dtype=int), index=np.asarray(community_ids).astype(str))
    out = pd.Series([None] * len(ids), index=ids, dtype=object)

    is1 = (level == 1) & parent.isin(cnum.index).to_numpy()
    seq1 = pd.Series(sequence_within(parent[is1], xy[is1], row_height_m), index=ids[is1])
    l1_parent = parent[is1]
    is2 = (level == 2) & parent.isin(seq1.index).to_numpy()
    seq2 = pd.Series(sequence_within(parent[is2], xy[is2], row_height_m), index=ids[is2])
    for what, seq in (("level-1", seq1), ("level-2", seq2)):
        if len(seq) and seq.max() > 99:
            raise ValueError(f"{what} sequence {int(seq.max())} exceeds 99 within grid/community "
                             f"{parent[seq.idxmax()]}; the 20-digit code has two digits per level")
    if (cnum > 999).any() or (cnum < 1).any():
        raise ValueError("community numbers must be 1..999")
    compose(object_code, county, street, 1, 0)  # validates the prefix parts
    cstreet = pd.Series(np.asarray(streets if streets is not None else [street] * len(cnum), dtype=object),
                        index=cnum.index)
    prefix = {st: compose(object_code, county, str(st), 1, 0)[:13] for st in dict.fromkeys(cstreet)}
    comm1 = cnum.reindex(l1_parent.to_numpy()).to_numpy()
    pre1 = cstreet.reindex(l1_parent.to_numpy()).map(prefix).to_numpy()
    out[ids[is1]] = [f"{p}{c:03d}{s:02d}00" for p, c, s in zip(pre1, comm1, seq1.to_numpy())]
    p2 = parent[is2].to_numpy()
    base = out.reindex(p2).str[:18].to_numpy()
    out[ids[is2]] = [f"{b}{s:02d}" for b, s in zip(base, seq2.to_numpy())]
    return out


def check_codes(grid_ids, levels, parent_ids, codes, *, prefix: str | None = None
                ) -> list[tuple[list[str], str]]:
    """Problems with the existing codes of one plan's grids, as (grid ids, detail) pairs:
    missing or malformed codes, a level that does not match the code, a prefix
    (object+county+street, 13 digits) other than `prefix`, duplicates, a level-2 code not
    extending its level-1 parent's code, level-1 grids of one community with different
    community parts, and different communities sharing one community part."""
    ids = np.asarray(grid_ids, dtype=object).astype(str)
    df = pd.DataFrame({"id": ids, "level": pd.to_numeric(pd.Series(np.asarray(levels)), errors="coerce").to_numpy(),
                       "parent": pd.Series(np.asarray(parent_ids, dtype=object)).astype("string").to_numpy(),
                       "code": pd.Series(np.asarray(codes, dtype=object)).astype("string").str.strip().to_numpy()})
    out: list[tuple[list[str], str]] = []
    missing = df["code"].isna() | (df["code"] == "")
    for gid in df.loc[missing, "id"]:
        out.append(([gid], "网格编码缺失 / grid code missing"))
    c = df[~missing]
    fmt = c["code"].str.fullmatch(r"\d{20}").fillna(False).astype(bool)
    for gid, code in c.loc[~fmt, ["id", "code"]].itertuples(index=False):
        out.append(([gid], f"网格编码应为20位数字 / grid code must be 20 digits, got {code!r}"))
    c = c[fmt]
    comm, l1, l2 = (c["code"].str[13:16].astype(int), c["code"].str[16:18].astype(int),
                    c["code"].str[18:20].astype(int))
    bad_level = ((c["level"] == 1) & ((l1 == 0) | (l2 != 0))) | ((c["level"] == 2) & ((l1 == 0) | (l2 == 0))) \
        | (comm == 0) | ~c["level"].isin([1, 2])
    for gid, code, lev in c.loc[bad_level, ["id", "code", "level"]].itertuples(index=False):
        out.append(([gid], f"编码与网格层级不符 / code {code} does not fit a level-{lev} grid "
                           f"(community 001-999, level-1 GG>00, level-2 HH>00, level-1 HH=00)"))
    if prefix is not None:
        wrong = c["code"].str[:13] != prefix
        for gid, code in c.loc[wrong, ["id", "code"]].itertuples(index=False):
            out.append(([gid], f"编码前缀不符 / code {code} does not start with object+county+street {prefix}"))
    dup = c[c["code"].duplicated(keep=False)]
    for code, g in dup.groupby("code", sort=True):
        out.append((sorted(g["id"]), f"编码重复 / duplicate grid code {code}"))
    good = c[~bad_level]
    code_of = pd.Series(good["code"].to_numpy(), index=good["id"].to_numpy())
    code_of = code_of[~code_of.index.duplicated()]
    l2 = good[good["level"] == 2]
    pcode = l2["parent"].map(code_of)
    mismatch = pcode.notna() & (l2["code"].str[:18] != pcode.str[:18])
    for gid, code, pc in zip(l2.loc[mismatch, "id"], l2.loc[mismatch, "code"], pcode[mismatch]):
        out.append(([gid], f"二级网格编码与上级不一致 / level-2 code {code} does not extend its level-1 code {pc}"))
    lev1 = good[good["level"] == 1].assign(cpart=lambda d: d["code"].str[:16])
    n_parts = lev1.groupby("parent")["cpart"].nunique()
    for pid in n_parts[n_parts > 1].index:
        g = lev1[lev1["parent"] == pid]
        out.append((sorted(g["id"]), f"同一社区的一级网格社区码不一致 / level-1 grids of community {pid} "
                                     f"carry different community parts {sorted(g['cpart'].str[13:16].unique())}"))
    n_comm = lev1.groupby("cpart")["parent"].nunique()
    for part in n_comm[n_comm > 1].index:
        g = lev1[lev1["cpart"] == part]
        out.append((sorted(g["id"]), f"不同社区使用同一社区码 / communities {sorted(g['parent'].unique())} "
                                     f"share community part {part[13:16]}"))
    return out
