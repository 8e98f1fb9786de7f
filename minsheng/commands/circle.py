"""minsheng circle: walking distance from every building to the nearest service point of each type."""
from __future__ import annotations

import argparse
import sys
import time

NAME = "circle"
HELP = "ten-minute service circle: per-building walking distance to each service type (CSV + summary)"


def _positive(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (v > 0 and v < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return v


def add_arguments(p):
    from minsheng.commands import add_store_arguments
    add_store_arguments(p)
    p.add_argument("--minutes", type=_positive, default=None,
                   help="circle size in minutes (default 10; see --catalogue-minutes)")
    p.add_argument("--speed", type=_positive, default=None, help="walking speed in m/min (default 80)")
    p.add_argument("--elderly", action="store_true", help="use the elderly walking speed (60 m/min)")
    p.add_argument("--distance", type=_positive, default=None,
                   help="circle size in metres, overrides minutes x speed (GB 50180-2018: 300/500/800-1000)")
    p.add_argument("--catalogue-minutes", action="store_true",
                   help="use each service type's default minutes from the catalogue")
    p.add_argument("--type", action="append", default=None, metavar="T",
                   help="service type key (repeat or comma-separate; default: every type in the data)")
    p.add_argument("--anchor", choices=("representative", "centroid", "footprint"), default="representative",
                   help="where a building starts its walk (default: a representative point inside it)")
    p.add_argument("--largest-component", action="store_true",
                   help="snap only onto the largest connected part of the walking network")
    p.add_argument("--out", default="", help="CSV to write: building_id, service_type, walk_m, minutes, within")


def _params(args, s):
    """Circle parameters from the flags over the settings `s` (walking speeds, minutes and the
    catalogue's minutes per service type, with the deployment's overrides)."""
    from geo.service_circle import CircleParams
    if args.elderly and args.speed is not None:
        raise ValueError("give either --elderly or --speed, not both")
    speed = args.speed or (s.elderly_speed_m_min if args.elderly else s.walk_speed_m_min)
    by_type = tuple((t.key, float(t.minutes)) for t in s.catalogue().service_types) if args.catalogue_minutes else ()
    return CircleParams(minutes=args.minutes or s.circle_minutes, speed_m_min=speed, max_m=args.distance,
                        minutes_by_type=by_type, anchor=args.anchor, largest_only=args.largest_component)


def _types(args, service_points, cat):
    present = sorted(set(service_points["type"].dropna().astype(str)))
    if not args.type:
        return present
    wanted = [t.strip() for chunk in args.type for t in chunk.split(",") if t.strip()]
    known = {t.key for t in cat.service_types} | set(present)
    bad = [t for t in wanted if t not in known]
    if bad:
        raise ValueError(f"unknown service type {', '.join(bad)}; known: {', '.join(sorted(known))}")
    return list(dict.fromkeys(wanted))


def run(args) -> int:
    from geo.network import build_walk_graph
    from minsheng.commands import open_cli_store
    from geo.service_circle import service_distances, summary
    t0 = time.perf_counter()
    settings, store = open_cli_store(args)
    try:
        params = _params(args, settings)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    bundle = store.read_model()
    path = bundle.source
    try:
        types = _types(args, bundle.service_points, settings.catalogue())
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not len(bundle.walk_edges):
        print(f"error: {path}: layer walk_edges is empty; no walking network to measure on", file=sys.stderr)
        return 2
    graph = build_walk_graph(bundle.walk_edges)
    table = service_distances(graph, bundle.buildings, bundle.service_points, params, types)
    elapsed = time.perf_counter() - t0
    if args.out:
        from data.exporters.common import neutralise_frame
        neutralise_frame(table).to_csv(args.out, index=False, float_format="%.1f")
    rep = graph.report()
    print(f"{path}: {len(bundle.buildings)} buildings, {int(bundle.building_stats['households'].sum())} households, "
          f"{len(bundle.service_points)} service points; walking network {rep['nodes']} nodes, "
          f"{rep['edges']} edges, {rep['components']} connected parts "
          f"({rep['nodes_outside_largest']} nodes outside the largest)")
    reach = "%.0f m" % params.max_m if params.max_m else (
        "catalogue minutes" if params.minutes_by_type else f"{params.minutes:g} min")
    print(f"circle: {reach} at {params.speed_m_min:g} m/min")
    s = summary(table, bundle.building_stats)
    n = int(s["unreachable"].sum()) if len(s) else 0
    header = f"{'service type':<22}{'reach m':>8}{'buildings':>11}{'households':>12}{'unreachable':>13}"
    print(header)
    for r in s.itertuples():
        hh = "-" if r.households == 0 else f"{r.household_share:.1%}"
        print(f"{r.service_type:<22}{params.threshold_m(r.service_type):>8.0f}{r.building_share:>11.1%}"
              f"{hh:>12}{r.unreachable:>13d}")
    missing = sorted(set(types) - set(bundle.service_points["type"].astype(str)))
    if missing:
        print(f"note: no service point of type {', '.join(missing)}: every building is unreachable for it")
    if n:
        print(f"note: {n} building-type pairs unreachable (no service point of that type on their part of "
              f"the network); they are in the table with walk_m = inf")
    if args.out:
        print(f"wrote {len(table)} rows to {args.out} in {elapsed:.2f} s")
    return 0
