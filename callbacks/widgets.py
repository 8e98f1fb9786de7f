"""Dash components with their own texts in the UI language (no view imports: every view may use them)."""
from __future__ import annotations

from dash import dcc

from minsheng.i18n import t


def dropdown(lang: str, **kw) -> dcc.Dropdown:
    """A dropdown whose own texts (search box, "no options") are in the UI language."""
    labels = {"search": t("dd_search", lang), "select_all": t("dd_select_all", lang),
              "deselect_all": t("dd_deselect_all", lang), "selected_count": t("dd_selected_count", lang),
              "clear_search": t("dd_clear_search", lang), "clear_selection": t("dd_clear_selection", lang),
              "no_options_found": t("dd_no_options", lang)}
    return dcc.Dropdown(labels=labels, **kw)
