"""Quarter snapshots for the joint-meeting pack: frozen aggregates of one quarter, so the next
quarter's pack can show the change.

A snapshot is a row of the store's ``quarter_snapshots`` table (data/sqlstore.py, on both
stores: a GeoPackage attributes table registered in gpkg_contents, PostGIS migration 5):
quarter (2026Q4, the key), created_at, created_by, plan_id, dataset version and the payload
(JSON). It holds aggregates only (per community and grid: households, persons, workload,
key-group counts, bands; audit counts; plan id and dataset version), never household rows,
names or phones.

Write-once: the freeze and its audit row are one transaction; a second freeze of the same
quarter is refused (data.store.QuarterFrozen, worded in the UI language by its ``text(lang)``)
and the stored row is left exactly as it was. The database refuses UPDATE and DELETE on the
table too (triggers), so no later code path can overwrite a frozen quarter either. Snapshots
are not part of the dataset: a freeze bumps no dataset or layer version (like the audit log),
and they are always read from the store, never from the in-memory read model.

Earlier versions wrote each snapshot as a read-only JSON file beside the project
(``<project>.snapshots/2026Q4.json``, or MINSHENG_SNAPSHOTS). ``import_legacy`` copies such
files into the table once (a quarter already in the table is skipped, the files are left as
they are and never read again once imported); ``minsheng pack`` and the dashboard call it
before reading, so an upgraded project keeps its history."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

from data.bundle import DataError

QUARTER = re.compile(r"^(\d{4})Q([1-4])$")


def parse_quarter(q: str) -> tuple[int, int]:
    m = QUARTER.match(str(q or "").strip().upper())
    if not m:
        raise DataError(f"quarter {q!r} must look like 2026Q4", field="quarter")
    return int(m.group(1)), int(m.group(2))


def normal_quarter(q: str) -> str:
    """'2026q4 ' -> '2026Q4' (DataError naming the field when it is not a quarter)."""
    y, n = parse_quarter(q)
    return f"{y}Q{n}"


def previous_quarter(q: str) -> str:
    y, n = parse_quarter(q)
    return f"{y - 1}Q4" if n == 1 else f"{y}Q{n - 1}"


def legacy_dir(settings) -> Path | None:
    """Where an earlier version kept a project's snapshot files: MINSHENG_SNAPSHOTS, else
    `<project file>.snapshots/` beside a GeoPackage (None for a PostGIS project without
    MINSHENG_SNAPSHOTS)."""
    if os.environ.get("MINSHENG_SNAPSHOTS"):
        return Path(os.environ["MINSHENG_SNAPSHOTS"])
    if getattr(settings, "dsn", None):
        return None
    p = Path(str(settings.data_path))
    return p.with_name(p.name + ".snapshots")


def read(store, quarter: str) -> dict | None:
    """The frozen snapshot of `quarter` (its payload with "quarter"), or None."""
    return store.quarter_snapshot(normal_quarter(quarter))


def freeze(store, quarter: str, payload: dict, user: str) -> dict:
    """Freeze `quarter` once (with its audit row, one transaction); the stored snapshot.
    Raises data.store.QuarterFrozen when it was frozen before (nothing is written)."""
    return store.freeze_quarter(normal_quarter(quarter), payload, user)


def import_legacy(store, directory, user: str = "") -> list[str]:
    """Copy the snapshot files of an earlier version (`directory`/2026Q4.json) into the store's
    table, each with an audit row "import_snapshot"; quarters already in the table are skipped
    (so this runs once in effect). Returns the quarters imported now. A file that is not JSON is
    a DataError naming it (nothing of it is imported)."""
    from data.store import QuarterFrozen
    d = Path(directory) if directory is not None else None
    if d is None or not d.is_dir():
        return []
    files = sorted(f for f in d.glob("*.json") if QUARTER.match(f.stem.upper()))
    if not files:
        return []
    have = set(store.quarter_list())
    done = []
    for f in files:
        q = f.stem.upper()
        if q in have:
            continue
        try:
            payload = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise DataError(f"cannot read the snapshot: {e}", file=str(f)) from None
        if not isinstance(payload, dict):
            raise DataError("not a quarter snapshot (a JSON object was expected)", file=str(f))
        try:
            store.freeze_quarter(q, payload, user or "(import)", action="import_snapshot",
                                 created_at=payload.get("created_at"))
        except QuarterFrozen:  # another process imported it meanwhile
            continue
        done.append(q)
    return done


def copy_snapshots(source, target, user: str = "") -> list[str]:
    """Bring the frozen quarters of one store into another (``minsheng load``: a project moving
    to PostGIS, or back out, takes its history along). Each keeps its created_at/created_by and
    gets an audit row "import_snapshot" in the target; a quarter the target has is left as it
    is there (write-once). Returns the quarters copied."""
    from data.store import QuarterFrozen
    have = set(target.quarter_list())
    done = []
    for row in source.quarter_snapshots():
        q = row["quarter"]
        if q in have:
            continue
        try:
            target.freeze_quarter(q, row["payload"], user or "(load)", action="import_snapshot",
                                  created_at=row["created_at"], created_by=row["created_by"])
        except QuarterFrozen:
            continue
        done.append(q)
    return done
