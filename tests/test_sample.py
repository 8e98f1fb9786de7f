"""The shipped sample: real OSM buildings and streets, generated grids, synthetic households."""
import pytest

from data.gpkg_store import GpkgStore
from data.schema import ATTRIBUTION
from minsheng.settings import Settings, sample_path


@pytest.fixture(scope="module")
def sample():
    return GpkgStore(sample_path()).load()


def test_sample_sizes_and_attribution(sample):
    assert len(sample.buildings) > 200 and len(sample.walk_edges) > 500 and len(sample.service_points) > 50
    assert 1_100 * len(sample.communities) <= len(sample.households) <= 2_400 * len(sample.communities)
    assert sample.households["synthetic"].all()
    assert sample.meta_dict["attribution"] == ATTRIBUTION
    assert sample.buildings.crs.to_epsg() == 4326


def test_every_building_in_exactly_one_level2_grid(sample):
    plan = sample.adopted_plan_id()
    a = sample.plan_assignments(plan)
    g = sample.plan_grids(plan)
    assert a["building_id"].is_unique
    assert set(a["building_id"]) == set(sample.buildings["id"])
    assert set(a["grid_id"]) <= set(g.loc[g["level"] == 2, "id"])
    l1 = g[g["level"] == 1]
    assert set(g.loc[g["level"] == 2, "parent_id"]) == set(l1["id"])
    assert set(l1["parent_id"]) == set(sample.communities["id"])


def test_households_balanced_per_community(sample):
    s = Settings()
    plan = sample.adopted_plan_id()
    a = sample.plan_assignments(plan).set_index("building_id")["grid_id"]
    g = sample.plan_grids(plan).set_index("id")["parent_id"]
    comm = sample.households["building_id"].map(a).map(g).map(g)
    counts = comm.value_counts()
    assert comm.notna().all()
    assert all(s.band(0).low <= n <= s.band(0).high for n in counts)


def test_sample_regenerates_byte_for_byte(tmp_path):
    from data.samples.build_sample import main
    out = main(tmp_path / "again.gpkg")
    assert out.read_bytes() == sample_path().read_bytes()


def test_sample_grids_are_contiguous_and_mostly_in_band(sample):
    """Generated grids are walkable areas: each level-1 and level-2 grid is one polygon; grids
    outside the band are only those that whole buildings cannot bring into it."""
    import shapely

    from geo.coverage import audit_bundle
    g = sample.plan_grids(sample.adopted_plan_id())
    assert (shapely.get_num_geometries(g.geometry.values) == 1).all()
    audit = audit_bundle(sample, settings=Settings())
    out = audit.grids[(audit.grids["level"] == 2) & (audit.grids["band"] != "ok")]
    assert len(out) <= 2 and (out["households"] > 300).all()


def test_sample_has_compounds_and_gates_layers(sample):
    """Compounds and gates are store layers of the sample (from its OSM extract at build time),
    registered in gpkg_contents; nothing reads the extract at run time."""
    import sqlite3
    assert len(sample.compounds) == 10 and "石科院生活区" in set(sample.compounds["name"])
    assert sample.compounds.geom_type.unique().tolist() == ["MultiPolygon"]
    on = sample.gates[sample.gates["compound_id"] != ""]
    assert set(on["compound_id"]) == set(sample.compounds.loc[sample.compounds["closed"], "id"])
    assert sample.gates.loc[sample.gates["entrance"] == "emergency", "closed"].all()
    with sqlite3.connect(f"file:{sample_path()}?mode=ro", uri=True) as c:
        kinds = dict(c.execute("SELECT table_name, data_type FROM gpkg_contents").fetchall())
    assert kinds["compounds"] == "features" and kinds["gates"] == "features" and kinds["scenarios"] == "attributes"
    assert sample.scenarios.empty
