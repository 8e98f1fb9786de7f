"""One frozen settings object, passed explicitly (never a module-level mutable)."""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path


def sample_path() -> Path:
    """The shipped sample as packaged (read only: never written to)."""
    return Path(str(resources.files("data").joinpath("samples", "haidian_xueqing.gpkg")))


def home_dir() -> Path:
    """Where the embedded default keeps its working files: $MINSHENG_HOME, else
    ~/.local/share/minsheng."""
    env = os.environ.get("MINSHENG_HOME")
    return Path(env) if env else Path.home() / ".local" / "share" / "minsheng"


def sample_working_copy() -> Path:
    """The project `python app.py` opens by default: a working copy of the shipped sample in
    home_dir(), made on first use (sign-ins and edits go there, never into the package). A
    new release of the sample replaces a copy made from an older one."""
    import hashlib
    import shutil
    src = sample_path()
    digest = hashlib.blake2b(src.read_bytes(), digest_size=8).hexdigest()
    home = home_dir()
    dst = home / "haidian_xueqing.gpkg"
    stamp = home / "haidian_xueqing.source"
    if not dst.exists() or not stamp.exists() or stamp.read_text().strip() != digest:
        home.mkdir(parents=True, exist_ok=True)
        tmp = home / f".haidian_xueqing.{os.getpid()}.tmp"
        shutil.copyfile(src, tmp)  # the packaged demo (synthetic households only)
        for extra in ("-wal", "-shm"):
            Path(str(dst) + extra).unlink(missing_ok=True)
        os.replace(tmp, dst)
        stamp.write_text(digest)
    return dst


@dataclass(frozen=True)
class Band:
    low: int
    high: int

    def status(self, n: int) -> str:
        return "low" if n < self.low else ("high" if n > self.high else "ok")


@dataclass(frozen=True)
class Settings:
    data: str = ""                      # GeoPackage path; "" = shipped sample
    dsn: str = ""                       # PostgreSQL DSN; wins over data when set
    language: str = "zh"                # "zh" | "en"
    walk_speed_m_min: float = 80.0      # GB 50180-2018 / DESIGN default
    elderly_speed_m_min: float = 60.0
    circle_minutes: int = 10
    life_circle_dir: str = ""           # directory whose life-circle CSVs replace the shipped ones
    life_circle_standards: tuple = ("gb50180_2018", "complete_community")  # active requirement sets
    band_level1: Band = field(default_factory=lambda: Band(300, 800))
    band_level2: Band = field(default_factory=lambda: Band(80, 300))
    band_community: Band = field(default_factory=lambda: Band(1100, 2400))
    # workload bands: visits per month (geo/workload; rates from the visit-frequency table)
    workload_level1: Band = field(default_factory=lambda: Band(260, 700))
    workload_level2: Band = field(default_factory=lambda: Band(70, 260))
    workload_community: Band = field(default_factory=lambda: Band(950, 2100))
    visit_frequency: str = ""           # CSV key,frequency (data/catalogues/visit_frequency.csv); "" = shipped
    suppress_below: int = 5             # small-cell suppression of sensitive counts (geo/suppress)
    grid_object_code: str = "1001"      # 4-digit object code prefix of the 20-digit grid code
    county_code: str = "110108"         # GB/T 2260 (Haidian District)
    street_code: str = "012"            # illustrative street code of the sample
    secret_key: str = ""                # "" = generated key file beside the GeoPackage (minsheng/secret_key.py)
    require_login: bool = False         # True: every page and callback needs a signed-in user
    secure_cookies: bool = False        # True behind HTTPS: session cookie Secure (+ HSTS)
    trusted_proxies: int = 0            # reverse proxies in front (X-Forwarded-For/-Proto/-Host trusted)
    session_idle_minutes: int = 30      # a session unused this long ends
    session_absolute_hours: int = 12    # and every session ends this long after sign-in
    login_max_failures: int = 5         # failed sign-ins of one account within the window lock it ...
    login_max_failures_client: int = 20  # ... and this many from one address lock that address
    login_window_minutes: int = 15
    login_lockout_minutes: int = 15     # ... for this long after the last failure
    map_budget_buildings: int = 8000    # the map draws buildings while this many fit the view (geo/lod)
    map_budget_grids: int = 3000        # ... level-2 grids while this many fit, else communities
    host: str = "127.0.0.1"
    port: int = 8050
    debug: bool = False
    street_codes: tuple = ()            # ((street name, 3-digit code), ...) from the settings file
    community_codes: tuple = ()         # ((community id or name, 3-digit code), ...)
    catalogues: tuple = ()              # ((catalogue name, CSV path), ...) over data/catalogues/ (data/catalogue.py)
    workers: int = 2                    # gunicorn worker processes (minsheng serve)
    threads: int = 4                    # gunicorn threads per worker
    task_dir: str = ""                  # background jobs' diskcache folder ("" = per project in temp)
    celery_broker: str = ""             # redis://host:6379/0: background jobs on Celery instead
    max_request_mb: float = 100.0       # request body limit (uploads are base64: ~3/4 of it is file)
    max_anonymous_request_kb: float = 1024.0  # anonymous visitors cannot upload: a small limit

    def band(self, level: int) -> Band:
        return {0: self.band_community, 1: self.band_level1, 2: self.band_level2}[level]

    def workload_band(self, level: int) -> Band:
        return {0: self.workload_community, 1: self.workload_level1, 2: self.workload_level2}[level]

    @property
    def data_path(self) -> Path:
        return Path(self.data) if self.data else sample_working_copy()

    def life_circles(self):
        from data.catalogue import life_circles
        return life_circles(self.life_circle_dir, tuple(self.life_circle_standards), overrides=self.catalogues)

    def catalogue(self):
        """Service types and key groups in force: the shipped catalogues with this deployment's
        [catalogues] overrides (data/catalogue.catalogue)."""
        from data.catalogue import catalogue
        return catalogue(self.catalogues)

    def street_code_for(self, street: str | None) -> str:
        return dict(self.street_codes).get(street or "", self.street_code)

    def community_code_for(self, community: str) -> str | None:
        return dict(self.community_codes).get(community)

    def with_(self, **kw) -> "Settings":
        return replace(self, **kw)


class SettingsError(ValueError):
    """A deployment settings file that cannot be used: names the file, the [section] and key, in
    Chinese and English."""


def _band(v, where: str) -> Band:
    if (isinstance(v, list) and len(v) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in v)
            and 0 <= v[0] <= v[1]):
        return Band(v[0], v[1])
    raise SettingsError(f"{where}: 区间写作 [下限, 上限]，整数，下限不大于上限 / a band is [low, high] households, "
                        f"whole numbers, low <= high; got {v!r}")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# [section] key -> (Settings field, check, what it must be: zh / en)
_TEXT = (lambda v: isinstance(v, str), "文本 / text")
_PATH = (lambda v: isinstance(v, str) and v.strip() != "", "非空路径 / a non-empty path")
_BOOL = (lambda v: isinstance(v, bool), "true 或 false / true or false")


def _int_range(lo, hi):
    return (lambda v: _is_int(v) and lo <= v <= hi, f"{lo}–{hi} 的整数 / a whole number from {lo} to {hi}")


def _positive(hi):
    return (lambda v: _is_number(v) and 0 < v <= hi, f"大于 0、不超过 {hi} 的数 / a number above 0, at most {hi}")


def _digits(n):
    return (lambda v: isinstance(v, str) and len(v) == n and v.isdigit(),
            f"{n} 位数字（加引号） / {n} digits, quoted as a string")


SECTIONS = {
    "store": {"data": ("data", _PATH), "dsn": ("dsn", _PATH)},
    "server": {
        "host": ("host", _PATH), "port": ("port", _int_range(1, 65535)), "workers": ("workers", _int_range(1, 64)),
        "threads": ("threads", _int_range(1, 256)), "require_login": ("require_login", _BOOL),
        "secure_cookies": ("secure_cookies", _BOOL), "trusted_proxies": ("trusted_proxies", _int_range(0, 10)),
        "max_request_mb": ("max_request_mb", _positive(10_000)),
        "max_anonymous_request_kb": ("max_anonymous_request_kb", _positive(1_000_000)),
        "language": ("language", (lambda v: v in ("zh", "en"), '"zh" 或 "en" / "zh" or "en"')),
        "secret_file": ("secret_file", _PATH), "secret_key": ("secret_key", _TEXT), "task_dir": ("task_dir", _PATH),
        "celery_broker": ("celery_broker", (lambda v: isinstance(v, str) and v.startswith(("redis://", "rediss://")),
                                            "redis:// 地址 / a redis:// URL")),
        "session_idle_minutes": ("session_idle_minutes", _int_range(1, 24 * 60)),
        "session_absolute_hours": ("session_absolute_hours", _int_range(1, 24 * 31)),
    },
    "walking": {"speed_m_min": ("walk_speed_m_min", _positive(300)),
                "elderly_speed_m_min": ("elderly_speed_m_min", _positive(300)),
                "circle_minutes": ("circle_minutes", _int_range(1, 120))},
    "codes": {"object": ("grid_object_code", _digits(4)), "county": ("county_code", _digits(6)),
              "street": ("street_code", _digits(3))},
}
CODE_TABLES = {"streets": "street_codes", "communities": "community_codes"}


def _community_number_ok(v) -> bool:
    return isinstance(v, str) and len(v) == 3 and v.isdigit() and v != "000"


def read_settings_file(path) -> dict:
    """Settings fields from a deployment TOML file (read with tomllib; see
    docs/settings.example.toml). Unknown sections and keys and values of the wrong kind are
    refused (SettingsError naming the file, [section] and key in Chinese and English), so a typo
    is never silently ignored; the catalogue override files are read and checked here too.

        [store]    data = "/srv/minsheng/project.gpkg"  |  dsn = "postgresql://..."
        [server]   host, port, workers, threads, require_login, max_request_mb,
                   max_anonymous_request_kb, language, secret_file = "/etc/minsheng/secret"
        [bands]    level1 = [300, 800]  level2 = [80, 300]  community = [1100, 2400]
        [codes]    object = "1001"  county = "110108"  street = "012"
        [codes.streets]      "学院路街道" = "012"
        [codes.communities]  "C1" = "001"
        [walking]  speed_m_min = 80  elderly_speed_m_min = 60  circle_minutes = 10
        [catalogues]  service_types = "/etc/minsheng/service_types.csv"  key_groups, visit_frequency,
                      life_circle_tiers, life_circle_requirements, walk_profiles
    """
    p = str(path)
    try:
        with open(p, "rb") as f:
            doc = tomllib.load(f)
    except FileNotFoundError:
        raise SettingsError(f"{p}: 找不到设置文件 / settings file not found") from None
    except OSError as e:
        raise SettingsError(f"{p}: 无法读取设置文件 / cannot read the settings file: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise SettingsError(f"{p}: 不是有效的 TOML / not valid TOML: {e}") from None
    except UnicodeDecodeError:
        raise SettingsError(f"{p}: 设置文件应为 UTF-8 / the settings file must be UTF-8") from None
    known = {f.name for f in fields(Settings)}
    out: dict = {}
    for section, body in doc.items():
        if not isinstance(body, dict):
            raise SettingsError(f"{p}: {section}: 应为 [节] / top-level key {section!r}: expected a [section]")
        if section in SECTIONS:
            keys = SECTIONS[section]
            for k, v in body.items():
                if section == "codes" and k in CODE_TABLES:
                    out[CODE_TABLES[k]] = _code_table(p, k, v)
                    continue
                if k not in keys:
                    extra = list(CODE_TABLES) if section == "codes" else []
                    raise SettingsError(f"{p}: [{section}] {k}: 未知的键 / unknown key "
                                        f"(known: {', '.join(list(keys) + extra)})")
                name, (ok, what) = keys[k]
                if not ok(v):
                    zh, _, en = what.partition(" / ")
                    raise SettingsError(f"{p}: [{section}] {k}: 应为{zh} / must be {en}, got {v!r}")
                out[name] = float(v) if name in ("walk_speed_m_min", "elderly_speed_m_min", "max_request_mb",
                                                 "max_anonymous_request_kb") else v
        elif section == "bands":
            for k, v in body.items():
                if k not in ("level1", "level2", "community"):
                    raise SettingsError(f"{p}: [bands] {k}: 未知的键 / unknown key (known: level1, level2, community)")
                out[f"band_{k}"] = _band(v, f"{p}: [bands] {k}")
        elif section == "catalogues":
            out.update(_catalogues(p, body))
        else:
            raise SettingsError(f"{p}: [{section}]: 未知的节 / unknown section (known: "
                                f"{', '.join(list(SECTIONS) + ['bands', 'catalogues'])})")
    secret_file = out.pop("secret_file", None)
    if secret_file:
        try:
            out["secret_key"] = open(secret_file, encoding="utf-8").read().strip()
        except OSError as e:
            raise SettingsError(f"{p}: [server] secret_file {secret_file}: 无法读取 / cannot be read: "
                                f"{e.strerror}") from None
    unknown = set(out) - known
    assert not unknown, unknown  # every mapped name is a Settings field
    return out


def _code_table(p: str, k: str, v) -> tuple:
    if not isinstance(v, dict):
        raise SettingsError(f"{p}: [codes.{k}]: 应为表，名称 = \"代码\" / must be a table of name = \"code\"")
    for name, code in v.items():
        if not _community_number_ok(code):
            raise SettingsError(f"{p}: [codes.{k}] {name}: 代码应为 001–999 的 3 位数字（加引号）/ codes are 3-digit "
                                f"strings from 001 to 999, got {code!r}")
    if k == "communities":
        seen: dict = {}
        for name, code in v.items():
            if code in seen:
                raise SettingsError(f"{p}: [codes.communities] {name}: 代码 {code} 已给了 {seen[code]} / code {code} "
                                    f"is already given to {seen[code]}")
            seen[code] = name
    return tuple(sorted(v.items()))


def _catalogues(p: str, body: dict) -> dict:
    """[catalogues] name = "path": checked now (each file read and its rows checked), so a bad
    override stops the start with a message, not a request later."""
    from data.bundle import DataError
    from data.catalogue import OVERRIDABLE, check_overrides
    out: dict = {}
    items = []
    for k, v in body.items():
        if k not in OVERRIDABLE:
            raise SettingsError(f"{p}: [catalogues] {k}: 未知的目录 / unknown catalogue (known: {', '.join(OVERRIDABLE)})")
        if not (isinstance(v, str) and v.strip()):
            raise SettingsError(f"{p}: [catalogues] {k}: 应为 CSV 文件路径 / must be the path of a CSV file, got {v!r}")
        path = v if os.path.isabs(v) else os.path.join(os.path.dirname(os.path.abspath(p)), v)
        if not os.path.isfile(path):
            raise SettingsError(f"{p}: [catalogues] {k}: 找不到文件 / file not found: {path}")
        items.append((k, path))
    try:
        check_overrides(tuple(items))
    except DataError as e:
        k = next((k for k, path in items if path == e.file), ", ".join(k for k, _ in items))
        raise SettingsError(f"{p}: [catalogues] {k}: {e}") from None
    for k, path in items:
        if k == "visit_frequency":
            out["visit_frequency"] = path
    rest = tuple(sorted(x for x in items if x[0] != "visit_frequency"))
    if rest:
        out["catalogues"] = rest
    return out


def from_env(**overrides) -> Settings:
    """Settings from (lowest first) defaults, the TOML file named by MINSHENG_SETTINGS or
    overrides["settings_file"], environment variables, then explicit overrides."""
    env = {}
    path = overrides.pop("settings_file", None) or os.environ.get("MINSHENG_SETTINGS")
    if path:
        env.update(read_settings_file(path))
    if os.environ.get("DATABASE_URL"):
        env["dsn"] = os.environ["DATABASE_URL"]
    if os.environ.get("MINSHENG_DATA"):
        env["data"] = os.environ["MINSHENG_DATA"]
    if os.environ.get("MINSHENG_LANG"):
        env["language"] = os.environ["MINSHENG_LANG"]
    if os.environ.get("MINSHENG_REQUIRE_LOGIN") in ("1", "true", "yes"):
        env["require_login"] = True
    if os.environ.get("MINSHENG_VISIT_FREQUENCY"):
        env["visit_frequency"] = os.environ["MINSHENG_VISIT_FREQUENCY"]
    if os.environ.get("MINSHENG_SUPPRESS_BELOW"):
        if not os.environ["MINSHENG_SUPPRESS_BELOW"].isdigit():
            raise SettingsError("MINSHENG_SUPPRESS_BELOW: 应为整数 / must be a whole number, got "
                                f"{os.environ['MINSHENG_SUPPRESS_BELOW']!r}")
        env["suppress_below"] = int(os.environ["MINSHENG_SUPPRESS_BELOW"])
    if os.environ.get("MINSHENG_SECRET_KEY"):
        env["secret_key"] = os.environ["MINSHENG_SECRET_KEY"]
    if os.environ.get("MINSHENG_LIFE_CIRCLE_DIR"):
        env["life_circle_dir"] = os.environ["MINSHENG_LIFE_CIRCLE_DIR"]
    if os.environ.get("MINSHENG_LIFE_CIRCLE_STANDARDS"):
        env["life_circle_standards"] = tuple(x.strip() for x in os.environ["MINSHENG_LIFE_CIRCLE_STANDARDS"].split(",")
                                             if x.strip())
    if os.environ.get("MINSHENG_SECURE_COOKIES") in ("1", "true", "yes"):
        env["secure_cookies"] = True
    if os.environ.get("MINSHENG_TRUSTED_PROXIES", "").isdigit():
        env["trusted_proxies"] = int(os.environ["MINSHENG_TRUSTED_PROXIES"])
    env.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**env)
