"""Importing household ledgers (户籍/住户台账) from Excel (.xlsx) or CSV.

CSV encodings: UTF-8 (with or without BOM), UTF-16 with BOM, GBK/GB18030 — detected; a file
that decodes as none of them is refused naming the byte offset and line. Rows are matched to
buildings by a building column (id, code or name) or by address ("3号楼2单元501", optionally
within a compound). Unmatched rows are KEPT with an empty building_id (the audit reports them
as orphan households) and listed in the report. Duplicate household ids, missing required
columns, unknown key-group tags and bad numbers are refused with the row (1-based data row;
the spreadsheet line is row + 1) and field. Imported rows are real people: synthetic=False.

Size: ledgers up to MAX_ROWS rows (1,000,000) / MAX_BYTES (256 MiB) are imported (200,000 rows
take a few seconds); bigger files are refused with a clear message — split them by community.
The store is written once, atomically, with the version that was loaded.
"""
from __future__ import annotations

import codecs
import io
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from data.importers.columns import match_columns, repaired_headers
from minsheng.i18n import t
from data.privacy import refuse_masked
from data.bundle import DataError
from data.catalogue import catalogue as _catalogue
from data.importers.address import building_keys, normalise, normalise_compound, parse_addresses
from data.importers.messages import Note, Refusal

MAX_ROWS = 1_000_000
MAX_BYTES = 256 * 1024 * 1024
COLUMN_ALIASES = {
    "id": ("id", "household_id", "户号", "户编号", "住户编号", "家庭编号", "编号", "户籍编号"),
    "building": ("building", "building_id", "building_code", "楼栋", "楼栋编号", "楼栋编码", "楼号", "楼栋号", "楼宇编码"),
    "address": ("address", "地址", "住址", "家庭住址", "居住地址", "现住址", "门牌地址"),
    "compound": ("compound", "小区", "小区名称", "院落", "小区/院落"),
    "unit": ("unit", "单元", "单元号"),
    "room": ("room", "房号", "室", "房间号", "门牌号", "户室号"),
    "persons": ("persons", "人数", "户人数", "家庭人数", "人口数", "在住人数", "家庭人口"),
    "tags": ("tags", "标签", "重点人群", "人群类别", "人员类别", "人群标签", "类别"),
    "head_name": ("head_name", "户主", "户主姓名", "姓名", "name"),
    "phone": ("phone", "电话", "联系电话", "手机", "手机号", "联系方式"),
}
ROLE_LABELS = {"id": "户号/id", "building": "楼栋/building", "address": "地址/address"}
TAG_SPLIT = r"[;；,，、|/\s]+"


@dataclass
class HouseholdImport:
    version: str                 # store version after the write ("" for dry runs)
    rows: int
    matched: int
    households: pd.DataFrame = field(repr=False)   # the imported rows, contract columns
    unmatched: pd.DataFrame = field(repr=False)    # row, reason (no personal data)
    replaced: int = 0            # existing households replaced (same id, or their room with replace_rooms)
    warnings: list[str] = field(default_factory=list)  # messages.Note (str) for the UI language
    replaced_rooms: int = 0      # of `replaced`: stored households in a room the ledger fills

    def summary(self, lang: str = "en") -> str:
        return t("imp_households_summary", lang).format(rows=self.rows, matched=self.matched,
                                                        orphans=len(self.unmatched), replaced=self.replaced,
                                                        rooms=self.replaced_rooms)


# -- reading ---------------------------------------------------------------------------------
def decode_bytes(data: bytes, *, file: str = "") -> tuple[str, str]:
    """(text, encoding): UTF-16 with BOM, UTF-8 (BOM optional), else GB18030 (a superset of GBK)."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as e:
            raise DataError(f"cannot decode as UTF-16 at byte offset {e.start}", file=file) from None
    try:
        return data.decode("utf-8-sig"), ("utf-8-sig" if data.startswith(codecs.BOM_UTF8) else "utf-8")
    except UnicodeDecodeError as e8:
        try:
            return data.decode("gb18030"), "gb18030"
        except UnicodeDecodeError as eg:
            line8 = data.count(b"\n", 0, e8.start) + 1
            lineg = data.count(b"\n", 0, eg.start) + 1
            raise DataError(f"cannot decode the file: not UTF-8 (bad byte at offset {e8.start}, line {line8}) and "
                            f"not GBK/GB18030 (bad byte at offset {eg.start}, line {lineg}); save it as UTF-8 CSV "
                            f"or .xlsx", file=file) from None


def read_table(path, *, sheet=None, max_rows: int = MAX_ROWS, max_bytes: int = MAX_BYTES) -> pd.DataFrame:
    """The ledger as strings ("" for blanks), column names stripped, fully blank rows dropped; the
    1-based data row number is in column "_row"."""
    path = Path(path)
    f = str(path)
    if not path.exists():
        raise DataError("file not found", file=f)
    size = path.stat().st_size
    if size == 0:
        raise DataError("the file is empty (0 bytes)", file=f)
    if size > max_bytes:
        raise DataError(f"the file is {size / 2**20:.0f} MiB, over the limit of {max_bytes / 2**20:.0f} MiB; "
                        "split the ledger (e.g. one file per community)", file=f)
    suffix = path.suffix.lower()
    issues: dict[str, dict[str, list[int]]] = {}
    if suffix in (".xlsx", ".xlsm"):
        df, issues = _read_xlsx(path, sheet, f)
    elif suffix == ".xls":
        raise DataError("old .xls workbooks are not read; save it as .xlsx or CSV", file=f)
    else:
        text, _enc = decode_bytes(path.read_bytes(), file=f)
        if not text.strip():
            raise DataError("the file is empty (no header line)", file=f)
        header = text.lstrip().split("\n", 1)[0]
        sep = max([",", "\t", ";"], key=header.count)
        try:
            df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, sep=sep, skipinitialspace=True)
        except pd.errors.ParserError as e:
            raise DataError(f"malformed CSV: {e}", file=f) from None
        except pd.errors.EmptyDataError:
            raise DataError("the file is empty (no header line)", file=f) from None
    df.columns = [str(c).strip().lstrip("\ufeff") for c in df.columns]
    df = df.astype(object).where(df.notna(), "")
    df = df.apply(lambda s: s.astype(str).str.strip())
    df["_row"] = np.arange(1, len(df) + 1)
    blank = (df.drop(columns="_row") == "").all(axis=1)
    df = df[~blank].reset_index(drop=True)
    df.attrs["cell_issues"] = issues
    if len(df) == 0:
        raise DataError("the file has a header but no data rows", file=f)
    if len(df) > max_rows:
        raise DataError(f"{len(df)} rows, over the limit of {max_rows}; split the ledger (e.g. one file per "
                        "community)", file=f)
    return df


def _read_xlsx(path: Path, sheet, f: str) -> tuple[pd.DataFrame, dict[str, dict[str, list[int]]]]:
    """The first (or named) sheet as text, and per column the data rows (1-based) whose cell was a
    number that lost digits (a float above 2**53: Excel keeps 15 significant digits) or a date.

    openpyxl hands over the cells' own types: exact ints, floats, datetimes, strings. Integral
    floats are written without ".0"; other cells as str()."""
    import datetime as dt
    import openpyxl
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as e:  # zip/XML errors of a damaged or foreign file
        raise DataError(f"cannot read the Excel workbook: {e}", file=f) from None
    try:
        if sheet is not None and sheet not in wb.sheetnames:
            raise DataError(f"cannot read the Excel workbook: no sheet {sheet!r} in it (sheets: {', '.join(wb.sheetnames)})", file=f)
        ws = wb[sheet] if sheet is not None else wb.worksheets[0]
        rows = [r for r in ws.iter_rows(values_only=True)]
    finally:
        wb.close()
    if not rows:
        raise DataError("the file is empty (no header line)", file=f)
    width = max(len(r) for r in rows)
    header = list(rows[0]) + [None] * (width - len(rows[0]))
    body = pd.DataFrame([tuple(r) + (None,) * (width - len(r)) for r in rows[1:]], columns=range(width),
                        dtype=object)
    names = [str(h).strip() if h is not None else "" for h in header]
    keep = [i for i, n in enumerate(names) if n or body[i].notna().any()]
    names = [names[i] or f"Unnamed: {i}" for i in keep]
    body = body[keep]
    body.columns = names
    issues: dict[str, dict[str, list[int]]] = {}
    out = {}
    for name in names:
        s = body[name]
        kind = s.map(type)
        text = s.map(lambda v: "" if v is None else str(v)).astype(object)
        isf = kind.eq(float).to_numpy()
        if isf.any():
            fv = pd.to_numeric(s[isf], errors="coerce").astype(float)
            lost = np.isfinite(fv) & (fv.abs() > 2 ** 53)
            whole = np.isfinite(fv) & ~lost & (fv % 1 == 0)
            text[whole.index[whole]] = fv[whole].astype("int64").astype(str)
            if lost.any():
                issues.setdefault(name, {})["lost"] = (lost.index[lost] + 1).tolist()
        isd = kind.isin([dt.datetime, dt.date, dt.time]).to_numpy()
        if isd.any():
            issues.setdefault(name, {})["date"] = (np.flatnonzero(isd) + 1).tolist()
            text[isd] = s[isd].map(lambda v: v.isoformat(sep=" ") if isinstance(v, dt.datetime) else v.isoformat())
        out[name] = text
    return pd.DataFrame(out, dtype=object), issues


def detect_columns(columns, **given) -> dict[str, str | None]:
    return match_columns(columns, COLUMN_ALIASES, given, skip=("_row",))


# -- cells written by spreadsheets -----------------------------------------------------------
CODE_ROLES = ("id", "building", "phone")  # identifiers: every digit matters
_DOT_ZERO = r"^[+]?\d+\.0+$"
_SCIENTIFIC = r"^[+]?(\d+(?:\.\d*)?|\.\d+)[eE][+]?(\d+)$"


def repair_number_text(values: pd.Series, rows: np.ndarray, *, file: str, field_name: str
                       ) -> tuple[pd.Series, list[Note]]:
    """Identifier cells a spreadsheet wrote as a number: "13810000000.0" -> "13810000000" and
    "1.10108012001E+11" -> "110108012001" (warned); scientific notation that dropped digits
    ("1.10108E+15": only 6 of 16 digits left) is refused naming the row."""
    from decimal import Decimal
    txt = values.astype(str).str.strip()
    notes: list[Note] = []
    dot = txt.str.match(_DOT_ZERO).to_numpy()
    if dot.any():
        txt = txt.where(~dot, txt.str.replace(r"\.0+$", "", regex=True))
        notes.append(Note("imp_dot_zero", column=field_name, n=int(dot.sum()), row=int(rows[np.argmax(dot)])))
    sci = txt.str.extract(_SCIENTIFIC)
    has = sci[0].notna().to_numpy()
    if has.any():
        mant, exp = sci[0][has], sci[1][has].astype(int)
        digits = mant.str.replace(".", "", regex=False).str.lstrip("0").str.len()
        value = [Decimal(v) for v in txt[has]]
        ints = pd.Series([format(v.to_integral_value(), "f") if v == v.to_integral_value() else "" for v in value],
                         index=mant.index)
        # all digits kept: the mantissa has at least as many significant digits as the number
        ok = ints.ne("") & (digits.to_numpy() >= ints.str.lstrip("0").str.len().to_numpy())
        if not ok.all():
            i = int(np.flatnonzero(has)[np.argmax(~ok.to_numpy())])
            raise Refusal("imp_scientific_lost", file=file, row=int(rows[i]), field=field_name,
                          value=txt.iloc[i], digits=int(digits.iloc[int(np.argmax(~ok.to_numpy()))]))
        txt = txt.copy()
        txt[has] = ints.to_numpy()
        notes.append(Note("imp_scientific_repaired", column=field_name, n=int(has.sum()),
                          row=int(rows[np.argmax(has)])))
        del exp
    return txt, notes


def check_cells(ledger: pd.DataFrame, cols: dict, *, file: str) -> None:
    """Refuse cells of the columns in use that Excel damaged: numbers that lost digits, and dates
    where a house number, id or count belongs (e.g. 房号 "5-1" turned into 2026-05-01)."""
    issues = ledger.attrs.get("cell_issues") or {}
    for role, col in cols.items():
        found = issues.get(col) if col else None
        if not found:
            continue
        if found.get("lost"):
            r = found["lost"][0]
            raise Refusal("imp_lost_digits", file=file, row=r, field=col, n=len(found["lost"]))
        if found.get("date") and role != "tags":
            r = found["date"][0]
            value = ledger.loc[ledger["_row"].eq(r), col]
            raise Refusal("imp_excel_date", file=file, row=r, field=col,
                          value=value.iloc[0] if len(value) else "", n=len(found["date"]))


def occupied_rooms(new: pd.DataFrame, existing: pd.DataFrame, rows: np.ndarray, *, file: str,
                   room_field: str, replace: bool) -> tuple[pd.Series, int]:
    """One household per room: a second row for the same building, unit and room is refused; a
    stored household (other id) in a room the ledger fills is refused, or, with replace=True,
    marked for removal. Returns (mask over `existing` of rows to drop, count dropped)."""
    def key(df):
        unit = pd.Series(pd.array(df["unit"], dtype="Int64"), index=df.index).astype(str).str.replace("<NA>", "")
        room = df["room"].astype(object).where(df["room"].notna(), "").astype(str).str.strip().str.upper()
        bid = df["building_id"].astype(object).where(df["building_id"].notna(), "").astype(str)
        ok = bid.ne("") & room.ne("")
        k = bid + "|" + unit + "|" + room
        return k.where(ok, None)
    knew = key(new)
    dup = knew.notna() & knew.duplicated(keep=False)
    if dup.any():
        first = knew[dup].iloc[0]
        same = rows[(knew == first).to_numpy()].tolist()
        b, u, r = first.split("|")
        raise Refusal("imp_room_twice", file=file, row=int(same[0]), field=room_field,
                      rows=", ".join(map(str, same[:10])), building=b, unit=u or "—", room=r, n=int(dup.sum()))
    drop = pd.Series(False, index=existing.index)
    if len(existing) == 0:
        return drop, 0
    other = ~existing["id"].astype(str).isin(set(new["id"].astype(str)))
    kold = key(existing)
    hit = other & kold.notna() & kold.isin(set(knew.dropna()))
    if hit.any() and not replace:
        k = kold[hit].iloc[0]
        i = int(np.flatnonzero((knew == k).to_numpy())[0])
        b, u, r = k.split("|")
        raise Refusal("imp_room_occupied", file=file, row=int(rows[i]), field=room_field, building=b,
                      unit=u or "—", room=r, household=str(existing["id"][hit].iloc[0]),
                      n=int(hit.sum()))
    return hit, int(hit.sum())


# -- values ----------------------------------------------------------------------------------
def parse_tags(values: pd.Series, rows: np.ndarray, *, file: str = "", field_name: str = "tags",
               catalogue=None) -> pd.Series:
    """Lists of key-group keys from "空巢老人;残疾人" / "empty_nest_elderly, disabled" / English names
    (the shipped names and, with ``catalogue`` = Settings.catalogue(), a deployment's own)."""
    lookup = {}
    groups = list(_catalogue().key_groups) + (list(catalogue.key_groups) if catalogue is not None else [])
    for k in groups:
        for name in (k.key, k.zh, k.en):
            lookup[name.strip().lower()] = k.key
    allv = values.astype(str).str.strip()
    values = allv[allv.ne("")]  # most households have no tags
    # cells split on separators; English names contain spaces ("Empty-nest elderly"), so a cell is
    # first split without spaces and only cells that still fail are split on spaces too
    whole = values.str.split(r"[;；,，、|/]+", regex=True).explode().str.strip()
    whole = whole[whole.notna() & whole.ne("")]
    keys = whole.str.lower().map(lookup)
    flat = whole
    if keys.isna().any():
        fail = keys.index[keys.isna()].unique()
        spaced = values.loc[fail].str.split(TAG_SPLIT, regex=True).explode()
        spaced = spaced[spaced.notna() & spaced.ne("")]
        keep = ~keys.index.isin(fail)
        keys = pd.concat([keys[keep], spaced.str.lower().map(lookup)]).sort_index(kind="stable")
        flat = pd.concat([whole[keep], spaced]).sort_index(kind="stable")
    bad = keys.isna()
    if bad.any():
        i = bad.index[np.argmax(bad.to_numpy())]
        known = "、".join(f"{k.zh}/{k.key}" for k in (catalogue or _catalogue()).key_groups)
        raise DataError(f"unknown key-group tag (known: {known})", file=file,
                        row=int(rows[allv.index.get_loc(i)]), field=field_name)
    pairs = pd.DataFrame({"i": keys.index, "k": keys.to_numpy()}).drop_duplicates()
    grouped = pairs.groupby("i", sort=False)["k"].agg(list)
    return grouped.reindex(allv.index).map(lambda v: v if isinstance(v, list) else [])


def _ints(s: pd.Series, rows: np.ndarray, *, file: str, field_name: str, strip_text: bool = False) -> pd.Series:
    txt = s.astype(str).str.strip()
    if strip_text:  # "2单元" -> "2"
        txt = txt.str.replace(r"^(\d+)\s*\D*$", r"\1", regex=True)
    num = pd.to_numeric(txt.where(txt.ne(""), None), errors="coerce")
    bad = (txt.ne("") & (num.isna() | (num < 0) | (num.fillna(0) % 1 != 0))).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError("not a whole number", file=file, row=int(rows[i]), field=field_name)
    return num.astype("Int64")


# -- matching --------------------------------------------------------------------------------
def match_buildings(ledger: pd.DataFrame, buildings: pd.DataFrame, *, building: pd.Series | None,
                    address: pd.Series | None, compound_col: pd.Series | None,
                    compound: str | None = None) -> tuple[pd.Series, pd.Series, pd.DataFrame]:
    """(building_id per row or None, reason per unmatched row or None, parsed address frame)."""
    n = len(ledger)
    bid = pd.Series([None] * n, index=ledger.index, dtype=object)
    reason = pd.Series([None] * n, index=ledger.index, dtype=object)
    b = buildings
    if compound:
        want = normalise_compound(pd.Series([compound])).iloc[0]
        b = b[normalise_compound(b["compound"]).eq(want)]
    if building is not None:
        keys = pd.concat([
            pd.Series(b["id"].astype(str).to_numpy(), index=b["name"].astype(str).to_numpy()).loc[
                lambda s: ~s.index.duplicated(keep=False)],
            pd.Series(b["id"].astype(str).to_numpy(), index=b["code"].astype(str).to_numpy()),
            pd.Series(b["id"].astype(str).to_numpy(), index=b["id"].astype(str).to_numpy()),
        ])
        keys = keys[~keys.index.duplicated(keep="last")]  # id beats code beats name
        val = building.astype(str).str.strip()
        found = val.map(keys)
        bid = found.astype(object).where(found.notna(), None)
        reason = pd.Series(np.where(val.eq(""), "no building given", "building " + val + " not found"),
                           index=ledger.index, dtype=object).where(bid.isna(), None)
    parsed = pd.DataFrame({"compound": "", "building": None, "unit": pd.array([pd.NA] * n, dtype="Int64"),
                           "room": None}, index=ledger.index)
    if address is None and building is not None and bid.isna().any():
        # building values that are not an id/code/unique name ("3号楼" in several compounds):
        # match them like an address, within the compound column when there is one
        address = building.astype(str).where(bid.isna(), "")
        from_building = True
    else:
        from_building = False
    if address is not None:
        parsed = parse_addresses(address)
        hint = parsed["compound"]
        if compound_col is not None:
            cc = normalise_compound(compound_col)
            hint = cc.where(cc.ne(""), hint)
        todo = bid.isna() & address.astype(str).str.strip().ne("")
        no_parse = todo & parsed["building"].isna()
        if not from_building:
            reason = reason.where(~no_parse, "address has no building number (e.g. 3号楼)")
        todo &= parsed["building"].notna()
        bk = pd.DataFrame({"bid": b["id"].astype(str).to_numpy(),
                           "key": building_keys(b["name"], b["address"]).to_numpy(),
                           "bcomp": normalise_compound(b["compound"]).to_numpy(),
                           "baddr": normalise(b["address"]).to_numpy()})
        bk = bk[bk["key"].notna()]
        q = pd.DataFrame({"i": np.flatnonzero(todo.to_numpy()), "key": parsed["building"][todo].to_numpy(),
                          "hint": hint[todo].to_numpy()})
        pairs = q.merge(bk, on="key", how="inner")
        # compound check on the few distinct (hint, compound, address) combinations, then merged back
        combos = pairs[["hint", "bcomp", "baddr"]].drop_duplicates()
        ok = [h == "" or (c != "" and (c in h or h in c)) or (a != "" and h in a)
              for h, c, a in zip(combos["hint"], combos["bcomp"], combos["baddr"])]
        combos = combos.assign(ok=ok)
        pairs = pairs.merge(combos, on=["hint", "bcomp", "baddr"], how="left")
        pairs = pairs[pairs["ok"].fillna(False).astype(bool).to_numpy()]
        count = pairs.groupby("i")["bid"].nunique()
        single = pairs[pairs["i"].isin(count[count == 1].index)].drop_duplicates("i")
        idx = ledger.index[single["i"].to_numpy()]
        bid.loc[idx] = single["bid"].to_numpy()
        reason.loc[idx] = None
        amb = count[count > 1]
        amb_idx = ledger.index[amb.index.to_numpy()]
        reason.loc[amb_idx] = ("address matches " + amb.astype(str).to_numpy()
                               + " buildings numbered " + parsed["building"].loc[amb_idx].to_numpy()
                               + "; give the compound (小区) column")
        none_idx = ledger.index[np.setdiff1d(q["i"].to_numpy(), count.index.to_numpy())]
        reason.loc[none_idx] = ("no building numbered " + parsed["building"].loc[none_idx].astype(str)
                                + np.where(hint.loc[none_idx].ne(""), " in " + hint.loc[none_idx], ""))
    reason = reason.where(bid.isna(), None)
    reason = reason.where(reason.notna() | bid.notna(), "no building or address given")
    return bid, reason, parsed


# -- the import ------------------------------------------------------------------------------
def build_households(bundle, ledger: pd.DataFrame, *, file: str = "", compound: str | None = None,
                     mode: str = "merge", replace_rooms: bool = False, existing: pd.DataFrame | None = None,
                     user: str = "", now: str | None = None, catalogue=None,
                     **columns) -> tuple[dict, HouseholdImport]:
    """Pure part: new households and audit_log layers and the report. columns: id=, building=,
    address=, compound_col=, unit=, room=, persons=, tags=, head_name=, phone= (file column names).

    mode "merge" keeps stored households (a row with a stored id replaces it), "replace" replaces
    all of them. A ledger row for a room that holds a stored household with another id is
    refused, or replaces that household with replace_rooms=True (counted in `replaced`).
    `existing`: the stored households to merge with (default bundle.households). `catalogue`: the
    key groups in force (Settings.catalogue(): a deployment's own names are read as tags too)."""
    if mode not in ("merge", "replace"):
        raise DataError(f"unknown mode {mode!r}; use merge or replace", file=file)
    given = {k: v for k, v in columns.items() if v}
    if "compound_col" in given:
        given["compound"] = given.pop("compound_col")
    cols = detect_columns(ledger.columns, **given)
    missing = []
    if cols["id"] is None:
        missing.append(ROLE_LABELS["id"])
    if cols["building"] is None and cols["address"] is None:
        missing.append(f"{ROLE_LABELS['building']} or {ROLE_LABELS['address']}")
    if missing:
        raise DataError(f"missing required column(s): {'; '.join(missing)} (found: "
                        f"{', '.join(c for c in ledger.columns if c != '_row')})", file=file,
                        field=", ".join(missing))
    rows = ledger["_row"].to_numpy()
    warnings: list = [Note("imp_header_repaired", column=c, role=ROLE_LABELS.get(r, r))
                      for r, c in repaired_headers(cols)]
    check_cells(ledger, cols, file=file)
    ledger = ledger.copy()
    for role in CODE_ROLES:
        if cols[role]:
            ledger[cols[role]], notes = repair_number_text(ledger[cols[role]], rows, file=file, field_name=cols[role])
            warnings += notes
    ids = ledger[cols["id"]].astype(str).str.strip()
    if ids.eq("").any():
        i = int(np.flatnonzero(ids.eq("").to_numpy())[0])
        raise DataError("household id is empty", file=file, row=int(rows[i]), field=cols["id"])
    dup = ids.duplicated(keep=False).to_numpy()
    if dup.any():
        first = ids[dup].iloc[0]
        drows = rows[(ids == first).to_numpy()].tolist()
        total = int(dup.sum())
        raise DataError(f"duplicate household id {first!r} in rows {', '.join(map(str, drows[:10]))}"
                        f" ({total} rows share an id with another row)", file=file, row=int(drows[0]),
                        field=cols["id"])
    col = lambda role: ledger[cols[role]] if cols[role] else None  # noqa: E731
    bid, reason, parsed = match_buildings(ledger, bundle.buildings, building=col("building"),
                                          address=col("address"), compound_col=col("compound"), compound=compound)
    unit = _ints(col("unit"), rows, file=file, field_name=cols["unit"], strip_text=True) if cols["unit"] \
        else parsed["unit"]
    unit = unit.where(unit.notna(), parsed["unit"]) if cols["unit"] else unit
    room = col("room").astype(str).str.strip() if cols["room"] else pd.Series("", index=ledger.index)
    room = room.where(room.ne(""), parsed["room"]).astype(object)
    room = room.where(room.notna() & room.ne(""), None)
    persons = _ints(col("persons"), rows, file=file, field_name=cols["persons"]) if cols["persons"] \
        else pd.Series(pd.NA, index=ledger.index, dtype="Int64")
    tags = parse_tags(col("tags"), rows, file=file, field_name=cols["tags"], catalogue=catalogue) if cols["tags"] \
        else pd.Series([[] for _ in range(len(ledger))], index=ledger.index, dtype=object)
    blank_none = lambda s: s.astype(str).str.strip().where(s.astype(str).str.strip().ne(""), None)  # noqa: E731
    hh = pd.DataFrame({"id": ids.to_numpy(), "building_id": bid.to_numpy(), "unit": unit.array,
                       "room": room.to_numpy(), "persons": persons.array, "tags": tags.to_numpy(),
                       "head_name": blank_none(col("head_name")).to_numpy() if cols["head_name"] else None,
                       "phone": blank_none(col("phone")).to_numpy() if cols["phone"] else None,
                       "synthetic": False})
    refuse_masked(hh, {"head_name": cols["head_name"], "phone": cols["phone"]}, file=file, row_numbers=rows)
    if not cols["persons"]:
        warnings.append(Note("imp_no_persons"))
    existing = bundle.households if existing is None else existing
    if mode == "replace":
        occupied_rooms(hh, existing.iloc[0:0], rows, file=file, room_field=cols["room"] or "room", replace=False)
        replaced, by_room = len(existing), 0
        new = hh
    else:
        drop, by_room = occupied_rooms(hh, existing, rows, file=file, room_field=cols["room"] or "room",
                                       replace=replace_rooms)
        clash = existing["id"].astype(str).isin(set(hh["id"])) | drop
        replaced = int(clash.sum())
        new = pd.concat([existing[~clash.to_numpy()], hh], ignore_index=True)
        if by_room:
            warnings.append(Note("imp_rooms_replaced", n=by_room))
    unmatched = pd.DataFrame({"row": rows[bid.isna().to_numpy()], "reason": reason[bid.isna()].to_numpy()})
    now = now or datetime.now(timezone.utc).isoformat(timespec="seconds")
    audit = pd.DataFrame([{"ts": now, "user": user, "action": "import_households", "object": Path(file).name,
                           "detail": f"{len(hh)} households ({mode}), {len(hh) - len(unmatched)} matched, "
                                     f"{len(unmatched)} without building, {replaced} replaced"}])
    layers = {"households": new, "audit_log": audit}  # audit_log: the rows to append
    report = HouseholdImport("", len(hh), len(hh) - len(unmatched), hh, unmatched, replaced, warnings,
                             replaced_rooms=by_room)
    return layers, report


def import_households(store, path, *, sheet=None, dry_run: bool = False, max_rows: int = MAX_ROWS,
                      **kw) -> HouseholdImport:
    """Read a ledger and write its households to `store` atomically (replace_layers with the version
    loaded). Keyword arguments as build_households. On any error the store is unchanged."""
    bundle = store.load(("households", "buildings", "meta"))
    ledger = read_table(path, sheet=sheet, max_rows=max_rows)
    layers, report = build_households(bundle, ledger, file=str(path), **kw)
    # (a masked-placeholder check, e.g. data.privacy refusing "梁**" / "199****9531", belongs here:
    #  it sees report.households before anything is written)
    if not dry_run:
        audit = layers.pop("audit_log")
        report.version = store.replace_layers(layers, expected_version=bundle.version, audit=audit)
    return report
