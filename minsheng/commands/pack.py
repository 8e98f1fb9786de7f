"""minsheng pack --quarter 2026Q4 [--out-dir DIR] [--grid-pages] [--allow-personal]

The quarterly joint-meeting pack (联席会议材料): a paginated PDF and a PPTX (data/exporters/pack)
with the cover, the coverage audit, life-circle / service figures, one page per community
(optionally per level-2 grid), the plan change and the open problems. The quarter's aggregates
are frozen read-only (data/snapshots, next to the project or in --snapshots) so the next
quarter's pack shows the change. Progress goes to stderr; the written files to stdout."""
from __future__ import annotations

import sys

NAME = "pack"
HELP = "joint-meeting pack (联席会议材料): PDF + PPTX for a quarter, with a frozen quarter snapshot"


def add_arguments(p):
    p.add_argument("--quarter", required=True, help="the quarter, e.g. 2026Q4")
    p.add_argument("--data", help="project GeoPackage (default: MINSHENG_DATA or the shipped sample)")
    from minsheng.commands import add_settings_argument
    add_settings_argument(p)
    p.add_argument("--out-dir", default=".", help="directory for the PDF and PPTX (default: current directory)")
    p.add_argument("--format", choices=["pdf", "pptx", "both"], default="both")
    p.add_argument("--lang", choices=["zh", "en"], help="language (default: settings)")
    p.add_argument("--grid-pages", action="store_true", help="also one page per level-2 grid")
    p.add_argument("--allow-personal", action="store_true",
                   help="exact sensitive counts and grid workers' names (recorded in the audit log)")
    p.add_argument("--user", default="", help="recorded in the audit log")
    p.add_argument("--snapshots", help="directory of quarter snapshots (default: <project>.snapshots/)")
    p.add_argument("--no-freeze", action="store_true", help="do not freeze this quarter's snapshot")


def run(args) -> int:
    from data.bundle import DataError
    from data.exporters import record_export
    from data.exporters.image import ChromiumMissing
    from data.exporters.pack import make_pack
    from data.gpkg_store import GpkgStore
    from data.snapshots import snapshot_dir
    from minsheng.i18n import t
    from minsheng.settings import from_env
    settings = from_env(data=args.data, language=args.lang, settings_file=args.settings)
    lang = settings.language
    store = GpkgStore(settings.data_path)
    bundle = store.load()

    def progress(done, total, what):
        print(f"\r{t('pack_progress', lang).format(done=done, total=total)}  {what:<24}", end="", file=sys.stderr,
              flush=True)
    formats = ("pdf", "pptx") if args.format == "both" else (args.format,)
    try:
        res = make_pack(bundle, settings, args.quarter, args.out_dir, lang=lang, personal=args.allow_personal,
                        grid_pages=args.grid_pages, formats=formats, freeze=not args.no_freeze,
                        snapshots=args.snapshots or snapshot_dir(settings.data_path), progress=progress)
    except ChromiumMissing as e:
        raise DataError(str(e), file=args.out_dir) from None
    print(file=sys.stderr)
    record_export(store, fmt="pack", out=args.out_dir, user=args.user, allow_personal=args.allow_personal,
                  plan_id=bundle.adopted_plan_id())
    for p in res["files"].values():
        print(p)
    if res["snapshot"] is not None:
        msg = t("pack_frozen", lang).format(path=res["snapshot"]) if res["frozen_now"] else \
            t("pack_already_frozen", lang).format(quarter=args.quarter.upper())
        print(msg, file=sys.stderr)
    s = res["seconds"]
    print(f"{len(res['pack'].pages)} pages, {s['all']:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    from minsheng.cli import main
    sys.exit(main([NAME] + sys.argv[1:]))
