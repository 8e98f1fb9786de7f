"""minsheng import-grids FILE: grid polygons drawn elsewhere -> a new draft plan."""
from __future__ import annotations

import sys

NAME = "import-grids"
HELP = ("import grid polygons (GeoJSON, Shapefile, zipped Shapefile, GeoPackage; any CRS; WGS-84/GCJ-02/BD-09) "
        "as a new draft plan, assigning buildings by footprint")


def add_arguments(p):
    from minsheng.commands import add_store_arguments
    p.add_argument("file", help="GeoJSON, .shp, .zip (shapefile) or .gpkg with the grid polygons")
    add_store_arguments(p)
    p.add_argument("--layer", help="layer name inside a GeoPackage or zip with several datasets")
    p.add_argument("--encoding", help="attribute encoding of a shapefile without .cpg (default: detected, UTF-8 else GB18030)")
    p.add_argument("--crs", help="CRS of a file that declares none (e.g. EPSG:4547)")
    p.add_argument("--datum", default="auto", choices=["auto", "wgs84", "gcj02", "bd09"],
                   help="coordinate datum: gcj02 = AMap/Tencent, bd09 = Baidu, auto = detect against the buildings")
    for role in ("id", "name", "level", "parent", "community", "head", "phone", "code"):
        p.add_argument(f"--{role}-col", help=f"column holding the grid {role} (default: detected)")
    p.add_argument("--plan-id", help="id of the new plan (default: import-N)")
    p.add_argument("--plan-name", help="name of the new plan (default: the file name)")
    p.add_argument("--threshold", type=float, default=0.8,
                   help="a building is reported when less than this share (0-1] of its footprint is in its grid")
    p.add_argument("--allow-empty", action="store_true",
                   help="import polygons even when they hold none of the project's buildings")
    p.add_argument("--user", default="", help="recorded as created_by and in the audit log")
    p.add_argument("--dry-run", action="store_true", help="report only, write nothing")


def run(args) -> int:
    from data.importers.grids import import_grids
    from minsheng.commands import open_cli_store
    settings, store = open_cli_store(args)
    from data.store import ConflictError
    try:
        res = import_grids(store, args.file, layer=args.layer, encoding=args.encoding, dry_run=args.dry_run,
                           crs=args.crs, datum=args.datum, id_col=args.id_col, name_col=args.name_col,
                           level_col=args.level_col, parent_col=args.parent_col, community_col=args.community_col,
                           head_col=args.head_col, phone_col=args.phone_col, code_col=args.code_col,
                           plan_id=args.plan_id, plan_name=args.plan_name, created_by=args.user,
                           threshold=args.threshold, allow_empty=args.allow_empty,
                           settings=settings)
    except ConflictError as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    for w in res.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if len(res.misfits):
        print(f"{len(res.misfits)} building(s) do not fit cleanly:", file=sys.stderr)
        for r in res.misfits.head(50).itertuples():
            other = f", {r.other_share:.0%} in {r.other_grid_id}" if isinstance(r.other_grid_id, str) else ""
            where = f"{r.share:.0%} in {r.grid_id}{other}" if isinstance(r.grid_id, str) else "in no grid"
            print(f"  {r.building_id}: {r.status} ({where})", file=sys.stderr)
        if len(res.misfits) > 50:
            print(f"  ... and {len(res.misfits) - 50} more", file=sys.stderr)
    print(("dry run, nothing written: " if args.dry_run else "") + res.summary())
    return 0
