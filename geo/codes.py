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
    """1-based reading-order sequence of each item within its group."""
    seq = np.zeros(len(groups), dtype=int)
    g = groups.to_numpy()
    for key in pd.unique(g):
        idx = np.flatnonzero(g == key)
        seq[idx] = reading_order(points_xy[idx], row_height_m) + 1
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
    return p["community"] > 0 and p["level1"] > 0 or (p["level1"] == 0 and p["level2"] == 0)
