"""An immutable loaded dataset with a version, and conversion to/from the data contract."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace

import geopandas as gpd
import numpy as np
import pandas as pd

from data.schema import LAYER_BY_NAME, LAYERS, Layer

CRS = "EPSG:4326"


class DataError(ValueError):
    """Bad input: names the file, the row and the field."""

    def __init__(self, message: str, *, file: str = "", layer: str = "", row: int | None = None,
                 field: str = ""):
        self.file, self.layer, self.row, self.field = file, layer, row, field
        where = ", ".join(p for p in (
            f"file {file}" if file else "", f"layer {layer}" if layer else "",
            f"row {row}" if row is not None else "", f"field {field}" if field else "") if p)
        super().__init__(f"{where}: {message}" if where else message)


def empty_frame(layer: Layer) -> pd.DataFrame:
    cols = {c: pd.Series([], dtype=_pandas_dtype(t)) for c, t in layer.columns}
    df = pd.DataFrame(cols)
    if layer.geometry:
        return gpd.GeoDataFrame(df, geometry=gpd.GeoSeries([], crs=CRS), crs=CRS)
    return df


def _pandas_dtype(t: str):
    return {"int": "Int64", "float": "float64", "bool": "bool", "str": "object", "json": "object",
            "datetime": "object"}[t]


def conform(layer_name: str, df: pd.DataFrame, *, file: str = "") -> pd.DataFrame:
    """Return df with exactly the contract's columns and dtypes; raise DataError naming row and field."""
    layer = LAYER_BY_NAME[layer_name]
    out = {}
    for col, t in layer.columns:
        if col not in df.columns:
            if t in ("str", "json"):
                out[col] = pd.Series([None] * len(df), index=df.index, dtype=object)
                continue
            if t == "bool":
                out[col] = pd.Series(False, index=df.index)
                continue
            out[col] = pd.Series(pd.NA, index=df.index, dtype=_pandas_dtype(t))
            continue
        s = df[col]
        try:
            if t == "int":
                out[col] = pd.to_numeric(s, errors="raise").astype("Int64")
            elif t == "float":
                out[col] = pd.to_numeric(s, errors="raise").astype("float64")
            elif t == "bool":
                out[col] = s.fillna(False).astype(bool)
            elif t == "json":
                out[col] = s.map(lambda v: v if isinstance(v, list) else (json.loads(v) if isinstance(v, str) and v else []))
            else:
                obj = s.astype(object).where(s.notna(), None)
                if pd.api.types.infer_dtype(obj, skipna=True) not in ("string", "empty"):
                    obj = obj.map(lambda v: v if v is None else str(v))
                out[col] = obj
        except (ValueError, TypeError) as e:
            bad = _first_bad_row(s, t)
            raise DataError(f"cannot read value {s.iloc[bad]!r} as {t}: {e}", file=file, layer=layer_name,
                            row=int(bad) + 1 if bad is not None else None, field=col) from None
    res = pd.DataFrame(out, index=df.index).reset_index(drop=True)
    if layer.geometry:
        geom = df.geometry if isinstance(df, gpd.GeoDataFrame) else df["geometry"]
        gdf = gpd.GeoDataFrame(res, geometry=gpd.GeoSeries(np.asarray(geom), crs=getattr(geom, "crs", None) or CRS))
        if gdf.crs is not None and not gdf.crs.equals(CRS):
            gdf = gdf.to_crs(CRS)
        return gdf
    return res


def _first_bad_row(s: pd.Series, t: str) -> int | None:
    for i, v in enumerate(s.tolist()):
        try:
            if v is None or (isinstance(v, float) and np.isnan(v)):
                continue
            if t == "int":
                if float(v) != int(float(v)):
                    return i
            elif t == "float":
                float(v)
            elif t == "json" and isinstance(v, str):
                json.loads(v)
        except (ValueError, TypeError):
            return i
    return None


@dataclass(frozen=True)
class Bundle:
    """One loaded dataset (or a process's read model of it: see data/sqlstore.py). Treat the
    frames as read-only; edits go through a store.

    ``building_stats``: per-building households, persons, synthetic and key-group counts
    (geo/stats.py). A read model has no ``households``, ``users`` or ``audit_log`` layer:
    asking for one is an AttributeError, never a silently empty frame."""

    layers: dict = field(repr=False)
    version: str = ""
    source: str = ""
    layer_versions: dict = field(default_factory=dict, repr=False, compare=False)
    stats: object = field(default=None, repr=False, compare=False)

    def __getattr__(self, name: str):
        layers = object.__getattribute__(self, "layers")
        if name in layers:
            return layers[name]
        raise AttributeError(name)

    @property
    def building_stats(self) -> pd.DataFrame:
        st = object.__getattribute__(self, "stats")
        if st is None:
            layers = object.__getattribute__(self, "layers")
            if "households" not in layers:
                raise AttributeError("building_stats")
            from data.catalogue import key_groups
            from geo.stats import building_stats
            st = building_stats(layers["households"], [g.key for g in key_groups()])
            object.__setattr__(self, "stats", st)
        return st

    @property
    def meta_dict(self) -> dict[str, str]:
        m = self.layers["meta"]
        return dict(zip(m["key"], m["value"]))

    def adopted_plan_id(self) -> str | None:
        p = self.layers["plans"]
        adopted = p[p["status"] == "adopted"]
        if len(adopted):
            return str(adopted["id"].iloc[0])
        return str(p["id"].iloc[0]) if len(p) else None

    def plan_grids(self, plan_id: str) -> gpd.GeoDataFrame:
        g = self.layers["grids"]
        return g[g["plan_id"] == plan_id].reset_index(drop=True)

    def plan_assignments(self, plan_id: str) -> pd.DataFrame:
        a = self.layers["assignments"]
        return a[a["plan_id"] == plan_id].reset_index(drop=True)

    def grid_households(self, plan_id: str, grid_id: str) -> pd.DataFrame:
        """Households in the buildings of a grid of a plan (a level-1 grid: of its level-2 grids
        too), for a fully loaded bundle; a process's read model asks its store instead."""
        g = self.plan_grids(plan_id)
        grids = set(g.loc[g["parent_id"] == grid_id, "id"]) | {grid_id}
        a = self.plan_assignments(plan_id)
        buildings = set(a.loc[a["grid_id"].isin(grids), "building_id"])
        hh = self.layers["households"]
        return hh[hh["building_id"].isin(buildings)]

    def with_layers(self, **layers) -> "Bundle":
        new = dict(self.layers)
        new.update(layers)
        stats = None if "households" in layers else object.__getattribute__(self, "stats")
        return replace(self, layers=new, version=content_version(new), stats=stats)


def make_bundle(layers: dict, source: str = "", *, file: str = "", version: str | None = None,
                layer_versions: dict | None = None, stats=None, reuse: dict | None = None,
                only: tuple | None = None) -> Bundle:
    """A Bundle of the contract layers (missing ones empty; with ``only``, just those).
    version: the store's own version (a database counter); when None it is computed from the
    content. ``reuse``: frames already conformed (a previous read model's)."""
    full = {}
    reuse = reuse or {}
    for layer in LAYERS:
        if only is not None and layer.name not in only:
            continue
        if layer.name in reuse:
            full[layer.name] = reuse[layer.name]
            continue
        df = layers.get(layer.name)
        full[layer.name] = empty_frame(layer) if df is None else conform(layer.name, df, file=file)
    return Bundle(full, content_version(full) if version is None else version, source,
                  dict(layer_versions or {}), stats)


def content_version(layers: dict) -> str:
    h = hashlib.blake2b(digest_size=8)
    for name in sorted(layers):
        df = layers[name]
        h.update(name.encode())
        h.update(str(len(df)).encode())
        if len(df):
            plain = df.drop(columns="geometry") if "geometry" in df.columns else df
            h.update(pd.util.hash_pandas_object(plain.astype(str), index=False).values.tobytes())
            if "geometry" in df.columns:
                h.update(np.asarray(df.geometry.to_wkb()).astype(bytes).tobytes())
    return h.hexdigest()
