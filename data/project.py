"""Assemble a complete project (all contract layers) from an OSM extract.

Communities and grids are generated (geo/gridgen) and their boundaries derived from
buildings (geo/tessellate); households are optional and, when asked for, synthetic.
"""
from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from data.bundle import Bundle, make_bundle
from data.catalogue import key_groups
from data.schema import ATTRIBUTION, SYNTHETIC_NOTICE_EN, SYNTHETIC_NOTICE_ZH
from geo.buildings import household_capacity
from geo.codes import compose
from geo.gridgen import (GridTargets, cell_adjacency, generate_plan, make_contiguous, nested_footprints,
                         renumber_reading_order)
from geo.synth import generate_households
from geo.tessellate import building_cells, dissolve_cells

AUTO_PLAN_ID = "P1"
CN_DIGITS = "零一二三四五六七八九十"


def project_from_osm(extract, *, source_name: str, county_code: str, street_code: str, object_code: str,
                     street_name: str = "", synthetic_households: bool = True, seed: int = 20261123,
                     created_at: str = "2026-01-01T00:00:00Z", targets: GridTargets = GridTargets(),
                     progress=None, community_codes=(), catalogue=None) -> Bundle:
    """A complete project from an OSM extract. community_codes: ((community id or name, 3 digits),
    ...) from the deployment's settings ([codes.communities]); other communities are numbered in
    reading order (geo.codes.community_parts keeps the numbers distinct). catalogue: the key
    groups in force for synthetic households (Settings.catalogue())."""
    say = progress or (lambda m: None)
    b = extract.buildings.reset_index(drop=True)
    cap = household_capacity(b)
    say("generating communities and grids ...")
    expected = cap * 0.93 if synthetic_households else cap
    labels = generate_plan(b, expected, extract.walk_edges, extract.extent, targets)
    # the area to share out: the extent plus every footprint that sticks out of it, so no building
    # is cut by the edge of its community; grids are unions of their buildings' cells
    area = shapely.union_all(np.concatenate([[extract.extent], b.geometry.values]))
    cells = building_cells(b, area)
    labels = renumber_reading_order(make_contiguous(labels, cell_adjacency(cells.values), expected), b)
    comm, l1, l2 = (labels[c].to_numpy() for c in ("community", "level1", "level2"))
    comm_id = np.char.add("C", np.char.zfill(comm.astype(str), 3))
    l1_id = np.char.add(np.char.add(comm_id, "-"), np.char.zfill(l1.astype(str), 2))
    l2_id = np.char.add(np.char.add(l1_id, "-"), np.char.zfill(l2.astype(str), 2))

    # buildings: ids from OSM, names "N号楼" numbered within compound (or community) in reading order
    from geo.codes import sequence_within
    from geo.crs import metric_crs
    xy = shapely.get_coordinates(b.geometry.representative_point().to_crs(metric_crs(b)).values)
    group = pd.Series(np.where(b["compound"].notna(), b["compound"].fillna(""), comm_id.astype(object)))
    seq = sequence_within(group, xy, 60.0)
    bseq = sequence_within(pd.Series(comm_id), xy, 60.0)
    names = np.where(b["name"].notna(), b["name"].fillna(""), pd.Series(seq).astype(str) + "号楼")
    place = np.where(b["compound"].notna(), b["compound"].fillna(""), "")
    buildings = gpd.GeoDataFrame({
        "id": "B" + b["osm_id"].astype(str), "code": bseq,
        "name": names, "address": np.where(b["address"].notna(), b["address"].fillna(""), place + names),
        "compound": b["compound"], "floors": b["floors"], "units": b["units"],
        "floors_estimated": b["floors_estimated"], "kind": b["kind"], "osm_id": b["osm_id"]},
        geometry=b.geometry.values, crs=4326)

    groups = catalogue.key_groups if catalogue is not None else key_groups()
    households = generate_households(buildings, cap, groups, seed=seed) if synthetic_households else None
    say("balancing grids (fewest moves, contiguous) ...")
    l2_id, l1_id = _rebalance(buildings, households, cap, cells, comm_id, l1_id, l2_id, extract.walk_edges)

    say("deriving grid boundaries from buildings ...")
    g2, g1, gc = (dissolve_cells(cells, ids).rename_axis("id").reset_index() for ids in (l2_id, l1_id, comm_id))

    # communities named after their largest compound
    cdf = pd.DataFrame({"id": comm_id, "compound": b["compound"], "cap": cap})
    top = (cdf.dropna(subset=["compound"]).groupby(["id", "compound"])["cap"].sum().reset_index()
           .sort_values(["id", "cap"], ascending=[True, False]).drop_duplicates("id").set_index("id")["compound"])
    communities = gc.sort_values("id").reset_index(drop=True)
    num = communities["id"].str[1:].astype(int)
    communities["name"] = [f"{top[i]}社区" if i in top.index and not str(top[i]).startswith("compound-")
                           else f"第{n}社区" for i, n in zip(communities["id"], num)]
    dup = communities["name"].duplicated(keep=False)
    communities.loc[dup, "name"] = communities.loc[dup, "name"] + "(" + num[dup].astype(str) + ")"
    communities["street"] = street_name
    from geo.codes import community_parts
    _, cnums = community_parts(communities["id"].to_numpy(dtype=object), communities["name"].to_numpy(dtype=object),
                               communities["street"].to_numpy(dtype=object), num.to_numpy(),
                               community_codes=community_codes, default_street=street_code)
    cnum = dict(zip(communities["id"], (int(n) for n in cnums)))
    communities["code"] = [f"{county_code}{street_code}{cnum[i]:03d}" for i in communities["id"]]
    buildings["code"] = [f"{county_code}{street_code}{cnum[c]:03d}{s:04d}" for c, s in zip(comm_id, bseq)]

    rng = np.random.default_rng(seed + 1)
    from geo.synth import GIVEN, SURNAMES
    def heads(n):
        if not synthetic_households:
            return [None] * n, [None] * n
        s = rng.integers(0, len(SURNAMES), n)
        g = rng.integers(0, len(GIVEN), (n, 2))
        nm = [SURNAMES[i] + GIVEN[j] + GIVEN[k] for i, (j, k) in zip(s, g)]
        ph = [f"1990001{v:04d}" for v in rng.integers(0, 10_000, n)]
        return nm, ph
    g1 = g1.sort_values("id").reset_index(drop=True)
    g2 = g2.sort_values("id").reset_index(drop=True)
    cname = dict(zip(communities["id"], communities["name"]))
    g1["level"] = 1
    g1["parent_id"] = g1["id"].str[:4]
    g1["seq"] = g1["id"].str[5:7].astype(int)
    g1["name"] = [f"{cname[p]}第{CN_DIGITS[s] if s <= 10 else s}网格" for p, s in zip(g1["parent_id"], g1["seq"])]
    g1["code"] = [compose(object_code, county_code, street_code, cnum[p], s)
                  for p, s in zip(g1["parent_id"], g1["seq"])]
    g2["level"] = 2
    g2["parent_id"] = g2["id"].str[:7]
    g2["seq"] = g2["id"].str[8:10].astype(int)
    l1name = dict(zip(g1["id"], g1["name"]))
    g2["name"] = [f"{l1name[p]}{s}号微网格" for p, s in zip(g2["parent_id"], g2["seq"])]
    g2["code"] = [compose(object_code, county_code, street_code, cnum[p[:4]], int(p[5:7]), s)
                  for p, s in zip(g2["parent_id"], g2["seq"])]
    grids = pd.concat([g1, g2], ignore_index=True)
    grids["head_name"], grids["head_phone"] = heads(len(grids))
    grids["plan_id"] = AUTO_PLAN_ID
    grids = gpd.GeoDataFrame(grids.drop(columns="seq"), geometry="geometry", crs=4326)

    plans = pd.DataFrame({"id": [AUTO_PLAN_ID], "name": ["自动生成方案 Auto-generated plan"], "status": ["adopted"],
                          "version": [1], "created_at": [created_at], "created_by": ["minsheng import-osm"]})
    assignments = pd.DataFrame({"plan_id": AUTO_PLAN_ID, "building_id": buildings["id"], "grid_id": l2_id})


    sp = extract.service_points
    service_points = gpd.GeoDataFrame({
        "id": "S" + sp["osm_id"].astype(str) + "-" + sp["type"].astype(str), "name": sp["name"],
        "type": sp["type"], "capacity": pd.array([pd.NA] * len(sp), dtype="Int64"), "osm_id": sp["osm_id"]},
        geometry=sp.geometry.values, crs=4326)
    meta = {"attribution": ATTRIBUTION, "source": source_name,
            "extent": json.dumps([round(v, 6) for v in extract.extent.bounds]),
            "households": "synthetic" if synthetic_households else "none",
            "synthetic_notice_zh": SYNTHETIC_NOTICE_ZH if synthetic_households else "",
            "synthetic_notice_en": SYNTHETIC_NOTICE_EN if synthetic_households else "",
            "seed": str(seed), "created_at": created_at}
    return make_bundle({
        "communities": communities[["id", "code", "name", "street", "geometry"]],
        "plans": plans, "grids": grids, "buildings": buildings, "assignments": assignments,
        "households": households, "service_points": service_points, "walk_edges": extract.walk_edges,
        "meta": pd.DataFrame({"key": list(meta), "value": list(meta.values())}),
    }, source=source_name)


def _rebalance(buildings, households, cap, cells, comm_id, l1_id, l2_id, walk_edges):
    """Move as few boundary buildings as possible between neighbouring level-2 grids of one
    community so grids fall within the default household bands, keeping grids contiguous
    (geo/regionalize, min-moves mode). Returns new (level-2, level-1) ids per building."""
    from geo.plan import Plan
    from geo.regionalize import propose_plan
    from minsheng.settings import Settings
    if households is None:  # no ledger yet: balance on the dwellings the buildings hold
        households = pd.DataFrame({"building_id": np.repeat(buildings["id"].to_numpy(), cap)})
    comm = dissolve_cells(cells, comm_id).rename_axis("id").reset_index()
    comm["code"] = comm["id"].str[1:]
    comm["name"] = comm["id"]
    parent = dict(zip(l2_id, l1_id)) | dict(zip(l1_id, comm_id))
    grids = pd.DataFrame({"id": list(parent), "parent_id": list(parent.values()),
                          "level": [2 if i.count("-") == 2 else 1 for i in parent]})
    plan = Plan("P", grids, pd.DataFrame({"building_id": buildings["id"], "grid_id": l2_id}),
                tuple(comm["id"]))
    prop = propose_plan(buildings, households, comm, walk_edges, start_from=plan, min_moves=True,
                        settings=Settings())
    new_l2 = prop.plan.building_grid().reindex(buildings["id"]).to_numpy(dtype=object)
    inner, outer = nested_footprints(buildings.geometry.values)
    new_l2[inner] = new_l2[outer]  # nested footprints stay with their container
    return new_l2.astype(str), np.array([parent[g] for g in new_l2]).astype(str)
