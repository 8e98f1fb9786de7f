"""geo/crs: GCJ-02 / BD-09 conversions (vectorised) and the metric CRS choice."""
import geopandas as gpd
import numpy as np
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.crs import (bd09_to_gcj02, bd09_to_wgs84, gcj02_to_bd09, gcj02_to_wgs84, metric_crs, utm_epsg,
                     wgs84_to_bd09, wgs84_to_gcj02)

LON = st.floats(73.5, 134.5)
LAT = st.floats(18.5, 53.0)


def test_reference_values_of_the_published_formulas():
    # the widely used coordTransform test vector (Beijing, 116.404E 39.915N)
    assert np.allclose(wgs84_to_gcj02(116.404, 39.915), (116.41024449916938, 39.91640428150164), atol=1e-9)
    assert np.allclose(gcj02_to_bd09(116.404, 39.915), (116.41036949371029, 39.92133699351021), atol=1e-9)
    assert np.allclose(bd09_to_gcj02(116.404, 39.915), (116.39762729119315, 39.90865673957631), atol=1e-9)


def test_offset_in_beijing_is_a_few_hundred_metres():
    lon, lat = 116.35, 40.0
    glon, glat = wgs84_to_gcj02(lon, lat)
    dx = (glon - lon) * 111_320 * np.cos(np.radians(lat))
    dy = (glat - lat) * 110_540
    assert 100 < np.hypot(dx, dy) < 800
    blon, blat = wgs84_to_bd09(lon, lat)
    assert np.hypot((blon - lon) * 85_000, (blat - lat) * 110_540) > np.hypot(dx, dy)


def test_outside_china_is_unchanged():
    lon, lat = np.array([2.35, -74.0]), np.array([48.85, 40.7])
    assert np.array_equal(np.stack(wgs84_to_gcj02(lon, lat)), np.stack([lon, lat]))
    assert np.array_equal(np.stack(gcj02_to_wgs84(lon, lat)), np.stack([lon, lat]))


def test_vectorised_shapes_and_round_trip_on_many_points():
    rng = np.random.default_rng(7)
    lon, lat = rng.uniform(73.5, 134.5, (50, 40)), rng.uniform(18.5, 53, (50, 40))
    glon, glat = wgs84_to_gcj02(lon, lat)
    assert glon.shape == lon.shape
    wlon, wlat = gcj02_to_wgs84(glon, glat)
    assert np.abs(wlon - lon).max() < 1e-7 and np.abs(wlat - lat).max() < 1e-7
    blon, blat = wgs84_to_bd09(lon, lat)
    wlon, wlat = bd09_to_wgs84(blon, blat)
    # the BD-09 inverse is the published closed form: about 2e-6 degrees (0.2 m) at worst
    assert np.abs(wlon - lon).max() < 3e-6 and np.abs(wlat - lat).max() < 3e-6


@settings(max_examples=60, deadline=None)
@given(LON, LAT)
def test_gcj02_round_trip(lon, lat):
    w = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    assert abs(float(w[0]) - lon) < 1e-7 and abs(float(w[1]) - lat) < 1e-7


@settings(max_examples=60, deadline=None)
@given(LON, LAT)
def test_bd09_round_trip(lon, lat):
    g = bd09_to_gcj02(*gcj02_to_bd09(lon, lat))
    assert abs(float(g[0]) - lon) < 3e-6 and abs(float(g[1]) - lat) < 3e-6
    w = bd09_to_wgs84(*wgs84_to_bd09(lon, lat))
    assert abs(float(w[0]) - lon) < 3e-6 and abs(float(w[1]) - lat) < 3e-6


def test_nan_passes_through():
    lon, lat = wgs84_to_gcj02(np.array([np.nan, 116.0]), np.array([40.0, 40.0]))
    assert np.isnan(lon[0]) and np.isfinite(lon[1])


def test_metric_crs_is_the_utm_zone_of_the_data():
    g = gpd.GeoDataFrame(geometry=[shapely.Point(116.35, 40.0)], crs=4326)
    assert metric_crs(g) == "EPSG:32650"
    assert utm_epsg(121.47, 31.23) == 32651  # Shanghai
    assert utm_epsg(-70.0, -33.0) == 32719
    # projected input is measured where it lies
    assert metric_crs(g.to_crs(4547)) == "EPSG:32650"
