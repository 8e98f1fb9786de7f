"""minsheng import-households FILE: a household ledger (xlsx / csv) -> the project's households."""
from __future__ import annotations

import sys

NAME = "import-households"
HELP = ("import a household ledger (.xlsx, or CSV in UTF-8/GBK) matching rows to buildings by code or "
        "address; unmatched rows are kept as orphans and reported")


def add_arguments(p):
    from minsheng.commands import add_store_arguments
    p.add_argument("file", help="ledger: .xlsx or .csv (UTF-8 with/without BOM, GBK/GB18030)")
    add_store_arguments(p)
    p.add_argument("--sheet", help="Excel sheet name (default: the first)")
    p.add_argument("--compound", help="only match buildings of this compound (小区)")
    p.add_argument("--replace", action="store_true",
                   help="a ledger row for a room that holds a stored household replaces it (default: refused)")
    p.add_argument("--replace-all", action="store_true",
                   help="replace ALL stored households (default: merge, replacing rows with the same id)")
    for role, label in (("id", "household id"), ("building", "building id/code/name"), ("address", "address"),
                        ("compound", "compound (小区)"), ("unit", "unit"), ("room", "room"), ("persons", "persons"),
                        ("tags", "key-group tags"), ("head-name", "head of household name"), ("phone", "phone")):
        p.add_argument(f"--{role}-col", help=f"column holding the {label} (default: detected)")
    p.add_argument("--user", default="", help="recorded in the audit log")
    p.add_argument("--dry-run", action="store_true", help="report only, write nothing")


def run(args) -> int:
    from data.importers.households import import_households
    from minsheng.commands import open_cli_store
    settings, store = open_cli_store(args)
    from data.store import ConflictError
    try:
        res = import_households(store, args.file, sheet=args.sheet, dry_run=args.dry_run, compound=args.compound,
                                mode="replace" if args.replace_all else "merge",
                                replace_rooms=args.replace, user=args.user, catalogue=settings.catalogue(),
                                id=args.id_col, building=args.building_col, address=args.address_col,
                                compound_col=args.compound_col, unit=args.unit_col, room=args.room_col,
                                persons=args.persons_col, tags=args.tags_col, head_name=args.head_name_col,
                                phone=args.phone_col)
    except ConflictError as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    for w in res.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if len(res.unmatched):  # row numbers and reasons only: no names, phones or addresses
        print(f"{len(res.unmatched)} row(s) kept without a building (orphan households):", file=sys.stderr)
        for r in res.unmatched.head(50).itertuples():
            print(f"  row {r.row}: {r.reason}", file=sys.stderr)
        if len(res.unmatched) > 50:
            print(f"  ... and {len(res.unmatched) - 50} more", file=sys.stderr)
    print(("dry run, nothing written: " if args.dry_run else "") + res.summary())
    return 0
