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
from data.importers.messages import Refusal
from data.catalogue import catalogue as _catalogue

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
             progress: Callable[[str], None] | None = None, catalogue=None) -> OsmExtract:
    """Read the extract in three passes that need no sorted input (nodes, relations, ways).

    Ways cut at the extract's edge keep every run of nodes present in the file (the walk
    network keeps its inside part); a closed building way missing nodes is closed from the
    nodes present; multipolygon relations are assembled from the member ways present.
    Footprints are made valid in the metric CRS where they are measured. stats["skipped"]
    says in one line what was cut, closed or skipped, and why. catalogue: the service types in
    force (Settings.catalogue(): a deployment's OSM tag mapping), default the shipped one."""
    import osmium
    classify_osm = (catalogue or _catalogue()).classify_osm

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
    counts = dict.fromkeys(("ways_cut", "pieces", "ways_lost", "closed_from_present", "too_few_nodes",
                            "not_closed", "relations_partial", "relations_open"), 0)
    b_rows, poi_rows, res_rows = [], [], []
    walk = []  # (way id, node ids, lon/lat, tags)
    say(f"reading {path.name} ...")
    # pass 1: every node location (std::map index: any order), tagged nodes as service points
    store = osmium.index.create_map("sparse_mem_map")
    n_objects = 0
    for o in _objects(osmium, path, osmium.osm.NODE, store=store):
        n_objects += 1
        st = classify_osm(o.tags)
        if st:
            poi_rows.append((f"n{o.id}", o.tags.get("name"), st, shapely.Point(o.location.lon, o.location.lat)))
    # pass 2: multipolygon relations worth assembling, and the ways they need
    rels, needed = [], set()
    for o in _objects(osmium, path, osmium.osm.RELATION):
        n_objects += 1
        tags = dict(o.tags)
        if tags.get("type") not in ("multipolygon", "building") or not _area_wanted(tags, classify_osm):
            continue
        members = [(m.ref, m.role) for m in o.members if m.type == "w"]
        rels.append((o.id, tags, members))
        needed.update(ref for ref, _ in members)
    # pass 3: ways with the node locations present
    member_lines: dict[int, np.ndarray] = {}
    for o in _objects(osmium, path, osmium.osm.WAY, locations=store):
        n_objects += 1
        n_objects_way = o.id
        tags = dict(o.tags) if len(o.tags) else {}
        walkable = "highway" in tags and _walkable(tags)
        area = bool(tags) and _area_wanted(tags, classify_osm) and tags.get("area") != "no"
        if not (walkable or area or n_objects_way in needed):
            continue
        ids, xy = _way_nodes(o)
        if n_objects_way in needed:
            member_lines[o.id] = xy
        if walkable and len(ids) >= 2:
            ok = np.isfinite(xy[:, 0])
            if ok.all():
                walk.append((o.id, ids, xy, tags))
            else:
                runs = _runs(ok)
                counts["ways_cut"] += 1
                counts["ways_lost"] += int(not runs)
                counts["pieces"] += len(runs)
                walk += [(o.id, ids[a:b], xy[a:b], tags) for a, b in runs]
        if area and len(ids) >= 4 and ids[0] == ids[-1]:
            ok = np.isfinite(xy[:, 0])
            ring = xy[ok]
            if not ok.all():
                if len(np.unique(ring, axis=0)) < 3:
                    counts["too_few_nodes"] += int(_is_building(tags))
                    continue
                counts["closed_from_present"] += int(_is_building(tags))
                ring = np.vstack([ring, ring[:1]]) if (ring[0] != ring[-1]).any() else ring
            if len(ring) < 4:
                counts["too_few_nodes"] += int(_is_building(tags))
                continue
            _add_area(f"w{o.id}", tags, shapely.Polygon(ring), b_rows, res_rows, poi_rows, classify_osm)
        elif area and _is_building(tags) and len(ids) >= 2:
            counts["not_closed"] += 1
    for rid, tags, members in rels:
        geom, complete = _assemble(members, member_lines)
        if geom is None:
            counts["relations_open"] += 1
            continue
        counts["relations_partial"] += int(not complete)
        _add_area(f"r{rid}", tags, geom, b_rows, res_rows, poi_rows, classify_osm)
    say(f"read {n_objects:,} objects: {len(b_rows)} buildings, {len(walk)} walkable ways, "
        f"{len(poi_rows)} service points, {len(res_rows)} compounds")
    if bbox is None:
        raise DataError("the file has no <bounds>; pass --bbox minlon,minlat,maxlon,maxlat", file=str(path))
    extent = shapely.box(*bbox)
    keep_area = shapely.box(bbox[0] - CLIP_MARGIN_DEG, bbox[1] - CLIP_MARGIN_DEG,
                            bbox[2] + CLIP_MARGIN_DEG, bbox[3] + CLIP_MARGIN_DEG)

    from geo.crs import utm_epsg
    cx, cy = shapely.get_coordinates(extent.centroid)[0]
    mcrs = f"EPSG:{utm_epsg(cx, cy)}"
    buildings = _buildings_frame(b_rows, extent, mcrs)
    compounds = gpd.GeoDataFrame(
        {"osm_id": [r[0] for r in res_rows], "name": [r[1] for r in res_rows]},
        geometry=gpd.GeoSeries([r[2] for r in res_rows], crs=4326), crs=4326)
    compounds = compounds[compounds.intersects(extent)].reset_index(drop=True)
    buildings = _attach_compounds(buildings, compounds)
    if len(buildings) == 0:
        fb = (f"{header_box.bottom_left.lon:.4f},{header_box.bottom_left.lat:.4f},"
              f"{header_box.top_right.lon:.4f},{header_box.top_right.lat:.4f}") if header_box.valid() else "—"
        raise Refusal("imp_osm_no_buildings", file=str(path), field="bbox",
                      bbox=",".join(f"{v:.4f}" for v in bbox), total=len(b_rows), file_box=fb)
    say("building walk network ...")
    walk.sort(key=lambda w: w[0])
    edges = _walk_edges([w[1] for w in walk], [w[2] for w in walk],
                        [(w[3].get("highway"), w[3].get("name")) for w in walk], keep_area)
    pois = _poi_frame(poi_rows, extent)
    stats = {"objects": n_objects, "buildings": len(buildings), "walk_edges": len(edges),
             "service_points": len(pois), "compounds": len(compounds),
             "skipped_incomplete": counts["too_few_nodes"] + counts["not_closed"] + counts["relations_open"]
             + counts["ways_lost"],
             "floors_estimated": int(buildings["floors_estimated"].sum()) if len(buildings) else 0,
             **counts}
    stats["skipped"] = skipped_line(counts)
    say(f"kept {stats['buildings']} buildings, {stats['walk_edges']} walk edges, "
        f"{stats['service_points']} service points inside the extent")
    say(stats["skipped"])
    return OsmExtract(extent, buildings, edges, pois, compounds, stats)


def skipped_line(c: dict) -> str:
    """One line: what the extract's edge cost and what was skipped, and why."""
    kept = []
    if c["ways_cut"]:
        kept.append(f"{c['ways_cut']} walkable way(s) cut at the extract's edge kept as {c['pieces']} piece(s) "
                    "from the nodes present")
    if c["closed_from_present"]:
        kept.append(f"{c['closed_from_present']} building(s) missing nodes closed from the nodes present")
    if c["relations_partial"]:
        kept.append(f"{c['relations_partial']} multipolygon(s) assembled from the member ways present")
    skipped = []
    if c["too_few_nodes"]:
        skipped.append(f"{c['too_few_nodes']} building(s) with fewer than 3 of their nodes in the file")
    if c["not_closed"]:
        skipped.append(f"{c['not_closed']} building way(s) that are not closed rings")
    if c["relations_open"]:
        skipped.append(f"{c['relations_open']} multipolygon relation(s) whose member ways present close no ring")
    if c["ways_lost"]:
        skipped.append(f"{c['ways_lost']} walkable way(s) with fewer than 2 consecutive nodes in the file")
    head = ("edge of the extract: " + "; ".join(kept)) if kept else "edge of the extract: nothing cut"
    return head + "; skipped: " + ("; ".join(skipped) if skipped else "nothing")


def _objects(osmium, path, entities, *, store=None, locations=None):
    """Objects of one kind; a parse error anywhere becomes a DataError naming the file.
    store: node location index filled from the nodes (only tagged nodes are yielded);
    locations: index used to give way nodes their coordinates (missing ones stay invalid)."""
    try:
        if store is not None:
            yield from osmium.FileProcessor(str(path), entities).with_locations(store).with_filter(
                osmium.filter.EmptyTagFilter())
            return
        handlers = []
        if locations is not None:
            lh = osmium.NodeLocationsForWays(locations)
            lh.ignore_errors()
            handlers.append(lh)
        with osmium.io.Reader(str(path), entities) as rd:
            yield from osmium.OsmFileIterator(rd, *handlers)
    except RuntimeError as e:
        raise DataError(f"not a readable OSM file: {e}", file=str(path)) from None


def _way_nodes(way) -> tuple[np.ndarray, np.ndarray]:
    """Node ids and lon/lat of a way (NaN where the node is not in the file)."""
    ids = np.fromiter((n.ref for n in way.nodes), dtype=np.int64)
    xy = np.full((len(ids), 2), np.nan)
    for k, n in enumerate(way.nodes):
        loc = n.location
        if loc.valid():
            xy[k] = (loc.lon, loc.lat)
    return ids, xy


def _runs(ok: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of each run of at least 2 consecutive True values."""
    edges = np.diff(np.concatenate([[0], ok.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [(int(a), int(b)) for a, b in zip(starts, stops) if b - a >= 2]


def _is_building(tags) -> bool:
    b = tags.get("building")
    return bool(b) and b != "no"


def _area_wanted(tags, classify_osm) -> bool:
    return _is_building(tags) or tags.get("landuse") == "residential" or classify_osm(tags) is not None


def _add_area(oid, tags, geom, b_rows, res_rows, poi_rows, classify_osm) -> None:
    if _is_building(tags):
        b_rows.append((oid, tags["building"], tags.get("name"), tags.get("building:levels"), _address(tags),
                       tags.get("amenity"), geom))
    elif tags.get("landuse") == "residential":
        res_rows.append((oid, tags.get("name"), shapely.make_valid(geom)))
    st = classify_osm(tags)
    if st:
        poi_rows.append((oid, tags.get("name"), st, shapely.point_on_surface(shapely.make_valid(geom))))


def _assemble(members, lines: dict) -> tuple[object, bool]:
    """(polygon or None, every member way complete) of a multipolygon from its member ways:
    rings are polygonized from the runs of nodes present; inner rings are cut out."""
    parts = {"outer": [], "inner": []}
    complete = True
    for ref, role in members:
        xy = lines.get(ref)
        if xy is None:
            complete = False
            continue
        ok = np.isfinite(xy[:, 0])
        complete &= bool(ok.all())
        for a, b in _runs(ok):
            parts["inner" if role == "inner" else "outer"].append(shapely.LineString(xy[a:b]))
    def rings(ls):
        if not ls:
            return None
        polys = shapely.get_parts(shapely.polygonize(ls))
        return shapely.union_all(polys) if len(polys) else None
    outer = rings(parts["outer"])
    if outer is None or outer.is_empty:
        return None, complete
    inner = rings(parts["inner"])
    geom = outer.difference(inner) if inner is not None and not inner.is_empty else outer
    return (geom if not geom.is_empty else None), complete


def _address(tags) -> str | None:
    parts = [tags.get(k) for k in ("addr:city", "addr:district", "addr:street", "addr:housenumber")]
    parts = [p for p in parts if p]
    return "".join(parts) or tags.get("addr:full")


def _buildings_frame(rows, extent, mcrs: str) -> gpd.GeoDataFrame:
    from geo.buildings import estimate_floors_units
    from geo.crs import make_valid_in
    empty = gpd.GeoDataFrame({"osm_id": [], "building": [], "name": [], "levels": [], "address": [],
                              "amenity": []}, geometry=gpd.GeoSeries([], crs=4326), crs=4326)
    if not rows:
        return empty
    geom = make_valid_in(np.array([r[6] for r in rows], dtype=object), mcrs)
    df = gpd.GeoDataFrame({
        "osm_id": [r[0] for r in rows], "building": [r[1] for r in rows], "name": [r[2] for r in rows],
        "levels": [parse_levels(r[3]) for r in rows], "address": [r[4] for r in rows],
        "amenity": [r[5] for r in rows]}, geometry=gpd.GeoSeries(geom, crs=4326), crs=4326)
    df = df[df.geometry.notna().to_numpy()]
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
    gdf = gpd.GeoDataFrame({"osm_id": [r[0] for r in rows], "name": [r[1] for r in rows],
                            "type": [r[2] for r in rows]}, geometry=[r[3] for r in rows], crs=4326)
    gdf = gdf[shapely.intersects(gdf.geometry.values, extent)].drop_duplicates(["osm_id", "type"])
    order = (gdf["osm_id"].str[0] + gdf["osm_id"].str[1:].str.zfill(14)).argsort(kind="stable").to_numpy()
    return gdf.iloc[order].reset_index(drop=True)


def residential_or_refuse(ext: OsmExtract, *, file: str, yes_is_residential: bool = False,
                          progress: Callable[[str], None] | None = None) -> OsmExtract:
    """The extract when some building is residential (households need homes); else, with
    yes_is_residential, building=yes taken as residential (said so), else refused."""
    from dataclasses import replace
    kind = ext.buildings["kind"]
    if (kind == "residential").any():
        return ext
    yes = ext.buildings["building"].eq("yes")
    if yes_is_residential and yes.any():
        b = ext.buildings.copy()
        b.loc[yes.to_numpy(), "kind"] = "residential"
        (progress or (lambda m: None))(f"no building is tagged residential: {int(yes.sum())} building=yes taken "
                                       "as residential (--yes-is-residential)")
        return replace(ext, buildings=b)
    top = ext.buildings["building"].value_counts().head(5)
    raise Refusal("imp_osm_no_residential", file=file, field="building", n=len(ext.buildings),
                  tags=", ".join(f"building={k} {v}" for k, v in top.items()))
