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
