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


# -- life circles (GB 50180-2018 tiers, 完整居住社区, local rules) ---------------------------

LIFE_CIRCLE_FILES = ("life_circle_tiers.csv", "life_circle_requirements.csv", "walk_profiles.csv")


@dataclass(frozen=True)
class Tier:
    key: str
    zh: str
    en: str
    minutes: float
    reach_m: float      # the standard's walking distance (for the general profile)
    order: int

    def label(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en


@dataclass(frozen=True)
class Requirement:
    tier: str
    key: str
    zh: str
    en: str
    types: tuple[str, ...]       # service types that satisfy it (only these: tiers are not inclusive)
    standards: tuple[str, ...]

    def label(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en


@dataclass(frozen=True)
class WalkProfile:
    key: str
    zh: str
    en: str
    speed_m_min: float
    avoid_highway: tuple[str, ...]   # walk_edges.highway values this profile cannot use
    groups: tuple[str, ...]          # key groups measured under this profile

    def label(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en


@dataclass(frozen=True)
class LifeCircleCatalogue:
    tiers: tuple[Tier, ...]
    requirements: tuple[Requirement, ...]   # only those of the active standards
    profiles: tuple[WalkProfile, ...]
    standards: tuple[str, ...]

    def tier(self, key: str) -> Tier:
        for t in self.tiers:
            if t.key == key:
                return t
        raise KeyError(f"unknown life-circle tier {key!r}; known: {', '.join(t.key for t in self.tiers)}")

    def profile(self, key: str) -> WalkProfile:
        for p in self.profiles:
            if p.key == key:
                return p
        raise KeyError(f"unknown walking profile {key!r}; known: {', '.join(p.key for p in self.profiles)}")

    def requirements_of(self, tier: str) -> tuple[Requirement, ...]:
        return tuple(r for r in self.requirements if r.tier == tier)

    def profile_of_group(self, group: str) -> WalkProfile:
        """The profile a key group is measured under (the first listing it, else the first profile)."""
        for p in self.profiles:
            if group in p.groups:
                return p
        return self.profiles[0]


def _split(v: str | None) -> tuple[str, ...]:
    return tuple(x.strip() for x in (v or "").split(";") if x.strip())


def _read_override(directory: str, name: str) -> tuple[str, list[dict[str, str]]]:
    from pathlib import Path
    if directory:
        p = Path(directory) / name
        if p.exists():
            return str(p), list(csv.DictReader(p.read_text(encoding="utf-8-sig").splitlines()))
    return name, _rows(name)


def _need(rows, file, columns):
    from data.bundle import DataError
    if rows and (missing := [c for c in columns if c not in rows[0]]):
        raise DataError(f"missing column(s) {', '.join(missing)}", file=file, field=missing[0])


def _number(r, i, file, col, positive=True) -> float:
    from data.bundle import DataError
    try:
        x = float(r[col])
    except (TypeError, ValueError):
        raise DataError(f"not a number: {r[col]!r}", file=file, row=i, field=col) from None
    if positive and not x > 0:
        raise DataError(f"must be positive, got {x:g}", file=file, row=i, field=col)
    return x


def life_circles(directory: str = "", standards: tuple[str, ...] = ("gb50180_2018", "complete_community")
                 ) -> LifeCircleCatalogue:
    """Tiers, requirements of the active ``standards`` and walking profiles. Files in ``directory``
    (settings.life_circle_dir) replace the shipped ones of the same name; rows are checked and a
    bad row is refused naming file, row (1 = first data row) and field. Re-read when a file changes."""
    from pathlib import Path
    stamp = tuple((Path(directory) / n).stat().st_mtime_ns if directory and (Path(directory) / n).exists() else 0
                  for n in LIFE_CIRCLE_FILES)
    return _life_circles(directory, tuple(standards), stamp)


@lru_cache(maxsize=8)
def _life_circles(directory: str, standards: tuple[str, ...], stamp: tuple) -> LifeCircleCatalogue:
    from data.bundle import DataError
    f, rows = _read_override(directory, "life_circle_tiers.csv")
    _need(rows, f, ("key", "zh", "en", "minutes", "reach_m", "order"))
    tiers = tuple(sorted((Tier(r["key"], r["zh"], r["en"], _number(r, i, f, "minutes"), _number(r, i, f, "reach_m"),
                               int(_number(r, i, f, "order", positive=False)))
                          for i, r in enumerate(rows, 1)), key=lambda t: t.order))
    tier_keys = {t.key for t in tiers}
    known_types = {s.key for s in service_types()}
    f, rows = _read_override(directory, "life_circle_requirements.csv")
    _need(rows, f, ("tier", "key", "zh", "en", "types", "standards"))
    reqs = []
    for i, r in enumerate(rows, 1):
        if r["tier"] not in tier_keys:
            raise DataError(f"unknown tier {r['tier']!r}", file=f, row=i, field="tier")
        types = _split(r["types"])
        if not types or (bad := [x for x in types if x not in known_types]):
            raise DataError(f"unknown service type(s) {', '.join(bad) if types else '(none)'}", file=f, row=i,
                            field="types")
        req = Requirement(r["tier"], r["key"], r["zh"], r["en"], types, _split(r["standards"]))
        if set(req.standards) & set(standards):
            reqs.append(req)
    f, rows = _read_override(directory, "walk_profiles.csv")
    _need(rows, f, ("key", "zh", "en", "speed_m_min", "avoid_highway", "groups"))
    profiles = tuple(WalkProfile(r["key"], r["zh"], r["en"], _number(r, i, f, "speed_m_min"),
                                 _split(r["avoid_highway"]), _split(r["groups"])) for i, r in enumerate(rows, 1))
    if not profiles:
        raise DataError("no walking profile", file=f)
    return LifeCircleCatalogue(tiers, tuple(reqs), profiles, tuple(standards))
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
