"""A deterministic synthetic city in the data contract's layers, for benchmarks.

    from benchmarks.synthetic_city import make_city
    layers = make_city(n_grids=20_000, n_buildings=300_000, n_households=3_000_000, seed=0)
    bundle = data.bundle.make_bundle(layers)   # optional: conform to the contract

Layout (metric, UTM 50N near Beijing, stored in EPSG:4326): level-2 grids are square
blocks of a lattice (row-major, the last row may be partial); level-1 grids are 2x2 blocks
of level-2 grids; communities are 2x1 blocks of level-1 grids (8 level-2 grids, ~1,200
households at the defaults). Buildings are small squares on a jittered sub-lattice inside
their level-2 grid and are assigned to it; households are spread over buildings
(multinomial), with persons 1-5 and key-group tags drawn with the catalogue's shares.
Everything is vectorised; same arguments -> same layers.
"""
from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

ORIGIN = (440_000.0, 4_420_000.0)  # EPSG:32650, north-west Beijing
METRIC_CRS = "EPSG:32650"
GRID_M = 250.0
PLAN_ID = "P1"
DEFAULT_TAG_SHARES = (("empty_nest_elderly", 0.12), ("living_alone_elderly", 0.04), ("disabled", 0.05),
                      ("low_income", 0.02), ("extreme_hardship", 0.003), ("unemployed_4050", 0.03),
                      ("floating_population", 0.15), ("released_prisoner", 0.002), ("veteran", 0.02),
                      ("party_member", 0.08), ("rented_home", 0.2))


def _tag_shares():
    try:
        from data.catalogue import key_groups
        return tuple((k.key, k.synthetic_share) for k in key_groups())
    except Exception:  # noqa: BLE001 - usable outside the repo too
        return DEFAULT_TAG_SHARES


def _ids(prefix: str, n: int) -> np.ndarray:
    return np.char.add(prefix, np.arange(n).astype(str)).astype(object)


def _to_wgs84(geoms: np.ndarray) -> np.ndarray:
    return np.asarray(gpd.GeoSeries(geoms, crs=METRIC_CRS).to_crs(4326).values, dtype=object)


def _grouped_union(geoms: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(keys, kind="stable")
    k = keys[order]
    uniq, starts = np.unique(k, return_index=True)
    ends = np.append(starts[1:], len(k))
    return uniq, np.array([shapely.coverage_union_all(geoms[order[s:e]]) for s, e in zip(starts, ends)],
                          dtype=object)


def make_city(n_grids: int = 20_000, n_buildings: int = 300_000, n_households: int = 3_000_000,
              seed: int = 0, with_streets: bool = False) -> dict:
    """Contract layers {communities, plans, grids, buildings, assignments, households} (EPSG:4326);
    with_streets adds walk_edges (a footway lattice) and service_points of every catalogue type."""
    if n_buildings < n_grids:
        raise ValueError("need at least one building per grid")
    rng = np.random.default_rng(seed)
    x0, y0 = ORIGIN
    nx = math.ceil(math.sqrt(n_grids))
    k = np.arange(n_grids)
    col, row = k % nx, k // nx
    gx0, gy1 = x0 + col * GRID_M, y0 - row * GRID_M  # rows run north -> south
    l2_geom = shapely.box(gx0, gy1 - GRID_M, gx0 + GRID_M, gy1)
    l1_key = (row // 2) * (nx // 2 + 1) + col // 2
    l1_uniq, l1_geom = _grouped_union(l2_geom, l1_key)
    l1_col = (col // 2)[np.unique(l1_key, return_index=True)[1]]
    l1_row = (row // 2)[np.unique(l1_key, return_index=True)[1]]
    comm_key = l1_row * (nx // 4 + 1) + l1_col // 2
    c_uniq, c_geom = _grouped_union(l1_geom, comm_key)
    n1, nc = len(l1_uniq), len(c_uniq)
    l1_ids = _ids("L", n1)
    c_ids = _ids("C", nc)
    l1_pos = np.searchsorted(l1_uniq, l1_key)
    c_pos_of_l1 = np.searchsorted(c_uniq, comm_key)
    l2_ids = _ids("G", n_grids)
    # sequences for the 20-digit codes (reading order = lattice order here)
    l1_seq = pd.Series(np.arange(n1)).groupby(c_pos_of_l1).cumcount().to_numpy() + 1
    l2_seq = pd.Series(k).groupby(l1_pos).cumcount().to_numpy() + 1
    c_num = (np.arange(nc) % 999) + 1  # 3 digits per street: a new street (街道) every 999 communities
    street = np.char.zfill((np.arange(nc) // 999 + 1).astype(str), 3)
    c_prefix = np.char.add(np.char.add("1001110108", street), np.char.zfill(c_num.astype(str), 3))
    l1_code = np.char.add(c_prefix[c_pos_of_l1], np.char.add(np.char.zfill(l1_seq.astype(str), 2), "00"))
    l2_code = np.char.add(np.char.add(c_prefix[c_pos_of_l1[l1_pos]],
                                      np.char.zfill(l1_seq[l1_pos].astype(str), 2)),
                          np.char.zfill(l2_seq.astype(str), 2))
    grids = gpd.GeoDataFrame({
        "id": np.concatenate([l1_ids, l2_ids]), "plan_id": PLAN_ID,
        "level": np.r_[np.ones(n1, int), np.full(n_grids, 2)],
        "parent_id": np.concatenate([c_ids[c_pos_of_l1], l1_ids[l1_pos]]),
        "code": np.concatenate([l1_code, l2_code]).astype(object),
        "name": np.concatenate([l1_ids, l2_ids]),
        "head_name": np.concatenate([np.char.add("网格长", l1_ids.astype(str)), np.char.add("网格员", l2_ids.astype(str))]
                                    ).astype(object),
        "head_phone": None,
    }, geometry=_to_wgs84(np.concatenate([l1_geom, l2_geom])), crs=4326)
    communities = gpd.GeoDataFrame({"id": c_ids, "code": np.char.add("110108", np.char.add(street, np.char.zfill(
                                        c_num.astype(str), 3))).astype(object),
                                    "name": np.char.add("社区", c_ids.astype(str)).astype(object), "street": "合成街道"},
                                   geometry=_to_wgs84(c_geom), crs=4326)
    # buildings: per grid on an s x s sub-lattice, jittered, small squares
    per = np.full(n_grids, n_buildings // n_grids)
    per[: n_buildings % n_grids] += 1
    s = math.ceil(math.sqrt(per.max()))
    cell = GRID_M / s
    side = min(20.0, 0.5 * cell)
    g_of_b = np.repeat(k, per)
    slot = np.arange(n_buildings) - np.repeat(np.cumsum(per) - per, per)
    jit = rng.uniform(-0.4, 0.4, size=(n_buildings, 2)) * (cell - side)
    cx = gx0[g_of_b] + (slot % s + 0.5) * cell + jit[:, 0]
    cy = gy1[g_of_b] - (slot // s + 0.5) * cell + jit[:, 1]
    b_ids = _ids("B", n_buildings)
    buildings = gpd.GeoDataFrame({"id": b_ids, "code": None, "name": None, "address": None,
                                  "compound": np.char.add("小区", (g_of_b // 4).astype(str)).astype(object),
                                  "floors": rng.integers(3, 25, n_buildings), "units": rng.integers(1, 6, n_buildings)},
                                 geometry=_to_wgs84(shapely.box(cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)),
                                 crs=4326)
    assignments = pd.DataFrame({"plan_id": PLAN_ID, "building_id": b_ids, "grid_id": l2_ids[g_of_b]})
    # households
    hh_per_b = rng.multinomial(n_households, np.full(n_buildings, 1.0 / n_buildings))
    shares = _tag_shares()
    bits = np.zeros(n_households, dtype=np.int64)
    for i, (_, p) in enumerate(shares):
        bits |= (rng.random(n_households) < p).astype(np.int64) << i
    combos, inv = np.unique(bits, return_inverse=True)
    combo_lists = np.empty(len(combos), dtype=object)
    combo_lists[:] = [[key for i, (key, _) in enumerate(shares) if c >> i & 1] for c in combos]
    households = pd.DataFrame({"id": _ids("H", n_households), "building_id": np.repeat(b_ids, hh_per_b),
                               "unit": 1, "room": None, "persons": rng.integers(1, 6, n_households),
                               "tags": combo_lists[inv.ravel()], "head_name": None, "phone": None,
                               "synthetic": True})
    walk_edges = _streets(x0, y0, nx, math.ceil(n_grids / nx)) if with_streets else None
    service_points = _service_points(rng, buildings, n_grids) if with_streets else None
    plans = pd.DataFrame({"id": [PLAN_ID], "name": ["合成方案"], "status": ["adopted"], "version": [1],
                          "created_at": ["2026-01-01T00:00:00Z"], "created_by": ["benchmarks.synthetic_city"]})
    return {"communities": communities, "plans": plans, "grids": grids, "buildings": buildings,
            "assignments": assignments, "households": households,
            **({"walk_edges": walk_edges, "service_points": service_points} if with_streets else {})}


STREET_M = GRID_M / 2  # a street along every grid edge and one through the middle


def _streets(x0: float, y0: float, nx: int, ny: int) -> gpd.GeoDataFrame:
    """A lattice of footways every STREET_M metres over the grid area, split at every crossing
    (node id = row-major lattice index), as walk_edges."""
    cols, rows = 2 * nx + 1, 2 * ny + 1
    node = np.arange(rows * cols).reshape(rows, cols)
    xs = x0 + np.arange(cols) * STREET_M
    ys = y0 - np.arange(rows) * STREET_M
    h_u, h_v = node[:, :-1].ravel(), node[:, 1:].ravel()
    v_u, v_v = node[:-1, :].ravel(), node[1:, :].ravel()
    u, v = np.r_[h_u, v_u], np.r_[h_v, v_v]
    ux, uy = xs[u % cols], ys[u // cols]
    vx, vy = xs[v % cols], ys[v // cols]
    lines = shapely.linestrings(np.stack([np.c_[ux, uy], np.c_[vx, vy]], axis=1))
    return gpd.GeoDataFrame({"u": u, "v": v, "length_m": STREET_M, "highway": "footway", "name": None},
                            geometry=_to_wgs84(lines), crs=4326)


def _service_points(rng, buildings: gpd.GeoDataFrame, n_grids: int) -> gpd.GeoDataFrame:
    """Per service type of the catalogue about one point per 20 level-2 grids, at random buildings."""
    try:
        from data.catalogue import service_types
        types = [s.key for s in service_types()]
    except Exception:  # noqa: BLE001 - usable outside the repo too
        types = ["community_center", "clinic", "elderly_care", "kindergarten", "market"]
    n = max(1, n_grids // 20)
    at = rng.integers(0, len(buildings), size=(len(types), n)).ravel()
    pts = shapely.centroid(buildings.geometry.values[at])
    return gpd.GeoDataFrame({"id": _ids("S", len(at)), "name": None, "type": np.repeat(types, n).astype(object),
                             "capacity": None, "osm_id": None}, geometry=pts, crs=4326)
