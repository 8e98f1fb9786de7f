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
    # residential compounds (小区); closed: walked in and out through its gates only (by default)
    Layer("compounds", (("id", "str"), ("name", "str"), ("access", "str"), ("walled", "bool"),
                        ("closed", "bool")), "MultiPolygon", ("id",)),
    # gates of compounds (compound_id '' = on no compound); closed: shut (e.g. at night)
    Layer("gates", (("id", "str"), ("compound_id", "str"), ("kind", "str"), ("entrance", "str"),
                    ("access", "str"), ("name", "str"), ("closed", "bool")), "Point", ("id",)),
    Layer("audit_log", (("ts", "str"), ("user", "str"), ("action", "str"), ("object", "str"),
                        ("detail", "str")), None, ()),
    Layer("users", (("username", "str"), ("password_hash", "str"), ("role", "str"), ("grid_id", "str"),
                    ("display_name", "str")), None, ("username",)),
    Layer("meta", (("key", "str"), ("value", "str")), None, ("key",)),
    # saved siting scenarios ("add k points of type T"): not part of the dataset (like users and
    # the audit log, saving one bumps no version); points are the chosen candidate building ids
    Layer("scenarios", (("id", "str"), ("name", "str"), ("service_type", "str"), ("k", "int"),
                        ("weight", "str"), ("capacity", "int"), ("minutes", "float"), ("speed", "float"),
                        ("closed", "json"), ("shut", "json"), ("points", "json"),
                        ("covered_before", "float"), ("covered_after", "float"), ("weight_total", "float"),
                        ("created_at", "str"), ("created_by", "str")), None, ("id",)),
)

LAYER_BY_NAME = {layer.name: layer for layer in LAYERS}
#: contract layers that are not part of the dataset: writing them bumps no version
NOT_DATASET = ("audit_log", "users", "scenarios")
PLAN_STATUSES = ("draft", "adopted", "archived")
