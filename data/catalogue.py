"""Catalogues (service types, key groups) are data files, read here and nowhere else."""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path


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


# -- deployment overrides (settings file [catalogues]) ----------------------------------------
#
# A deployment names its own CSV per catalogue (Settings.catalogues, ((name, path), ...)). An
# override file lists only what it changes: a `key` column and any of the shipped columns; a
# row of a shipped key replaces the cells it fills (an empty cell keeps the shipped value), a
# service type with a new key is added (zh, en and minutes needed). Key groups cannot be added
# or removed (the stores count households per shipped key group), and a group the shipped
# catalogue marks sensitive stays sensitive (PIPL art. 28). A bad cell raises DataError naming
# the override file, its row (the header is row 1) and the column.

OVERRIDABLE = ("service_types", "key_groups", "visit_frequency", "life_circle_tiers", "life_circle_requirements",
               "walk_profiles")
SERVICE_COLUMNS = ("key", "zh", "en", "family", "osm_tags", "minutes", "color")
KEY_GROUP_COLUMNS = ("key", "zh", "en", "sensitive", "synthetic_share", "small_cell")
_KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
_COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
_TRUE, _FALSE = ("true", "yes", "1", "是"), ("false", "no", "0", "否")


def _override_rows(path: str, columns: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """(file row, {column: stripped cell}) of an override CSV; checks columns and keys."""
    from data.bundle import DataError
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise DataError("不是 UTF-8 编码的 CSV / not a UTF-8 CSV file", file=path) from None
    except OSError as e:
        raise DataError(f"无法读取 / cannot be read: {e.strerror}", file=path) from None
    reader = csv.DictReader(text.splitlines())
    head = [h.strip() for h in (reader.fieldnames or [])]
    if "key" not in head:
        raise DataError("缺少 key 列 / needs a key column", file=path, field="key")
    unknown = [h for h in head if h not in columns]
    if unknown:
        raise DataError(f"未知列 / unknown column {unknown[0]!r} (known: {', '.join(columns)})", file=path,
                        field=unknown[0])
    out, seen = [], set()
    for i, r in enumerate(reader, start=2):
        row = {k.strip(): (v or "").strip() for k, v in r.items() if k is not None}
        key = row.get("key", "")
        if not _KEY_RE.match(key):
            raise DataError(f"键应为小写字母、数字和下划线 / a key is lower-case letters, digits and _, got {key!r}",
                            file=path, row=i, field="key")
        if key in seen:
            raise DataError(f"键重复 / key {key!r} listed twice", file=path, row=i, field="key")
        seen.add(key)
        out.append((i, row))
    return out


def _int_cell(v: str, path: str, i: int, col: str, lo: int, hi: int) -> int:
    from data.bundle import DataError
    import math
    try:
        x = float(v)
    except ValueError:
        x = float("nan")
    if not (math.isfinite(x) and x == int(x) and lo <= x <= hi):
        raise DataError(f"应为 {lo}–{hi} 的整数 / must be a whole number from {lo} to {hi}, got {v!r}", file=path,
                        row=i, field=col)
    return int(x)


def _bool_cell(v: str, path: str, i: int, col: str) -> bool:
    from data.bundle import DataError
    if v.lower() in _TRUE:
        return True
    if v.lower() in _FALSE:
        return False
    raise DataError(f"应为 true 或 false / must be true or false, got {v!r}", file=path, row=i, field=col)


def _osm_tags(v: str, path: str, i: int) -> tuple[tuple[str, str], ...]:
    from data.bundle import DataError
    if v == "-":
        return ()
    tags = []
    for part in (x.strip() for x in v.split(";") if x.strip()):
        k, eq, val = part.partition("=")
        if not (eq and k.strip() and val.strip()):
            raise DataError(f"OSM 标签应写作 key=value;key=value / OSM tags are key=value;key=value, got {part!r}",
                            file=path, row=i, field="osm_tags")
        tags.append((k.strip(), val.strip()))
    return tuple(tags)


def _shipped_service_types() -> tuple[ServiceType, ...]:
    out = []
    for r in _rows("service_types.csv"):
        tags = tuple(tuple(t.split("=", 1)) for t in r["osm_tags"].split(";") if t)
        out.append(ServiceType(r["key"], r["zh"], r["en"], r["family"], tags, int(r["minutes"]), r["color"]))
    return tuple(out)


def _shipped_key_groups() -> tuple[KeyGroup, ...]:
    return tuple(KeyGroup(r["key"], r["zh"], r["en"], r["sensitive"] == "true", float(r["synthetic_share"]),
                          r.get("small_cell") == "true" or r["sensitive"] == "true")
                 for r in _rows("key_groups.csv"))


def _apply_service_types(base: tuple[ServiceType, ...], path: str) -> tuple[ServiceType, ...]:
    from dataclasses import replace

    from data.bundle import DataError
    by_key = {s.key: s for s in base}
    order = [s.key for s in base]
    for i, r in _override_rows(path, SERVICE_COLUMNS):
        key = r["key"]
        given = {c: v for c, v in r.items() if c != "key" and v != ""}
        if key not in by_key:
            missing = [c for c in ("zh", "en", "minutes") if c not in given]
            if missing:
                raise DataError(f"新服务类型 {key!r} 需要 zh、en 和 minutes / a new service type needs zh, en and "
                                f"minutes", file=path, row=i, field=missing[0])
            by_key[key] = ServiceType(key, "", "", "local", (), 10, "#7f8c8d")
            order.append(key)
        vals = {}
        for c, v in given.items():
            if c == "minutes":
                vals[c] = _int_cell(v, path, i, c, 1, 120)
            elif c == "osm_tags":
                vals[c] = _osm_tags(v, path, i)
            elif c == "color":
                if not _COLOR_RE.match(v):
                    raise DataError(f"颜色应写作 #rrggbb / a colour is #rrggbb, got {v!r}", file=path, row=i,
                                    field=c)
                vals[c] = v
            else:
                vals[c] = v
        by_key[key] = replace(by_key[key], **vals)
    return tuple(by_key[k] for k in order)


def _apply_key_groups(base: tuple[KeyGroup, ...], path: str) -> tuple[KeyGroup, ...]:
    from dataclasses import replace

    from data.bundle import DataError
    by_key = {k.key: k for k in base}
    for i, r in _override_rows(path, KEY_GROUP_COLUMNS):
        key = r["key"]
        if key not in by_key:
            raise DataError(f"未知重点人群 {key!r}：只能修改已有人群，不能新增 / unknown key group {key!r}: a deployment "
                            f"may change the shipped key groups, not add new ones (known: {', '.join(by_key)})",
                            file=path, row=i, field="key")
        vals = {}
        for c, v in r.items():
            if c == "key" or v == "":
                continue
            if c in ("sensitive", "small_cell"):
                vals[c] = _bool_cell(v, path, i, c)
            elif c == "synthetic_share":
                try:
                    x = float(v)
                except ValueError:
                    x = -1.0
                if not 0 <= x <= 1:
                    raise DataError(f"应为 0–1 之间的比例 / must be a share between 0 and 1, got {v!r}", file=path,
                                    row=i, field=c)
                vals[c] = x
            else:
                vals[c] = v
        if by_key[key].sensitive and vals.get("sensitive") is False:
            raise DataError(f"{by_key[key].zh} 属于敏感个人信息，不能设为非敏感 / {by_key[key].en} is sensitive personal "
                            f"information (PIPL art. 28) and cannot be made public", file=path, row=i,
                            field="sensitive")
        k = replace(by_key[key], **vals)
        by_key[key] = replace(k, small_cell=k.small_cell or k.sensitive)
    return tuple(by_key.values())


@dataclass(frozen=True)
class Catalogue:
    """Service types and key groups in force: the shipped catalogues with a deployment's
    overrides applied (Settings.catalogue())."""
    service_types: tuple[ServiceType, ...]
    key_groups: tuple[KeyGroup, ...]

    def service_type(self, key: str) -> ServiceType:
        for s in self.service_types:
            if s.key == key:
                return s
        raise KeyError(f"unknown service type {key!r}; known: {', '.join(s.key for s in self.service_types)}")

    def has_service_type(self, key) -> bool:
        return any(s.key == key for s in self.service_types)

    @property
    def keys(self) -> list[str]:
        """Key-group keys in catalogue order."""
        return [k.key for k in self.key_groups]

    @property
    def sensitive_keys(self) -> frozenset[str]:
        return frozenset(k.key for k in self.key_groups if k.sensitive)

    @property
    def public_keys(self) -> list[str]:
        return [k.key for k in self.key_groups if not k.sensitive]

    @property
    def small_cell_keys(self) -> tuple[str, ...]:
        """Key groups whose small counts are suppressed for roles without personal access."""
        return tuple(k.key for k in self.key_groups if k.small_cell)

    def key_group_labels(self, lang: str) -> dict[str, str]:
        return {k.key: k.label(lang) for k in self.key_groups}

    def classify_osm(self, tags: dict[str, str]) -> str | None:
        """First service type whose OSM tag rule matches, else None (catalogue order = priority)."""
        for s in self.service_types:
            for k, v in s.osm_tags:
                tv = tags.get(k)
                if tv is not None and (v == "*" or tv == v):
                    return s.key
        return None


def _stamp(path: str):
    try:
        return Path(path).stat().st_mtime_ns if path else 0
    except OSError:
        return -1


def catalogue(overrides=()) -> Catalogue:
    """The catalogue in force for ``overrides`` (Settings.catalogues: ((name, path), ...)); the
    shipped one without. Re-read when an override file changes."""
    ov = dict(overrides or ())
    paths = (ov.get("service_types", ""), ov.get("key_groups", ""))
    return _catalogue(paths, tuple(_stamp(p) for p in paths))


@lru_cache(maxsize=8)
def _catalogue(paths: tuple[str, str], stamp: tuple) -> Catalogue:
    st, kg = _shipped_service_types(), _shipped_key_groups()
    if paths[0]:
        st = _apply_service_types(st, paths[0])
    if paths[1]:
        kg = _apply_key_groups(kg, paths[1])
    return Catalogue(st, kg)


def check_overrides(overrides) -> None:
    """Read every override file now (DataError naming file, row and field when one is bad)."""
    ov = dict(overrides or ())
    unknown = [n for n in ov if n not in OVERRIDABLE]
    if unknown:
        from data.bundle import DataError
        raise DataError(f"未知目录 / unknown catalogue {unknown[0]!r} (known: {', '.join(OVERRIDABLE)})",
                        field=unknown[0])
    cat = catalogue(overrides)
    if ov.get("visit_frequency"):
        visit_frequency(ov["visit_frequency"])
    if any(n.startswith(("life_circle", "walk_")) for n in ov):
        life_circles("", overrides=overrides, service_types=tuple(s.key for s in cat.service_types))


def service_types(overrides=()) -> tuple[ServiceType, ...]:
    return catalogue(overrides).service_types


def key_groups(overrides=()) -> tuple[KeyGroup, ...]:
    return catalogue(overrides).key_groups


def small_cell_keys(overrides=()) -> tuple[str, ...]:
    """Key groups whose small counts are suppressed for roles without personal access."""
    return catalogue(overrides).small_cell_keys


def service_type(key: str, overrides=()) -> ServiceType:
    return catalogue(overrides).service_type(key)


def classify_osm(tags: dict[str, str], overrides=()) -> str | None:
    """First service type whose OSM tag rule matches, else None (catalogue order = priority)."""
    return catalogue(overrides).classify_osm(tags)


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


def _read_override(directory: str, name: str, files: dict | None = None) -> tuple[str, list[dict[str, str]]]:
    """Rows of a life-circle file: the settings file's [catalogues] entry for it, else the file
    of that name in ``directory``, else the shipped one."""
    from data.bundle import DataError
    given = (files or {}).get(name.removesuffix(".csv"))
    p = Path(given) if given else (Path(directory) / name if directory else None)
    if p is not None and (given or p.exists()):
        try:
            return str(p), list(csv.DictReader(p.read_text(encoding="utf-8-sig").splitlines()))
        except (OSError, UnicodeDecodeError) as e:
            raise DataError(f"无法读取 / cannot be read: {getattr(e, 'strerror', None) or e}", file=str(p)) from None
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


def life_circles(directory: str = "", standards: tuple[str, ...] = ("gb50180_2018", "complete_community"), *,
                 overrides=(), service_types: tuple[str, ...] | None = None) -> LifeCircleCatalogue:
    """Tiers, requirements of the active ``standards`` and walking profiles. A file named in
    ``overrides`` (Settings.catalogues: life_circle_tiers, life_circle_requirements,
    walk_profiles) or found in ``directory`` (settings.life_circle_dir) replaces the shipped one of
    the same name; rows are checked and a bad row is refused naming file, row (1 = first data
    row) and field. ``service_types``: the keys requirements may name (default: those of the
    catalogue in force for ``overrides``). Re-read when a file changes."""
    files = tuple(sorted((k, v) for k, v in dict(overrides or ()).items() if k + ".csv" in LIFE_CIRCLE_FILES))
    if service_types is None:
        service_types = tuple(s.key for s in catalogue(overrides).service_types)
    paths = [dict(files).get(n.removesuffix(".csv")) or (str(Path(directory) / n) if directory else "")
             for n in LIFE_CIRCLE_FILES]
    stamp = tuple(_stamp(p) if p and Path(p).exists() else 0 for p in paths)
    return _life_circles(directory, tuple(standards), files, tuple(service_types), stamp)


@lru_cache(maxsize=8)
def _life_circles(directory: str, standards: tuple[str, ...], files: tuple, known_types: tuple,
                  stamp: tuple) -> LifeCircleCatalogue:
    from data.bundle import DataError
    files = dict(files)
    f, rows = _read_override(directory, "life_circle_tiers.csv", files)
    _need(rows, f, ("key", "zh", "en", "minutes", "reach_m", "order"))
    tiers = tuple(sorted((Tier(r["key"], r["zh"], r["en"], _number(r, i, f, "minutes"), _number(r, i, f, "reach_m"),
                               int(_number(r, i, f, "order", positive=False)))
                          for i, r in enumerate(rows, 1)), key=lambda t: t.order))
    tier_keys = {t.key for t in tiers}
    known_types = set(known_types)
    f, rows = _read_override(directory, "life_circle_requirements.csv", files)
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
    f, rows = _read_override(directory, "walk_profiles.csv", files)
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
