"""Household ledger figures per building and per grid (vectorised pandas)."""
from __future__ import annotations

import numpy as np
import pandas as pd


def tag_matrix(households: pd.DataFrame, keys) -> pd.DataFrame:
    """Boolean frame (households x key-group keys): does household i carry tag k."""
    keys = list(keys)
    ex = households["tags"].explode()
    ex = ex[ex.isin(keys)]
    m = pd.crosstab(ex.index, ex).reindex(index=households.index, columns=keys, fill_value=0)
    return m.astype(bool)


def building_totals(households: pd.DataFrame, keys) -> pd.DataFrame:
    """Per building_id: households, persons and one count column per key group."""
    tm = tag_matrix(households, keys).astype(int)
    df = pd.concat([households[["building_id", "persons"]].reset_index(drop=True), tm.reset_index(drop=True)], axis=1)
    df["households"] = 1
    out = df.groupby("building_id", dropna=True)[["households", "persons", *keys]].sum()
    return out.astype(int)
