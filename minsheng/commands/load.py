"""minsheng load: copy a project GeoPackage into PostGIS, or (--out / --reverse) back out.

    minsheng load --data PROJECT.gpkg --dsn postgresql://user@host/db      # GeoPackage -> PostGIS
    minsheng load --dsn postgresql://user@host/db --out PROJECT.gpkg       # PostGIS -> GeoPackage

The target is replaced as a whole, atomically (one transaction / one file rename); the frozen
quarter snapshots (data/snapshots) are copied along, a quarter the target has frozen is kept.
Prints one progress line per layer (row counts only, never row contents).
"""
from __future__ import annotations

import os
import sys
import time

NAME = "load"
HELP = "copy a project GeoPackage into PostgreSQL/PostGIS (or back out with --out)"


def add_arguments(p):
    p.add_argument("--data", help="project GeoPackage to read (GeoPackage -> PostGIS); default: the shipped sample")
    p.add_argument("--dsn", default=os.environ.get("DATABASE_URL", ""),
                   help="PostgreSQL connection string (default: $DATABASE_URL)")
    p.add_argument("--out", help="GeoPackage to write (PostGIS -> GeoPackage)")
    p.add_argument("--reverse", action="store_true",
                   help="copy PostGIS -> GeoPackage, writing to --out or else to --data")


def run(args) -> int:
    from data.bundle import DataError
    from data.postgis_store import StoreUnavailable

    if not args.dsn:
        raise DataError("no database: pass --dsn postgresql://... or set DATABASE_URL")
    reverse = bool(args.reverse or args.out)
    t0 = time.perf_counter()

    def line(layer: str, rows: int) -> None:
        print(f"  {layer:<15} {rows:>10,} rows   [{time.perf_counter() - t0:6.1f}s]", flush=True)

    try:
        return _copy(args, reverse, line, t0)
    except StoreUnavailable as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _copy(args, reverse, line, t0) -> int:
    from data.bundle import DataError
    from data.gpkg_store import GpkgStore
    from data.postgis_store import PostgisStore, _redact
    from data.schema import LAYERS
    from minsheng.settings import sample_path

    with PostgisStore(args.dsn) as pg:
        if not reverse:
            src = args.data or str(sample_path())
            print(f"reading {src} ...", flush=True)
            source = GpkgStore(src)
            bundle = source.load()
            print(f"writing to {_redact(args.dsn)} (one transaction):", flush=True)
            pg.write_all(bundle, progress=line)
            _snapshots(source, pg)
            print(f"done: dataset version {pg.version()} in {time.perf_counter() - t0:.1f}s", flush=True)
            return 0
        out = args.out or args.data
        if not out:
            raise DataError("--reverse needs --out PROJECT.gpkg (or --data PROJECT.gpkg) to write to")
        print(f"reading {_redact(args.dsn)} (one snapshot) ...", flush=True)
        bundle = pg.load()
        for layer in LAYERS:
            line(layer.name, len(bundle.layers[layer.name]))
        print(f"writing {out} ...", flush=True)
        target = GpkgStore(out)
        target.write_all(bundle)
        _snapshots(pg, target)
    print(f"done: {out} in {time.perf_counter() - t0:.1f}s", flush=True)
    return 0


def _snapshots(source, target) -> None:
    """The frozen quarter snapshots follow the project (data/snapshots.copy_snapshots)."""
    from data.snapshots import copy_snapshots
    copied = copy_snapshots(source, target)
    if copied:
        print(f"  quarter snapshots: {', '.join(copied)}", flush=True)


if __name__ == "__main__":  # pragma: no cover
    from minsheng.cli import main
    sys.exit(main([NAME, *sys.argv[1:]]))
