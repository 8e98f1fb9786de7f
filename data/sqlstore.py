"""The one write model, shared by both stores (GeoPackage = SQLite, PostGIS = PostgreSQL).

Every write is one database transaction on the rows it changes and, when it changes the
dataset (the layers the map and the figures are made of), bumps the dataset version and the
version of each layer it touched in the same transaction. Plan persistence (copy, save,
adopt, archive), the audit log (append only: no write ever rewrites it) and the
per-building household aggregates live here once; the two stores only provide a dialect:
connections, placeholders, how a frame is inserted and read, how a list is bound.

Reads come in two sizes:

* ``read_model(previous)`` — what a dashboard process keeps per dataset version: every layer
  the map draws plus ``building_stats`` (per-building households, persons, key-group counts),
  but no household rows, no users, no audit log. Layers whose version did not change are
  reused from ``previous``, so a plan save re-reads the plan tables only.
* ``load()`` — the whole dataset (CLI, exports, copying a project between stores).

Household rows are read on demand through an index: ``households(building_ids)``,
``grid_households(plan_id, grid_id)``.

Versions: ``version()`` is one indexed read of a one-row table. Users, sessions, the audit
log and the quarter snapshots of the joint-meeting pack (``freeze_quarter``: write-once, with
its audit row; data/snapshots.py) are not part of the dataset: writing them bumps nothing.
"""
from __future__ import annotations

import contextlib
import json
import secrets
import time

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from data.bundle import CRS, Bundle, DataError, conform, empty_frame, make_bundle
from data.schema import LAYER_BY_NAME, LAYERS, NOT_DATASET, PLAN_STATUSES, Layer
from data.store import ConflictError, QuarterFrozen

#: layers of the dataset proper (versioned, in the read model unless noted)
DATASET_LAYERS = tuple(layer.name for layer in LAYERS if layer.name not in NOT_DATASET)
#: layers a dashboard process keeps in memory (households are replaced by building_stats)
READ_LAYERS = tuple(n for n in DATASET_LAYERS if n != "households")
STATS = "building_stats"
#: layers no bulk write may replace (append-only or managed row by row)
PROTECTED = ("audit_log",)
LEASE_SECONDS = 120.0
SNAPSHOTS = "quarter_snapshots"
SNAPSHOT_COLUMNS = ("quarter", "created_at", "created_by", "plan_id", "version", "payload")


def _now() -> str:
    from data.plan_ops import utc_now
    return utc_now()


class SqlStore:
    """Base class: subclasses implement the dialect hooks below."""

    PH = "%s"  # parameter placeholder of the driver

    # -- dialect hooks ---------------------------------------------------------------------
    @contextlib.contextmanager
    def _read(self):
        """A connection inside one consistent read snapshot."""
        raise NotImplementedError

    @contextlib.contextmanager
    def _write(self):
        """A connection inside one write transaction (committed on success, rolled back on error)."""
        raise NotImplementedError

    def _read_frame(self, conn, layer, where: str = "", params=()) -> pd.DataFrame:
        raise NotImplementedError

    def _insert_frame(self, conn, layer, df: pd.DataFrame) -> None:
        raise NotImplementedError

    def _in(self, column: str, values) -> tuple[str, object]:
        """SQL fragment and parameter for ``column IN values`` (any length)."""
        raise NotImplementedError

    def _lock_dataset(self, conn) -> None:
        """Called first in every transaction that changes the dataset: one lock order for all
        writers (no deadlocks), and no two bulk writes interleave."""

    def _source(self) -> str:
        raise NotImplementedError

    # -- small helpers ---------------------------------------------------------------------
    def _q(self, sql: str) -> str:
        return sql if self.PH == "%s" else sql.replace("%s", self.PH)

    def _x(self, conn, sql: str, params=()):
        return conn.execute(self._q(sql), params)

    # -- versions --------------------------------------------------------------------------
    def _version_row(self, conn) -> str:
        r = self._x(conn, "SELECT dataset_id, version FROM dataset_version WHERE id = 1").fetchone()
        if r is None:
            raise DataError("not a Minsheng project (no dataset version)", file=self._source())
        return f"{self.VERSION_PREFIX}-{r[0]}-{int(r[1])}"

    def version(self) -> str:
        with self._read() as conn:
            return self._version_row(conn)

    def _layer_versions(self, conn) -> dict[str, int]:
        return {str(k): int(v) for k, v in self._x(conn, "SELECT layer, version FROM layer_versions").fetchall()}

    def _bump(self, conn, layers) -> str:
        r = self._x(conn, "UPDATE dataset_version SET version = version + 1 WHERE id = 1 "
                          "RETURNING dataset_id, version").fetchone()
        number = int(r[1])
        for name in sorted(set(layers)):
            self._x(conn, "INSERT INTO layer_versions (layer, version) VALUES (%s, %s) "
                          "ON CONFLICT (layer) DO UPDATE SET version = excluded.version", (name, number))
        return f"{self.VERSION_PREFIX}-{r[0]}-{number}"

    def _check_expected(self, conn, expected_version: str | None) -> None:
        if expected_version is None:
            return
        current = self._version_row(conn)
        if current != expected_version:
            raise ConflictError(f"{self._source()}: the data changed since it was loaded (expected version "
                                f"{expected_version}, found {current}); nothing was saved, reload and retry")

    # -- reading ---------------------------------------------------------------------------
    def load(self, layers: tuple[str, ...] | None = None) -> Bundle:
        """The whole dataset (or the given layers; the others empty) from one snapshot,
        with ``building_stats``."""
        names = [layer.name for layer in LAYERS if layers is None or layer.name in layers]
        with self._read() as conn:
            version = self._version_row(conn)
            lv = self._layer_versions(conn)
            frames = {n: self._read_frame(conn, LAYER_BY_NAME[n]) for n in names}
            stats = self._read_stats(conn)
        return make_bundle(frames, source=self._source(), version=version, layer_versions=lv, stats=stats)

    def read_model(self, previous: Bundle | None = None) -> Bundle:
        """What a dashboard process keeps (see module doc); unchanged layers come from ``previous``."""
        with self._read() as conn:
            version = self._version_row(conn)
            if previous is not None and previous.version == version:
                return previous
            lv = self._layer_versions(conn)
            old = previous.layer_versions if previous is not None else {}
            frames, reused = {}, {}
            for name in READ_LAYERS:
                if previous is not None and name in old and old.get(name) == lv.get(name) \
                        and name in previous.layers:
                    reused[name] = previous.layers[name]
                else:
                    frames[name] = self._read_frame(conn, LAYER_BY_NAME[name])
            if previous is not None and old.get("households") == lv.get("households") and \
                    previous.building_stats is not None:
                stats = previous.building_stats
            else:
                stats = self._read_stats(conn)
        return make_bundle(frames, source=self._source(), version=version, layer_versions=lv, stats=stats,
                           reuse=reused, only=READ_LAYERS)

    def _read_stats(self, conn) -> pd.DataFrame:
        """The per-building aggregates, one integer column per key group of the catalogue (the
        database extracts the counts from the stored JSON: no per-row Python parsing)."""
        from data.catalogue import key_groups
        keys = [g.key for g in key_groups()]
        cols = ", ".join(self._json_int("tags", k) for k in keys)
        rows = self._x(conn, "SELECT building_id, households, persons, synthetic"
                             + (f", {cols}" if cols else "") + " FROM building_stats ORDER BY building_id").fetchall()
        names = ["households", "persons", "synthetic", *keys]
        if not rows:
            return pd.DataFrame({"building_id": pd.Series([], dtype=object),
                                 **{c: pd.Series([], dtype="int64") for c in names}})
        bid = [r[0] for r in rows]
        mat = np.array([r[1:] for r in rows], dtype=object)
        mat = np.where(pd.isna(mat), 0, mat).astype(np.int64)
        out = pd.DataFrame(mat, columns=names)
        out.insert(0, "building_id", pd.Series(bid, dtype=object))
        return out

    def _json_int(self, column: str, key: str) -> str:
        """SQL for the integer at ``key`` of a JSON object column (0 when absent)."""
        k = key.replace("'", "''")
        return f"coalesce(json_extract({column}, '$.\"{k}\"'), 0)"

    def households(self, building_ids) -> pd.DataFrame:
        """Household rows (contract columns) of the given buildings, through the building index."""
        ids = [str(b) for b in building_ids]
        layer = LAYER_BY_NAME["households"]
        if not ids:
            return empty_frame(layer)
        with self._read() as conn:
            frag, param = self._in("building_id", ids)
            return conform("households", self._read_frame(conn, layer, frag, (param,)))

    def grid_households(self, plan_id: str, grid_id: str) -> pd.DataFrame:
        """Households in the buildings of a grid of a plan (a level-1 grid: of its level-2 grids too)."""
        layer = LAYER_BY_NAME["households"]
        with self._read() as conn:
            kids = [r[0] for r in self._x(conn, "SELECT id FROM grids WHERE plan_id = %s AND parent_id = %s",
                                          (str(plan_id), str(grid_id))).fetchall()]
            frag, param = self._in("grid_id", [str(grid_id), *map(str, kids)])
            where = self._q(f"building_id IN (SELECT building_id FROM assignments WHERE plan_id = %s AND {frag})")
            return conform("households", self._read_frame(conn, layer, where, (str(plan_id), param)))

    def plan_frames(self, plan_id: str, *, geometry: bool = True) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
        """(grids, assignments, plans row) of one plan, read together from the store now
        (``geometry=False``: grids without their boundaries)."""
        from dataclasses import replace
        with self._read() as conn:
            p = self._read_frame(conn, LAYER_BY_NAME["plans"], self._q("id = %s"), (str(plan_id),))
            if not len(p):
                raise DataError(f"unknown plan {plan_id!r}", file=self._source(), layer="plans", field="id")
            glayer = LAYER_BY_NAME["grids"] if geometry else replace(LAYER_BY_NAME["grids"], geometry=None)
            g = self._read_frame(conn, glayer, self._q("plan_id = %s"), (str(plan_id),))
            if not geometry:
                return pd.DataFrame(g), conform("assignments", self._read_frame(
                    conn, LAYER_BY_NAME["assignments"], self._q("plan_id = %s"), (str(plan_id),))), \
                    conform("plans", p).iloc[0]
            a = self._read_frame(conn, LAYER_BY_NAME["assignments"], self._q("plan_id = %s"), (str(plan_id),))
        return conform("grids", g), conform("assignments", a), conform("plans", p).iloc[0]

    def plan_version(self, plan_id: str) -> int:
        with self._read() as conn:
            r = self._x(conn, "SELECT version FROM plans WHERE id = %s", (str(plan_id),)).fetchone()
        if r is None:
            raise DataError(f"unknown plan {plan_id!r}", file=self._source(), layer="plans", field="id")
        return int(r[0] or 0)

    # -- bulk writes (imports, copying a project) ------------------------------------------
    def write_all(self, bundle: Bundle, *, progress=None) -> None:
        """Replace the whole dataset in one transaction (the audit log is kept and appended to)."""
        layers = {n: bundle.layers.get(n) for n in DATASET_LAYERS if n in bundle.layers}
        layers["users"] = bundle.layers.get("users")
        layers["scenarios"] = bundle.layers.get("scenarios")
        self._replace(layers, None, progress=progress, full=True,
                      audit=bundle.layers.get("audit_log"))

    def replace_layers(self, layers: dict, *, expected_version: str | None = None, progress=None,
                       audit: pd.DataFrame | None = None) -> str:
        """Replace whole layers (an import) in one transaction, appending ``audit`` rows in the
        same transaction; ConflictError when the store is not at ``expected_version``. The audit
        log itself cannot be replaced."""
        bad = sorted(set(layers) & set(PROTECTED))
        if bad:
            raise DataError("the audit log is append-only; it cannot be replaced", file=self._source(),
                            layer=bad[0])
        return self._replace(layers, expected_version, progress=progress, full=False, audit=audit,
                             append=True)

    def _replace(self, layers: dict, expected_version, *, progress, full: bool, audit=None,
                 append: bool = False) -> str:
        unknown = sorted(set(layers) - set(LAYER_BY_NAME))
        if unknown:
            raise DataError(f"unknown layer(s) {', '.join(unknown)}", file=self._source())
        checked = {}
        for layer in LAYERS:  # validate everything before touching the database
            if layer.name in layers:
                df = layers[layer.name]
                checked[layer.name] = self._prepare(layer, df if df is not None else empty_frame(layer))
        if full:
            for layer in LAYERS:
                if layer.name not in checked and layer.name not in PROTECTED:
                    checked[layer.name] = empty_frame(layer)
        stats = None
        if "households" in checked:
            from data.catalogue import key_groups
            from geo.stats import building_stats
            stats = building_stats(checked["households"], [g.key for g in key_groups()])
        new_audit = self._prepare(LAYER_BY_NAME["audit_log"], audit) if audit is not None and len(audit) else None
        with self._write() as conn:
            self._lock_dataset(conn)
            self._check_expected(conn, expected_version)
            for name, df in checked.items():
                self._x(conn, f'DELETE FROM "{name}"')
                self._insert_frame(conn, LAYER_BY_NAME[name], df)
                if progress is not None:
                    progress(name, len(df))
            if stats is not None:
                self._write_stats(conn, stats, None)
            if new_audit is not None:
                # an import appends its rows; a whole-project copy brings its log into an empty one
                if append or not self._x(conn, "SELECT count(*) FROM audit_log").fetchone()[0]:
                    self._insert_frame(conn, LAYER_BY_NAME["audit_log"], new_audit)
            if full and progress is not None:
                progress("audit_log", 0 if new_audit is None else len(new_audit))
            return self._bump(conn, [n for n in checked if n in DATASET_LAYERS]
                              + ([STATS] if stats is not None else []))

    def _prepare(self, layer, df) -> pd.DataFrame:
        return prepare_frame(layer, df, file=self._source())

    def _write_stats(self, conn, stats: pd.DataFrame, building_ids) -> None:
        """Replace the stats rows of ``building_ids`` (None: all) by ``stats``."""
        if building_ids is None:
            self._x(conn, "DELETE FROM building_stats")
        else:
            frag, param = self._in("building_id", list(building_ids))
            self._x(conn, f"DELETE FROM building_stats WHERE {frag}", (param,))
        if not len(stats):
            return
        from geo.stats import tag_columns
        tags = tag_columns(stats)
        mat = stats[tags].to_numpy(dtype=np.int64) if tags else np.zeros((len(stats), 0), np.int64)
        enc = [json.dumps({k: int(v) for k, v in zip(tags, row) if v}, ensure_ascii=False, sort_keys=True)
               for row in mat]
        rows = list(zip(stats["building_id"].astype(str), stats["households"].astype(int).tolist(),
                        stats["persons"].astype(int).tolist(), stats["synthetic"].astype(int).tolist(), enc))
        self._insert_rows(conn, "building_stats", ("building_id", "households", "persons", "synthetic", "tags"),
                          rows)

    def _insert_rows(self, conn, table: str, columns, rows) -> None:
        cols = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join([self.PH] * len(columns))
        with contextlib.closing(conn.cursor()) as cur:
            cur.executemany(f'INSERT INTO "{table}" ({cols}) VALUES ({marks})', rows)

    def upsert_households(self, households: pd.DataFrame, *, delete_ids=(), expected_version: str | None = None,
                          user: str = "", detail: str = "") -> str:
        """Insert or replace household rows by id (and delete ``delete_ids``) in one transaction;
        the aggregates of the buildings involved are recomputed in the same transaction."""
        layer = LAYER_BY_NAME["households"]
        df = self._prepare(layer, households)
        ids = [*df["id"].astype(str), *map(str, delete_ids)]
        with self._write() as conn:
            self._lock_dataset(conn)
            self._check_expected(conn, expected_version)
            frag, param = self._in("id", ids)
            touched = {r[0] for r in self._x(conn, f"SELECT DISTINCT building_id FROM households WHERE {frag}",
                                             (param,)).fetchall()}
            self._x(conn, f"DELETE FROM households WHERE {frag}", (param,))
            self._insert_frame(conn, layer, df)
            touched |= set(df["building_id"].dropna().astype(str))
            touched = {t if t is not None else "" for t in touched}
            self._refresh_stats(conn, touched)
            if user:
                self._insert_audit(conn, user, "import_households", "households", detail)
            return self._bump(conn, ["households", STATS])

    def _refresh_stats(self, conn, building_ids) -> None:
        from data.catalogue import key_groups
        from geo.stats import building_stats
        ids = sorted(building_ids)
        frag, param = self._in("building_id", ids)
        hh = self._read_frame(conn, LAYER_BY_NAME["households"], frag, (param,))
        self._write_stats(conn, building_stats(conform("households", hh), [g.key for g in key_groups()]), ids)

    # -- audit log (append only) -----------------------------------------------------------
    def _insert_audit(self, conn, user, action, object, detail="", ts=None) -> None:
        self._x(conn, 'INSERT INTO audit_log (ts, "user", action, object, detail) VALUES (%s, %s, %s, %s, %s)',
                (ts or _now(), str(user), str(action), str(object), "" if detail is None else str(detail)))

    def append_audit(self, user: str, action: str, object: str, detail: str = "") -> None:
        """Append one audit row (no personal data in detail). Bumps nothing."""
        with self._write() as conn:
            self._insert_audit(conn, user, action, object, detail)

    def audit_rows(self, *, limit: int = 1000, action: str | None = None, user: str | None = None,
                   text: str | None = None) -> pd.DataFrame:
        """The newest audit rows first (ts, user, action, object, detail), optionally filtered."""
        conds, params = [], []
        if action:
            conds.append("action = %s")
            params.append(str(action))
        if user:
            conds.append('"user" = %s')
            params.append(str(user))
        if text:
            conds.append("(object LIKE %s OR detail LIKE %s)")
            params += [f"%{text}%", f"%{text}%"]
        where = (" WHERE " + " AND ".join(conds)) if conds else ""
        with self._read() as conn:
            rows = self._x(conn, f'SELECT ts, "user", action, object, detail FROM audit_log{where} '
                                 f"ORDER BY {self.AUDIT_ORDER} DESC LIMIT {int(limit)}", params).fetchall()
        return pd.DataFrame(rows, columns=["ts", "user", "action", "object", "detail"])

    # users and sessions: data/auth_store.py (one place; they are not part of the dataset)

    # -- quarter snapshots (write-once; not part of the dataset: a freeze bumps nothing) -----
    def _snapshots_ready(self, conn, *, create: bool) -> bool:
        """Whether the quarter_snapshots table exists (made first when ``create``). PostGIS:
        always (migration 5); a GeoPackage makes it on its first freeze (GpkgStore)."""
        return True

    def quarter_list(self) -> list[str]:
        """The frozen quarters, oldest first."""
        with self._read() as conn:
            if not self._snapshots_ready(conn, create=False):
                return []
            return [str(r[0]) for r in self._x(conn, f"SELECT quarter FROM {SNAPSHOTS} ORDER BY quarter").fetchall()]

    def quarter_snapshot(self, quarter: str) -> dict | None:
        """The frozen snapshot of ``quarter`` (its payload, with "quarter"), or None."""
        rows = self.quarter_snapshots([quarter])
        return rows[0]["payload"] if rows else None

    def quarter_snapshots(self, quarters=None) -> list[dict]:
        """Stored snapshot rows (every column, payload decoded), oldest quarter first; all of
        them or those of ``quarters``."""
        with self._read() as conn:
            if not self._snapshots_ready(conn, create=False):
                return []
            cols = ", ".join(SNAPSHOT_COLUMNS)
            if quarters is None:
                rows = self._x(conn, f"SELECT {cols} FROM {SNAPSHOTS} ORDER BY quarter").fetchall()
            else:
                frag, param = self._in("quarter", [str(q) for q in quarters])
                rows = self._x(conn, f"SELECT {cols} FROM {SNAPSHOTS} WHERE {frag} ORDER BY quarter",
                               (param,)).fetchall()
        out = []
        for r in rows:
            row = dict(zip(SNAPSHOT_COLUMNS, r))
            try:
                row["payload"] = json.loads(row["payload"])
            except ValueError:
                raise DataError("the stored snapshot is not JSON", file=self._source(), layer=SNAPSHOTS,
                                field=f"payload ({row['quarter']})") from None
            out.append(row)
        return out

    def freeze_quarter(self, quarter: str, payload: dict, user: str, *, action: str = "freeze_quarter",
                       created_at: str | None = None, created_by: str | None = None) -> dict:
        """Store the snapshot of ``quarter`` once, with its audit row, in one transaction.
        A quarter frozen before is refused with QuarterFrozen and its row is left as it was
        (INSERT ... ON CONFLICT DO NOTHING; the table's triggers refuse UPDATE and DELETE).
        Bumps no version: snapshots are not part of the dataset. Returns the stored payload."""
        from data.snapshots import normal_quarter
        q = normal_quarter(quarter)
        body = dict(payload, quarter=q)
        text = json.dumps(body, ensure_ascii=False, sort_keys=True, default=_json_default)
        ts = str(created_at or _now())
        who = str(user or "")
        row = (q, ts, str(created_by if created_by is not None else who), _opt(body.get("plan_id")),
               _opt(body.get("version")), text)
        detail = json.dumps({"plan_id": body.get("plan_id"), "version": body.get("version"),
                             "communities": len(body.get("communities") or {}), "grids": len(body.get("grids") or {})},
                            ensure_ascii=False, default=_json_default)
        with self._write() as conn:
            self._snapshots_ready(conn, create=True)
            n = self._x(conn, f"INSERT INTO {SNAPSHOTS} ({', '.join(SNAPSHOT_COLUMNS)}) VALUES (%s, %s, %s, %s, %s, %s) "
                              "ON CONFLICT (quarter) DO NOTHING", row).rowcount
            if n != 1:
                raise QuarterFrozen(q, self._source())
            self._insert_audit(conn, who, action, f"quarter:{q}", detail)
        return json.loads(text)

    # -- gates (edited one row at a time) --------------------------------------------------
    def _geom_sql(self) -> str:
        """SQL for a geometry parameter (EPSG:4326) as the dialect binds it (see _geom_value)."""
        raise NotImplementedError

    def _geom_value(self, geom):
        raise NotImplementedError

    def _geometry_written(self, conn, table: str, geoms) -> None:
        """Hook after a geometry was updated in place (the GeoPackage widens its layer extent)."""

    def _gate_row(self, conn, gate_id: str) -> pd.Series:
        g = self._read_frame(conn, LAYER_BY_NAME["gates"], self._q("id = %s"), (str(gate_id),))
        if not len(g):
            raise DataError(f"unknown gate {gate_id!r}", file=self._source(), layer="gates", field="id")
        return g.iloc[0]

    @staticmethod
    def _lonlat(point) -> list:
        x, y = float(point.x), float(point.y)
        if not (np.isfinite(x) and np.isfinite(y) and -180 <= x <= 180 and -90 <= y <= 90):
            raise DataError("a gate must be a point in longitude/latitude (EPSG:4326)", layer="gates",
                            field="geometry")
        return [round(x, 7), round(y, 7)]

    def add_gate(self, compound_id: str, point, user: str, *, kind: str = "gate", name: str | None = None,
                 expected_version: str | None = None) -> tuple[str, str]:
        """A new (open) gate of a compound at ``point`` (a shapely Point, lon/lat), with an audit
        row; a compound that was not closed becomes closed (a compound with a gate is walked
        through its gates). One transaction; returns (gate id, new dataset version)."""
        at = self._lonlat(point)
        cid = str(compound_id)
        with self._write() as conn:
            self._lock_dataset(conn)
            self._check_expected(conn, expected_version)
            row = self._x(conn, "SELECT closed FROM compounds WHERE id = %s", (cid,)).fetchone()
            if row is None:
                raise DataError(f"unknown compound {cid!r}", file=self._source(), layer="compounds", field="id")
            ids = {r[0] for r in self._x(conn, "SELECT id FROM gates").fetchall()}
            n = 1
            while f"G{n}" in ids:
                n += 1
            gid = f"G{n}"
            frame = gpd.GeoDataFrame({"id": [gid], "compound_id": [cid], "kind": [str(kind)], "entrance": [None],
                                      "access": [None], "name": [name], "closed": [False]},
                                     geometry=[shapely.Point(*at)], crs=CRS)
            self._insert_frame(conn, LAYER_BY_NAME["gates"], self._prepare(LAYER_BY_NAME["gates"], frame))
            layers = ["gates"]
            was_closed = bool(row[0])
            if not was_closed:
                self._x(conn, "UPDATE compounds SET closed = %s WHERE id = %s", (True, cid))
                layers.append("compounds")
            self._insert_audit(conn, user, "add_gate", f"gate:{gid}",
                               json.dumps({"compound": cid, "at": at, "compound_closed": not was_closed}))
            return gid, self._bump(conn, layers)

    def move_gate(self, gate_id: str, point, user: str, *, compound_id: str | None = None,
                  expected_version: str | None = None) -> str:
        """Move a gate to ``point`` (lon/lat; on the compound ``compound_id`` when given), with an
        audit row naming where from and where to. Returns the new dataset version."""
        at = self._lonlat(point)
        with self._write() as conn:
            self._lock_dataset(conn)
            self._check_expected(conn, expected_version)
            old = self._gate_row(conn, gate_id)
            cid = str(old["compound_id"] or "") if compound_id is None else str(compound_id)
            if cid and self._x(conn, "SELECT 1 FROM compounds WHERE id = %s", (cid,)).fetchone() is None:
                raise DataError(f"unknown compound {cid!r}", file=self._source(), layer="compounds", field="id")
            g = shapely.Point(*at)
            self._x(conn, f"UPDATE gates SET {self.GEOM} = {self._geom_sql()}, compound_id = %s WHERE id = %s",
                    (self._geom_value(g), cid, str(gate_id)))
            self._geometry_written(conn, "gates", [g])
            was = old.geometry
            self._insert_audit(conn, user, "move_gate", f"gate:{gate_id}", json.dumps(
                {"compound": cid, "from": None if was is None else [round(was.x, 7), round(was.y, 7)], "to": at}))
            return self._bump(conn, ["gates"])

    def set_gate_closed(self, gate_id: str, closed: bool, user: str, *, expected_version: str | None = None) -> str:
        """Close a gate (shut, e.g. at night) or open it again, with an audit row."""
        with self._write() as conn:
            self._lock_dataset(conn)
            self._check_expected(conn, expected_version)
            old = self._gate_row(conn, gate_id)
            self._x(conn, "UPDATE gates SET closed = %s WHERE id = %s", (bool(closed), str(gate_id)))
            self._insert_audit(conn, user, "close_gate" if closed else "open_gate", f"gate:{gate_id}",
                               json.dumps({"compound": str(old["compound_id"] or ""), "was_closed": bool(old["closed"])}))
            return self._bump(conn, ["gates"])

    # -- siting scenarios (not part of the dataset: saving one bumps no version) -----------
    def save_scenario(self, scenario: dict, user: str, *, now: str | None = None) -> str:
        """Save a named siting scenario (columns of the scenarios layer; id, created_at and
        created_by are filled in) with an audit row, in one transaction. Returns its id."""
        layer = LAYER_BY_NAME["scenarios"]
        name = str(scenario.get("name") or "").strip()
        if not name or len(name) > 80:
            raise DataError("a scenario needs a name of 1 to 80 characters", layer="scenarios", field="name")
        ts = now or _now()
        with self._write() as conn:
            ids = {r[0] for r in self._x(conn, "SELECT id FROM scenarios").fetchall()}
            n = len(ids) + 1
            while f"S{n}" in ids:
                n += 1
            sid = f"S{n}"
            row = {c: scenario.get(c) for c in layer.column_names}
            row.update(id=sid, name=name, created_at=ts, created_by=str(user))
            for c in ("closed", "shut", "points"):
                row[c] = [str(x) for x in (row[c] or [])]
            df = self._prepare(layer, pd.DataFrame({c: [v] for c, v in row.items()}))
            self._insert_frame(conn, layer, df)
            self._insert_audit(conn, user, "save_scenario", f"scenario:{sid}", json.dumps(
                {"name": name, "service_type": row["service_type"], "k": row["k"], "points": len(row["points"])},
                ensure_ascii=False), ts=ts)
        return sid

    def scenarios(self) -> pd.DataFrame:
        """Every saved scenario, oldest first."""
        with self._read() as conn:
            return conform("scenarios", self._read_frame(conn, LAYER_BY_NAME["scenarios"]))

    def scenario(self, scenario_id: str) -> dict | None:
        """One saved scenario as a dict (lists for closed, shut and points), or None."""
        with self._read() as conn:
            df = self._read_frame(conn, LAYER_BY_NAME["scenarios"], self._q("id = %s"), (str(scenario_id),))
        if not len(df):
            return None
        r = conform("scenarios", df).iloc[0].to_dict()
        return {k: (None if not isinstance(v, list) and pd.isna(v) else v) for k, v in r.items()}

    # -- plans -----------------------------------------------------------------------------
    def list_plans(self) -> pd.DataFrame:
        with self._read() as conn:
            return conform("plans", self._read_frame(conn, LAYER_BY_NAME["plans"]))

    def copy_plan(self, source_plan_id: str, name: str, user: str, *, new_plan_id: str | None = None,
                  now: str | None = None) -> str:
        """Copy a plan (grids with geometry, assignments) to a new draft (version 1), in SQL."""
        import re
        g_cols = [c for c, _ in LAYER_BY_NAME["grids"].columns if c != "plan_id"]
        a_cols = [c for c, _ in LAYER_BY_NAME["assignments"].columns if c != "plan_id"]
        ts = now or _now()
        with self._write() as conn:
            self._lock_dataset(conn)
            if self._x(conn, "SELECT 1 FROM plans WHERE id = %s", (str(source_plan_id),)).fetchone() is None:
                known = ", ".join(r[0] for r in self._x(conn, "SELECT id FROM plans ORDER BY id").fetchall())
                raise DataError(f"unknown plan {source_plan_id!r} (plans: {known or 'none'})", file=self._source(),
                                layer="plans", field="id")
            ids = {r[0] for r in self._x(conn, "SELECT id FROM plans").fetchall()}
            if new_plan_id:
                pid = str(new_plan_id)
                if pid in ids:
                    raise ValueError(f"plan id {pid!r} already exists")
            else:
                n = max((int(m.group(1)) for m in (re.fullmatch(r"P(\d+)", i) for i in ids) if m), default=0) + 1
                while f"P{n}" in ids:
                    n += 1
                pid = f"P{n}"
            self._x(conn, "INSERT INTO plans (id, name, status, version, created_at, created_by) "
                          "VALUES (%s, %s, 'draft', 1, %s, %s)", (pid, str(name).strip(), ts, str(user)))
            gc = ", ".join(f'"{c}"' for c in g_cols)
            ac = ", ".join(f'"{c}"' for c in a_cols)
            geom = self.GEOM
            ng = self._x(conn, f"INSERT INTO grids (plan_id, {gc}, {geom}) SELECT %s, {gc}, {geom} FROM grids "
                               f"WHERE plan_id = %s ORDER BY {self.ORDER}", (pid, str(source_plan_id))).rowcount
            na = self._x(conn, f"INSERT INTO assignments (plan_id, {ac}) SELECT %s, {ac} FROM assignments "
                               f"WHERE plan_id = %s ORDER BY {self.ORDER}", (pid, str(source_plan_id))).rowcount
            self._insert_audit(conn, user, "copy_plan", f"plan:{pid}",
                               json.dumps({"from": str(source_plan_id), "version": 1, "grids": ng,
                                           "assignments": na}), ts=ts)
            self._bump(conn, ["plans", "grids", "assignments"])
        return pid

    def claim_plan(self, plan_id: str, expected_plan_version: int) -> str:
        """Claim the right to save a plan (a lease): refused at once with ConflictError when the
        plan is no longer at ``expected_plan_version`` or another save of it is under way.
        Returns the lease token to pass to save_plan."""
        token = secrets.token_hex(8)
        now = time.time()
        with self._write() as conn:
            r = self._x(conn, "SELECT version FROM plans WHERE id = %s", (str(plan_id),)).fetchone()
            if r is None:
                raise DataError(f"unknown plan {plan_id!r}", file=self._source(), layer="plans", field="id")
            if int(r[0] or 0) != int(expected_plan_version):
                raise ConflictError(f"plan {plan_id!r} was changed by someone else (expected version "
                                    f"{expected_plan_version}, found {r[0]}); nothing was saved, reload the plan "
                                    f"and retry")
            n = self._x(conn, "INSERT INTO plan_leases (plan_id, token, since) VALUES (%s, %s, %s) "
                              "ON CONFLICT (plan_id) DO UPDATE SET token = excluded.token, since = excluded.since "
                              "WHERE plan_leases.since < %s",
                        (str(plan_id), token, now, now - LEASE_SECONDS)).rowcount
            if not n:
                raise ConflictError(f"plan {plan_id!r} is being saved by someone else right now; nothing was "
                                    f"saved, reload the plan and retry")
        return token

    def release_plan(self, plan_id: str, token: str) -> None:
        with self._write() as conn:
            self._x(conn, "DELETE FROM plan_leases WHERE plan_id = %s AND token = %s", (str(plan_id), token))

    def save_plan(self, plan_id: str, grids_gdf, assignments_df, expected_plan_version: int, user: str,
                  *, detail: str | None = None, lease: str | None = None) -> int:
        """Replace one plan's grids and assignments if plans.version is still
        ``expected_plan_version`` (else ConflictError, nothing written); bump it, write an audit
        row, bump the dataset version — one transaction. Returns the new plan version."""
        from data.plan_ops import plan_audit_detail, prepare_plan_frames
        grids, assignments = prepare_plan_frames(plan_id, grids_gdf, assignments_df)
        grids = self._prepare(LAYER_BY_NAME["grids"], grids)
        assignments = self._prepare(LAYER_BY_NAME["assignments"], assignments)
        return self._save_rows(plan_id, grids, None, assignments, None, expected_plan_version, user,
                               detail if detail is not None else None, lease,
                               lambda v: plan_audit_detail(v, grids, assignments))

    def save_plan_changes(self, plan_id: str, grids_upsert, grid_ids_delete, assignments_upsert,
                          building_ids_delete, expected_plan_version: int, user: str, *, detail: str,
                          lease: str | None = None) -> int:
        """save_plan for the rows that changed only: upsert these grids and assignments, delete
        those grid ids and building assignments (a save costs what it changes, not the plan's size)."""
        from data.plan_ops import prepare_plan_frames
        grids, assignments = prepare_plan_frames(plan_id, grids_upsert, assignments_upsert)
        grids = self._prepare(LAYER_BY_NAME["grids"], grids)
        assignments = self._prepare(LAYER_BY_NAME["assignments"], assignments)
        gdel = sorted(set(map(str, grid_ids_delete)) | set(grids["id"].astype(str)))
        adel = sorted(set(map(str, building_ids_delete)) | set(assignments["building_id"].astype(str)))
        return self._save_rows(plan_id, grids, gdel, assignments, adel, expected_plan_version, user, detail,
                               lease, None)

    def _save_rows(self, plan_id, grids, gdel, assignments, adel, expected_plan_version, user, detail, lease,
                   make_detail) -> int:
        pid = str(plan_id)
        with self._write() as conn:
            self._lock_dataset(conn)
            if lease is not None:
                held = self._x(conn, "SELECT token FROM plan_leases WHERE plan_id = %s", (pid,)).fetchone()
                if held is None or held[0] != lease:
                    raise ConflictError(f"plan {plan_id!r}: the save took too long and was overtaken; nothing "
                                        f"was saved, reload the plan and retry")
            row = self._x(conn, "UPDATE plans SET version = version + 1 WHERE id = %s AND version = %s "
                                "RETURNING version", (pid, int(expected_plan_version))).fetchone()
            if row is None:
                found = self._x(conn, "SELECT version FROM plans WHERE id = %s", (pid,)).fetchone()
                if found is None:
                    raise DataError(f"unknown plan {plan_id!r}", file=self._source(), layer="plans", field="id")
                raise ConflictError(f"plan {plan_id!r} was changed by someone else (expected version "
                                    f"{expected_plan_version}, found {found[0]}); nothing was saved, "
                                    f"reload the plan and retry")
            new_version = int(row[0])
            if adel is None:
                self._x(conn, "DELETE FROM assignments WHERE plan_id = %s", (pid,))
            elif adel:
                frag, param = self._in("building_id", adel)
                self._x(conn, f"DELETE FROM assignments WHERE plan_id = %s AND {frag}", (pid, param))
            if gdel is None:
                self._x(conn, "DELETE FROM grids WHERE plan_id = %s", (pid,))
            elif gdel:
                frag, param = self._in("id", gdel)
                self._x(conn, f"DELETE FROM grids WHERE plan_id = %s AND {frag}", (pid, param))
            self._insert_frame(conn, LAYER_BY_NAME["grids"], grids)
            self._insert_frame(conn, LAYER_BY_NAME["assignments"], assignments)
            self._x(conn, "DELETE FROM plan_leases WHERE plan_id = %s", (pid,))
            self._insert_audit(conn, user, "save_plan", f"plan:{plan_id}",
                               detail if detail is not None else make_detail(new_version))
            self._bump(conn, ["plans", "grids", "assignments"])
        return new_version

    def set_plan_status(self, plan_id: str, status: str, user: str, *, check=None, now: str | None = None) -> int:
        """Set a plan's status (adopting archives the previously adopted plan), with
        ``check(plans_row, grids, assignments)`` run inside the transaction. Returns the new version."""
        if status not in PLAN_STATUSES:
            raise ValueError(f"unknown plan status {status!r}")
        ts = now or _now()
        with self._write() as conn:
            self._lock_dataset(conn)
            p = conform("plans", self._read_frame(conn, LAYER_BY_NAME["plans"]))
            hit = p[p["id"].astype(str) == str(plan_id)]
            if not len(hit):
                raise DataError(f"unknown plan {plan_id!r}", file=self._source(), layer="plans", field="id")
            row = hit.iloc[0]
            if check is not None:
                g = self._read_frame(conn, LAYER_BY_NAME["grids"], self._q("plan_id = %s"), (str(plan_id),))
                a = self._read_frame(conn, LAYER_BY_NAME["assignments"], self._q("plan_id = %s"), (str(plan_id),))
                check(row, conform("grids", g), conform("assignments", a))
            archived = []
            if status == "adopted":
                archived = [str(i) for i in p.loc[(p["status"] == "adopted") & (p["id"] != str(plan_id)), "id"]]
                for other in archived:
                    self._x(conn, "UPDATE plans SET status = 'archived', version = coalesce(version, 0) + 1 "
                                  "WHERE id = %s", (other,))
            new = self._x(conn, "UPDATE plans SET status = %s, version = coalesce(version, 0) + 1 WHERE id = %s "
                                "RETURNING version", (status, str(plan_id))).fetchone()[0]
            verb = "adopt" if status == "adopted" else ("archive" if status == "archived" else "restore")
            self._insert_audit(conn, user, f"{verb}_plan", f"plan:{plan_id}",
                               json.dumps({"from": str(row["status"]), "to": status, "version": int(new),
                                           "archived": archived}), ts=ts)
            for other in archived:
                self._insert_audit(conn, user, "archive_plan", f"plan:{other}",
                                   json.dumps({"reason": f"plan {plan_id} adopted"}), ts=ts)
            self._bump(conn, ["plans"])
        return int(new)


def _opt(v):
    return None if v is None else str(v)


def _json_default(v):
    """numpy scalars in a payload (counts, shares) as plain numbers."""
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, np.bool_):
        return bool(v)
    raise TypeError(f"{type(v).__name__} is not JSON serialisable")


def prepare_frame(layer: Layer, df: pd.DataFrame, *, file: str = "") -> pd.DataFrame:
    """conform() plus what a typed table needs: geometry type (Polygon promoted to
    MultiPolygon where the layer is multi), non-null unique keys. Raises DataError
    naming layer, row and field; never quotes the values."""
    out = conform(layer.name, df, file=file)
    n = len(out)
    if layer.geometry and n:
        geoms = np.asarray(out.geometry.values, dtype=object)
        geoms = np.where(pd.isna(geoms), None, geoms)
        types = shapely.get_type_id(geoms)
        if layer.geometry == "MultiPolygon":
            poly = types == 3
            if poly.any():
                idx = np.flatnonzero(poly)
                geoms[idx] = shapely.multipolygons(geoms[idx], indices=np.arange(len(idx)))
                types = shapely.get_type_id(geoms)
        want = {"Point": 0, "LineString": 1, "Polygon": 3, "MultiPolygon": 6}[layer.geometry]
        bad = np.flatnonzero((types != want) & (types != -1))
        if len(bad):
            i = int(bad[0])
            raise DataError(f"geometry must be {layer.geometry}, not {geoms[i].geom_type}",
                            file=file, layer=layer.name, row=i + 1, field="geometry")
        out = gpd.GeoDataFrame(out.drop(columns="geometry"), geometry=gpd.GeoSeries(geoms, crs=CRS), crs=CRS)
    key = [c for c in layer.key if c in out.columns]
    if key and n and layer.name != "walk_edges":  # walk_edges may hold parallel edges
        for c in key:
            nulls = np.flatnonzero(out[c].isna().to_numpy())
            if len(nulls):
                raise DataError("key value is missing", file=file, layer=layer.name, row=int(nulls[0]) + 1, field=c)
        dup = np.flatnonzero(out.duplicated(key).to_numpy())
        if len(dup):
            raise DataError(f"duplicate key ({', '.join(key)})", file=file, layer=layer.name, row=int(dup[0]) + 1,
                            field=",".join(key))
    return out
