"""One frozen settings object, passed explicitly (never a module-level mutable)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
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
    host: str = "127.0.0.1"
    port: int = 8050
    debug: bool = False

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

    def with_(self, **kw) -> "Settings":
        return replace(self, **kw)


def from_env(**overrides) -> Settings:
    env = {}
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
