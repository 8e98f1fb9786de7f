"""minsheng propose --data PROJECT.gpkg [--community ID ...] --out-plan NAME [--from-plan ID] [--min-moves]
    [--balance households|workload|both]

Writes an automatic grid proposal (geo/regionalize) as a new draft plan and prints its
balance. Without --community every community gets fresh grids; with it, only those, the
others keep the grids of --from-plan (default: the adopted plan). --min-moves rebalances
--from-plan moving as few buildings as possible. --balance: what the grids are balanced by
(households against the household band, workload = visits per month against the workload
band, or both; geo/regionalize.partition_weights). Prints ids and counts only."""
from __future__ import annotations

import sys

NAME = "propose"
HELP = "propose a balanced, contiguous grid plan (自动划分网格) and save it as a draft"


def add_arguments(p):
    from minsheng.commands import add_store_arguments
    add_store_arguments(p)
    p.add_argument("--community", action="append", default=None, help="community id (repeatable; default: all)")
    p.add_argument("--out-plan", required=True, help="name of the new draft plan")
    p.add_argument("--from-plan", default=None, help="plan to start from (default: the adopted plan)")
    p.add_argument("--min-moves", action="store_true", help="rebalance --from-plan moving as few buildings as possible")
    p.add_argument("--user", default="minsheng propose", help="user recorded in the audit log")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--balance", choices=["households", "workload", "both"], default="households",
                   help="balance grids by households (default), workload (visits per month) or both")


def run(args) -> int:
    from data.bundle import DataError
    from data.plans import propose_to_draft
    from geo.plan import balance_summary, grid_figures, workload_summary
    from minsheng.commands import open_cli_store

    settings, store = open_cli_store(args)
    bundle = store.read_model()
    known = [str(x) for x in bundle.plans["id"]]
    base_id = args.from_plan or bundle.adopted_plan_id()
    if base_id not in known:
        raise DataError(f"no plan {base_id!r} (plans: {', '.join(known) or 'none'})", file=bundle.source,
                        layer="plans", field="id")
    comms = [str(c) for c in bundle.communities["id"]]
    bad = [c for c in (args.community or []) if c not in comms]
    if bad:
        raise DataError(f"unknown community {', '.join(bad)} (communities: {', '.join(comms)})",
                        file=bundle.source, layer="communities", field="id")
    new_id, new_version, prop, base, plan = propose_to_draft(
        store, base_id, args.out_plan, args.user, settings=settings, community_ids=args.community,
        min_moves=args.min_moves, seed=args.seed, balance=args.balance)
    before = balance_summary(grid_figures(base, bundle.building_stats, bands=settings, tag_keys=[]))
    after = balance_summary(grid_figures(plan, bundle.building_stats, bands=settings, tag_keys=[]))
    s = prop.stats["all"]
    print(f"{bundle.source}: draft plan {new_id} ({args.out_plan}) version {new_version}, "
          f"{'min-moves from' if args.min_moves else 'proposed; other communities from'} {base_id}")
    from geo.plan import diff_plans
    print(f"buildings moved vs {base_id}: {len(diff_plans(base, plan).moved)}; time {prop.seconds:.2f} s")
    print(f"balanced by: {args.balance}")
    print(f"{'':8}{'grids':>7}{'in band':>9}{'share':>8}{'CV':>8}{'min':>6}{'max':>6}"
          f"{'wl in band':>12}{'wl CV':>8}")
    for name, b, p_ in ((base_id, before, base), (new_id, after, plan)):
        wl = workload_summary(grid_figures(p_, bundle.building_stats, bands=settings, tag_keys=None))
        for lev in ("level2", "level1"):
            r = b[lev]
            print(f"{name + ' ' + lev[-1]:8}{r['grids']:>7}{r['in_band']:>9}{(r['share_in_band'] or 0):>8.0%}"
                  f"{(r['cv'] or 0):>8.3f}{r['min'] or 0:>6}{r['max'] or 0:>6}"
                  f"{wl[lev]['in_band']:>12}{(wl[lev]['cv'] or 0):>8.3f}")
    print(f"level-2 grids contiguous: {'yes' if s['contiguous'] else 'no'} (split {s['split_regions']}), "
          f"main-road adjacencies inside grids: {s['cut_main_roads']}")
    for msg in prop.infeasible:
        print(f"note: {msg}")
    return 0


if __name__ == "__main__":
    from minsheng.cli import main
    sys.exit(main([NAME] + sys.argv[1:]))
