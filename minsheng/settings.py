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
    catalogues: tuple = ()              # ((catalogue name, CSV path), ...) overriding data/catalogues/
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
        return life_circles(self.life_circle_dir, tuple(self.life_circle_standards))

    def street_code_for(self, street: str | None) -> str:
        return dict(self.street_codes).get(street or "", self.street_code)

    def community_code_for(self, community: str) -> str | None:
        return dict(self.community_codes).get(community)

    def with_(self, **kw) -> "Settings":
        return replace(self, **kw)


class SettingsError(ValueError):
    """A deployment settings file that cannot be used (names the file and the key)."""


def _band(v, where: str) -> Band:
    if (isinstance(v, list) and len(v) == 2 and all(isinstance(x, int) for x in v) and 0 <= v[0] <= v[1]):
        return Band(v[0], v[1])
    raise SettingsError(f"{where}: a band is [low, high] households, whole numbers, low <= high")


def read_settings_file(path) -> dict:
    """Settings fields from a deployment TOML file (read with tomllib; see
    docs/settings.example.toml). Unknown keys are refused, so a typo is never silently ignored.

        [store]    data = "/srv/minsheng/project.gpkg"  |  dsn = "postgresql://..."
        [server]   host, port, workers, threads, require_login, max_request_mb,
                   max_anonymous_request_kb, language, secret_file = "/etc/minsheng/secret"
        [bands]    level1 = [300, 800]  level2 = [80, 300]  community = [1100, 2400]
        [codes]    object = "1001"  county = "110108"  street = "012"
        [codes.streets]      "学院路街道" = "012"
        [codes.communities]  "C1" = "001"
        [walking]  speed_m_min = 80  elderly_speed_m_min = 60  circle_minutes = 10
        [catalogues]  service_types = "/etc/minsheng/service_types.csv"
    """
    p = str(path)
    try:
        with open(p, "rb") as f:
            doc = tomllib.load(f)
    except FileNotFoundError:
        raise SettingsError(f"{p}: settings file not found") from None
    except tomllib.TOMLDecodeError as e:
        raise SettingsError(f"{p}: not valid TOML: {e}") from None
    known = {f.name for f in fields(Settings)}
    out: dict = {}
    sections = {
        "store": {"data": "data", "dsn": "dsn"},
        "server": {k: k for k in ("host", "port", "workers", "threads", "require_login", "max_request_mb",
                                  "max_anonymous_request_kb", "language", "secret_file", "secret_key",
                                  "task_dir", "celery_broker")},
        "walking": {"speed_m_min": "walk_speed_m_min", "elderly_speed_m_min": "elderly_speed_m_min",
                    "circle_minutes": "circle_minutes"},
    }
    for section, body in doc.items():
        if not isinstance(body, dict):
            raise SettingsError(f"{p}: top-level key {section!r}: expected a [section]")
        if section in sections:
            for k, v in body.items():
                if k not in sections[section]:
                    raise SettingsError(f"{p}: [{section}] {k}: unknown key (known: {', '.join(sections[section])})")
                out[sections[section][k]] = v
        elif section == "bands":
            for k, v in body.items():
                if k not in ("level1", "level2", "community"):
                    raise SettingsError(f"{p}: [bands] {k}: unknown key (known: level1, level2, community)")
                out[f"band_{k}"] = _band(v, f"{p}: [bands] {k}")
        elif section == "codes":
            for k, v in body.items():
                if k in ("streets", "communities") and isinstance(v, dict):
                    bad = [c for c in v.values() if not (isinstance(c, str) and c.isdigit() and len(c) == 3)]
                    if bad:
                        raise SettingsError(f"{p}: [codes.{k}]: codes are 3-digit strings, got {bad[0]!r}")
                    out["street_codes" if k == "streets" else "community_codes"] = tuple(sorted(v.items()))
                elif k in ("object", "county", "street"):
                    out[{"object": "grid_object_code", "county": "county_code", "street": "street_code"}[k]] = str(v)
                else:
                    raise SettingsError(f"{p}: [codes] {k}: unknown key")
        elif section == "catalogues":
            out["catalogues"] = tuple(sorted((k, str(v)) for k, v in body.items()))
        else:
            raise SettingsError(f"{p}: [{section}]: unknown section")
    secret_file = out.pop("secret_file", None)
    if secret_file:
        try:
            out["secret_key"] = open(secret_file, encoding="utf-8").read().strip()
        except OSError as e:
            raise SettingsError(f"{p}: [server] secret_file {secret_file}: {e.strerror}") from None
    unknown = set(out) - known
    assert not unknown, unknown  # every mapped name is a Settings field
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
