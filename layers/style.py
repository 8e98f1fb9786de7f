"""Colours and sizes shared by dashboard and export layers."""
from __future__ import annotations

GRID_PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1",
                "#ff9da7", "#9c755f", "#86bcb6", "#a0cbe8", "#ffbe7d", "#8cd17d", "#f1ce63")
COMMUNITY_LINE = "#7b1e1e"
LEVEL1_LINE = "#2b2b2b"
LEVEL2_LINE = "#555555"
STREET_LINE = "#b8b8b8"
MAJOR_STREET_LINE = "#8a8a8a"
BAND_COLORS = {"low": "#5dade2", "ok": "#58d68d", "high": "#ec7063"}
NOT_REACHED = "#d62728"
REACHED = "#2ca02c"
MAP_STYLE = "white-bg"  # drawn offline: no tiles, our own streets and buildings
# counts (households, a key group) in quantile classes: light to dark
SEQUENTIAL = ("#eff3ff", "#c6dbef", "#9ecae1", "#6baed6", "#3182bd", "#08519c")
# shares (within the circle, meeting the life-circle tier): red (low) to green (high)
SHARE_BREAKS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0000001)
SHARE_COLORS = ("#d7191c", "#fdae61", "#ffffbf", "#a6d96a", "#1a9641")
HIGHLIGHT = "#ffd400"
