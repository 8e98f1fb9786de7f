"""minsheng import-osm FILE --out PROJECT.gpkg: OSM extract -> complete project file."""
from __future__ import annotations

import sys
import time

NAME = "import-osm"
HELP = "import an OpenStreetMap extract (.osm / .osm.pbf) into a project GeoPackage"


def add_arguments(p):
    p.add_argument("file", help="OSM extract (.osm, .osm.xml or .osm.pbf)")
    p.add_argument("--out", required=True, help="project GeoPackage to write (replaced atomically)")
    p.add_argument("--bbox", help="minlon,minlat,maxlon,maxlat (default: the file's <bounds>)")
    p.add_argument("--no-households", action="store_true",
                   help="do not generate synthetic households (import your ledger with import-households)")
    p.add_argument("--seed", type=int, default=20261123, help="seed for synthetic households")
    p.add_argument("--county-code", default=None,
                   help="GB/T 2260 county code for grid codes (default: settings [codes] county, 110108)")
    p.add_argument("--street-code", default=None,
                   help="3-digit street (街道) code for grid codes (default: settings [codes.streets] for "
                        "--street-name, else [codes] street, 012)")
    from minsheng.commands import add_settings_argument
    add_settings_argument(p)
    p.add_argument("--street-name", default="", help="street (街道) name stored on communities")
    p.add_argument("--yes-is-residential", action="store_true",
                   help="take building=yes as residential when no building is tagged residential (common outside China)")


def parse_bbox(text: str | None):
    if not text:
        return None
    from data.bundle import DataError
    try:
        v = tuple(float(x) for x in text.split(","))
    except ValueError:
        v = ()
    if len(v) != 4 or not (v[0] < v[2] and v[1] < v[3]) or not (-180 <= v[0] <= 180 and -90 <= v[1] <= 90):
        raise DataError(f"--bbox must be minlon,minlat,maxlon,maxlat with min < max, got {text!r}")
    return v


def build(file, bbox=None, synthetic=True, seed=20261123, county_code=None, street_code=None,
          street_name="", progress=None, yes_is_residential=False, settings=None):
    """(bundle, stats) of an OSM extract. Codes: the given county/street codes, else the deployment
    settings' (street: [codes.streets] for street_name, else [codes] street), community codes
    from [codes.communities]; the catalogue's OSM tag mapping and key groups with its overrides."""
    from pathlib import Path
    from data.importers.osm import read_osm, residential_or_refuse
    from data.importers.osm_gates import read_compounds_and_gates, within
    from data.project import project_from_osm
    from minsheng.settings import Settings
    s = settings or Settings()
    cat = s.catalogue()
    ext = residential_or_refuse(read_osm(file, bbox=bbox, progress=progress, catalogue=cat), file=str(file),
                                yes_is_residential=yes_is_residential, progress=progress)
    bundle = project_from_osm(ext, source_name=Path(file).name, county_code=county_code or s.county_code,
                              street_code=street_code or s.street_code_for(street_name),
                              object_code=s.grid_object_code, street_name=street_name,
                              synthetic_households=synthetic, seed=seed, progress=progress,
                              community_codes=s.community_codes, catalogue=cat)
    cg = within(read_compounds_and_gates(file), ext.extent)
    if progress is not None:
        progress(f"{len(cg.compounds)} compounds ({int(cg.compounds['closed'].sum())} closed), {len(cg.gates)} gates")
    return bundle.with_layers(compounds=cg.compounds, gates=cg.gates), ext.stats


def run(args) -> int:
    from data.gpkg_store import GpkgStore
    t0 = time.perf_counter()
    say = lambda m: print(f"[{time.perf_counter() - t0:6.1f}s] {m}", file=sys.stderr, flush=True)
    from minsheng.settings import from_env
    settings = from_env(settings_file=args.settings)
    bundle, stats = build(args.file, parse_bbox(args.bbox), not args.no_households, args.seed,
                          args.county_code, args.street_code, args.street_name, say, args.yes_is_residential,
                          settings=settings)
    say(f"writing {args.out} ...")
    GpkgStore(args.out).write_all(bundle)
    g = bundle.grids
    print(f"{args.out}: {len(bundle.buildings)} buildings ({stats['floors_estimated']} with estimated floors), "
          f"{len(bundle.walk_edges)} walk edges, {len(bundle.service_points)} service points, "
          f"{len(bundle.communities)} communities, {int((g['level'] == 1).sum())} level-1 and "
          f"{int((g['level'] == 2).sum())} level-2 grids, {len(bundle.households)} synthetic households "
          f"in {time.perf_counter() - t0:.1f}s")
    print(stats["skipped"])
    return 0
