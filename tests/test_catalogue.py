"""The service-type catalogue's OSM mappings mean the same thing in the field: tags that name
something else (or something ambiguous outside China) map to nothing (issue 13)."""
import pytest

from data.catalogue import classify_osm


@pytest.mark.parametrize("tags, expected", [
    ({"office": "government"}, None),           # any government office, not a 党群服务中心
    ({"amenity": "townhall"}, None),            # a city hall abroad
    ({"office": "lawyer"}, None),               # a law firm, not 法律援助
    ({"office": "notary"}, None),
    ({"shop": "chemist"}, None),                # a drugstore (cosmetics, toiletries), not a pharmacy
    ({"amenity": "post_office"}, None),         # not a community centre
    ({"amenity": "social_centre"}, None),
    ({"amenity": "hospital"}, "clinic"),        # in China community health centres are mapped so
    ({"amenity": "dentist"}, None),
    ({"healthcare": "physiotherapist"}, None),
    ({"amenity": "social_facility", "social_facility": "shelter"}, None),  # a homeless shelter
    ({"amenity": "childcare"}, None),           # a nursery (0-3), not a 幼儿园
    ({"shop": "mall"}, None),
    ({"leisure": "playground"}, None),
    ({"public_transport": "platform", "railway": "platform"}, None),
    ({"amenity": "pharmacy", "healthcare": "pharmacy"}, "pharmacy"),
    ({"healthcare": "pharmacy"}, "pharmacy"),
    ({"amenity": "clinic"}, "clinic"),
    ({"amenity": "social_facility", "social_facility": "nursing_home"}, "elderly_care"),
    ({"amenity": "social_facility", "social_facility:for": "senior"}, "elderly_care"),
    ({"amenity": "kindergarten"}, "kindergarten"),
    ({"shop": "supermarket"}, "market"),
    ({"amenity": "community_centre"}, "community_center"),
    ({"highway": "bus_stop"}, "bus_stop"),
])
def test_osm_tags_map_to_what_they_mean(tags, expected):
    assert classify_osm(tags) == expected


def _lab(hex_color):
    """sRGB hex -> CIE L*a*b* (D65)."""
    rgb = [int(hex_color[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    x = (0.4124 * lin[0] + 0.3576 * lin[1] + 0.1805 * lin[2]) / 0.95047
    y = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    z = (0.0193 * lin[0] + 0.1192 * lin[1] + 0.9505 * lin[2]) / 1.08883
    f = [v ** (1 / 3) if v > 0.008856 else 7.787 * v + 16 / 116 for v in (x, y, z)]
    return 116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])


def test_service_types_found_in_osm_are_told_apart_by_colour():
    """Types an OSM extract can hold are drawn together on one map: no two of their colours
    closer than ΔE 20 (CIE76), and none equal to the circle's within / beyond colours."""
    import itertools
    import math
    from data.catalogue import service_types
    from layers.service_circle import BEYOND_COLOR, WITHIN_COLOR
    osm = [s for s in service_types() if s.osm_tags]
    assert len(osm) >= 10
    for a, b in itertools.combinations(osm, 2):
        assert math.dist(_lab(a.color), _lab(b.color)) > 20, (a.key, b.key)
    for s in service_types():
        for c in (WITHIN_COLOR, BEYOND_COLOR):
            assert math.dist(_lab(s.color), _lab(c)) > 10, (s.key, c)
