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

    def without_selection(self) -> "ViewParams":
        from dataclasses import replace
        return replace(self, selected=None, selection=())
