"""Excel workbook of per-grid tables: README, community rollup, one sheet per grid level."""
from __future__ import annotations

import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from data.exporters.common import grid_counts, households_are_synthetic, in_force, neutralise_xlsx, resolve_plan
from data.privacy import mask_grids
from data.schema import ATTRIBUTION, SYNTHETIC_NOTICE_EN, SYNTHETIC_NOTICE_ZH

SHEETS = {"zh": ("说明", "社区汇总", "一级网格", "二级网格"), "en": ("README", "Communities", "Level-1 grids", "Level-2 grids")}
HEADERS = {
    "zh": {"id": "编号", "code": "网格编码", "name": "名称", "parent": "上级", "head_name": "负责人", "head_phone": "电话",
           "buildings": "楼栋数", "households": "户数", "persons": "人数", "street": "街道", "band": "户数状态"},
    "en": {"id": "ID", "code": "Code", "name": "Name", "parent": "Parent", "head_name": "Head", "head_phone": "Phone",
           "buildings": "Buildings", "households": "Households", "persons": "Persons", "street": "Street",
           "band": "Households band"},
}


BAND_LABELS = {"zh": {"low": "偏少", "ok": "正常", "high": "偏多"}, "en": {"low": "low", "ok": "ok", "high": "high"}}


def grid_tables(bundle, plan_id: str | None = None, *, allow_personal: bool = False,
                lang: str = "zh", bands=None, catalogue=None) -> dict[str, pd.DataFrame]:
    """The workbook's tables (sheet name -> frame), without writing anything. bands: Settings
    (or anything geo.coverage accepts) for the households band per level; None = defaults."""
    plan_id = resolve_plan(bundle, plan_id)
    counts = grid_counts(bundle, plan_id, allow_personal, bands, catalogue)
    for k in ("level1", "level2", "community"):
        counts[k] = counts[k].assign(band=counts[k]["band"].map(BAND_LABELS[lang]))
    groups = {k.key: k.label(lang) for k in in_force(catalogue).key_groups if allow_personal or not k.sensitive}
    h = HEADERS[lang]
    grids = mask_grids(bundle.plan_grids(plan_id), allow_personal) if plan_id is not None else bundle.grids.iloc[0:0]
    names = dict(zip(grids["id"], grids["name"]))
    names.update(dict(zip(bundle.communities["id"], bundle.communities["name"])))
    tables = {}
    for level, sheet in ((1, SHEETS[lang][2]), (2, SHEETS[lang][3])):
        g = pd.DataFrame(grids[grids["level"] == level].drop(columns="geometry"))
        c = counts[f"level{level}"]
        t = g[["id", "code", "name", "parent_id", "head_name", "head_phone"]].merge(c, on="id", how="left")
        t["parent_id"] = t["parent_id"].map(names).fillna(t["parent_id"])
        t = t.sort_values(["code", "id"], na_position="last").reset_index(drop=True)
        num = ["buildings", "households", "persons", *groups]
        t[num] = t[num].fillna(0).astype(int)
        tables[sheet] = t.rename(columns={"parent_id": h["parent"], **h, **groups})
    c = bundle.communities
    ct = pd.DataFrame(c.drop(columns="geometry"))[["id", "code", "name", "street"]].merge(
        counts["community"], on="id", how="left")
    num = ["buildings", "households", "persons", *groups]
    ct[num] = ct[num].fillna(0).astype(int)
    for level in (1, 2):
        n = grids[grids["level"] == level]
        parent = n["parent_id"] if level == 1 else n["parent_id"].map(dict(zip(grids["id"], grids["parent_id"])))
        ct.insert(3 + level, f"l{level}", ct["id"].map(parent.value_counts()).fillna(0).astype(int))
    ct = ct.rename(columns={"l1": "一级网格数" if lang == "zh" else "Level-1 grids",
                            "l2": "二级网格数" if lang == "zh" else "Level-2 grids", **h, **groups})
    tables[SHEETS[lang][1]] = ct
    un = counts["unassigned"].iloc[0]
    plan_name = ""
    if plan_id is not None:
        p = bundle.plans[bundle.plans["id"] == plan_id].iloc[0]
        plan_name = f"{p['name']} ({plan_id}, {p['status']})"
    synthetic = households_are_synthetic(bundle)
    lines = [
        ("民生地图 网格统计表" if lang == "zh" else "Minsheng Map - grid tables", ""),
        ("方案 Plan", plan_name),
        ("导出时间 Exported", datetime.now(timezone.utc).isoformat(timespec="seconds")),
        ("地图数据 Map data", ATTRIBUTION),
        ("住户数据 Households", f"{SYNTHETIC_NOTICE_ZH} / {SYNTHETIC_NOTICE_EN}" if synthetic
         else "导入的真实台账数据 / imported ledger data (real people)"),
        ("个人信息 Personal data", "已包含（已授权）/ included (allowed)" if allow_personal
         else "已脱敏，敏感人群类别未列出 / masked; sensitive key groups omitted"),
        ("未分配楼栋 Buildings without grid", int(un["buildings_without_grid"])),
        ("未分配住户 Households without grid", int(un["households_without_grid"])),
        ("无楼栋住户 Households without building", int(un["households_without_building"])),
    ]
    readme = pd.DataFrame(lines, columns=["项目 Item", "内容 Value"])
    return {SHEETS[lang][0]: readme, **{k: tables[k] for k in SHEETS[lang][1:]}}


def export_excel(bundle, path, plan_id: str | None = None, *, allow_personal: bool = False,
                 lang: str = "zh", bands=None, catalogue=None) -> Path:
    """Write the workbook to `path` (atomically: a temporary file then rename)."""
    path = Path(path)
    tables = grid_tables(bundle, plan_id, allow_personal=allow_personal, lang=lang, bands=bands, catalogue=catalogue)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".xlsx", dir=path.parent, prefix=f".{path.stem}-")
    os.close(fd)
    try:
        with pd.ExcelWriter(tmp, engine="openpyxl") as xw:
            for sheet, df in tables.items():
                df.to_excel(xw, sheet_name=sheet, index=False)
                ws = xw.sheets[sheet]
                neutralise_xlsx(ws)  # user-controlled names/heads are text, never live formulas
                for col in ws.columns:
                    width = max(len(str(c.value or "")) for c in col[:200])
                    ws.column_dimensions[col[0].column_letter].width = min(60, max(8, width * 1.6))
                ws.freeze_panes = "A2"
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
