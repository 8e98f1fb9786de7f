"""Read any OpenStreetMap extract (.osm XML or .osm.pbf) into the data contract's layers.

Buildings (floors from building:levels, else estimated and flagged), the walkable street
network as walk_edges (u, v, length_m; ways split at shared nodes), service points from
OSM tags mapped through the service-type catalogue, and residential compounds (小区).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from data.bundle import DataError
from data.catalogue import classify_osm

# osmnx's "walk" filter: highway values that are not walkable, plus access rules below
NOT_WALKABLE = {"abandoned", "bus_guideway", "construction", "cycleway", "motor", "no", "planned",
                "platform", "proposed", "raceway", "razed", "motorway", "motorway_link", "elevator",
                "escape", "busway", "bus_stop", "services", "rest_area"}
RESIDENTIAL_BUILDINGS = {"residential", "apartments", "house", "dormitory", "detached", "terrace",
                         "semidetached_house", "bungalow", "villa"}
MAJOR_ROADS = {"trunk", "primary", "secondary", "tertiary", "primary_link", "secondary_link",
               "tertiary_link", "trunk_link"}
CLIP_MARGIN_DEG = 0.0015  # about 150 m: streets just outside the extent still carry walks


@dataclass(frozen=True)
class OsmExtract:
    extent: shapely.Polygon
    buildings: gpd.GeoDataFrame
    walk_edges: gpd.GeoDataFrame
    service_points: gpd.GeoDataFrame
    residential_areas: gpd.GeoDataFrame
    stats: dict


def _walkable(tags) -> bool:
    hw = tags.get("highway")
    if hw is None or hw in NOT_WALKABLE:
        return False
    if tags.get("area") == "yes" or tags.get("foot") == "no":
        return False
    if tags.get("access") == "private" and tags.get("foot") not in ("yes", "designated", "permissive"):
        return False
    return tags.get("service") != "private"


def parse_levels(value: str | None) -> int | None:
    """'6' -> 6, '5;7' -> 7, '12.5' -> 12, garbage -> None."""
    if not value:
        return None
    nums = [float(x) for x in re.findall(r"\d+(?:\.\d+)?", value)]
    if not nums:
        return None
    n = int(max(nums))
    return n if 0 < n < 200 else None


def read_osm(path, bbox: tuple[float, float, float, float] | None = None,
             progress: Callable[[str], None] | None = None) -> OsmExtract:
    import osmium

    path = Path(path)
    say = progress or (lambda msg: None)
    if not path.exists():
        raise DataError("file not found", file=str(path))
    if not (path.name.endswith(".osm") or path.name.endswith(".osm.pbf") or path.name.endswith(".pbf")
            or path.name.endswith(".osm.xml")):
        raise DataError("expected an OpenStreetMap extract (.osm, .osm.xml or .osm.pbf)", file=str(path))
    try:
        header_box = osmium.io.Reader(str(path)).header().box()
    except RuntimeError as e:
        raise DataError(f"not a readable OSM file: {e}", file=str(path)) from None
    if bbox is None:
        if header_box.valid():
            bbox = (header_box.bottom_left.lon, header_box.bottom_left.lat,
                    header_box.top_right.lon, header_box.top_right.lat)
    fab = osmium.geom.WKBFactory()
    b_rows, poi_rows, res_rows = [], [], []
    way_nodes, way_coords, way_tags = [], [], []
    n_broken = 0
    n_objects = 0
    say(f"reading {path.name} ...")
    for o in _iterate(osmium, path):
        n_objects += 1
        if n_objects % 200_000 == 0:
            say(f"  {n_objects:,} objects read")
        tags = dict(o.tags)
        if not tags:
            continue
        if o.is_node():
            st = classify_osm(tags)
            if st:
                poi_rows.append((f"n{o.id}", tags.get("name"), st, o.location.lon, o.location.lat, None))
        elif o.is_way():
            if "highway" in tags and _walkable(tags):
                try:
                    ids = np.fromiter((n.ref for n in o.nodes), dtype=np.int64)
                    xy = np.array([(n.lon, n.lat) for n in o.nodes], dtype=float)
                except osmium.InvalidLocationError:
                    n_broken += 1
                    continue
                if len(ids) >= 2:
                    way_nodes.append(ids)
                    way_coords.append(xy)
                    way_tags.append((tags.get("highway"), tags.get("name")))
        elif o.is_area():
            try:
                wkb = fab.create_multipolygon(o)
            except (RuntimeError, osmium.InvalidLocationError):
                n_broken += 1
                continue
            oid = f"{'w' if o.from_way() else 'r'}{o.orig_id()}"
            b = tags.get("building")
            if b and b != "no":
                b_rows.append((oid, b, tags.get("name"), tags.get("building:levels"),
                               _address(tags), tags.get("amenity"), wkb))
            elif tags.get("landuse") == "residential":
                res_rows.append((oid, tags.get("name"), wkb))
            st = classify_osm(tags)
            if st:
                poi_rows.append((oid, tags.get("name"), st, None, None, wkb))
    say(f"read {n_objects:,} objects: {len(b_rows)} buildings, {len(way_nodes)} walkable ways, "
        f"{len(poi_rows)} service points, {len(res_rows)} compounds")
    if bbox is None:
        raise DataError("the file has no <bounds>; pass --bbox minlon,minlat,maxlon,maxlat", file=str(path))
    extent = shapely.box(*bbox)
    keep_area = shapely.box(bbox[0] - CLIP_MARGIN_DEG, bbox[1] - CLIP_MARGIN_DEG,
                            bbox[2] + CLIP_MARGIN_DEG, bbox[3] + CLIP_MARGIN_DEG)

    buildings = _buildings_frame(b_rows, extent)
    compounds = gpd.GeoDataFrame(
        {"osm_id": [r[0] for r in res_rows], "name": [r[1] for r in res_rows]},
        geometry=shapely.from_wkb([r[2] for r in res_rows]) if res_rows else gpd.GeoSeries([]), crs=4326)
    compounds = compounds[compounds.intersects(extent)].reset_index(drop=True)
    buildings = _attach_compounds(buildings, compounds)
    say("building walk network ...")
    edges = _walk_edges(way_nodes, way_coords, way_tags, keep_area)
    pois = _poi_frame(poi_rows, extent)
    stats = {"objects": n_objects, "buildings": len(buildings), "walk_edges": len(edges),
             "service_points": len(pois), "compounds": len(compounds), "skipped_incomplete": n_broken,
             "floors_estimated": int(buildings["floors_estimated"].sum()) if len(buildings) else 0}
    say(f"kept {stats['buildings']} buildings, {stats['walk_edges']} walk edges, "
        f"{stats['service_points']} service points inside the extent")
    return OsmExtract(extent, buildings, edges, pois, compounds, stats)


def _iterate(osmium, path):
    """Objects of the file; a parse error anywhere becomes a DataError naming the file."""
    try:
        yield from osmium.FileProcessor(str(path)).with_locations().with_areas()
    except RuntimeError as e:
        raise DataError(f"not a readable OSM file: {e}", file=str(path)) from None


def _address(tags) -> str | None:
    parts = [tags.get(k) for k in ("addr:city", "addr:district", "addr:street", "addr:housenumber")]
    parts = [p for p in parts if p]
    return "".join(parts) or tags.get("addr:full")


def _buildings_frame(rows, extent) -> gpd.GeoDataFrame:
    from geo.buildings import estimate_floors_units
    if not rows:
        return gpd.GeoDataFrame({"osm_id": [], "building": [], "name": [], "levels": [], "address": [],
                                 "amenity": []}, geometry=gpd.GeoSeries([], crs=4326), crs=4326)
    geom = shapely.make_valid(shapely.from_wkb([r[6] for r in rows]))
    df = gpd.GeoDataFrame({
        "osm_id": [r[0] for r in rows], "building": [r[1] for r in rows], "name": [r[2] for r in rows],
        "levels": [parse_levels(r[3]) for r in rows], "address": [r[4] for r in rows],
        "amenity": [r[5] for r in rows]}, geometry=geom, crs=4326)
    df = df[shapely.intersects(shapely.point_on_surface(df.geometry.values), extent)]
    df = df.sort_values("osm_id", key=lambda s: s.str[0] + s.str[1:].str.zfill(14)).reset_index(drop=True)
    return estimate_floors_units(df)


def _attach_compounds(buildings, compounds) -> gpd.GeoDataFrame:
    b = buildings.copy()
    b["compound"] = None
    if len(compounds) and len(b):
        pts = gpd.GeoDataFrame(geometry=b.geometry.representative_point(), crs=4326)
        hit = gpd.sjoin(pts, compounds[["name", "geometry"]].assign(cidx=np.arange(len(compounds))),
                        predicate="within", how="left")
        hit = hit[~hit.index.duplicated(keep="first")]
        b["compound_idx"] = hit["cidx"].reindex(b.index)
        named = compounds["name"].fillna("").to_numpy()
        idx = b["compound_idx"].to_numpy()
        ok = ~pd.isna(idx)
        comp = np.full(len(b), None, dtype=object)
        comp[ok] = [named[int(i)] or f"compound-{compounds['osm_id'].iloc[int(i)]}" for i in idx[ok]]
        b["compound"] = comp
        b = b.drop(columns="compound_idx")
    from geo.buildings import classify_kind
    b["kind"] = classify_kind(b["building"], b["compound"].notna())
    return b


def _walk_edges(way_nodes, way_coords, way_tags, keep_area) -> gpd.GeoDataFrame:
    cols = {"u": [], "v": [], "length_m": [], "highway": [], "name": []}
    if not way_nodes:
        return gpd.GeoDataFrame(cols, geometry=gpd.GeoSeries([], crs=4326), crs=4326)
    all_ids = np.concatenate(way_nodes)
    uniq, counts = np.unique(all_ids, return_counts=True)
    shared = set(uniq[counts > 1].tolist())
    from pyproj import Transformer
    from geo.crs import utm_epsg
    cx, cy = shapely.get_coordinates(keep_area.centroid)[0]
    tr = Transformer.from_crs(4326, utm_epsg(cx, cy), always_xy=True)
    lines, us, vs, lens, hws, names = [], [], [], [], [], []
    for ids, xy, (hw, name) in zip(way_nodes, way_coords, way_tags):
        mx, my = tr.transform(xy[:, 0], xy[:, 1])
        seg = np.hypot(np.diff(mx), np.diff(my))
        cum = np.concatenate([[0.0], np.cumsum(seg)])
        cut = [0] + [i for i in range(1, len(ids) - 1) if int(ids[i]) in shared] + [len(ids) - 1]
        for a, b in zip(cut[:-1], cut[1:]):
            if ids[a] == ids[b] and b - a < 3:
                continue
            lines.append(xy[a:b + 1])
            us.append(int(ids[a]))
            vs.append(int(ids[b]))
            lens.append(round(float(cum[b] - cum[a]), 2))
            hws.append(hw)
            names.append(name)
    if lines:
        sizes = np.array([len(c) for c in lines])
        geom = shapely.linestrings(np.concatenate(lines), indices=np.repeat(np.arange(len(lines)), sizes))
    else:
        geom = []
    gdf = gpd.GeoDataFrame({"u": us, "v": vs, "length_m": lens, "highway": hws, "name": names},
                           geometry=gpd.GeoSeries(geom, crs=4326), crs=4326)
    gdf = gdf[shapely.intersects(gdf.geometry.values, keep_area) & (gdf["length_m"] > 0)]
    # undirected, one row per (u, v, geometry): drop exact duplicates
    key = np.where(gdf["u"] < gdf["v"], gdf["u"].astype(str) + "-" + gdf["v"].astype(str),
                   gdf["v"].astype(str) + "-" + gdf["u"].astype(str))
    gdf = gdf.assign(_k=key + "-" + gdf["length_m"].astype(str)).drop_duplicates("_k").drop(columns="_k")
    return gdf.reset_index(drop=True)


def _poi_frame(rows, extent) -> gpd.GeoDataFrame:
    if not rows:
        return gpd.GeoDataFrame({"osm_id": [], "name": [], "type": []},
                                geometry=gpd.GeoSeries([], crs=4326), crs=4326)
    pts = []
    for r in rows:
        pts.append(shapely.Point(r[3], r[4]) if r[5] is None else shapely.point_on_surface(shapely.from_wkb(r[5])))
    gdf = gpd.GeoDataFrame({"osm_id": [r[0] for r in rows], "name": [r[1] for r in rows],
                            "type": [r[2] for r in rows]}, geometry=pts, crs=4326)
    gdf = gdf[shapely.intersects(gdf.geometry.values, extent)].drop_duplicates(["osm_id", "type"])
    return gdf.reset_index(drop=True)
