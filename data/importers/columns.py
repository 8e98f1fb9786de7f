"""Which file column plays which role: a name the user gave wins, else a known alias."""
from __future__ import annotations

from data.bundle import DataError


def match_columns(columns, aliases: dict, given: dict, skip=()) -> dict[str, str | None]:
    """Map each role of `aliases` (role -> lower-case alias names) to a column of the file.

    A column name given for a role must exist (else DataError naming it); otherwise the
    first alias found (case-insensitive, surrounding spaces ignored) is taken, or None."""
    cols = [c for c in columns if c not in skip]
    lower = {str(c).strip().lower(): c for c in cols}
    out: dict[str, str | None] = {}
    for role, names in aliases.items():
        want = given.get(role)
        if want:
            if want not in cols:
                raise DataError(f"column {want!r} given for {role} is not in the file "
                                f"(columns: {', '.join(map(str, cols))})", field=want)
            out[role] = want
        else:
            out[role] = next((lower[a] for a in names if a in lower), None)
    return out
