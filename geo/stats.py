"""Per-building statistics: the aggregate read model that replaces household rows.

`building_stats(households)` -> one row per building id that has households: building_id,
households, persons, synthetic (count of synthetic households) and one integer column per
key-group key (data/catalogues/key_groups.csv) = households carrying that tag (a tag listed
twice for one household counts once). Every aggregate (grid tables, workload, plan diffs,
the meeting pack) takes such a frame; `as_stats` accepts either a households frame or a stats
frame, so callers may pass what they have.

Pure: frames in, frames out (the key-group keys default to the catalogue's)."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

BASE_COLUMNS = ("building_id", "households", "persons", "synthetic")


def catalogue_keys() -> list[str]:
    from data.catalogue import key_groups
    return [k.key for k in key_groups()]


def is_stats(frame: pd.DataFrame) -> bool:
    """A stats frame has a households column; a households frame has tags instead."""
    return "households" in frame.columns and "tags" not in frame.columns


def _tag_counts(tags: pd.Series, rows: np.ndarray, n_rows: int, tag_keys) -> np.ndarray:
    """(n_rows, len(tag_keys)) counts of households per (row, key); rows[i] = household i's row."""
    tag_keys = list(tag_keys)
    out = np.zeros((n_rows, len(tag_keys)), dtype=np.int64)
    if len(tags) == 0 or not tag_keys:
        return out
    vals = tags.to_numpy(dtype=object)
    try:  # contract frames hold lists; map(len) and chain run at C speed
        lengths = np.fromiter(map(len, vals), dtype=np.int64, count=len(vals))
    except TypeError:  # None / NaN among the tags
        vals = np.array([v if isinstance(v, (list, tuple)) else () for v in vals] + [None], dtype=object)[:-1]
        lengths = np.fromiter(map(len, vals), dtype=np.int64, count=len(vals))
    flat = list(itertools.chain.from_iterable(vals))
    if not flat:
        return out
    key_pos = pd.Index(tag_keys).get_indexer(pd.Index(flat, dtype=object))
    hh = np.repeat(np.arange(len(vals), dtype=np.int64), lengths)
    ok = (key_pos >= 0) & (rows[hh] >= 0)
    k = len(tag_keys)
    pair = np.unique(hh[ok] * k + key_pos[ok])  # a tag listed twice for one household counts once
    cell = rows[pair // k] * k + pair % k
    out += np.bincount(cell, minlength=n_rows * k).reshape(n_rows, k)
    return out


def building_stats(households: pd.DataFrame, tag_keys=None) -> pd.DataFrame:
    """One row per building id that has households (sorted by id): building_id, households,
    persons, synthetic, one int column per key-group key (default: the catalogue's)."""
    keys = list(tag_keys) if tag_keys is not None else catalogue_keys()
    bid = households["building_id"].astype("string")
    known = bid.notna().to_numpy()
    codes, uniq = pd.factorize(bid.where(bid.notna(), None), sort=True)
    n = len(uniq)
    rows = np.where(known, codes, -1).astype(np.int64)
    ok = rows >= 0
    persons = pd.to_numeric(households["persons"], errors="coerce").fillna(0).to_numpy(dtype=float) \
        if "persons" in households.columns else np.zeros(len(households))
    synth = households["synthetic"].fillna(False).astype(bool).to_numpy() if "synthetic" in households.columns \
        else np.zeros(len(households), dtype=bool)
    out = pd.DataFrame({
        "building_id": np.asarray(uniq, dtype=object),
        "households": np.bincount(rows[ok], minlength=n).astype(np.int64),
        "persons": np.rint(np.bincount(rows[ok], weights=persons[ok], minlength=n)).astype(np.int64),
        "synthetic": np.bincount(rows[ok], weights=synth[ok].astype(float), minlength=n).astype(np.int64)})
    tags = households["tags"] if "tags" in households.columns else pd.Series([[]] * len(households), dtype=object)
    counts = _tag_counts(tags, rows, n, keys)
    for i, k in enumerate(keys):
        out[k] = counts[:, i]
    return out


def tag_columns(stats: pd.DataFrame) -> list[str]:
    """The key-group columns of a stats frame, in frame order."""
    return [c for c in stats.columns if c not in BASE_COLUMNS]


def as_stats(frame: pd.DataFrame, tag_keys=None) -> pd.DataFrame:
    """A stats frame from either a stats frame (returned as is, missing key columns as 0) or a
    households frame. tag_keys=None with a households frame: the keys present in its tags."""
    if is_stats(frame):
        if tag_keys is None:
            return frame
        missing = [k for k in tag_keys if k not in frame.columns]
        return frame.assign(**{k: 0 for k in missing}) if missing else frame
    if tag_keys is None and "tags" in frame.columns:
        tag_keys = sorted(set(itertools.chain.from_iterable(t for t in frame["tags"] if isinstance(t, (list, tuple)))))
    return building_stats(frame, tag_keys)


def stats_of_bundle(bundle) -> pd.DataFrame:
    """bundle.building_stats when the store provides it (issue 10), else computed from its households."""
    st = getattr(bundle, "building_stats", None)
    if st is not None:
        return st
    return building_stats(bundle.households)
