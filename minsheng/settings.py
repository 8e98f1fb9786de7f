"""One frozen settings object, passed explicitly (never a module-level mutable)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path


def sample_path() -> Path:
    return Path(str(resources.files("data").joinpath("samples", "haidian_xueqing.gpkg")))


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
    band_level1: Band = field(default_factory=lambda: Band(300, 800))
    band_level2: Band = field(default_factory=lambda: Band(80, 300))
    band_community: Band = field(default_factory=lambda: Band(1100, 2400))
    grid_object_code: str = "1001"      # 4-digit object code prefix of the 20-digit grid code
    county_code: str = "110108"         # GB/T 2260 (Haidian District)
    street_code: str = "012"            # illustrative street code of the sample
    secret_key: str = "dev-only-change-me"
    require_login: bool = False         # True: every page and callback needs a signed-in user
    host: str = "127.0.0.1"
    port: int = 8050
    debug: bool = False
    max_request_mb: float = 100.0       # request body limit (uploads are base64: ~3/4 of it is file)
    max_anonymous_request_kb: float = 1024.0  # anonymous visitors cannot upload: a small limit

    def band(self, level: int) -> Band:
        return {0: self.band_community, 1: self.band_level1, 2: self.band_level2}[level]

    @property
    def data_path(self) -> Path:
        return Path(self.data) if self.data else sample_path()

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
    if os.environ.get("MINSHENG_SECRET_KEY"):
        env["secret_key"] = os.environ["MINSHENG_SECRET_KEY"]
    env.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**env)
