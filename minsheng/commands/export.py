"""minsheng export --format FMT --out PATH: maps and tables for meetings and GIS users."""
from __future__ import annotations

NAME = "export"
HELP = ("export a plan: html (offline map), png/pdf (rendered map), xlsx (per-grid tables), gpkg/geojson (layers); "
        "personal data masked unless --allow-personal")
FORMATS = ("html", "png", "pdf", "xlsx", "gpkg", "geojson")


def add_arguments(p):
    from minsheng.commands import add_store_arguments
    p.add_argument("--format", choices=FORMATS, help="output format (default: from --out's suffix)")
    p.add_argument("--out", required=True, help="output file")
    add_store_arguments(p)
    p.add_argument("--plan", help="plan id (default: the adopted plan)")
    p.add_argument("--layers", help="gpkg/geojson: comma-separated layers (default: communities,grids,buildings,"
                                    "service_points)")
    p.add_argument("--lang", choices=["zh", "en"], help="language of labels (default: settings)")
    p.add_argument("--allow-personal", action="store_true",
                   help="include names, phones and sensitive key groups (recorded in the audit log)")
    p.add_argument("--user", default="", help="recorded in the audit log for personal exports")
    p.add_argument("--width", type=int, default=1600, help="png/pdf: page width in pixels")
    p.add_argument("--height", type=int, default=1000, help="png/pdf: page height in pixels")


def run(args) -> int:
    from pathlib import Path

    from data.bundle import DataError
    from data.exporters import record_export
    from minsheng.commands import open_cli_store
    settings, store = open_cli_store(args, language=args.lang)
    fmt = args.format or Path(args.out).suffix.lstrip(".").lower()
    if fmt == "json":
        fmt = "geojson"
    if fmt not in FORMATS:
        raise DataError(f"unknown export format {fmt!r}; use --format one of {', '.join(FORMATS)}", file=args.out)
    bundle = store.load()
    kw = dict(allow_personal=args.allow_personal, catalogue=settings.catalogue())
    if fmt == "html":
        from data.exporters.html import export_html
        out = [export_html(bundle, args.out, args.plan, lang=settings.language, **kw)]
    elif fmt in ("png", "pdf"):
        from data.exporters.image import ChromiumMissing, export_image
        try:
            out = [export_image(bundle, args.out, args.plan, fmt=fmt, lang=settings.language, width=args.width,
                                height=args.height, **kw)]
        except ChromiumMissing as e:
            raise DataError(str(e), file=args.out) from None
    elif fmt == "xlsx":
        from data.exporters.excel import export_excel
        out = [export_excel(bundle, args.out, args.plan, lang=settings.language, bands=settings, **kw)]
    else:
        from data.exporters.gis import DEFAULT_LAYERS, export_gis
        layers = [s.strip() for s in args.layers.split(",") if s.strip()] if args.layers else DEFAULT_LAYERS
        out = export_gis(bundle, args.out, layers, args.plan, fmt=fmt, **kw)
    record_export(store, fmt=fmt, out=args.out, user=args.user, allow_personal=args.allow_personal,
                  plan_id=args.plan or bundle.adopted_plan_id())
    for p in out:
        print(p)
    return 0
