"""Residential compounds and their gates from an OpenStreetMap extract (.osm / .osm.pbf).

Separate from data/importers/osm.py on purpose (that importer is being reworked): compounds
are landuse=residential areas (with access, and whether a barrier=wall/fence way runs along
them); gates are nodes tagged barrier=gate|lift_gate|swing_gate|sliding_gate|turnstile|
kissing_gate|full-height_turnstile|entrance or entrance=*. A compound is closed by default
when it has a gate or access=private (a walled compound with no mapped gate stays open, else its
residents would be cut off by missing data); entrance=emergency gates start shut.

The result becomes the ``compounds`` and ``gates`` layers of a project (minsheng import-osm and
the sample build write them; data/schema.py); from then on they are read from the store and
edited there (gates: add, move, close), never re-read from the extract.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from data.bundle import DataError

GATE_BARRIERS = {"gate", "lift_gate", "swing_gate", "sliding_gate", "turnstile", "kissing_gate",
                 "full-height_turnstile", "entrance", "stile"}
WALL_BARRIERS = {"wall", "fence", "retaining_wall", "hedge"}


@dataclass(frozen=True)
class CompoundsAndGates:
    compounds: gpd.GeoDataFrame   # id, name, access, walled, closed, geometry (EPSG:4326)
    gates: gpd.GeoDataFrame       # id, compound_id, kind, entrance, access, name, closed, geometry


def read_compounds_and_gates(path) -> CompoundsAndGates:
    import osmium

    from geo.gates import assign_gates

    path = Path(path)
    if not path.exists():
        raise DataError("file not found", file=str(path))
    fab = osmium.geom.WKBFactory()
    comp_rows, gate_rows, walls = [], [], []
    try:
        fp = osmium.FileProcessor(str(path)).with_areas().with_locations()
        for o in fp:
            tags = dict(o.tags)
            if not tags:
                continue
            if o.is_node():
                b, ent = tags.get("barrier"), tags.get("entrance")
                if b in GATE_BARRIERS or ent:
                    gate_rows.append((f"n{o.id}", b or "entrance", ent, tags.get("access"), tags.get("name"),
                                      o.location.lon, o.location.lat))
            elif o.is_way() and tags.get("barrier") in WALL_BARRIERS:
                try:
                    walls.append(shapely.LineString([(n.lon, n.lat) for n in o.nodes]))
                except (osmium.InvalidLocationError, ValueError):
                    continue
            elif o.is_area() and tags.get("landuse") == "residential":
                try:
                    wkb = fab.create_multipolygon(o)
                except (RuntimeError, osmium.InvalidLocationError):
                    continue
                oid = f"{'w' if o.from_way() else 'r'}{o.orig_id()}"
                comp_rows.append((oid, tags.get("name"), tags.get("access"), tags.get("barrier"), wkb))
    except RuntimeError as e:
        raise DataError(f"not a readable OSM file: {e}", file=str(path)) from None
    compounds = gpd.GeoDataFrame(
        {"id": [r[0] for r in comp_rows], "name": [r[1] for r in comp_rows], "access": [r[2] for r in comp_rows]},
        geometry=[shapely.from_wkb(r[4]) for r in comp_rows], crs=4326)
    compounds = compounds.drop_duplicates("id").reset_index(drop=True)
    gates = gpd.GeoDataFrame(
        {"id": [r[0] for r in gate_rows], "kind": [r[1] for r in gate_rows], "entrance": [r[2] for r in gate_rows],
         "access": [r[3] for r in gate_rows], "name": [r[4] for r in gate_rows]},
        geometry=[shapely.Point(r[5], r[6]) for r in gate_rows], crs=4326)
    gates["compound_id"] = assign_gates(gates, compounds)
    gates["closed"] = (gates["entrance"] == "emergency") | gates["access"].isin(["no"])
    if len(compounds):
        crs = compounds.estimate_utm_crs()
        rings = compounds.to_crs(crs).boundary
        wall = gpd.GeoSeries(walls, crs=4326).to_crs(crs) if walls else gpd.GeoSeries([], crs=crs)
        near = np.zeros(len(compounds), bool)
        if len(wall):
            ci, _ = shapely.STRtree(np.asarray(wall.values)).query(np.asarray(rings.buffer(10).values),
                                                                   predicate="intersects")
            near[np.unique(ci)] = True
        compounds["walled"] = near | [r[3] in WALL_BARRIERS for r in comp_rows][: len(compounds)]
        has_gate = compounds["id"].isin(gates["compound_id"])
        compounds["closed"] = has_gate | compounds["access"].isin(["private", "no"])
    else:
        compounds["walled"] = compounds["closed"] = []
    return CompoundsAndGates(compounds, gates.reset_index(drop=True))


def within(cg: CompoundsAndGates, extent) -> CompoundsAndGates:
    """The compounds touching ``extent`` (a lon/lat polygon) and the gates on them or inside it."""
    c = cg.compounds[cg.compounds.intersects(extent)].reset_index(drop=True)
    g = cg.gates
    g = g[g["compound_id"].isin(c["id"]) | g.within(extent)].reset_index(drop=True)
    g = g.assign(compound_id=g["compound_id"].where(g["compound_id"].isin(c["id"]), ""))
    return CompoundsAndGates(c, g)


def from_bundle(bundle) -> CompoundsAndGates:
    """A dataset's compounds and gates (its ``compounds`` and ``gates`` layers)."""
    return CompoundsAndGates(bundle.compounds, bundle.gates)
