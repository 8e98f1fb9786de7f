"""minsheng pack --quarter 2026Q4 [--data P.gpkg | --dsn URL] [--out-dir DIR] [--grid-pages] [--allow-personal]

The quarterly joint-meeting pack (联席会议材料): a paginated PDF and a PPTX (data/exporters/pack)
with the cover, the coverage audit, life-circle / service figures, one page per community
(optionally per level-2 grid), the plan change and the open problems. The quarter's aggregates
are frozen, write-once, in the store's quarter_snapshots table (data/snapshots; GeoPackage or
PostGIS alike) so the next quarter's pack shows the change; a quarter frozen before is kept as
it was (said on stderr) and the pack is written all the same. Snapshot files of an earlier
version (<project>.snapshots/*.json, or --snapshots DIR) are imported into the table once.
Progress goes to stderr; the written files to stdout."""
from __future__ import annotations

import sys

NAME = "pack"
HELP = "joint-meeting pack (联席会议材料): PDF + PPTX for a quarter, with a frozen quarter snapshot"


def add_arguments(p):
    from minsheng.commands import add_store_arguments
    p.add_argument("--quarter", required=True, help="the quarter, e.g. 2026Q4")
    add_store_arguments(p)
    p.add_argument("--out-dir", default=".", help="directory for the PDF and PPTX (default: current directory)")
    p.add_argument("--format", choices=["pdf", "pptx", "both"], default="both")
    p.add_argument("--lang", choices=["zh", "en"], help="language (default: settings)")
    p.add_argument("--grid-pages", action="store_true", help="also one page per level-2 grid")
    p.add_argument("--allow-personal", action="store_true",
                   help="exact sensitive counts and grid workers' names (recorded in the audit log)")
    p.add_argument("--user", default="", help="recorded in the audit log")
    p.add_argument("--snapshots", help="snapshot files of an earlier version to import once "
                                       "(default: <project>.snapshots/ beside a GeoPackage)")
    p.add_argument("--no-freeze", action="store_true", help="do not freeze this quarter's snapshot")


def run(args) -> int:
    from data.bundle import DataError
    from data.exporters import record_export
    from data.exporters.image import ChromiumMissing
    from data.exporters.pack import make_pack
    from data.snapshots import import_legacy, legacy_dir, normal_quarter
    from minsheng.commands import open_cli_store
    from minsheng.i18n import t
    quarter = normal_quarter(args.quarter)
    settings, store = open_cli_store(args, language=args.lang)
    lang = settings.language
    for q in import_legacy(store, args.snapshots or legacy_dir(settings), user=args.user):
        print(t("snapshot_imported", lang).format(quarter=q), file=sys.stderr)
    bundle = store.load()

    def progress(done, total, what):
        key = "pack_progress_pages" if what in ("pdf", "pptx") else "pack_progress"
        print(f"\r{t(key, lang).format(done=done, total=total, fmt=what.upper())}  {what:<24}", end="",
              file=sys.stderr, flush=True)
    formats = ("pdf", "pptx") if args.format == "both" else (args.format,)
    try:
        res = make_pack(bundle, settings, quarter, args.out_dir, lang=lang, personal=args.allow_personal,
                        grid_pages=args.grid_pages, formats=formats, freeze=not args.no_freeze, store=store,
                        user=args.user, progress=progress)
    except ChromiumMissing as e:
        raise DataError(str(e), file=args.out_dir) from None
    print(file=sys.stderr)
    record_export(store, fmt="pack", out=args.out_dir, user=args.user, allow_personal=args.allow_personal,
                  plan_id=bundle.adopted_plan_id())
    for p in res["files"].values():
        print(p)
    if res["frozen_now"]:
        print(t("pack_frozen", lang).format(quarter=quarter), file=sys.stderr)
    elif res["refused"] is not None:
        print(res["refused"].text(lang), file=sys.stderr)
    s = res["seconds"]
    print(f"{len(res['pack'].pages)} pages, {s['all']:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    from minsheng.cli import main
    sys.exit(main([NAME] + sys.argv[1:]))
