"""data/importers/address: parsing household addresses; geo/assign footprint assignment."""
import geopandas as gpd
import pandas as pd
import pytest
import shapely

from data.importers.address import building_keys, parse_addresses
from geo.assign import assign_by_footprint, fit_score, largest_overlap


@pytest.mark.parametrize("text,compound,building,unit,room", [
    ("3号楼2单元501", "", "3", 2, "501"),
    ("3号楼2单元501室", "", "3", 2, "501"),
    ("清华园小区3栋2单元501室", "清华园", "3", 2, "501"),
    ("学清路8号院12号楼三单元1102", "学清路8号院", "12", 3, "1102"),
    ("十二号楼二单元201", "", "12", 2, "201"),
    ("3-2-501", "", "3", 2, "501"),
    ("５号楼１单元３０２", "", "5", 1, "302"),
    ("7幢1门101", "", "7", 1, "101"),
    ("3号楼 501", "", "3", None, "501"),
    ("A区3座2单元501", "A区", "3", 2, "501"),
    ("12a号楼1单元101", "", "12A", 1, "101"),
])
def test_parse_addresses(text, compound, building, unit, room):
    r = parse_addresses(pd.Series([text])).iloc[0]
    assert r["compound"] == compound and r["building"] == building and r["room"] == room
    assert (pd.isna(r["unit"]) if unit is None else r["unit"] == unit)


def test_unparseable_addresses_have_no_building():
    r = parse_addresses(pd.Series(["东门传达室", None, "", "学清路"]))
    assert r["building"].isna().all()
    assert len(r) == 4


def test_parse_keeps_index():
    r = parse_addresses(pd.Series(["1号楼1单元101"], index=[42]))
    assert r.index.tolist() == [42]


def test_building_keys_from_name_then_address():
    k = building_keys(pd.Series(["3号楼", "3栋", "12", "小区东门", None]),
                      pd.Series(["", "", "", "学清路8号院5号楼", ""]))
    assert k.tolist() == ["3", "3", "12", "5", None]


# -- geo/assign ------------------------------------------------------------------------------
def _frames(buildings, grids):
    b = gpd.GeoDataFrame({"id": [f"b{i}" for i in range(len(buildings))]}, geometry=buildings, crs=32650)
    g = gpd.GeoDataFrame({"id": [f"g{i}" for i in range(len(grids))]}, geometry=grids, crs=32650)
    return b, g


def test_assign_by_footprint_reports_misfits():
    grids = [shapely.box(0, 0, 100, 100), shapely.box(100, 0, 200, 100)]
    buildings = [shapely.box(10, 10, 30, 30),        # clean in g0
                 shapely.box(90, 10, 110, 30),       # 50/50 split
                 shapely.box(170, 10, 190, 30),      # clean in g1
                 shapely.box(300, 10, 320, 30),      # outside
                 shapely.box(190, 50, 210, 60),      # half in g1, half outside
                 shapely.box(95, 40, 125, 50)]       # 5/30 in g0, 25/30 in g1 -> clean enough (83%)
    b, g = _frames(buildings, grids)
    a, mis = assign_by_footprint(b, g, threshold=0.8)
    got = dict(zip(a["building_id"], a["grid_id"]))
    assert got == {"b0": "g0", "b1": "g0", "b2": "g1", "b4": "g1", "b5": "g1"}
    status = dict(zip(mis["building_id"], mis["status"]))
    assert status == {"b1": "split", "b3": "outside", "b4": "partly_outside"}
    row = mis.set_index("building_id").loc["b1"]
    assert row["share"] == pytest.approx(0.5) and row["other_grid_id"] == "g1"
    assert mis.set_index("building_id").loc["b3", "grid_id"] is None
    # a stricter threshold reports b5 too
    _, mis90 = assign_by_footprint(b, g, threshold=0.9)
    assert "b5" in set(mis90["building_id"])


def test_assign_measures_in_metres_from_lonlat():
    b, g = _frames([shapely.box(10, 10, 30, 30)], [shapely.box(0, 0, 100, 100)])
    a, mis = assign_by_footprint(b.to_crs(4326), g.to_crs(4326))
    assert a["share"].iloc[0] == pytest.approx(1.0) and mis.empty


def test_largest_overlap_and_fit_score_empty_inputs():
    b, g = _frames([shapely.box(0, 0, 1, 1)], [])
    lo = largest_overlap(b, g)
    assert lo["best"].tolist() == [-1]
    assert fit_score(b.iloc[0:0], g) == 0.0
    b, g = _frames([shapely.box(0, 0, 10, 10), shapely.box(20, 0, 30, 10)], [shapely.box(0, 0, 25, 10)])
    assert fit_score(b, g) == pytest.approx(0.75)
