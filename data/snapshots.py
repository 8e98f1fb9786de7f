"""Quarter snapshots for the joint-meeting pack: frozen, read-only aggregates of one quarter so
the next quarter's pack can show the change.

The store is being rebuilt (issue 10), so a snapshot is a separate JSON file next to the project
(`<project>.snapshots/2026Q4.json`, or a directory of its own), written once and made read-only;
a second freeze of the same quarter is refused and the stored one is used. A snapshot holds
aggregates only (per community and grid: households, persons, workload, key-group counts,
bands; audit counts; plan id and dataset version), never household rows, names or phones.
When the store gains a `quarter_snapshots` table (quarter PRIMARY KEY, created_at, version,
payload JSON; insert-only), `freeze`/`read` below are the only functions to change."""
from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

from data.bundle import DataError

QUARTER = re.compile(r"^(\d{4})Q([1-4])$")


def parse_quarter(q: str) -> tuple[int, int]:
    m = QUARTER.match(str(q or "").strip().upper())
    if not m:
        raise DataError(f"quarter {q!r} must look like 2026Q4", field="quarter")
    return int(m.group(1)), int(m.group(2))


def previous_quarter(q: str) -> str:
    y, n = parse_quarter(q)
    return f"{y - 1}Q4" if n == 1 else f"{y}Q{n - 1}"


def snapshot_dir(project) -> Path:
    """Where a project's snapshots live: MINSHENG_SNAPSHOTS, else `<project file>.snapshots/`."""
    if os.environ.get("MINSHENG_SNAPSHOTS"):
        return Path(os.environ["MINSHENG_SNAPSHOTS"])
    p = Path(str(project))
    return p.with_name(p.name + ".snapshots")


def read(directory, quarter: str) -> dict | None:
    parse_quarter(quarter)
    f = Path(directory) / f"{quarter.upper()}.json"
    if not f.exists():
        return None
    try:
        return json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read the snapshot: {e}", file=str(f)) from None


def freeze(directory, quarter: str, payload: dict) -> tuple[Path, bool]:
    """Write the quarter's snapshot once (read-only). Returns (path, written); written is False
    when the quarter was frozen before (the stored file is left as it is)."""
    parse_quarter(quarter)
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    f = d / f"{quarter.upper()}.json"
    data = json.dumps(dict(payload, quarter=quarter.upper()), ensure_ascii=False, sort_keys=True).encode("utf-8")
    try:
        fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)  # refuses an existing file
    except FileExistsError:
        return f, False
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        f.chmod(stat.S_IWUSR | stat.S_IRUSR)
        f.unlink(missing_ok=True)
        raise
    return f, True
