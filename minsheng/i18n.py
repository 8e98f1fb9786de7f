"""UI text in Chinese (default) and English. One place for every user-facing string."""
from __future__ import annotations

from types import MappingProxyType

_TEXT = {
    "title": ("民生地图", "Minsheng Map"),
    "subtitle": ("社区网格化管理 · 全覆盖、无缝隙 · 十分钟服务圈",
                 "Community grid management · full coverage, no gaps · ten-minute service circle"),
    "tab_overview": ("总览", "Overview"),
    "tab_coverage": ("网格覆盖检查", "Grid coverage"),
    "tab_circle": ("十分钟服务圈", "Service circle"),
    "tab_planner": ("网格规划", "Planner"),
    "layers": ("图层", "Layers"),
    "layer_communities": ("社区", "Communities"),
    "layer_level1": ("一级网格", "Level-1 grids"),
    "layer_level2": ("二级网格", "Level-2 grids"),
    "layer_buildings": ("楼栋（按网格着色）", "Buildings (by grid)"),
    "layer_streets": ("街巷", "Streets"),
    "layer_services": ("服务点", "Service points"),
    "service_types": ("服务点类型", "Service types"),
    "language": ("语言", "Language"),
    "plan": ("网格方案", "Plan"),
    "click_grid": ("点击地图上的网格查看详情", "Click a grid on the map for details"),
    "grid": ("网格", "Grid"),
    "community": ("社区", "Community"),
    "level1": ("一级网格", "Level-1 grid"),
    "level2": ("二级网格", "Level-2 grid"),
    "code": ("网格编码", "Grid code"),
    "head": ("网格长/网格员", "Grid head / worker"),
    "phone": ("联系电话", "Phone"),
    "buildings": ("楼栋", "Buildings"),
    "households": ("户数", "Households"),
    "persons": ("人数", "Persons"),
    "key_groups": ("重点人群", "Key groups"),
    "band": ("户数标准", "Household band"),
    "band_ok": ("在标准内", "within band"),
    "band_low": ("低于标准", "below band"),
    "band_high": ("高于标准", "above band"),
    "missing": ("未配备", "not assigned"),
    "synthetic": ("住户数据为程序生成的合成数据，并非真实人员信息", "Household data are synthetic (generated), not real people"),
    "summary": ("本区概况", "Area summary"),
    "communities_n": ("社区数", "Communities"),
    "grids1_n": ("一级网格数", "Level-1 grids"),
    "grids2_n": ("二级网格数", "Level-2 grids"),
    "service_points_n": ("服务点数", "Service points"),
    "source": ("数据来源", "Data source"),
    "legend_buildings": ("楼栋（颜色=所属二级网格）", "Buildings (colour = level-2 grid)"),
    "none": ("无", "none"),
    "count": ("数量", "Count"),
    "share": ("占比", "Share"),
    "error": ("出错了", "Error"),
}
TEXT = MappingProxyType({k: MappingProxyType({"zh": v[0], "en": v[1]}) for k, v in _TEXT.items()})


def t(key: str, lang: str = "zh") -> str:
    entry = TEXT.get(key)
    if entry is None:
        return key
    return entry.get(lang, entry["zh"])
