"""Masking of personal data (names, phones, sensitive key-group tags).

Pure functions on values, Series and DataFrames; nothing is printed or logged. Default is
masked: personal data leaves the store unmasked only when the caller passes
``allow_personal=True`` (the dashboard decides that from the user's role).

    mask_name("张三丰")        -> "张**"
    mask_phone("13812341234")  -> "138****1234"
"""
from __future__ import annotations

import re

import pandas as pd

from data.catalogue import key_groups

MASK = "**"
# what masking (ours or another system's) leaves behind: two or more mask characters in a row
# ("梁**", "199****9531", "***", "张＊＊", "●●●"), or a value that is only mask characters
_MASK_RUN = re.compile(r"[*＊●•×]{2,}|^[*＊●•×]+$")


def sensitive_tag_keys(overrides=()) -> frozenset[str]:
    """Keys of key groups marked sensitive in data/catalogues/key_groups.csv, with a deployment's
    overrides (Settings.catalogues) applied."""
    return frozenset(k.key for k in key_groups(overrides) if k.sensitive)


def is_masked(value) -> bool:
    """True for a masked placeholder such as "梁**", "199****9531" or "***" (never real data:
    importers refuse it rather than store the placeholder as a name or phone)."""
    if _blank(value):
        return False
    return bool(_MASK_RUN.search(str(value).strip()))


def masked_rows(s: pd.Series):
    """Boolean array: which values of a Series are masked placeholders (vectorised is_masked)."""
    txt = s.astype(object).where(s.notna(), "").astype(str).str.strip()
    return txt.str.contains(_MASK_RUN, regex=True).to_numpy()


def refuse_masked(frame: pd.DataFrame, fields: dict, *, file: str, row_numbers=None) -> None:
    """DataError naming file, row and field for the first masked placeholder among `fields`
    (frame column -> the file's column name). row_numbers: the file's row of each frame row
    (default 1-based position). The value itself is not quoted (it is personal data)."""
    import numpy as np

    from data.bundle import DataError
    for col, field_name in fields.items():
        if col not in frame.columns or field_name is None:
            continue
        bad = masked_rows(frame[col])
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            row = int(row_numbers[i]) if row_numbers is not None else i + 1
            raise DataError(f"masked value (characters replaced by *, as in a masked export) is not data; "
                            f"import the unmasked original or leave the cell empty "
                            f"({int(bad.sum())} such row(s))", file=file, row=row, field=field_name)


def _blank(v) -> bool:
    return v is None or (isinstance(v, float) and v != v) or v is pd.NA or str(v).strip() == ""


def mask_name(name):
    """First character and "**" (the length is not revealed); blanks stay as they are."""
    if _blank(name):
        return name
    s = str(name).strip()
    return s[0] + MASK


def mask_phone(phone):
    """Mobile (11 digits, optionally +86): 138****1234; other numbers: ****1234; short: ****."""
    if _blank(phone):
        return phone
    return mask_phones(pd.Series([phone], dtype=object)).iloc[0]


def mask_names(s: pd.Series) -> pd.Series:
    s = s.astype(object)
    txt = s.where(s.notna(), "").astype(str).str.strip()
    out = s.where(txt.eq(""), txt.str[:1] + MASK).astype(object)
    return out.where(out.notna(), None)


def mask_phones(s: pd.Series) -> pd.Series:
    s = s.astype(object)
    txt = s.where(s.notna(), "").astype(str)
    digits = txt.str.replace(r"\D", "", regex=True)
    digits = digits.where(~(digits.str.len().eq(13) & digits.str.startswith("86")), digits.str[2:])
    n = digits.str.len()
    out = ("****" + digits.str[-4:]).where(n >= 7, "****")
    out = out.where(n != 11, digits.str[:3] + "****" + digits.str[-4:])
    res = s.where(txt.str.strip().eq(""), out).astype(object)
    return res.where(res.notna(), None)


def drop_sensitive_tags(tags: pd.Series, sensitive=None) -> pd.Series:
    """Remove sensitive keys (``sensitive``: the keys in force, default the shipped catalogue's)
    from each list of tags (vectorised via explode)."""
    sens = sensitive_tag_keys() if sensitive is None else frozenset(sensitive)
    if len(tags) == 0:
        return tags.copy()
    lists = tags.map(lambda v: v if isinstance(v, list) else [])
    flat = lists.explode()
    keep = flat[flat.notna() & ~flat.isin(sens)]
    out = keep.groupby(level=0).agg(list).reindex(tags.index)
    return out.map(lambda v: v if isinstance(v, list) else [])


def mask_households(df: pd.DataFrame, allow_personal: bool = False, sensitive=None) -> pd.DataFrame:
    """A copy of a households frame with head_name and phone masked and sensitive tags removed,
    unless allow_personal (``sensitive``: Catalogue.sensitive_keys, default the shipped ones)."""
    out = df.copy()
    if allow_personal:
        return out
    if "head_name" in out.columns:
        out["head_name"] = mask_names(out["head_name"])
    if "phone" in out.columns:
        out["phone"] = mask_phones(out["phone"])
    if "tags" in out.columns:
        out["tags"] = drop_sensitive_tags(out["tags"], sensitive)
    return out


def mask_grids(df: pd.DataFrame, allow_personal: bool = False) -> pd.DataFrame:
    """A copy of a grids frame with head_name / head_phone masked unless allow_personal."""
    out = df.copy()
    if allow_personal:
        return out
    if "head_name" in out.columns:
        out["head_name"] = mask_names(out["head_name"])
    if "head_phone" in out.columns:
        out["head_phone"] = mask_phones(out["head_phone"])
    return out


def mask_layers(layers: dict, allow_personal: bool = False, sensitive=None) -> dict:
    """Mask every layer of a dict of frames that holds personal data."""
    out = dict(layers)
    if "households" in out:
        out["households"] = mask_households(out["households"], allow_personal, sensitive)
    if "grids" in out:
        out["grids"] = mask_grids(out["grids"], allow_personal)
    return out
