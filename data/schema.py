"""The data contract (DESIGN.md): layer names, columns and geometry types.

GeoPackage layers and PostGIS tables share these names. This module is the one
place that lists them; stores, importers and validators read it from here.
"""
from __future__ import annotations

from dataclasses import dataclass

ATTRIBUTION = "Map data © OpenStreetMap contributors, ODbL 1.0 (openstreetmap.org/copyright)"
SYNTHETIC_NOTICE_ZH = "住户数据为程序生成的合成数据，并非真实人员信息"
SYNTHETIC_NOTICE_EN = "Household data are synthetic (generated), not real people"


@dataclass(frozen=True)
class Layer:
    name: str
    columns: tuple[tuple[str, str], ...]  # (column, dtype): int|float|str|bool|json|datetime
    geometry: str | None  # None = attribute table
    key: tuple[str, ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.columns)


LAYERS: tuple[Layer, ...] = (
    Layer("communities", (("id", "str"), ("code", "str"), ("name", "str"), ("street", "str")),
          "MultiPolygon", ("id",)),
    Layer("plans", (("id", "str"), ("name", "str"), ("status", "str"), ("version", "int"),
                    ("created_at", "str"), ("created_by", "str")), None, ("id",)),
    Layer("grids", (("id", "str"), ("plan_id", "str"), ("level", "int"), ("parent_id", "str"),
                    ("code", "str"), ("name", "str"), ("head_name", "str"), ("head_phone", "str")),
          "MultiPolygon", ("plan_id", "id")),
    Layer("buildings", (("id", "str"), ("code", "str"), ("name", "str"), ("address", "str"),
                        ("compound", "str"), ("floors", "int"), ("units", "int"),
                        ("floors_estimated", "bool"), ("kind", "str"), ("osm_id", "str")),
          "MultiPolygon", ("id",)),
    Layer("assignments", (("plan_id", "str"), ("building_id", "str"), ("grid_id", "str")), None,
          ("plan_id", "building_id")),
    Layer("households", (("id", "str"), ("building_id", "str"), ("unit", "int"), ("room", "str"),
                         ("persons", "int"), ("tags", "json"), ("head_name", "str"), ("phone", "str"),
                         ("synthetic", "bool")), None, ("id",)),
    Layer("service_points", (("id", "str"), ("name", "str"), ("type", "str"), ("capacity", "int"),
                             ("osm_id", "str")), "Point", ("id",)),
    Layer("walk_edges", (("u", "int"), ("v", "int"), ("length_m", "float"), ("highway", "str"),
                         ("name", "str")), "LineString", ("u", "v")),
    Layer("audit_log", (("ts", "str"), ("user", "str"), ("action", "str"), ("object", "str"),
                        ("detail", "str")), None, ()),
    Layer("users", (("username", "str"), ("password_hash", "str"), ("role", "str"), ("grid_id", "str"),
                    ("display_name", "str")), None, ("username",)),
    Layer("meta", (("key", "str"), ("value", "str")), None, ("key",)),
)

LAYER_BY_NAME = {layer.name: layer for layer in LAYERS}
PLAN_STATUSES = ("draft", "adopted", "archived")
