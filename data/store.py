"""The Store protocol: where a dataset lives. GeoPackage (embedded default) and PostGIS
implement it, both through the one write model of data/sqlstore.py.

``open_store(settings)`` is the one way to open a store, for the app and every CLI command:
``--dsn`` / ``DATABASE_URL`` (PostGIS) wins over ``--data`` (a GeoPackage); neither opens the
shipped sample (a working copy of it: see minsheng.settings.sample_working_copy).
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable


class ConflictError(RuntimeError):
    """A save based on a stale version was refused; nothing was written."""


class QuarterFrozen(ConflictError):
    """A second freeze of a quarter's snapshot was refused: snapshots are write-once and the
    stored one was kept as it was (data/snapshots.py). ``text(lang)`` words it for the UI."""

    def __init__(self, quarter: str, source: str = ""):
        self.quarter = str(quarter)
        super().__init__(f"{source + ': ' if source else ''}the snapshot of {self.quarter} is already frozen; "
                         f"snapshots are write-once, the stored one was kept and nothing was written")

    def text(self, lang: str) -> str:
        from minsheng.i18n import t
        return t("pack_already_frozen", lang).format(quarter=self.quarter)


@runtime_checkable
class Store(Protocol):
    def version(self) -> str:
        """The dataset version: one cheap indexed read."""

    def read_model(self, previous=None):
        """What a dashboard process keeps per dataset version (no household rows, users or
        audit log); unchanged layers are reused from ``previous``."""

    def load(self, layers: tuple[str, ...] | None = None):
        """The whole dataset from one snapshot (CLI, exports, copies between stores)."""

    def households(self, building_ids): ...

    def grid_households(self, plan_id: str, grid_id: str): ...

    def write_all(self, bundle) -> None:
        """Replace the whole dataset in one transaction: on any error the store is left as it was."""

    def replace_layers(self, layers: dict, *, expected_version: str | None = None) -> str:
        """Replace some layers in one transaction; refuse with ConflictError when the store's
        version is not expected_version. Returns the new version."""

    def save_plan(self, plan_id: str, grids_gdf, assignments_df, expected_plan_version: int, user: str,
                  **kw) -> int:
        """Replace one plan's grids and assignments if plans.version is still
        expected_plan_version (else ConflictError, nothing written); bump it, write an
        audit row; returns the new plan version."""

    def append_audit(self, user: str, action: str, object: str, detail: str = "") -> None:
        """Append one row to audit_log (no personal data in detail)."""


def open_store(settings) -> Store:
    if settings.dsn:
        from data.postgis_store import PostgisStore
        return PostgisStore(settings.dsn)
    from data.gpkg_store import GpkgStore
    return GpkgStore(settings.data_path)
