"""import-osm on tiny hand-made OSM files and on the shipped real extract."""
import textwrap

import pytest

from data.bundle import DataError
from data.gpkg_store import GpkgStore
from data.importers.osm import parse_levels, read_osm
from minsheng.cli import main

# A 3x2 lattice of streets (~111 m apart in latitude), a footway with foot=no (excluded),
# a motorway (excluded), one building with levels, one without, a clinic node, a compound.
OSM = textwrap.dedent("""\
<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6" generator="test">
 <bounds minlat="40.0000" minlon="116.3000" maxlat="40.0020" maxlon="116.3030"/>
 <node id="1" lat="40.0000" lon="116.3000" version="1"/>
 <node id="2" lat="40.0000" lon="116.3010" version="1"/>
 <node id="3" lat="40.0000" lon="116.3020" version="1"/>
 <node id="4" lat="40.0010" lon="116.3000" version="1"/>
 <node id="5" lat="40.0010" lon="116.3010" version="1"/>
 <node id="6" lat="40.0010" lon="116.3020" version="1"/>
 <node id="7" lat="40.0020" lon="116.3000" version="1"/>
 <node id="8" lat="40.0020" lon="116.3020" version="1"/>
 <node id="20" lat="40.0003" lon="116.3003" version="1"/>
 <node id="21" lat="40.0003" lon="116.3007" version="1"/>
 <node id="22" lat="40.0007" lon="116.3007" version="1"/>
 <node id="23" lat="40.0007" lon="116.3003" version="1"/>
 <node id="30" lat="40.0013" lon="116.3013" version="1"/>
 <node id="31" lat="40.0013" lon="116.3017" version="1"/>
 <node id="32" lat="40.0017" lon="116.3017" version="1"/>
 <node id="33" lat="40.0017" lon="116.3013" version="1"/>
 <node id="40" lat="40.0001" lon="116.3001" version="1"/>
 <node id="41" lat="40.0001" lon="116.3009" version="1"/>
 <node id="42" lat="40.0009" lon="116.3009" version="1"/>
 <node id="43" lat="40.0009" lon="116.3001" version="1"/>
 <node id="50" lat="40.0015" lon="116.3005" version="1"><tag k="amenity" v="clinic"/><tag k="name" v="社区卫生服务站"/></node>
 <node id="51" lat="40.0015" lon="116.3006" version="1"><tag k="amenity" v="restaurant"/></node>
 <way id="100" version="1"><nd ref="1"/><nd ref="2"/><nd ref="3"/><tag k="highway" v="residential"/><tag k="name" v="南街"/></way>
 <way id="101" version="1"><nd ref="4"/><nd ref="5"/><nd ref="6"/><tag k="highway" v="tertiary"/></way>
 <way id="102" version="1"><nd ref="1"/><nd ref="4"/><nd ref="7"/><tag k="highway" v="residential"/></way>
 <way id="103" version="1"><nd ref="2"/><nd ref="5"/><tag k="highway" v="footway"/></way>
 <way id="104" version="1"><nd ref="3"/><nd ref="6"/><nd ref="8"/><tag k="highway" v="residential"/></way>
 <way id="105" version="1"><nd ref="7"/><nd ref="8"/><tag k="highway" v="footway"/><tag k="foot" v="no"/></way>
 <way id="106" version="1"><nd ref="7"/><nd ref="5"/><tag k="highway" v="motorway"/></way>
 <way id="200" version="1"><nd ref="20"/><nd ref="21"/><nd ref="22"/><nd ref="23"/><nd ref="20"/>
   <tag k="building" v="residential"/><tag k="building:levels" v="6"/></way>
 <way id="201" version="1"><nd ref="30"/><nd ref="31"/><nd ref="32"/><nd ref="33"/><nd ref="30"/>
   <tag k="building" v="yes"/><tag k="name" v="办公楼"/></way>
 <way id="300" version="1"><nd ref="40"/><nd ref="41"/><nd ref="42"/><nd ref="43"/><nd ref="40"/>
   <tag k="landuse" v="residential"/><tag k="name" v="幸福小区"/></way>
</osm>
""")


@pytest.fixture
def tiny_osm(tmp_path):
    p = tmp_path / "tiny.osm"
    p.write_text(OSM, encoding="utf-8")
    return p


def test_parse_levels():
    assert parse_levels("6") == 6
    assert parse_levels("5;7") == 7
    assert parse_levels("12.5") == 12
    assert parse_levels("abc") is None
    assert parse_levels(None) is None


def test_read_tiny_extract(tiny_osm):
    x = read_osm(tiny_osm)
    e = x.walk_edges
    # footway 105 (foot=no) and motorway 106 are not walkable
    assert not ({7, 8} <= set(e["u"]) | set(e["v"]) and ((e["u"] == 7) & (e["v"] == 8)).any())
    assert not (((e["u"] == 7) & (e["v"] == 5)) | ((e["u"] == 5) & (e["v"] == 7))).any()
    # ways are split at shared nodes: 100 -> 1-2, 2-3 ; 102 -> 1-4, 4-7 ; 104 -> 3-6, 6-8 ; 101 -> 4-5, 5-6 ; 103 -> 2-5
    pairs = {tuple(sorted(p)) for p in zip(e["u"], e["v"])}
    assert pairs == {(1, 2), (2, 3), (1, 4), (4, 7), (3, 6), (6, 8), (4, 5), (5, 6), (2, 5)}
    # 0.001 degree of latitude is about 111 m
    ns = e[(e["u"].isin([1, 4])) & (e["v"].isin([1, 4]))]["length_m"].iloc[0]
    assert 110 < ns < 112.5
    b = x.buildings.set_index("osm_id")
    assert b.loc["w200", "floors"] == 6 and not b.loc["w200", "floors_estimated"]
    assert b.loc["w201", "floors_estimated"]
    assert b.loc["w200", "compound"] == "幸福小区" and b.loc["w200", "kind"] == "residential"
    assert b.loc["w201", "kind"] == "other"
    sp = x.service_points
    assert list(sp["type"]) == ["clinic"] and sp["name"].iloc[0] == "社区卫生服务站"


def test_bad_files_are_named(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_osm(tmp_path / "missing.osm")
    bad = tmp_path / "table.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="table.csv"):
        read_osm(bad)
    nobounds = tmp_path / "nobounds.osm"
    nobounds.write_text(OSM.replace(' <bounds minlat="40.0000" minlon="116.3000" maxlat="40.0020" maxlon="116.3030"/>\n', ""))
    with pytest.raises(DataError, match="bbox"):
        read_osm(nobounds)
    assert len(read_osm(nobounds, bbox=(116.2999, 39.9999, 116.3031, 40.0021)).buildings) == 2


def test_import_cli_failure_leaves_project_unchanged(tiny_osm, tmp_path, capsys):
    out = tmp_path / "p.gpkg"
    assert main(["import-osm", str(tiny_osm), "--out", str(out)]) == 0
    before = out.read_bytes()
    broken = tmp_path / "broken.osm"
    broken.write_text("<osm><node id='1' lat='x'")
    assert main(["import-osm", str(broken), "--out", str(out)]) == 2
    assert "broken.osm" in capsys.readouterr().err
    assert main(["import-osm", str(tiny_osm), "--out", str(out), "--bbox", "1,2,0,3"]) == 2
    assert out.read_bytes() == before


def test_import_cli_tiny_project_is_complete(tiny_osm, tmp_path):
    out = tmp_path / "p.gpkg"
    assert main(["import-osm", str(tiny_osm), "--out", str(out)]) == 0
    b = GpkgStore(out).load()
    assert len(b.buildings) == 2 and len(b.assignments) == 2
    assert set(b.assignments["grid_id"]) <= set(b.grids.loc[b.grids["level"] == 2, "id"])
    assert b.households["synthetic"].all() and len(b.households) > 0
    assert set(b.households["building_id"]) == {"Bw200"}  # only the residential building holds households
    assert b.meta_dict["attribution"].startswith("Map data © OpenStreetMap contributors")


def test_edge_and_nested_buildings_are_never_split(tmp_path):
    """A footprint crossing the extent's edge keeps all of its area in its grid; a footprint drawn
    inside another one (a mis-tagged building part) lands in its container's grid."""
    from geo.coverage import audit_bundle
    extra = textwrap.dedent("""\
     <node id="60" lat="40.0016" lon="116.3024" version="1"/>
     <node id="61" lat="40.0016" lon="116.3034" version="1"/>
     <node id="62" lat="40.0019" lon="116.3034" version="1"/>
     <node id="63" lat="40.0019" lon="116.3024" version="1"/>
     <node id="70" lat="40.00035" lon="116.30035" version="1"/>
     <node id="71" lat="40.00035" lon="116.30045" version="1"/>
     <node id="72" lat="40.00045" lon="116.30045" version="1"/>
     <node id="73" lat="40.00045" lon="116.30035" version="1"/>
     <way id="400" version="1"><nd ref="60"/><nd ref="61"/><nd ref="62"/><nd ref="63"/><nd ref="60"/>
       <tag k="building" v="residential"/><tag k="building:levels" v="3"/></way>
     <way id="401" version="1"><nd ref="70"/><nd ref="71"/><nd ref="72"/><nd ref="73"/><nd ref="70"/>
       <tag k="building" v="yes"/></way>
    """)
    from data.project import project_from_osm
    from geo.gridgen import GridTargets
    p = tmp_path / "edge.osm"
    p.write_text(OSM.replace("</osm>", extra + "</osm>"), encoding="utf-8")
    # tiny targets: every building its own level-2 grid, so a split would show
    b = project_from_osm(read_osm(p), source_name="edge.osm", county_code="110108", street_code="012",
                         object_code="1001", targets=GridTargets(community=40, level1=20, level2=1))
    assert {"Bw400", "Bw401", "Bw200"} <= set(b.buildings["id"])
    a = b.plan_assignments(b.adopted_plan_id()).set_index("building_id")["grid_id"]
    assert a.nunique() >= 3
    assert a["Bw401"] == a["Bw200"]  # the nested footprint follows its container
    audit = audit_bundle(b)
    kinds = {p.kind for p in audit.problems}
    assert not kinds & {"split_building", "misplaced_building", "unassigned_building", "gap", "overlap"}, kinds


def test_pbf_extract_reads_like_xml(tiny_osm, tmp_path):
    import osmium
    pbf = tmp_path / "tiny.osm.pbf"
    with osmium.SimpleWriter(str(pbf), header=osmium.io.Reader(str(tiny_osm)).header()) as w:
        for o in osmium.FileProcessor(str(tiny_osm)):
            w.add(o)
    a, b = read_osm(tiny_osm), read_osm(pbf)
    assert a.stats == b.stats
    assert list(a.buildings["osm_id"]) == list(b.buildings["osm_id"])
    assert a.walk_edges["length_m"].sum() == pytest.approx(b.walk_edges["length_m"].sum(), abs=0.05)


# -- real-world extracts: edges, unsorted files, geometry, refusals (issue 13) -----------------
import re  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import shapely  # noqa: E402

SHIPPED = Path(__file__).resolve().parents[1].parent.parent / "shared" / "data"


def _shipped():
    for base in (Path("/work/shared/data"), SHIPPED):
        found = sorted(base.glob("*/map.osm")) if base.exists() else []
        if found:
            return found
    return []


def _cut_copy(src, out):
    """The extract as `osmium extract --strategy simple` makes it: nodes outside the bounds
    dropped, every way and relation kept (so ways crossing the edge lose their outside nodes)."""
    import osmium
    with osmium.io.Reader(str(src)) as rd:
        hdr = rd.header()
    b = hdr.box()
    x0, y0, x1, y1 = b.bottom_left.lon, b.bottom_left.lat, b.top_right.lon, b.top_right.lat
    with osmium.SimpleWriter(str(out), header=hdr) as w:
        for o in osmium.FileProcessor(str(src)):
            if not o.is_node():
                w.add(o)
            elif x0 <= o.location.lon <= x1 and y0 <= o.location.lat <= y1:
                w.add_node(o)
    return out


def _unsorted_copy(src, out):
    """The same objects written relations first, then ways, then nodes, each in reverse id order."""
    import osmium
    from osmium.osm import mutable
    with osmium.io.Reader(str(src)) as rd:
        hdr = rd.header()
    nodes, ways, rels = [], [], []
    for o in osmium.FileProcessor(str(src)):
        tags = dict(o.tags)
        if o.is_node():
            nodes.append(mutable.Node(id=o.id, location=(o.location.lon, o.location.lat), tags=tags, version=1))
        elif o.is_way():
            ways.append(mutable.Way(id=o.id, nodes=[n.ref for n in o.nodes], tags=tags, version=1))
        else:
            rels.append(mutable.Relation(id=o.id, members=[(m.type, m.ref, m.role) for m in o.members], tags=tags,
                                         version=1))
    with osmium.SimpleWriter(str(out), header=hdr) as w:
        for r in rels[::-1]:
            w.add_relation(r)
        for x in ways[::-1]:
            w.add_way(x)
        for n in nodes[::-1]:
            w.add_node(n)
    return out


def _gdal_walk_length_m(path, extent, mcrs) -> float:
    """Independent reference: GDAL's OSM driver (pyogrio) 'lines' layer, the same walkable-tag
    rule, clipped by shapely to the extent, measured in the metric CRS."""
    import geopandas as gpd
    import pyogrio
    from data.importers.osm import _walkable
    lines = pyogrio.read_dataframe(str(path), layer="lines", columns=["highway", "other_tags"])
    pair = re.compile(r'"((?:[^"\\]|\\.)*)"=>"((?:[^"\\]|\\.)*)"')
    keep = []
    for hw, other in zip(lines["highway"], lines["other_tags"]):
        tags = dict(pair.findall(other)) if isinstance(other, str) else {}
        if isinstance(hw, str):
            tags["highway"] = hw
        keep.append(_walkable(tags))
    clipped = shapely.intersection(lines.geometry.values[np.array(keep, dtype=bool)], extent)
    return float(gpd.GeoSeries(clipped, crs=4326).to_crs(mcrs).length.sum())


def _our_walk_length_m(x, mcrs) -> float:
    import geopandas as gpd
    return float(gpd.GeoSeries(shapely.intersection(x.walk_edges.geometry.values, x.extent), crs=4326)
                 .to_crs(mcrs).length.sum())


@pytest.mark.parametrize("cut", [False, True], ids=["complete", "cut-at-edge"])
@pytest.mark.parametrize("src", _shipped(), ids=lambda p: p.parent.name)
def test_walk_network_length_matches_another_reader(src, cut, tmp_path):
    """Within 2 % of the walkable ways GDAL reads from the same file, inside the extent; on the
    cut copy too, where the old importer dropped every way crossing the edge (13-25 % lost)."""
    from geo.crs import utm_epsg
    path = _cut_copy(src, tmp_path / "cut.osm.pbf") if cut else src
    x = read_osm(path)
    mcrs = f"EPSG:{utm_epsg(*shapely.get_coordinates(x.extent.centroid)[0])}"
    ours, ref = _our_walk_length_m(x, mcrs), _gdal_walk_length_m(path, x.extent, mcrs)
    assert ref > 10_000
    assert abs(ours / ref - 1) < 0.02, (ours, ref)
    if cut:
        assert x.stats["ways_cut"] > 0 and "cut at the extract's edge kept as" in x.stats["skipped"]
        full = read_osm(src)
        # buildings crossing the edge are closed from the nodes present, not all dropped
        assert x.stats["closed_from_present"] > 0
        assert len(x.buildings) >= len(full.buildings) - x.stats["too_few_nodes"] - 2


def test_unsorted_pbf_imports_like_the_sorted_file(tmp_path):
    src = _shipped()[0]
    a = read_osm(src)
    b = read_osm(_unsorted_copy(src, tmp_path / "unsorted.osm.pbf"))  # was: "Way IDs out of order"
    assert list(a.buildings["osm_id"]) == list(b.buildings["osm_id"])
    assert len(a.walk_edges) == len(b.walk_edges)
    assert a.walk_edges["length_m"].sum() == pytest.approx(b.walk_edges["length_m"].sum(), abs=0.05)
    assert sorted(a.service_points["osm_id"]) == sorted(b.service_points["osm_id"])


def test_way_and_building_cut_at_the_edge_keep_their_inside_part(tmp_path):
    # node 3 (a street corner) and node 22 (a corner of building 200) are not in the file
    text = OSM.replace(' <node id="3" lat="40.0000" lon="116.3020" version="1"/>\n', "") \
              .replace(' <node id="22" lat="40.0007" lon="116.3007" version="1"/>\n', "")
    p = tmp_path / "cut.osm"
    p.write_text(text, encoding="utf-8")
    x = read_osm(p)
    pairs = {tuple(sorted(q)) for q in zip(x.walk_edges["u"], x.walk_edges["v"])}
    assert (1, 2) in pairs and (6, 8) in pairs  # the parts of ways 100 and 104 still in the file
    assert not any(3 in q for q in pairs)
    b = x.buildings.set_index("osm_id")
    assert "w200" in b.index  # closed from its three nodes present
    assert x.stats["closed_from_present"] == 1 and x.stats["ways_cut"] == 2
    assert x.stats["skipped"].startswith("edge of the extract: 2 walkable way(s) cut")


def test_footprints_are_valid_in_the_metric_crs(tmp_path):
    """A ring valid in lon/lat whose notch vertex crosses a long edge once projected to UTM (the
    edge's midpoint lies 3 cm off the projected chord): valid where it is measured."""
    import geopandas as gpd
    ring = [(116.30, 40.00), (116.31, 40.01), (116.30, 40.01), (116.3049999, 40.0050001), (116.30, 40.00)]
    assert shapely.Polygon(ring).is_valid
    assert not gpd.GeoSeries([shapely.Polygon(ring)], crs=4326).to_crs(32650).is_valid.iloc[0]
    nodes = "".join(f'<node id="{k + 1}" lat="{lat}" lon="{lon}" version="1"/>' for k, (lon, lat) in enumerate(ring[:-1]))
    text = (f'<osm version="0.6"><bounds minlat="39.999" minlon="116.299" maxlat="40.011" maxlon="116.311"/>{nodes}'
            '<way id="9" version="1"><nd ref="1"/><nd ref="2"/><nd ref="3"/><nd ref="4"/><nd ref="1"/>'
            '<tag k="building" v="residential"/></way></osm>')
    p = tmp_path / "long.osm"
    p.write_text(text)
    b = read_osm(p).buildings
    assert len(b) == 1 and b.to_crs(32650).is_valid.all()


def _refused_cli(args, tmp_path, capsys, match):
    out = tmp_path / "out.gpkg"
    assert main(["import-osm", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert re.search(match, err), err
    assert "Traceback" not in err and not out.exists()


def test_extract_without_buildings_or_selection_is_refused(tmp_path, capsys):
    nob = tmp_path / "nob.osm"
    nob.write_text(re.sub(r'<way id="20[01]".*?</way>', "", OSM, flags=re.S))
    _refused_cli([str(nob)], tmp_path, capsys, r"nob\.osm.*no building inside the extent")
    nodes = tmp_path / "nodes.osm"
    nodes.write_text(re.sub(r"<way .*?</way>", "", OSM, flags=re.S))
    _refused_cli([str(nodes)], tmp_path, capsys, r"no building inside the extent.*holds 0 building")
    full = tmp_path / "full.osm"
    full.write_text(OSM)
    _refused_cli([str(full), "--bbox", "10,10,10.001,10.001"], tmp_path, capsys,
                 r"no building inside the extent 10\.0000,10\.0000.*holds 2 building.*bounds are 116\.3000")


def test_extract_with_only_building_yes_is_refused_or_taken_as_homes(tmp_path, capsys):
    text = OSM.replace('k="building" v="residential"', 'k="building" v="yes"').replace(
        'k="landuse" v="residential"', 'k="landuse" v="grass"')
    p = tmp_path / "yes.osm"
    p.write_text(text)
    _refused_cli([str(p)], tmp_path, capsys, r"none of the 2 buildings is tagged residential.*--yes-is-residential")
    out = tmp_path / "yes.gpkg"
    assert main(["import-osm", str(p), "--out", str(out), "--yes-is-residential"]) == 0
    assert len(GpkgStore(out).load().households) > 0
