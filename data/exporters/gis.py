"""GeoPackage / GeoJSON export of chosen layers (EPSG:4326), personal data masked by default.

Layers: the contract's layer names; "grids" and "assignments" are limited to one plan (the
adopted one unless plan_id is given) and buildings carry that plan's grid_id / level1_id /
community_id. GeoJSON (RFC 7946) holds map layers only: one file for one layer, or
<stem>.<layer>.geojson beside `path` for several.
"""
from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio

from data.bundle import DataError
from data.exporters.common import building_grids, in_force, resolve_plan
from data.privacy import mask_grids, mask_households
from data.schema import LAYER_BY_NAME

DEFAULT_LAYERS = ("communities", "grids", "buildings", "service_points")


def export_frames(bundle, layers=DEFAULT_LAYERS, plan_id: str | None = None, *,
                  allow_personal: bool = False, catalogue=None) -> dict[str, pd.DataFrame]:
    plan_id = resolve_plan(bundle, plan_id)
    out = {}
    for name in layers:
        if name not in LAYER_BY_NAME:
            raise DataError(f"unknown layer {name!r} (layers: {', '.join(LAYER_BY_NAME)})", field="layers")
        df = bundle.layers[name]
        if name == "grids":
            df = mask_grids(bundle.plan_grids(plan_id) if plan_id else df.iloc[0:0], allow_personal)
        elif name == "assignments":
            df = bundle.plan_assignments(plan_id) if plan_id else df.iloc[0:0]
        elif name == "plans" and plan_id:
            df = df[df["id"] == plan_id]
        elif name == "buildings":
            df = df.merge(building_grids(bundle, plan_id).rename(columns={"building_id": "id"}), on="id", how="left")
            df = gpd.GeoDataFrame(df, geometry="geometry", crs=4326)
        elif name == "households":
            df = mask_households(df, allow_personal, in_force(catalogue).sensitive_keys)
        elif name == "audit_log" and not allow_personal:
            raise DataError("the audit log is exported only with allow_personal", field="layers")
        out[name] = df.reset_index(drop=True)
    return out


def _prepare(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for c in out.columns:
        if c != "geometry" and out[c].map(lambda v: isinstance(v, list)).any():
            out[c] = out[c].map(lambda v: ";".join(v) if isinstance(v, list) else v)
    return out


def export_gis(bundle, path, layers=DEFAULT_LAYERS, plan_id: str | None = None, *, fmt: str | None = None,
               allow_personal: bool = False, catalogue=None) -> list[Path]:
    """Write layers to a GeoPackage (one file, atomically) or GeoJSON file(s). Returns the paths."""
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt not in ("gpkg", "geojson", "json"):
        raise DataError(f"GIS export format must be gpkg or geojson, got {fmt!r}", file=str(path))
    frames = export_frames(bundle, layers, plan_id, allow_personal=allow_personal, catalogue=catalogue)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if fmt == "gpkg":
            fd, tmp = tempfile.mkstemp(suffix=".gpkg", dir=path.parent, prefix=f".{path.stem}-")
            os.close(fd)
            os.unlink(tmp)
            try:
                for name, df in frames.items():
                    df = _prepare(df)
                    if isinstance(df, gpd.GeoDataFrame):
                        pyogrio.write_dataframe(df, tmp, layer=name, driver="GPKG", promote_to_multi=None)
                    else:
                        pyogrio.write_dataframe(pd.DataFrame(df), tmp, layer=name, driver="GPKG")
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            return [path]
        spatial = {n: df for n, df in frames.items() if isinstance(df, gpd.GeoDataFrame)}
        flat = sorted(set(frames) - set(spatial))
        if flat:
            raise DataError(f"GeoJSON holds map layers only; export {', '.join(flat)} as gpkg or xlsx",
                            file=str(path), field="layers")
        for name, df in spatial.items():
            target = path if len(spatial) == 1 else path.with_name(f"{path.stem}.{name}.geojson")
            fd, tmp = tempfile.mkstemp(suffix=".geojson", dir=path.parent, prefix=f".{target.stem}-")
            os.close(fd)
            os.unlink(tmp)
            try:
                pyogrio.write_dataframe(_prepare(df).to_crs(4326), tmp, driver="GeoJSON", RFC7946="YES")
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            written.append(target)
    return written
