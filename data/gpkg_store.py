"""GeoPackage store: one .gpkg file (OGC standard, opens in QGIS).

Writes go to a temporary file beside the target that atomically replaces it, so
a failed write leaves the file exactly as it was. A lock file serialises writers.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio

from data.bundle import Bundle, DataError, conform, empty_frame, make_bundle
from data.schema import LAYERS, LAYER_BY_NAME
from data.store import ConflictError

FIXED_DATE = "2026-01-01T00:00:00.000Z"  # reproducible GeoPackage timestamps


class GpkgStore:
    def __init__(self, path):
        self.path = Path(path)

    # -- reading -----------------------------------------------------------
    def version(self) -> str:
        h = hashlib.blake2b(digest_size=8)
        with open(self.path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()

    def load(self) -> Bundle:
        if not self.path.exists():
            raise DataError("file not found", file=str(self.path))
        present = {name for name, _ in pyogrio.list_layers(self.path)}
        layers = {}
        for layer in LAYERS:
            if layer.name not in present:
                continue
            df = pyogrio.read_dataframe(self.path, layer=layer.name, read_geometry=bool(layer.geometry))
            if not layer.geometry and "geometry" in df.columns:
                df = pd.DataFrame(df.drop(columns="geometry"))
            layers[layer.name] = df
        return make_bundle(layers, source=str(self.path), file=str(self.path), version=self.version())

    # -- writing -----------------------------------------------------------
    @contextlib.contextmanager
    def _lock(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(str(self.path) + ".lock", "w") as lf:
            fcntl.flock(lf, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lf, fcntl.LOCK_UN)

    def write_all(self, bundle: Bundle) -> None:
        with self._lock():
            self._atomic_write({**bundle.layers}, start_from=None)

    def replace_layers(self, layers: dict, *, expected_version: str | None = None) -> str:
        with self._lock():
            if expected_version is not None and self.path.exists() and self.version() != expected_version:
                raise ConflictError(f"{self.path}: the data changed since it was loaded "
                                    f"(expected version {expected_version}, found {self.version()}); reload and retry")
            self._atomic_write(layers, start_from=self.path if self.path.exists() else None)
            return self.version()

    # -- plan operations (implemented in data/plan_ops.py) ------------------
    def save_plan(self, plan_id: str, grids_gdf, assignments_df, expected_plan_version: int, user: str) -> int:
        from data.plan_ops import gpkg_save_plan
        return gpkg_save_plan(self, plan_id, grids_gdf, assignments_df, expected_plan_version, user)

    def append_audit(self, user: str, action: str, object: str, detail: str = "") -> None:
        from data.plan_ops import gpkg_append_audit
        gpkg_append_audit(self, user, action, object, detail)

    def _atomic_write(self, layers: dict, start_from: Path | None) -> None:
        checked = {name: conform(name, df, file=str(self.path)) for name, df in layers.items()}
        fd, tmp = tempfile.mkstemp(suffix=".gpkg", dir=self.path.parent, prefix=f".{self.path.stem}-")
        os.close(fd)
        tmp = Path(tmp)
        try:
            if start_from is not None:
                shutil.copyfile(start_from, tmp)
            else:
                tmp.unlink()
            existing = {n for n, _ in pyogrio.list_layers(tmp)} if tmp.exists() else set()
            for layer in LAYERS:
                if layer.name in checked:
                    _write_layer(tmp, layer.name, checked[layer.name], exists=layer.name in existing)
                elif layer.name not in existing:
                    _write_layer(tmp, layer.name, empty_frame(layer), exists=False)
                existing = existing | {layer.name}
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise


def _write_layer(path: Path, name: str, df: pd.DataFrame, exists: bool) -> None:
    layer = LAYER_BY_NAME[name]
    out = df.copy()
    for col, t in layer.columns:
        if t == "json":
            import json
            out[col] = out[col].map(lambda v: json.dumps(list(v) if v is not None else [], ensure_ascii=False))
    kw = {"layer": name, "driver": "GPKG", "OVERWRITE": "YES" if exists else "NO"}
    with warnings.catch_warnings(), pyogrio_config(OGR_CURRENT_DATE=FIXED_DATE):
        warnings.simplefilter("ignore", RuntimeWarning)
        if layer.geometry:
            pyogrio.write_dataframe(gpd.GeoDataFrame(out, geometry="geometry", crs="EPSG:4326"), path,
                                    geometry_type=layer.geometry, promote_to_multi=layer.geometry.startswith("Multi"),
                                    **kw)
        else:
            pyogrio.write_dataframe(pd.DataFrame(out), path, **kw)


@contextlib.contextmanager
def pyogrio_config(**options):
    old = pyogrio.get_gdal_config_option
    prev = {k: old(k) for k in options}
    pyogrio.set_gdal_config_options(options)
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options(prev)
