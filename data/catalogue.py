"""Catalogues (service types, key groups) are data files, read here and nowhere else."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources


@dataclass(frozen=True)
class ServiceType:
    key: str
    zh: str
    en: str
    family: str
    osm_tags: tuple[tuple[str, str], ...]  # (key, value) ; value "*" = any
    minutes: int
    color: str

    def label(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en


@dataclass(frozen=True)
class KeyGroup:
    key: str
    zh: str
    en: str
    sensitive: bool
    synthetic_share: float
    small_cell: bool = False  # counts below the threshold are suppressed in aggregate views (geo/suppress)

    def label(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en


def _rows(name: str) -> list[dict[str, str]]:
    text = resources.files("data").joinpath("catalogues", name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


@lru_cache(maxsize=1)
def service_types() -> tuple[ServiceType, ...]:
    out = []
    for r in _rows("service_types.csv"):
        tags = tuple(tuple(t.split("=", 1)) for t in r["osm_tags"].split(";") if t)
        out.append(ServiceType(r["key"], r["zh"], r["en"], r["family"], tags, int(r["minutes"]), r["color"]))
    return tuple(out)


@lru_cache(maxsize=1)
def key_groups() -> tuple[KeyGroup, ...]:
    return tuple(KeyGroup(r["key"], r["zh"], r["en"], r["sensitive"] == "true", float(r["synthetic_share"]),
                          r.get("small_cell") == "true" or r["sensitive"] == "true")
                 for r in _rows("key_groups.csv"))


def small_cell_keys() -> tuple[str, ...]:
    """Key groups whose small counts are suppressed for roles without personal access."""
    return tuple(k.key for k in key_groups() if k.small_cell)


def service_type(key: str) -> ServiceType:
    for s in service_types():
        if s.key == key:
            return s
    raise KeyError(f"unknown service type {key!r}; known: {', '.join(s.key for s in service_types())}")


def classify_osm(tags: dict[str, str]) -> str | None:
    """First service type whose OSM tag rule matches, else None (catalogue order = priority)."""
    for s in service_types():
        for k, v in s.osm_tags:
            tv = tags.get(k)
            if tv is not None and (v == "*" or tv == v):
                return s.key
    return None


FREQUENCY_TIERS = {"weekly": 52 / 12, "biweekly": 26 / 12, "monthly": 1.0, "quarterly": 1 / 3, "yearly": 1 / 12,
                   "none": 0.0}
ALL_HOUSEHOLDS = "*"


@lru_cache(maxsize=8)
def visit_frequency(path: str = "") -> tuple[tuple[str, float], ...]:
    """Visits per month by key-group key, plus "*" (every household), from
    data/catalogues/visit_frequency.csv or a deployment's own CSV (`path`, Settings.visit_frequency).
    Columns: key, frequency (a tier: weekly / biweekly / monthly / quarterly / yearly / none, or a
    number of visits per month). A bad row raises DataError naming file, row and field."""
    from data.bundle import DataError
    if path:
        from pathlib import Path
        name = path
        try:
            text = Path(path).read_text(encoding="utf-8-sig")
        except OSError as e:
            raise DataError(f"cannot read the visit-frequency table: {e.strerror}", file=name) from None
    else:
        name = "data/catalogues/visit_frequency.csv"
        text = resources.files("data").joinpath("catalogues", "visit_frequency.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(text.splitlines()))
    if not rows or "key" not in rows[0] or "frequency" not in rows[0]:
        raise DataError("needs the columns key and frequency", file=name, field="key")
    known = {k.key for k in key_groups()} | {ALL_HOUSEHOLDS}
    out: dict[str, float] = {}
    for i, r in enumerate(rows, start=2):  # row 1 is the header
        key, raw = (r.get("key") or "").strip(), (r.get("frequency") or "").strip().lower()
        if key not in known:
            raise DataError(f"unknown key group {key!r} (known: {', '.join(sorted(known))})", file=name, row=i,
                            field="key")
        if key in out:
            raise DataError(f"key group {key!r} listed twice", file=name, row=i, field="key")
        if raw in FREQUENCY_TIERS:
            v = FREQUENCY_TIERS[raw]
        else:
            try:
                v = float(raw)
            except ValueError:
                v = -1.0
            if not (0 <= v <= 100):
                raise DataError(f"frequency {raw!r} is neither a tier ({', '.join(FREQUENCY_TIERS)}) nor a number of "
                                "visits per month between 0 and 100", file=name, row=i, field="frequency")
        out[key] = v
    out.setdefault(ALL_HOUSEHOLDS, FREQUENCY_TIERS["quarterly"])
    return tuple(out.items())
