"""Small hand-made projects for the import/export tests (built in tmp_path, never shipped).

Layout (metres, UTM 50N around 116.35E 40.01N): one community 400 x 200 m; two level-1 grids
(west/east halves); four level-2 grids (200 x 100 m quarters... see GRID_BOXES); 16 buildings of
30 x 20 m on a 100 m lattice, each well inside one level-2 grid.
"""
from __future__ import annotations

import geopandas as gpd
import pandas as pd
import shapely

from data.bundle import make_bundle
from data.gpkg_store import GpkgStore

METRIC = "EPSG:32650"
X0, Y0 = 444_000.0, 4_429_000.0  # about 116.35E, 40.01N
# level-2 grids: (id, parent, xmin, ymin, xmax, ymax) relative to X0, Y0
GRID_BOXES = [("g2-a", "g1-w", 0, 0, 200, 100), ("g2-b", "g1-w", 0, 100, 200, 200),
              ("g2-c", "g1-e", 200, 0, 400, 100), ("g2-d", "g1-e", 200, 100, 400, 200)]
L1_BOXES = [("g1-w", 0, 0, 200, 200), ("g1-e", 200, 0, 400, 200)]


def box(xmin, ymin, xmax, ymax):
    return shapely.box(X0 + xmin, Y0 + ymin, X0 + xmax, Y0 + ymax)


def to_wgs(geoms) -> gpd.GeoSeries:
    return gpd.GeoSeries(list(geoms), crs=METRIC).to_crs(4326)


def building_frame() -> gpd.GeoDataFrame:
    rows = []
    k = 0
    for j in range(4):          # rows south -> north
        for i in range(4):      # columns west -> east
            k += 1
            x, y = 35 + i * 100, 15 + j * 50
            rows.append({"id": f"b{k:02d}", "code": f"B{k:02d}", "name": f"{k}号楼", "address": f"学清路8号院{k}号楼",
                         "compound": "清华园" if k <= 8 else "学清苑", "floors": 6, "units": 3,
                         "geometry": box(x, y, x + 30, y + 20)})
    gdf = gpd.GeoDataFrame(rows, geometry="geometry", crs=METRIC)
    return gdf.to_crs(4326)


def bundle_layers(with_plan: bool = True) -> dict:
    b = building_frame()
    comm = gpd.GeoDataFrame({"id": ["c1"], "code": ["001"], "name": ["学清社区"], "street": ["学院路街道"]},
                            geometry=to_wgs([box(0, 0, 400, 200)]).values, crs=4326)
    layers = {"buildings": b, "communities": comm}
    if with_plan:
        grids = [{"id": gid, "plan_id": "p1", "level": 1, "parent_id": "c1", "code": None, "name": f"一级{gid}",
                  "head_name": "王建国", "head_phone": "13812345678", "geometry": box(*bb)} for gid, *bb in L1_BOXES]
        grids += [{"id": gid, "plan_id": "p1", "level": 2, "parent_id": par, "code": None, "name": f"二级{gid}",
                   "head_name": "李四", "head_phone": "13912345678", "geometry": box(*bb)}
                  for gid, par, *bb in GRID_BOXES]
        g = gpd.GeoDataFrame(grids, geometry="geometry", crs=METRIC).to_crs(4326)
        layers["grids"] = g
        layers["plans"] = pd.DataFrame([{"id": "p1", "name": "现行方案", "status": "adopted", "version": 1,
                                         "created_at": "2026-01-01", "created_by": "test"}])
        cent = b.to_crs(METRIC).geometry.centroid
        a = []
        for bid, c in zip(b["id"], cent):
            for gid, _, x0, y0, x1, y1 in GRID_BOXES:
                if X0 + x0 <= c.x < X0 + x1 and Y0 + y0 <= c.y < Y0 + y1:
                    a.append({"plan_id": "p1", "building_id": bid, "grid_id": gid})
        layers["assignments"] = pd.DataFrame(a)
        hh = [{"id": f"h{i:03d}", "building_id": f"b{(i % 16) + 1:02d}", "unit": 1 + i % 3, "room": f"{101 + i}",
               "persons": 1 + i % 4, "tags": ["empty_nest_elderly"] if i % 5 == 0 else (["low_income"] if i % 7 == 0 else []),
               "head_name": "张三丰", "phone": "13700001111", "synthetic": True} for i in range(48)]
        layers["households"] = pd.DataFrame(hh)
        layers["service_points"] = gpd.GeoDataFrame(
            {"id": ["s1", "s2"], "name": ["学清党群服务中心", "卫生服务站"], "type": ["party_mass_center", "clinic"],
             "capacity": [100, 50]}, geometry=to_wgs([shapely.Point(X0 + 100, Y0 + 95), shapely.Point(X0 + 300, Y0 + 95)]).values,
            crs=4326)
    return layers


def make_store(tmp_path, name: str = "project.gpkg", with_plan: bool = True) -> GpkgStore:
    store = GpkgStore(tmp_path / name)
    store.write_all(make_bundle(bundle_layers(with_plan)))
    return store


def grid_polygons(level2_only: bool = False, metric: bool = False) -> gpd.GeoDataFrame:
    """The fixture's grids as a user would draw them elsewhere (名称/级别/上级 columns)."""
    rows = []
    if not level2_only:
        rows += [{"编号": gid, "名称": f"新一级{gid}", "级别": "一级", "上级": None, "geometry": box(*bb)}
                 for gid, *bb in L1_BOXES]
    rows += [{"编号": gid, "名称": f"新二级{gid}", "级别": "二级", "上级": None if level2_only else par,
              "geometry": box(*bb)} for gid, par, *bb in GRID_BOXES]
    gdf = gpd.GeoDataFrame(rows, geometry="geometry", crs=METRIC)
    return gdf if metric else gdf.to_crs(4326)
