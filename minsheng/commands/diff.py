"""minsheng diff --data PROJECT.gpkg PLAN_A PLAN_B [--json] [--audit]

What changed between two plans: buildings moved, grids added / removed / renamed /
re-parented / re-coded, grid heads changed (ids only, never names or phones), households and
band status per grid before and after. Exit 0 (1 on unknown plans via DataError -> 2)."""
from __future__ import annotations

import json
import sys

NAME = "diff"
HELP = "compare two grid plans (方案对比): moved buildings, grid changes, balance before/after"
SHOWN = 30


def add_arguments(p):
    from minsheng.commands import add_store_arguments
    add_store_arguments(p)
    p.add_argument("plan_a")
    p.add_argument("plan_b")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--audit", action="store_true", help="also audit both plans (derived boundaries) and compare "
                                                        "problem counts")


def run(args) -> int:
    from data.bundle import DataError
    from geo.plan import diff_plans, make_context, plan_from_bundle
    from minsheng.commands import open_cli_store

    settings, store = open_cli_store(args)
    bundle = store.read_model()
    known = [str(x) for x in bundle.plans["id"]]
    for pid in (args.plan_a, args.plan_b):
        if pid not in known:
            raise DataError(f"no plan {pid!r} (plans: {', '.join(known) or 'none'})", file=bundle.source,
                            layer="plans", field="id")
    ctx = make_context(bundle.buildings, bundle.communities, settings=settings)
    a = plan_from_bundle(bundle, args.plan_a, context=ctx)
    b = plan_from_bundle(bundle, args.plan_b, context=ctx)
    d = diff_plans(a, b, bundle.building_stats, buildings=bundle.buildings, communities=bundle.communities,
                   bands=settings, audit=args.audit)
    if args.json:
        print(json.dumps(d.to_dict(), ensure_ascii=False))
        return 0
    out = [f"{bundle.source}: {args.plan_a} -> {args.plan_b}"]
    out.append(f"buildings moved: {len(d.moved)}; grids added {len(d.added)}, removed {len(d.removed)}, renamed "
               f"{len(d.renamed)}, re-parented {len(d.reparented)}, re-coded {len(d.recoded)}, head changed "
               f"{len(d.head_changed)}")
    for r in d.moved.head(SHOWN).itertuples(index=False):
        out.append(f"  move {r.building_id}: {r.from_grid} -> {r.to_grid}")
    if len(d.moved) > SHOWN:
        out.append(f"  ... and {len(d.moved) - SHOWN} more (use --json)")
    if d.added:
        out.append("added: " + ", ".join(d.added))
    if d.removed:
        out.append("removed: " + ", ".join(d.removed))
    for r in d.renamed.itertuples(index=False):
        out.append(f"  rename {r.id}: {r.name_a} -> {r.name_b}")
    if d.head_changed:
        out.append("head changed: " + ", ".join(d.head_changed))
    out.append("")
    out.append(f"{'':10}{'grids':>7}{'in band':>9}{'share':>8}{'CV':>8}")
    for key, pid in (("a", args.plan_a), ("b", args.plan_b)):
        for lev in ("level2", "level1"):
            r = d.balance[key][lev]
            out.append(f"{pid + ' L' + lev[-1]:10}{r['grids']:>7}{r['in_band']:>9}{(r['share_in_band'] or 0):>8.0%}"
                       f"{(r['cv'] or 0):>8.3f}")
    changed = d.coverage[(d.coverage["households_a"].astype("Int64") != d.coverage["households_b"].astype("Int64"))
                         .fillna(True)]
    if len(changed):
        out.append("")
        out.append(f"{'grid':14}{'households':>11}{'':>4}{'':>6}  band")
        for r in changed.itertuples(index=False):
            ha = "-" if r.households_a is None or r.households_a is __import__("pandas").NA else str(r.households_a)
            hb = "-" if r.households_b is None or r.households_b is __import__("pandas").NA else str(r.households_b)
            out.append(f"{r.id:14}{ha:>11} -> {hb:>6}  {r.band_a if isinstance(r.band_a, str) else '-'} -> "
                       f"{r.band_b if isinstance(r.band_b, str) else '-'}")
    if d.problems:
        out.append("")
        out.append(f"audit problems {args.plan_a}: {d.problems['a']}")
        out.append(f"audit problems {args.plan_b}: {d.problems['b']}")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    from minsheng.cli import main
    sys.exit(main([NAME] + sys.argv[1:]))
