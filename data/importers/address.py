"""Parsing Chinese household addresses into compound / building / unit / room (pure, vectorised).

    "3号楼2单元501"            -> compound "",        building "3", unit 2, room "501"
    "清华园小区3栋2单元501室"   -> compound "清华园",  building "3", unit 2, room "501"
    "学清路8号院12号楼三单元1102" -> compound "学清路8号院", building "12", unit 3, room "1102"
    "3-2-501"                  -> building "3", unit 2, room "501"

Buildings are matched on a normalised building number ("3", "12A"); the compound is a hint.
"""
from __future__ import annotations

import re

import pandas as pd

_FULLWIDTH = str.maketrans("０１２３４５６７８９ＡＢＣＤＥＦａｂｃｄｅｆ－　", "0123456789ABCDEFabcdef- ")
_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_NUM = re.compile(r"([零〇一二两三四五六七八九十]{1,3})(?=号楼|号|栋|幢|座|单元|门|层|楼)")

_BUILDING_SUFFIX = r"(?:号楼|栋|幢|座|号|楼)"
_MAIN = re.compile(
    r"^(?P<compound>.*?)(?P<building>\d+[A-Za-z]?)\s*" + _BUILDING_SUFFIX
    + r"\s*(?:(?P<unit>\d+)\s*(?:单元|门))?\s*[-－]?\s*(?:(?P<room>[A-Za-z]?\d+[A-Za-z]?)\s*(?:室|号|户)?)?\s*$")
_DASHED = re.compile(r"^(?P<compound>.*?)(?P<building>\d+[A-Za-z]?)-(?P<unit>\d+)-(?P<room>[A-Za-z]?\d+[A-Za-z]?)\s*$")
_KEY_FROM_NAME = re.compile(r"^\D*?(?P<building>\d+[A-Za-z]?)\s*(?:号楼|栋|幢|座|号|楼)?\s*$")
_KEY_FROM_ADDRESS = re.compile(r"(?P<building>\d+[A-Za-z]?)\s*(?:号楼|栋|幢|座)")
_COMPOUND_SUFFIX = re.compile(r"(?:小区|社区|居委会)$")


def _cn_to_int(text: str) -> str:
    if "十" in text:
        tens, _, ones = text.partition("十")
        return str((_CN_DIGITS.get(tens, 1) if tens else 1) * 10 + (_CN_DIGITS.get(ones, 0) if ones else 0))
    return "".join(str(_CN_DIGITS[c]) for c in text)


def normalise(s: pd.Series) -> pd.Series:
    """Full-width to half-width, Chinese numerals before 号楼/单元/... to digits, no spaces."""
    txt = s.astype(object).where(s.notna(), "").astype(str)
    txt = txt.str.translate(_FULLWIDTH).str.replace(r"\s+", "", regex=True)
    cn = txt.str.contains(r"[零〇一二两三四五六七八九十]", regex=True)
    if cn.any():
        txt = txt.copy()
        txt[cn] = txt[cn].str.replace(_CN_NUM, lambda m: _cn_to_int(m.group(1)), regex=True)
    return txt


def normalise_compound(s: pd.Series) -> pd.Series:
    txt = normalise(s).str.strip("，,、:：;；()（）")
    return txt.str.replace(_COMPOUND_SUFFIX, "", regex=True)


def parse_addresses(addresses: pd.Series) -> pd.DataFrame:
    """Columns compound (str, "" when absent), building (str or None), unit (Int64), room (str or None),
    indexed like the input. Unparseable addresses get building None."""
    txt = normalise(addresses)
    main = txt.str.extract(_MAIN).astype(object)
    miss = main["building"].isna()
    if miss.any():  # "3-2-501" only where the main pattern failed
        dashed = txt[miss].str.extract(_DASHED).astype(object)
        ok = dashed["building"].notna()
        main.loc[dashed.index[ok]] = dashed.loc[ok, main.columns].to_numpy()
    out = pd.DataFrame(index=addresses.index)
    out["compound"] = normalise_compound(main["compound"].fillna("")).astype(object)
    out["building"] = main["building"].str.upper().astype(object).where(main["building"].notna(), None)
    out["unit"] = pd.to_numeric(main["unit"], errors="coerce").astype("Int64")
    out["room"] = main["room"].str.upper().astype(object).where(main["room"].notna(), None)
    return out


def building_keys(names: pd.Series, addresses: pd.Series | None = None) -> pd.Series:
    """Normalised building number of store buildings from their name ("3号楼", "3栋", "3"),
    else from their address ("学清路8号院3号楼"); None when neither has one."""
    key = normalise(names).str.extract(_KEY_FROM_NAME)["building"]
    if addresses is not None:
        from_addr = normalise(addresses).str.extract(_KEY_FROM_ADDRESS)["building"]
        key = key.where(key.notna(), from_addr)
    return key.str.upper().astype(object).where(key.notna(), None)
