"""Which file column plays which role: a name the user gave wins, else a known alias.

Header cells are compared after Unicode NFKC (full-width letters and the ideographic space
become ASCII) with every space removed and case ignored, so "户 号", "地　址" and " ID " are
recognised as 户号, 地址 and id (repaired_headers lists them for a warning)."""
from __future__ import annotations

import re
import unicodedata

from data.bundle import DataError


def header_key(name) -> str:
    """The comparable form of a header cell: NFKC, no whitespace, lower case."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(name))).lower()


def match_columns(columns, aliases: dict, given: dict, skip=()) -> dict[str, str | None]:
    """Map each role of `aliases` (role -> lower-case alias names) to a column of the file.

    A column name given for a role must exist (else DataError naming it); otherwise the
    first alias found (compared by header_key) is taken, or None."""
    cols = [c for c in columns if c not in skip]
    lower: dict[str, str] = {}
    for c in cols:
        lower.setdefault(header_key(c), c)
    out: dict[str, str | None] = {}
    for role, names in aliases.items():
        want = given.get(role)
        if want:
            if want not in cols:
                found = lower.get(header_key(want))
                if found is None:
                    raise DataError(f"column {want!r} given for {role} is not in the file "
                                    f"(columns: {', '.join(map(str, cols))})", field=want)
                want = found
            out[role] = want
        else:
            out[role] = next((lower[header_key(a)] for a in names if header_key(a) in lower), None)
    return out


def repaired_headers(matched: dict[str, str | None]) -> list[tuple[str, str]]:
    """(role, column) of matched columns whose header carries inner or full-width spaces or
    full-width letters: recognised, and worth a warning."""
    return [(role, c) for role, c in matched.items()
            if c is not None and str(c).strip() != unicodedata.normalize("NFKC", str(c)).replace(" ", "").strip()]
