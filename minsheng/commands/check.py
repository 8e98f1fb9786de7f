"""minsheng check [--data PROJECT.gpkg] [--plan ID] [--json]: grid coverage audit of a plan.

Exit code 0 when the plan is clean, 1 when it has problems (2 on unreadable input).
Prints aggregates and ids only: never head names, phones or household ledgers."""
from __future__ import annotations

import json
import sys

NAME = "check"
HELP = ("audit a plan's grid coverage (网格覆盖检查): nesting, gaps, overlaps, unassigned buildings, "
        "households per grid against the band, grid heads, grid codes")

PROBLEMS_SHOWN_PER_KIND = 10
BASE_COLUMNS = ("id", "level", "parent_id", "code", "buildings", "households", "persons")


def add_arguments(p):
    from minsheng.commands import add_store_arguments
    add_store_arguments(p)
    p.add_argument("--plan", default=None, help="plan id (default: the adopted plan)")
    p.add_argument("--json", action="store_true", help="print JSON {ok, problems, grids} instead of tables")
    p.add_argument("--code-prefix", default=None,
                   help="also require grid codes to start with this 13-digit object+county+street prefix")


def public_tag_keys(settings=None) -> list[str]:
    """Key groups whose per-grid counts may be printed (sensitive groups, with the deployment's
    catalogue overrides, are left out)."""
    from data.catalogue import catalogue
    return (settings.catalogue() if settings is not None else catalogue()).public_keys


def run(args) -> int:
    from data.bundle import DataError
    from geo.coverage import audit_bundle
    from minsheng.commands import open_cli_store

    settings, store = open_cli_store(args)
    bundle = store.read_model()
    plan_id = args.plan or bundle.adopted_plan_id()
    known = [str(x) for x in bundle.plans["id"]]
    if plan_id is None or plan_id not in known:
        raise DataError(f"no plan {plan_id!r} (plans: {', '.join(known) or 'none'})", file=bundle.source,
                        layer="plans", field="id")
    tags = public_tag_keys(settings)
    audit = audit_bundle(bundle, plan_id, settings, tag_keys=tags, code_prefix=args.code_prefix)
    columns = list(BASE_COLUMNS) + tags + ["band_low", "band_high", "band"]
    if args.json:
        print(json.dumps(audit.to_dict(columns), ensure_ascii=False))
    else:
        print(render_text(audit, plan_id, bundle.source))
    return 0 if audit.ok else 1


def render_text(audit, plan_id: str, source: str) -> str:
    from geo.validate import KIND_LABELS
    lines = []
    t = audit.totals
    g = audit.grids
    lines.append(f"{source} — plan {plan_id}: {int((g['level'] == 1).sum())} level-1 / {int((g['level'] == 2).sum())} "
                 f"level-2 grids, {t['buildings_in_grids']}/{t['buildings']} buildings and "
                 f"{t['households_in_grids']}/{t['households']} households in grids")
    if audit.ok:
        lines.append("OK: no problems (全覆盖、无缝隙、无重叠)")
    else:
        counts = audit.counts_by_kind()
        lines.append(f"{len(audit.problems)} problems: " + ", ".join(f"{k} {n}" for k, n in counts.items()))
        for kind, n in counts.items():
            zh, en = KIND_LABELS.get(kind, (kind, kind))
            lines.append(f"\n[{kind}] {zh} / {en}: {n}")
            shown = [p for p in audit.problems if p.kind == kind][:PROBLEMS_SHOWN_PER_KIND]
            lines += [f"  - {p.detail}" for p in shown]
            if n > len(shown):
                lines.append(f"  ... and {n - len(shown)} more (use --json for all)")
    lines.append("")
    lines.append(_table(g, ["id", "level", "code", "buildings", "households", "persons", "band"]))
    lines.append("")
    lines.append(_table(audit.communities, ["id", "code", "level1_grids", "level2_grids", "buildings", "households",
                                            "persons", "band"]))
    return "\n".join(lines)


def _table(df, cols) -> str:
    cells = [[("" if v is None or v != v else str(v)) for v in row] for row in df[cols].astype(object).to_numpy()]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(cols)]
    fmt = lambda r: "  ".join(v.rjust(w) if i >= 3 else v.ljust(w) for i, (v, w) in enumerate(zip(r, widths)))
    return "\n".join([fmt(cols), fmt(["-" * w for w in widths])] + [fmt(r) for r in cells])


if __name__ == "__main__":
    from minsheng.cli import main
    sys.exit(main([NAME] + sys.argv[1:]))
