"""Per-building household aggregates: the read model's stand-in for household rows.

A *stats frame* has one row per building id that has households, with columns
``building_id``, ``households``, ``persons``, ``synthetic`` (households flagged synthetic)
and one integer column per key-group key (households carrying that tag). Every roll-up
(grid, community, plan, service circle, regionalize) works from it, so no figure needs the
household rows themselves; those are read per grid or building on demand from the store.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["BASE_COLUMNS", "as_stats", "building_stats", "catalogue_keys", "is_stats", "tag_columns"]

BASE_COLUMNS = ("building_id", "households", "persons", "synthetic")


def is_stats(df: pd.DataFrame) -> bool:
    """True for a stats frame, False for household rows (which have no ``households`` column)."""
    return "households" in df.columns


def tag_columns(stats: pd.DataFrame) -> list[str]:
    return [c for c in stats.columns if c not in BASE_COLUMNS]


def catalogue_keys() -> list[str]:
    from data.catalogue import key_groups
    return [k.key for k in key_groups()]


def building_stats(households: pd.DataFrame, tag_keys=None) -> pd.DataFrame:
    """The stats frame of a households frame (id, building_id, persons, tags, synthetic).
    Tag columns: every key in ``tag_keys`` (default: the catalogue's) plus every tag found. A missing building id is
    counted under the empty string (an orphan that the audit reports)."""
    n = len(households)
    bid = households["building_id"].astype(object).where(households["building_id"].notna(), "").astype(str) \
        if n else pd.Series([], dtype=object)
    codes, uniq = pd.factorize(bid.to_numpy(), sort=True) if n else (np.zeros(0, int), np.array([], dtype=object))
    k = len(uniq)
    out = {"building_id": pd.Series(uniq, dtype=object),
           "households": np.bincount(codes, minlength=k).astype(np.int64)}
    persons = pd.to_numeric(households["persons"], errors="coerce").fillna(0).to_numpy(dtype=float) \
        if n and "persons" in households.columns else np.zeros(n)
    out["persons"] = np.bincount(codes, weights=persons, minlength=k).round().astype(np.int64)
    syn = households["synthetic"].fillna(False).to_numpy(dtype=bool) if "synthetic" in households.columns and n \
        else np.zeros(n, bool)
    out["synthetic"] = np.bincount(codes, weights=syn.astype(float), minlength=k).astype(np.int64)
    tags = households["tags"].tolist() if n and "tags" in households.columns else [None] * n
    lengths = np.fromiter((len(t) if isinstance(t, (list, tuple)) else 0 for t in tags), dtype=np.int64, count=n)
    flat = [str(x) for t in tags if isinstance(t, (list, tuple)) for x in t]
    tag_keys = catalogue_keys() if tag_keys is None else tag_keys
    keys = list(dict.fromkeys([*map(str, tag_keys), *sorted(set(flat))]))
    rows = np.repeat(codes, lengths)
    if flat:
        # a tag listed twice for one household counts once
        pair = pd.DataFrame({"h": np.repeat(np.arange(n), lengths), "t": flat}).drop_duplicates()
        rows = codes[pair["h"].to_numpy()]
        tcode = pd.Categorical(pair["t"], categories=keys).codes
        mat = np.zeros((k, len(keys)), dtype=np.int64)
        np.add.at(mat, (rows, tcode), 1)
    else:
        mat = np.zeros((k, len(keys)), dtype=np.int64)
    for j, key in enumerate(keys):
        if key in BASE_COLUMNS:
            continue
        out[key] = mat[:, j]
    return pd.DataFrame(out)


def as_stats(frame: pd.DataFrame, tag_keys=()) -> pd.DataFrame:
    """A stats frame from either a stats frame or a households frame (with every key in
    ``tag_keys`` present as a column, 0 where absent)."""
    st = frame if is_stats(frame) else building_stats(frame, () if tag_keys is None else tag_keys)
    missing = [k for k in (tag_keys or ()) if k not in st.columns]
    if missing:
        st = st.assign(**{k: np.zeros(len(st), dtype=np.int64) for k in missing})
    return st
