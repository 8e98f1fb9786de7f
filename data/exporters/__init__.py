"""Exporters: GeoPackage/GeoJSON (gis), Excel tables (excel), offline HTML map (html), PNG/PDF (image).

Every exporter masks personal data unless allow_personal=True (data/privacy.py). An export that
includes personal data is recorded in the audit log with record_export().
"""
from __future__ import annotations

from pathlib import Path



def record_export(store, *, fmt: str, out, user: str = "", allow_personal: bool = False,
                  plan_id: str | None = None) -> str | None:
    """Append an audit_log row for an export with personal data (DESIGN: Trust). Returns the new
    store version, or None when nothing was recorded (masked exports are not logged)."""
    if not allow_personal:
        return None
    store.append_audit(user, "export_personal", plan_id or "", f"{fmt} -> {Path(out).name}")
    return store.version()
