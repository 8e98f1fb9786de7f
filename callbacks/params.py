"""The parameters of one map view, read from the controls (hashable: used as cache keys)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ViewParams:
    view: str = "overview"
    plan_id: str = ""
    lang: str = "zh"
    layers: tuple = ()
    stypes: tuple = ()
    level: int = 2
    stype: str = ""
    minutes: int = 10
    speed: float = 80.0
    selected: str | None = None
    edits: str = "[]"          # planner: applied edits as canonical JSON
    selection: tuple = ()      # planner: selected building ids
    compare: str = ""          # planner: plan to diff against
    tier: str = "10min"        # life-circle check: tier shown
    profile: str = "general"   # life-circle check: walking profile the map is coloured for
    closed: tuple = ()         # closed compound ids (crossed only at gates)
    shut: tuple = ()           # shut gate ids
    building: str = ""         # circle view: clicked building ("why outside")
    siting: str = ""           # circle view: siting scenario parameters (JSON)

    def without_selection(self) -> "ViewParams":
        from dataclasses import replace
        return replace(self, selected=None, selection=(), building="")


PANEL_ROWS = 100  # a side-panel table lists at most this many rows (a district has 20,000 grids)


def more_rows(total: int, lang: str):
    """The hint under a table cut at PANEL_ROWS rows ("first 100 of 2,345"), or None."""
    from dash import html
    from minsheng.i18n import t
    if total <= PANEL_ROWS:
        return None
    return html.P(t("rows_shown", lang).format(n=PANEL_ROWS, total=f"{total:,}"), className="hint rows-shown")
