"""The Store protocol: where a dataset lives. GeoPackage (embedded default) and PostGIS implement it."""
from __future__ import annotations

from typing import Protocol, runtime_checkable

from data.bundle import Bundle


class ConflictError(RuntimeError):
    """A save based on a stale version was refused; nothing was written."""


@runtime_checkable
class Store(Protocol):
    def load(self) -> Bundle: ...

    def version(self) -> str: ...

    def write_all(self, bundle: Bundle) -> None:
        """Replace the whole dataset atomically: on any error the store is left as it was."""

    def replace_layers(self, layers: dict, *, expected_version: str | None = None) -> str:
        """Replace some layers in one transaction; refuse with ConflictError when the
        store's version is not expected_version. Returns the new version."""

    def save_plan(self, plan_id: str, grids_gdf, assignments_df, expected_plan_version: int, user: str) -> int:
        """Replace one plan's grids and assignments if plans.version is still
        expected_plan_version (else ConflictError, nothing written); bump it, write an
        audit row; returns the new plan version. See data/plan_ops.py."""

    def append_audit(self, user: str, action: str, object: str, detail: str = "") -> None:
        """Append one row to audit_log (no personal data in detail)."""


def open_store(settings) -> Store:
    if settings.dsn:
        from data.postgis_store import PostgisStore
        return PostgisStore(settings.dsn)
    from data.gpkg_store import GpkgStore
    return GpkgStore(settings.data_path)
