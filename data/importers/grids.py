"""Importing grid / community polygons drawn elsewhere (QGIS, CAD, a digitised map).

Reads GeoJSON, Shapefile (also zipped), GeoPackage in any CRS and brings them to EPSG:4326:
CGCS2000 (EPSG:4490) is taken as WGS-84; projected CRSs (e.g. CGCS2000 / Beijing 54
Gauss-Krüger) are reprojected; files without a CRS are recognised by their coordinate ranges
(lon/lat, swapped lat/lon, Gauss-Krüger with a zone prefix). GCJ-02 (AMap, Tencent) and BD-09
(Baidu) coordinates are converted when declared (datum=...) or detected against the stored
buildings (datum="auto": the datum whose conversion makes the buildings fit the grids best).

Broken geometries are repaired with shapely.make_valid when that is unambiguous (make_valid and
buffer(0) agree on the area within 1%) and reported; otherwise a DataError names the file, the
feature (row, 1-based) and the field. Buildings are then assigned to the level-2 grids by
footprint (geo.assign) and the result is written as a new DRAFT plan in one atomic store write.
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS

from data.importers.columns import match_columns, repaired_headers
from data.importers.messages import Note, Refusal
from minsheng.i18n import t
from data.privacy import refuse_masked
from data.bundle import DataError
from geo import crs as gcrs
from geo.assign import assign_by_footprint, fit_score, largest_overlap

DATUMS = ("wgs84", "gcj02", "bd09")
COLUMN_ALIASES = {
    "id": ("id", "grid_id", "gridid", "fid_1", "编号", "网格编号", "网格id", "网格号", "bh", "wgbh"),
    "code": ("code", "grid_code", "编码", "网格编码", "网格代码", "代码", "wgbm", "bm"),
    "name": ("name", "grid_name", "名称", "网格名称", "网格名", "名字", "mc", "wgmc"),
    "level": ("level", "grid_level", "级别", "网格级别", "层级", "等级", "jb"),
    "parent": ("parent", "parent_id", "上级", "上级网格", "所属网格", "父级", "一级网格", "sjwg"),
    "community": ("community", "community_id", "社区", "所属社区", "社区名称", "居委会", "sq"),
    "head": ("head", "head_name", "网格长", "网格员", "负责人", "责任人"),
    "phone": ("phone", "head_phone", "电话", "联系电话", "手机", "手机号"),
}
CHINA_LON, CHINA_LAT = (72.0, 137.9), (0.8, 55.9)


@dataclass
class GridImport:
    """What an import did (or would do, with dry_run)."""
    plan_id: str
    version: str  # store version after the write ("" for dry runs)
    datum: str
    source_crs: str
    grids: gpd.GeoDataFrame = field(repr=False)
    assignments: pd.DataFrame = field(repr=False)
    misfits: pd.DataFrame = field(repr=False)  # geo.assign.MISFIT_COLUMNS
    warnings: list[str] = field(default_factory=list)
    repaired_rows: list[int] = field(default_factory=list)

    def summary(self, lang: str = "en") -> str:
        lv = self.grids["level"].value_counts().to_dict() if len(self.grids) else {}
        counts = self.misfits["status"].value_counts().to_dict() if len(self.misfits) else {}
        return t("imp_grids_summary", lang).format(
            plan=self.plan_id, l1=lv.get(1, 0), l2=lv.get(2, 0), assigned=len(self.assignments),
            outside=counts.get("outside", 0), split=counts.get("split", 0), partly=counts.get("partly_outside", 0),
            datum=self.datum, crs=self.source_crs)


# -- reading ---------------------------------------------------------------------------------
def read_polygons(path, *, layer: str | None = None, encoding: str | None = None) -> gpd.GeoDataFrame:
    """Read a GeoJSON / Shapefile / zipped Shapefile / GeoPackage as it is (CRS untouched)."""
    path = Path(path)
    f = str(path)
    if not path.exists():
        raise DataError("file not found", file=f)
    if path.stat().st_size == 0:
        raise DataError("the file is empty (0 bytes)", file=f)
    source = f
    if path.suffix.lower() == ".zip":
        try:
            names = zipfile.ZipFile(path).namelist()
        except zipfile.BadZipFile:
            raise DataError("not a valid zip archive", file=f) from None
        inner = [n for n in names if n.lower().endswith((".shp", ".geojson", ".json", ".gpkg"))
                 and not n.startswith("__MACOSX")]
        if not inner:
            raise DataError("the zip archive holds no .shp, .geojson or .gpkg file", file=f)
        if len(inner) > 1 and layer is None:
            raise DataError(f"the zip archive holds several datasets ({', '.join(inner)}); choose one with layer=",
                            file=f)
        pick = inner[0] if len(inner) == 1 else next((n for n in inner if Path(n).stem == layer), None)
        if pick is None:
            raise DataError(f"no dataset {layer!r} in the zip archive ({', '.join(inner)})", file=f)
        if pick.lower().endswith(".shp"):
            missing = [ext for ext in (".shx", ".dbf") if pick[:-4] + ext not in names
                       and pick[:-4] + ext.upper() not in names]
            if missing:
                raise DataError(f"the shapefile {pick} in the archive lacks {', '.join(missing)}", file=f)
        source, layer = f"/vsizip/{path}/{pick}", None if pick.lower().endswith((".shp", ".geojson", ".json")) else layer
    elif path.suffix.lower() == ".shp":
        missing = [ext for ext in (".shx", ".dbf") if not path.with_suffix(ext).exists()
                   and not path.with_suffix(ext.upper()).exists()]
        if missing:
            raise DataError(f"the shapefile lacks its {', '.join(missing)} file(s)", file=f)
    kw = {}
    if layer is not None:
        kw["layer"] = layer
    notes: list = []
    if not encoding and source.lower().endswith(".shp"):
        detected = _shapefile_encoding(path, source)
        if detected:
            encoding = detected
            notes.append(Note("imp_encoding_detected", encoding=detected))
    if encoding:
        kw["encoding"] = encoding
    try:
        if layer is None and path.suffix.lower() == ".gpkg":
            layers = [n for n, g in pyogrio.list_layers(source) if g]
            if len(layers) > 1:
                raise DataError(f"the GeoPackage holds several polygon layers ({', '.join(layers)}); "
                                "choose one with layer=", file=f)
        gdf = pyogrio.read_dataframe(source, **kw)
    except DataError:
        raise
    except Exception as e:  # pyogrio/GDAL errors: unreadable, truncated, wrong format
        raise DataError(f"cannot read the file as GeoJSON/Shapefile/GeoPackage: {e}", file=f) from None
    if len(gdf) == 0:
        raise DataError("the file holds no features", file=f)
    if not isinstance(gdf, gpd.GeoDataFrame) or gdf.geometry.isna().all():
        raise Refusal("imp_not_spatial", file=f, n=len(gdf))
    gdf.attrs["notes"] = notes
    return gdf


def _shapefile_encoding(path: Path, source: str) -> str | None:
    """The attribute encoding of a shapefile without .cpg: None when it has a .cpg (GDAL reads
    it) or only ASCII text; "UTF-8" when the names and records decode as UTF-8, else "GB18030"
    (a superset of GBK/GB2312) when they decode as that; None when neither does."""
    if source.startswith("/vsizip/"):
        member = source[len(f"/vsizip/{path}/"):]
        with zipfile.ZipFile(path) as z:
            names = {n.lower(): n for n in z.namelist()}
            stem = member[:-4].lower()
            if stem + ".cpg" in names or stem + ".dbf" not in names:
                return None
            data = z.read(names[stem + ".dbf"])
    else:
        shp = Path(source)
        if any(shp.with_suffix(e).exists() for e in (".cpg", ".CPG")):
            return None
        dbf = next((shp.with_suffix(e) for e in (".dbf", ".DBF") if shp.with_suffix(e).exists()), None)
        if dbf is None:
            return None
        data = dbf.read_bytes()
    return dbf_text_encoding(data)


def dbf_text_encoding(data: bytes) -> str | None:
    """UTF-8, GB18030 or None (ASCII only, or neither decodes) for the field names and records
    of a dBase file's bytes."""
    if len(data) < 32:
        return None
    hlen = int.from_bytes(data[8:10], "little")
    names = b"".join(data[i:i + 11].split(b"\0")[0] for i in range(32, min(hlen, len(data)) - 31, 32)
                     if data[i] != 0x0D)
    body = names + data[hlen:].rstrip(b"\x1a")
    if body.isascii():
        return None
    for enc in ("utf-8", "gb18030"):
        try:
            body.decode(enc)
        except UnicodeDecodeError:
            continue
        return "UTF-8" if enc == "utf-8" else "GB18030"
    return None


# -- CRS and datum ---------------------------------------------------------------------------
def _xy_bounds(geoms) -> np.ndarray:
    return np.asarray(shapely.total_bounds(np.asarray(geoms)))


def _in(v, rng) -> bool:
    return rng[0] <= v <= rng[1]


def _swap_xy(geoms):
    return shapely.transform(np.asarray(geoms), lambda xy: xy[:, ::-1])


def to_wgs84(gdf: gpd.GeoDataFrame, *, crs=None, file: str = "") -> tuple[gpd.GeoSeries, str, list[str]]:
    """Geometries in lon/lat (EPSG:4326), the source CRS description and warnings."""
    warnings: list[str] = []
    geoms = np.asarray(gdf.geometry.values)
    try:
        src = CRS.from_user_input(crs) if crs is not None else gdf.crs
    except Exception:  # pyproj.exceptions.CRSError and friends: an unknown or malformed CRS
        raise Refusal("imp_bad_crs", file=file, field="crs", value=str(crs)) from None
    if src is not None and src.is_projected:
        out = gpd.GeoSeries(geoms, crs=src).to_crs(4326)
        desc = f"EPSG:{src.to_epsg()}" if src.to_epsg() else src.name
        _check_china(out, warnings, desc)
        return out, desc, warnings
    minx, miny, maxx, maxy = _xy_bounds(geoms)
    if src is None:
        ax, ay = max(abs(minx), abs(maxx)), max(abs(miny), abs(maxy))
        if max(ax, ay) <= 180 and min(ax, ay) <= 90:  # lon/lat, possibly swapped
            desc = "none (lon/lat by coordinate range)"
            warnings.append("the file declares no CRS; coordinates look like longitude/latitude and are read as WGS-84")
        else:
            zone = int(minx // 1_000_000)
            if zone == int(maxx // 1_000_000) and 25 <= zone <= 45 and 0 < miny < 6_500_000:
                epsg = 4513 + zone - 25  # CGCS2000 / 3-degree Gauss-Kruger zone NN (with zone prefix)
            elif zone == int(maxx // 1_000_000) and 13 <= zone <= 23 and 0 < miny < 6_500_000:
                epsg = 4491 + zone - 13  # CGCS2000 / 6-degree Gauss-Kruger zone NN
            else:
                raise DataError("the file declares no CRS and its coordinates are projected (metres) without a "
                                "Gauss-Krüger zone prefix; give the CRS, e.g. crs='EPSG:4547' "
                                "(CGCS2000 3-degree GK CM 114E)", file=file, field="geometry")
            out = gpd.GeoSeries(geoms, crs=epsg).to_crs(4326)
            warnings.append(f"the file declares no CRS; coordinates carry Gauss-Krüger zone {zone} and are read as "
                            f"EPSG:{epsg} (CGCS2000); pass crs= if that is wrong")
            _check_china(out, warnings, f"EPSG:{epsg}")
            return out, f"none (EPSG:{epsg} by zone prefix)", warnings
    else:
        desc = f"EPSG:{src.to_epsg()}" if src.to_epsg() else src.name
        if src.to_epsg() == 4490:
            warnings.append("CGCS2000 (EPSG:4490) coordinates are taken as WGS-84 (equal within a metre)")
    if _in(minx, CHINA_LAT) and _in(maxx, CHINA_LAT) and _in(miny, CHINA_LON) and _in(maxy, CHINA_LON):
        warnings.append(f"latitude and longitude are swapped in the file (x {minx:.3f}..{maxx:.3f} looks like "
                        f"latitude, y {miny:.3f}..{maxy:.3f} like longitude); they were swapped back")
        geoms = _swap_xy(geoms)
    out = gpd.GeoSeries(geoms, crs=4326)
    _check_china(out, warnings, desc)
    return out, desc, warnings


def _check_china(gs: gpd.GeoSeries, warnings: list[str], desc: str) -> None:
    minx, miny, maxx, maxy = gs.total_bounds
    if not (_in(minx, CHINA_LON) and _in(maxx, CHINA_LON) and _in(miny, CHINA_LAT) and _in(maxy, CHINA_LAT)):
        warnings.append(f"the polygons lie outside China after reading them as {desc} "
                        f"(lon {minx:.3f}..{maxx:.3f}, lat {miny:.3f}..{maxy:.3f}); check the CRS")


def convert_datum(gs: gpd.GeoSeries, datum: str) -> gpd.GeoSeries:
    """Lon/lat geometries in `datum` (wgs84|gcj02|bd09) to WGS-84 (vectorised, geo.crs)."""
    if datum == "wgs84":
        return gs
    fn = {"gcj02": gcrs.gcj02_to_wgs84, "bd09": gcrs.bd09_to_wgs84}[datum]

    def conv(xy):
        lon, lat = fn(xy[:, 0], xy[:, 1])
        return np.column_stack([lon, lat])
    return gpd.GeoSeries(shapely.transform(np.asarray(gs.values), conv), crs=gs.crs, index=gs.index)


def detect_datum(gs: gpd.GeoSeries, buildings: gpd.GeoDataFrame, *, min_buildings: int = 5,
                 margin: float = 0.05) -> tuple[str, dict[str, float]]:
    """The datum (wgs84|gcj02|bd09) under which the stored buildings fit the polygons best, or
    "" when it cannot be told (too few buildings nearby, or no clear winner)."""
    cands = {d: convert_datum(gs, d) for d in DATUMS}
    minx, miny, maxx, maxy = np.array([c.total_bounds for c in cands.values()]).T
    box = shapely.box(minx.min(), miny.min(), maxx.max(), maxy.max())
    near = buildings[buildings.geometry.intersects(box)] if len(buildings) else buildings
    if len(near) < min_buildings:
        return "", {}
    grids = {d: gpd.GeoDataFrame(geometry=c) for d, c in cands.items()}
    mcrs = gcrs.metric_crs(near)
    scores = {d: fit_score(near, g, mcrs) for d, g in grids.items()}
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])
    if ranked[0][1] < 0.5 or ranked[0][1] - ranked[1][1] < margin:
        return "", scores
    return ranked[0][0], scores


# -- geometry checks -------------------------------------------------------------------------
def repair_geometries(gs: gpd.GeoSeries, *, file: str = "", rows: np.ndarray | None = None,
                      tolerance: float = 0.01) -> tuple[gpd.GeoSeries, list[int]]:
    """Polygonal, valid geometries; repaired rows (1-based) listed; DataError when unsafe."""
    geoms = np.asarray(gs.values)
    rows = np.arange(1, len(geoms) + 1) if rows is None else rows
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if missing.any():
        r = int(rows[np.flatnonzero(missing)[0]])
        raise DataError(f"feature has no geometry ({int(missing.sum())} such feature(s))", file=file, row=r,
                        field="geometry")
    types = shapely.get_type_id(geoms)
    poly = np.isin(types, [3, 6])  # Polygon, MultiPolygon
    if not poly.all():
        i = np.flatnonzero(~poly)[0]
        raise DataError(f"expected a polygon, found a {geoms[i].geom_type}",
                        file=file, row=int(rows[i]), field="geometry")
    invalid = ~shapely.is_valid(geoms)
    repaired: list[int] = []
    if invalid.any():
        idx = np.flatnonzero(invalid)
        fixed = shapely.make_valid(geoms[idx])
        # keep the polygonal part of what make_valid returns (it may add stray lines/points)
        parts, part_of = shapely.get_parts(fixed, return_index=True)
        keep = np.isin(shapely.get_type_id(parts), [3, 6])
        polys = np.array([shapely.multipolygons(shapely.get_parts(parts[keep & (part_of == k)]))
                          for k in range(len(idx))], dtype=object)
        buffered = shapely.buffer(geoms[idx], 0)
        a_fix, a_buf = shapely.area(polys), shapely.area(buffered)
        bad = (a_fix <= 0) | (np.abs(a_fix - a_buf) > tolerance * np.maximum(a_fix, 1e-30))
        if bad.any():
            k = np.flatnonzero(bad)[0]
            reason = shapely.is_valid_reason(geoms[idx[k]])
            raise DataError(f"invalid polygon ({reason}) that cannot be repaired unambiguously "
                            f"(e.g. a self-crossing 'bow-tie' ring or a polygon with no area); fix it in the "
                            f"source", file=file, row=int(rows[idx[k]]), field="geometry")
        geoms = geoms.copy()
        geoms[idx] = polys
        repaired = [int(r) for r in rows[idx]]
    return gpd.GeoSeries(geoms, crs=gs.crs, index=gs.index), repaired


# -- columns ---------------------------------------------------------------------------------
def detect_columns(columns, **given) -> dict[str, str | None]:
    """Map roles (id, code, name, level, parent, community, head, phone) to file columns:
    given names win (an unknown given name is a DataError), then COLUMN_ALIASES (case-insensitive)."""
    return match_columns(columns, COLUMN_ALIASES, given, skip=("geometry",))


def parse_levels(values: pd.Series, *, file: str = "", field_name: str = "level") -> np.ndarray:
    txt = values.astype(object).where(values.notna(), "").astype(str).str.strip()
    lvl = np.full(len(txt), 0)
    lvl[txt.str.contains(r"^(?:1|1\.0|一|一级.*|level ?1|l1)$", case=False, regex=True).to_numpy()] = 1
    lvl[txt.str.contains(r"^(?:2|2\.0|二|二级.*|微网格|level ?2|l2)$", case=False, regex=True).to_numpy()] = 2
    bad = np.flatnonzero(lvl == 0)
    if len(bad):
        raise DataError(f"grid level {txt.iloc[bad[0]]!r} is neither 1 (一级) nor 2 (二级/微网格)",
                        file=file, row=int(bad[0]) + 1, field=field_name)
    return lvl


# -- the import ------------------------------------------------------------------------------
def build_plan(bundle, polygons: gpd.GeoDataFrame, *, file: str = "", datum: str = "auto", crs=None,
               id_col: str | None = None, name_col: str | None = None, level_col: str | None = None,
               parent_col: str | None = None, community_col: str | None = None, head_col: str | None = None,
               phone_col: str | None = None, code_col: str | None = None, plan_id: str | None = None,
               plan_name: str | None = None, created_by: str = "", threshold: float = 0.8,
               allow_empty: bool = False, settings=None, now: str | None = None) -> tuple[dict, GridImport]:
    """Pure part of the import: new plans/grids/assignments/audit_log frames (whole layers,
    existing rows kept) and the GridImport report. `polygons` as read by read_polygons.

    Refused: a threshold outside (0, 1], coordinates that are not places on Earth after reading
    them, and polygons that hold none of the stored buildings (unless allow_empty). Level-1
    grids made here are unions of their level-2 grids; grid codes are those of the file when
    they pass geo.codes.check_codes, else generated for the whole plan (and said so)."""
    if datum not in DATUMS + ("auto",):
        raise DataError(f"unknown datum {datum!r}; use one of wgs84, gcj02, bd09, auto", file=file)
    try:
        threshold = float(threshold)
    except (TypeError, ValueError):
        threshold = float("nan")
    if not 0 < threshold <= 1:
        raise Refusal("imp_threshold", file=file, field="threshold", value=threshold)
    cols = detect_columns(polygons.columns, id=id_col, name=name_col, level=level_col, parent=parent_col,
                          community=community_col, head=head_col, phone=phone_col, code=code_col)
    geoms, src_desc, warnings = to_wgs84(polygons, crs=crs, file=file)
    warnings = list(polygons.attrs.get("notes", [])) + warnings
    warnings += [Note("imp_header_repaired", column=c, role=r) for r, c in repaired_headers(cols)]
    geoms, repaired = repair_geometries(geoms, file=file)
    _check_lonlat(geoms, file=file, source=src_desc)
    if repaired:
        warnings.append(f"repaired invalid polygons (make_valid) in feature(s) {_rows_text(repaired)}")
    buildings = bundle.buildings
    if datum == "auto":
        found, scores = detect_datum(geoms, buildings)
        if found:
            datum = found
            if found != "wgs84":
                warnings.append(f"coordinates detected as {found.upper()} (fit to stored buildings "
                                + ", ".join(f"{k} {v:.2f}" for k, v in scores.items()) + ") and converted to WGS-84")
        else:
            datum = "wgs84"
            warnings.append("datum could not be detected from the stored buildings; read as WGS-84 "
                            "(pass datum='gcj02' for AMap/Tencent or 'bd09' for Baidu coordinates)")
    geoms = convert_datum(geoms, datum)
    n = len(polygons)
    attrs = pd.DataFrame(polygons.drop(columns="geometry")).reset_index(drop=True)
    levels = parse_levels(attrs[cols["level"]], file=file, field_name=cols["level"]) if cols["level"] else np.full(n, 2)
    if not (levels == 2).any():
        raise DataError("the file holds no level-2 grids (二级网格); buildings are assigned to level-2 grids",
                        file=file, field=cols["level"] or "level")

    def text(role):
        c = cols[role]
        if c is None:
            return pd.Series([None] * n, dtype=object)
        s = attrs[c].astype(object)
        s = s.where(s.notna(), None).map(lambda v: v if v is None else (str(int(v)) if isinstance(v, float) and v == int(v) else str(v).strip()))
        return s.where(s.ne(""), None)

    ids = text("id")
    plans = bundle.plans
    plan_id = plan_id or _new_plan_id(plans["id"].astype(str).tolist())
    if plan_id in set(plans["id"].astype(str)):
        raise DataError(f"plan {plan_id!r} already exists", file=file, field="plan_id")
    if cols["id"]:
        if ids.isna().any():
            r = int(np.flatnonzero(ids.isna().to_numpy())[0]) + 1
            raise DataError("grid id is empty", file=file, row=r, field=cols["id"])
        dup = ids.duplicated(keep=False).to_numpy()
        if dup.any():
            rows = (np.flatnonzero(dup) + 1).tolist()
            raise DataError(f"grid id {ids[dup].iloc[0]!r} is not unique (rows {_rows_text(rows)})",
                            file=file, row=rows[0], field=cols["id"])
    else:
        seq = pd.Series(levels).groupby(levels).cumcount().to_numpy() + 1
        ids = pd.Series([f"{plan_id}-{lv}-{s:03d}" for lv, s in zip(levels, seq)], dtype=object)
    names = text("name")
    names = names.where(names.notna(), ids)
    gdf = gpd.GeoDataFrame({"id": ids, "plan_id": plan_id, "level": levels, "parent_id": None, "code": text("code"),
                            "name": names, "head_name": text("head"), "head_phone": text("phone"),
                            "_row": np.arange(1, n + 1)}, geometry=geoms.values, crs=4326)
    refuse_masked(gdf, {"head_name": cols["head"], "head_phone": cols["phone"]}, file=file, row_numbers=gdf["_row"])
    mcrs = gcrs.metric_crs(gdf)
    l1 = gdf[gdf["level"] == 1].reset_index(drop=True)
    l2 = gdf[gdf["level"] == 2].reset_index(drop=True)
    communities = bundle.communities
    made_l1 = len(l1) == 0
    if made_l1:
        l1, l2_parent, how = _level1_for(bundle, l2, plan_id, mcrs)
        warnings.append(how)
    # level-1 parents: community column, else largest overlap with the stored communities
    l1 = l1.copy()
    l1["parent_id"] = _resolve_parent(l1, communities, cols["community"],
                                      attrs, file, mcrs, what="community", warnings=warnings)
    l2 = l2.copy()
    if made_l1:  # each level-1 grid is the union of its level-2 grids: they nest by construction
        l2["parent_id"] = l2_parent
    else:
        l2["parent_id"] = _resolve_parent(l2, l1, cols["parent"], attrs, file, mcrs, what="level-1 grid",
                                          warnings=warnings)
    grids_new = pd.concat([l1, l2], ignore_index=True)
    clash = grids_new["id"].duplicated(keep=False).to_numpy()
    if clash.any():
        gid = grids_new["id"][clash].iloc[0]
        rows = [int(r) for r in grids_new["_row"][clash] if r]
        raise DataError(f"grid id {gid!r} is used twice in the new plan (also by a level-1 grid copied from the "
                        f"adopted plan); rename it", file=file, row=rows[0] if rows else None,
                        field=cols["id"] or "id")
    grids_new = _plan_codes(grids_new, bundle, mcrs, settings, warnings, file=file)
    assigned, misfits = assign_by_footprint(buildings, l2, threshold=threshold, crs=mcrs)
    if len(assigned) == 0 and not allow_empty:
        raise Refusal("imp_places_no_building", file=file, field="geometry", grids=len(l2),
                      buildings=len(buildings), km=_distance_km(l2, buildings, mcrs))
    result_grids = gpd.GeoDataFrame(grids_new.drop(columns=["_row"], errors="ignore"), geometry="geometry", crs=4326)
    result_grids["geometry"] = result_grids.geometry.map(_as_multi)
    now = now or datetime.now(timezone.utc).isoformat(timespec="seconds")
    plan_row = pd.DataFrame([{"id": plan_id, "name": plan_name or Path(file).stem or plan_id, "status": "draft",
                              "version": 1, "created_at": now, "created_by": created_by}])
    audit = pd.DataFrame([{"ts": now, "user": created_by, "action": "import_grids", "object": plan_id,
                           "detail": f"{Path(file).name}: {len(l1)} level-1, {len(l2)} level-2 grids, "
                                     f"{len(assigned)} buildings assigned, {len(misfits)} misfits, datum {datum}"}])
    layers = {
        "plans": pd.concat([plans, plan_row], ignore_index=True),
        "grids": pd.concat([bundle.grids, result_grids], ignore_index=True),
        "assignments": pd.concat([bundle.assignments,
                                  assigned.assign(plan_id=plan_id)[["plan_id", "building_id", "grid_id"]]],
                                 ignore_index=True),
        "audit_log": audit,  # the rows to append
    }
    layers["grids"] = gpd.GeoDataFrame(layers["grids"], geometry="geometry", crs=4326)
    report = GridImport(plan_id, "", datum, src_desc, result_grids, assigned, misfits, warnings, repaired)
    return layers, report


def import_grids(store, path, *, layer: str | None = None, encoding: str | None = None, dry_run: bool = False,
                 **kw) -> GridImport:
    """Read `path`, build a new draft plan from its polygons and write it to `store` atomically
    (replace_layers with the version loaded). Keyword arguments as build_plan. On any error the
    store is unchanged."""
    bundle = store.load()
    version = bundle.version
    polygons = read_polygons(path, layer=layer, encoding=encoding)
    layers, report = build_plan(bundle, polygons, file=str(path), **kw)
    if not dry_run:
        audit = layers.pop("audit_log")
        report.version = store.replace_layers(layers, expected_version=version, audit=audit)
    return report


# -- helpers ---------------------------------------------------------------------------------
def _as_multi(g):
    if g is None:
        return g
    return shapely.MultiPolygon([g]) if g.geom_type == "Polygon" else g


def _rows_text(rows, limit: int = 10) -> str:
    rows = list(rows)
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return ", ".join(map(str, rows[:limit])) + more


def _new_plan_id(existing: list[str]) -> str:
    k = 1
    while f"import-{k}" in existing:
        k += 1
    return f"import-{k}"


def _level1_for(bundle, l2: gpd.GeoDataFrame, plan_id: str, mcrs: str
                ) -> tuple[gpd.GeoDataFrame, np.ndarray, str]:
    """Level-1 grids for a file with only level-2 grids, each the union of its level-2 grids (so
    they nest): grouped by the adopted plan's level-1 grid they overlap most (which lends its id,
    name, head and community), else by stored community, else all in one. Returns the level-1
    grids, the parent id of each level-2 grid (positional) and a sentence for the report."""
    parent = np.full(len(l2), None, dtype=object)
    rows: list[dict] = []
    todo = np.ones(len(l2), dtype=bool)
    base = bundle.adopted_plan_id()
    how = ""
    if base is not None:
        g = bundle.plan_grids(base)
        g = g[g["level"] == 1].reset_index(drop=True)
        if len(g):
            best = largest_overlap(l2, g, mcrs)["best"].to_numpy()
            for k in np.unique(best[best >= 0]):
                members = best == k
                src = g.iloc[int(k)]
                rows.append({"id": src["id"], "plan_id": plan_id, "level": 1, "parent_id": src.get("parent_id"),
                             "name": src.get("name"), "head_name": src.get("head_name"),
                             "head_phone": src.get("head_phone"), "_row": 0,
                             "geometry": shapely.union_all(l2.geometry.values[members])})
                parent[members] = src["id"]
                todo &= ~members
            how = Note("imp_level1_from_plan", plan=base, n=len(rows))
    comms = bundle.communities
    if todo.any() and len(comms):
        idx = np.flatnonzero(todo)
        best = largest_overlap(l2.iloc[idx], comms, mcrs)["best"].to_numpy()
        for k in np.unique(best[best >= 0]):
            members = idx[best == k]
            cid, cname = comms["id"].iloc[int(k)], comms["name"].iloc[int(k)]
            gid = _free_id(plan_id, rows)
            rows.append({"id": gid, "plan_id": plan_id, "level": 1, "parent_id": cid, "name": f"{cname or cid}一级网格",
                         "_row": 0, "geometry": shapely.union_all(l2.geometry.values[members])})
            parent[members] = gid
            todo[members] = False
        how = how or Note("imp_level1_per_community")
    if todo.any():
        gid = _free_id(plan_id, rows)
        rows.append({"id": gid, "plan_id": plan_id, "level": 1, "parent_id": None, "name": "一级网格", "_row": 0,
                     "geometry": shapely.union_all(l2.geometry.values[todo])})
        parent[todo] = gid
        how = how or Note("imp_level1_single")
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=4326), parent, how


def _free_id(plan_id: str, rows: list[dict]) -> str:
    taken = {r["id"] for r in rows}
    k = len(rows) + 1
    while f"{plan_id}-1-{k:03d}" in taken:
        k += 1
    return f"{plan_id}-1-{k:03d}"


def _check_lonlat(geoms: gpd.GeoSeries, *, file: str, source: str) -> None:
    """Refuse coordinates that are no place on Earth once read (absurd numbers, or metres taken
    as degrees): names the first such feature."""
    b = shapely.bounds(np.asarray(geoms.values))
    bad = ~np.isfinite(b).all(axis=1) | (b[:, 0] < -180) | (b[:, 2] > 180) | (b[:, 1] < -90) | (b[:, 3] > 90)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise Refusal("imp_absurd_coordinates", file=file, row=i + 1, field="geometry", source=source,
                      x=f"{b[i, 0]:.6g}", y=f"{b[i, 1]:.6g}", n=int(bad.sum()))


def _distance_km(grids: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame, mcrs: str) -> str:
    """Distance between the outlines (convex hulls) of the grids and of the buildings, in km, as text."""
    if len(buildings) == 0:
        return "—"
    hulls = gpd.GeoSeries([shapely.convex_hull(shapely.union_all(grids.geometry.values)),
                           shapely.convex_hull(shapely.MultiPoint(
                               shapely.get_coordinates(buildings.geometry.values)))], crs=4326).to_crs(mcrs)
    d = float(hulls.iloc[0].distance(hulls.iloc[1]))
    return f"{d / 1000:.1f}" if np.isfinite(d) else "—"


def _resolve_parent(children: gpd.GeoDataFrame, parents: gpd.GeoDataFrame, col: str | None, attrs: pd.DataFrame,
                    file: str, mcrs: str, *, what: str, warnings: list[str]) -> pd.Series:
    """Parent id per child: from column `col` (matched against the parents' id, code or name),
    else by largest overlap. Children with _row == 0 (made here) keep their parent."""
    out = children["parent_id"].astype(object).copy()
    made = children["_row"].to_numpy() == 0
    todo = ~made
    if not todo.any() or len(parents) == 0:
        if todo.any():
            warnings.append(f"no {what} to place the grids in; their parent is left empty")
        return out
    if col is not None:
        vals = attrs[col].astype(object).to_numpy()[children["_row"].to_numpy()[todo] - 1]
        lookup = {}
        for key in ("name", "code", "id"):  # id wins over code over name
            if key in parents:
                lookup.update({str(v): pid for v, pid in zip(parents[key], parents["id"]) if v is not None})
        vals_s = pd.Series(vals, dtype=object).map(lambda v: None if v is None or v != v or str(v).strip() == "" else
                                                   (str(int(v)) if isinstance(v, float) and v == int(v) else str(v).strip()))
        found = vals_s.map(lookup)
        bad = found.isna() & vals_s.notna()
        if bad.any():
            k = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(f"{what} {vals_s.iloc[k]!r} not found (known: {', '.join(map(str, list(lookup)[:10]))})",
                            file=file, row=int(children["_row"].to_numpy()[todo][k]), field=col)
        idx = np.flatnonzero(todo)
        out.iloc[idx] = found.to_numpy()
        todo = todo.copy()
        todo[idx[found.notna().to_numpy()]] = False
    if todo.any():
        idx = np.flatnonzero(todo)
        lo = largest_overlap(children.iloc[idx], parents, mcrs)
        pid = np.append(parents["id"].to_numpy(dtype=object), None)[lo["best"].to_numpy()]
        out.iloc[idx] = pid
        none = int((lo["best"].to_numpy() < 0).sum())
        weak = int(((lo["best"].to_numpy() >= 0) & (lo["share"].to_numpy() < 0.8)).sum())
        if none:
            warnings.append(f"{none} grid(s) lie outside every {what}; their parent is left empty")
        if weak:
            warnings.append(f"{weak} grid(s) lie less than 80% inside their {what} (placed by largest overlap)")
    return out


def _code_prefix(bundle, settings) -> str:
    """object+county+street (13 digits) of the project's adopted plan, else from settings."""
    from minsheng.settings import Settings
    base = bundle.adopted_plan_id()
    if base is not None:
        codes_ = bundle.plan_grids(base).get("code")
        if codes_ is not None:
            ok = codes_.dropna().astype(str)
            ok = ok[ok.str.fullmatch(r"\d{20}")]
            if len(ok):
                return ok.str[:13].mode().iloc[0]
    settings = settings or Settings()
    return f"{settings.grid_object_code}{settings.county_code}{settings.street_code}"


def _plan_codes(grids: pd.DataFrame, bundle, mcrs: str, settings, warnings: list, *, file: str) -> pd.DataFrame:
    """The file's codes when every grid has one and geo.codes.check_codes finds nothing wrong with
    them in the new nesting; else 20-digit codes generated for the whole plan (geo.codes, reading
    order within the parent), so that `minsheng check` accepts them."""
    from geo import codes
    from minsheng.settings import Settings
    grids = grids.copy()
    have = grids["code"].notna()
    if have.all() and not codes.check_codes(grids["id"], grids["level"], grids["parent_id"], grids["code"]):
        return grids
    comms = bundle.communities
    prefix = _code_prefix(bundle, settings)
    pts = gpd.GeoSeries(grids.geometry.values, crs=4326).to_crs(mcrs).representative_point()
    xy = np.column_stack([pts.x.to_numpy(), pts.y.to_numpy()])
    if len(comms):
        cpts = gpd.GeoSeries(comms.geometry.values, crs=4326).to_crs(mcrs).representative_point()
        cnum = codes.community_numbers(comms["code"], np.column_stack([cpts.x.to_numpy(), cpts.y.to_numpy()]))
    else:
        cnum = np.zeros(0, dtype=int)
    s = settings or Settings()
    col = lambda c: comms[c].to_numpy(dtype=object) if c in comms.columns else [None] * len(comms)  # noqa: E731
    try:
        # the deployment's street and community codes (settings [codes.streets] / [codes.communities]) win
        streets, cnum = codes.community_parts(comms["id"].to_numpy(dtype=object), col("name"), col("street"), cnum,
                                              street_codes=s.street_codes, community_codes=s.community_codes,
                                              default_street=prefix[10:13], own_streets=codes.own_street_codes(col("code")))
        new = codes.generate_codes(grids["id"], grids["level"], grids["parent_id"], xy, comms["id"], cnum,
                                   object_code=prefix[:4], county=prefix[4:10], street=prefix[10:13], streets=streets)
    except ValueError as e:
        raise Refusal("imp_codes_impossible", file=file, field="code", reason=str(e)) from None
    if have.any():
        warnings.append(Note("imp_codes_regenerated", n=int(have.sum())))
    grids["code"] = new.to_numpy()
    return grids
