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
    return tuple(KeyGroup(r["key"], r["zh"], r["en"], r["sensitive"] == "true", float(r["synthetic_share"]))
                 for r in _rows("key_groups.csv"))


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
