"""PostGIS store: PostgreSQL + PostGIS through psycopg 3 and a psycopg_pool connection pool.

Tables are the contract layers of data/schema.py (created by the numbered migrations in
data/migrations), geometry in EPSG:4326 with GiST indexes. One row, ``dataset_version``,
holds a monotonically increasing version that every write bumps in its own transaction;
writes based on a stale version are refused with ConflictError (the row is locked with
SELECT ... FOR UPDATE, so two concurrent saves on the same version cannot both win).
Every write is one transaction: a bad row or a violated constraint changes nothing.

Bulk data moves with COPY (text format in, CSV out); values are never formatted into SQL,
names are always psycopg.sql.Identifier. Error messages never quote row contents
(they may hold personal data): they name the layer, the 1-based row and the field.
"""
from __future__ import annotations

import contextlib
import io
import json
import re
import threading

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import shapely
from psycopg import sql

from data.bundle import CRS, Bundle, DataError, conform, empty_frame, make_bundle
from data.migrations import MIGRATIONS
from data.plan_ops import plan_audit_detail, prepare_plan_frames, utc_now
from data.schema import LAYER_BY_NAME, LAYERS, Layer
from data.store import ConflictError

GEOM = "geom"          # geometry column name in every table that has one
ORD = "_ord"           # hidden row-order column
NULL = "\\N"           # NULL marker in COPY output
MIGRATION_LOCK = 7_316_001  # pg_advisory_xact_lock key serialising migrations
COPY_CHUNK = 1 << 20


class StoreUnavailable(ConnectionError):
    """The database cannot be reached (wrong DSN, server down, authentication refused)."""


class PostgisStore:
    """A dataset in a PostgreSQL/PostGIS database. Thread-safe; create one per DSN and share it."""

    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 4, timeout: float = 30.0):
        self.dsn = dsn
        self._pool_args = {"min_size": min_size, "max_size": max_size, "timeout": timeout}
        self._pool = None
        self._lock = threading.Lock()
        self._migrated = False

    def __repr__(self) -> str:
        return f"PostgisStore({_redact(self.dsn)!r})"

    # -- connections -----------------------------------------------------------------
    def _get_pool(self):
        with self._lock:
            if self._pool is None:
                from psycopg_pool import ConnectionPool
                try:  # one direct attempt first: a clear reason now instead of a pool timeout later
                    psycopg.connect(self.dsn, connect_timeout=max(2, int(self._pool_args["timeout"]))).close()
                except psycopg.OperationalError as e:
                    reason = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
                    raise StoreUnavailable(f"cannot connect to {_redact(self.dsn)}: {reason}") from None
                self._pool = ConnectionPool(self.dsn, open=True, check=ConnectionPool.check_connection,
                                            name="minsheng", **self._pool_args)
            return self._pool

    def close(self) -> None:
        """Close the pool (it is created again on next use)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    def __enter__(self) -> "PostgisStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextlib.contextmanager
    def connection(self):
        """A pooled connection with the schema migrated (commits on success, rolls back on error)."""
        pool = self._get_pool()
        if not self._migrated:
            with pool.connection() as conn:
                self._migrate(conn)
            self._migrated = True
        with pool.connection() as conn:
            yield conn

    # -- migrations ------------------------------------------------------------------
    def migrate(self) -> list[int]:
        """Apply pending migrations; returns the numbers applied now (idempotent)."""
        with self._get_pool().connection() as conn:
            applied = self._migrate(conn)
        self._migrated = True
        return applied

    def _migrate(self, conn) -> list[int]:
        done = []
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            has_postgis = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'postgis'").fetchone()
            if not has_postgis:
                try:
                    with conn.transaction():
                        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
                except psycopg.Error as e:
                    raise RuntimeError(
                        f"{_redact(self.dsn)}: the PostGIS extension is not installed in this database and "
                        f"could not be created ({e.diag.message_primary}); ask an administrator to run "
                        f"CREATE EXTENSION postgis") from None
            conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                         "version integer PRIMARY KEY, name text NOT NULL, "
                         "applied_at timestamptz NOT NULL DEFAULT now())")
            applied = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            for number, name, ddl in sorted(MIGRATIONS):
                if number in applied:
                    continue
                conn.execute(ddl)
                conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (number, name))
                done.append(number)
            self._check_contract(conn)
        return done

    @staticmethod
    def _check_contract(conn) -> None:
        rows = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ANY(%s)",
            ([layer.name for layer in LAYERS],)).fetchall()
        have: dict[str, set] = {}
        for t, c in rows:
            have.setdefault(t, set()).add(c)
        missing = [f"{layer.name}.{c}" for layer in LAYERS
                   for c in (*layer.column_names, *((GEOM,) if layer.geometry else ()), ORD)
                   if c not in have.get(layer.name, set())]
        if missing:
            raise RuntimeError("the database schema lags the data contract (data/schema.py): missing "
                               + ", ".join(missing) + "; add a migration in data/migrations")

    # -- reading ---------------------------------------------------------------------
    def version(self) -> str:
        with self.connection() as conn:
            return _version_string(*conn.execute(
                "SELECT dataset_id, version FROM dataset_version WHERE id = 1").fetchone())

    def load(self, layers: tuple[str, ...] | None = None) -> Bundle:
        """The dataset as a Bundle, read from one consistent snapshot. ``layers`` limits
        which layers are read (the others are empty), e.g. to skip households."""
        names = [layer.name for layer in LAYERS if layers is None or layer.name in layers]
        frames = {}
        with self.connection() as conn:
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                # Lock before the snapshot is taken so that no TRUNCATE committed after
                # our snapshot can make a table look empty (TRUNCATE is not MVCC-safe).
                conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS SHARE MODE").format(
                    sql.SQL(", ").join(sql.Identifier(n) for n in [*names, "dataset_version"])))
                dataset_id, number = conn.execute(
                    "SELECT dataset_id, version FROM dataset_version WHERE id = 1").fetchone()
                for name in names:
                    frames[name] = _read_layer(conn, LAYER_BY_NAME[name])
        return make_bundle(frames, source=_redact(self.dsn), version=_version_string(dataset_id, number))

    def schema_info(self) -> dict:
        """What the database holds, for checks and operators: geometry columns
        {table: (type, srid)}, index definitions {table: [indexdef, ...]}, migrations."""
        with self.connection() as conn:
            geoms = {t: (typ, srid) for t, typ, srid in conn.execute(
                "SELECT f_table_name, type, srid FROM geometry_columns WHERE f_table_schema = current_schema()")}
            idx: dict[str, list] = {}
            for t, d in conn.execute("SELECT tablename, indexdef FROM pg_indexes "
                                     "WHERE schemaname = current_schema() ORDER BY indexname"):
                idx.setdefault(t, []).append(d)
            migs = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
        return {"geometry_columns": geoms, "indexes": idx, "migrations": migs}

    def counts(self) -> dict[str, int]:
        """Row count of every layer."""
        with self.connection() as conn:
            return {layer.name: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
                sql.Identifier(layer.name))).fetchone()[0] for layer in LAYERS}

    # -- aggregates (no personal data leaves the database) ---------------------------
    def grid_summary(self, plan_id: str, grid_id: str, keys: tuple[str, ...]) -> dict:
        """The grid panel of one level-2 grid: buildings, households, persons and the
        number of households carrying each key-group tag in ``keys``."""
        with self.connection() as conn:
            nb, nh, np_ = conn.execute(
                "SELECT count(DISTINCT a.building_id), count(h.id), coalesce(sum(h.persons), 0) "
                "FROM assignments a LEFT JOIN households h ON h.building_id = a.building_id "
                "WHERE a.plan_id = %s AND a.grid_id = %s", (plan_id, grid_id)).fetchone()
            tags = dict(conn.execute(
                "SELECT t.tag, count(*) FROM assignments a JOIN households h ON h.building_id = a.building_id "
                "CROSS JOIN LATERAL jsonb_array_elements_text(h.tags) AS t(tag) "
                "WHERE a.plan_id = %s AND a.grid_id = %s AND t.tag = ANY(%s) GROUP BY t.tag",
                (plan_id, grid_id, list(keys))).fetchall())
        return {"buildings": int(nb), "households": int(nh), "persons": int(np_),
                **{k: int(tags.get(k, 0)) for k in keys}}

    def households_per_grid(self, plan_id: str) -> pd.DataFrame:
        """Coverage by grid for one plan: per grid_id, buildings, households and persons."""
        with self.connection() as conn:
            rows = conn.execute(
                "SELECT a.grid_id, count(*) AS buildings, coalesce(sum(b.households), 0) AS households, "
                "coalesce(sum(b.persons), 0) AS persons FROM assignments a LEFT JOIN ("
                "  SELECT building_id, count(*) AS households, sum(persons) AS persons FROM households "
                "  GROUP BY building_id) b ON b.building_id = a.building_id "
                "WHERE a.plan_id = %s GROUP BY a.grid_id ORDER BY a.grid_id", (plan_id,)).fetchall()
        df = pd.DataFrame(rows, columns=["grid_id", "buildings", "households", "persons"])
        return df.set_index("grid_id").astype("int64")

    # -- writing ---------------------------------------------------------------------
    def write_all(self, bundle: Bundle, *, progress=None) -> None:
        """Replace the whole dataset atomically. ``progress(layer, rows)`` is called per layer."""
        layers = {layer.name: bundle.layers.get(layer.name) for layer in LAYERS}
        self._replace(layers, expected_version=None, all_layers=True, progress=progress)

    def replace_layers(self, layers: dict, *, expected_version: str | None = None, progress=None) -> str:
        return self._replace(layers, expected_version=expected_version, all_layers=False, progress=progress)

    def _replace(self, layers: dict, *, expected_version, all_layers: bool, progress) -> str:
        unknown = sorted(set(layers) - set(LAYER_BY_NAME))
        if unknown:
            raise DataError(f"unknown layer(s) {', '.join(unknown)}", file=_redact(self.dsn))
        checked = {}
        for layer in LAYERS:  # contract order; validate everything before touching the database
            if layer.name in layers:
                df = layers[layer.name]
                checked[layer.name] = prepare_frame(layer, df if df is not None else empty_frame(layer))
        with self.connection() as conn:
            with conn.transaction():
                self._lock_version(conn, expected_version)
                if checked:
                    conn.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY").format(
                        sql.SQL(", ").join(sql.Identifier(n) for n in checked)))
                for name, df in checked.items():
                    _copy_in(conn, LAYER_BY_NAME[name], df)
                    if progress is not None:
                        progress(name, len(df))
                return self._bump(conn)

    def _lock_version(self, conn, expected_version: str | None) -> tuple[str, int]:
        dataset_id, number = conn.execute(
            "SELECT dataset_id, version FROM dataset_version WHERE id = 1 FOR UPDATE").fetchone()
        current = _version_string(dataset_id, number)
        if expected_version is not None and expected_version != current:
            raise ConflictError(f"{_redact(self.dsn)}: the data changed since it was loaded (expected version "
                                f"{expected_version}, found {current}); nothing was saved, reload and retry")
        return dataset_id, number

    @staticmethod
    def _bump(conn) -> str:
        return _version_string(*conn.execute(
            "UPDATE dataset_version SET version = version + 1, updated_at = now() WHERE id = 1 "
            "RETURNING dataset_id, version").fetchone())

    # -- plan operations -------------------------------------------------------------
    def save_plan(self, plan_id: str, grids_gdf, assignments_df, expected_plan_version: int, user: str) -> int:
        """Replace one plan's grids and assignments when plans.version is still
        ``expected_plan_version`` (else ConflictError); bumps the plan version and the
        dataset version and writes an audit row, all in one transaction. Returns the
        new plan version."""
        grids, assignments = prepare_plan_frames(plan_id, grids_gdf, assignments_df)
        grids = prepare_frame(LAYER_BY_NAME["grids"], grids)
        assignments = prepare_frame(LAYER_BY_NAME["assignments"], assignments)
        with self.connection() as conn:
            with conn.transaction():
                self._lock_version(conn, None)  # one lock order for every writer: no deadlocks
                row = conn.execute("UPDATE plans SET version = version + 1 WHERE id = %s AND version = %s "
                                   "RETURNING version", (plan_id, int(expected_plan_version))).fetchone()
                if row is None:
                    found = conn.execute("SELECT version FROM plans WHERE id = %s", (plan_id,)).fetchone()
                    if found is None:
                        raise DataError(f"unknown plan {plan_id!r}", file=_redact(self.dsn), layer="plans")
                    raise ConflictError(f"plan {plan_id!r} was changed by someone else (expected version "
                                        f"{expected_plan_version}, found {found[0]}); nothing was saved, "
                                        f"reload the plan and retry")
                new_version = int(row[0])
                conn.execute("DELETE FROM assignments WHERE plan_id = %s", (plan_id,))
                conn.execute("DELETE FROM grids WHERE plan_id = %s", (plan_id,))
                _copy_in(conn, LAYER_BY_NAME["grids"], grids)
                _copy_in(conn, LAYER_BY_NAME["assignments"], assignments)
                self._insert_audit(conn, user, "save_plan", f"plan:{plan_id}",
                                   plan_audit_detail(new_version, grids, assignments))
                self._bump(conn)
        return new_version

    def append_audit(self, user: str, action: str, object: str, detail: str = "") -> None:
        """Append one audit row. The audit log is append-only and outside optimistic
        locking: it does not bump the dataset version (so it never makes a save stale)."""
        with self.connection() as conn:
            with conn.transaction():
                self._insert_audit(conn, user, action, object, detail)

    @staticmethod
    def _insert_audit(conn, user, action, object, detail) -> None:
        conn.execute(sql.SQL("INSERT INTO audit_log (ts, {}, action, object, detail) VALUES (%s, %s, %s, %s, %s)")
                     .format(sql.Identifier("user")),
                     (utc_now(), str(user), str(action), str(object), "" if detail is None else str(detail)))


# -- helpers -------------------------------------------------------------------------
def _version_string(dataset_id: str, number: int) -> str:
    return f"pg-{dataset_id}-{int(number)}"


def _redact(dsn: str) -> str:
    """The DSN without its password (safe to show and log)."""
    dsn = re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", dsn)
    return re.sub(r"(password\s*=\s*)\S+", r"\1***", dsn)


def prepare_frame(layer: Layer, df: pd.DataFrame) -> pd.DataFrame:
    """conform() plus what a typed table needs: geometry type (Polygon promoted to
    MultiPolygon where the layer is multi), non-null unique keys. Raises DataError
    naming layer, row and field; never quotes the values."""
    out = conform(layer.name, df)
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
                            layer=layer.name, row=i + 1, field="geometry")
        out = gpd.GeoDataFrame(out.drop(columns="geometry"), geometry=gpd.GeoSeries(geoms, crs=CRS), crs=CRS)
    key = [c for c in layer.key if c in out.columns]
    if key and n and layer.name != "walk_edges":  # walk_edges may hold parallel edges
        for c in key:
            nulls = np.flatnonzero(out[c].isna().to_numpy())
            if len(nulls):
                raise DataError("key value is missing", layer=layer.name, row=int(nulls[0]) + 1, field=c)
        dup = np.flatnonzero(out.duplicated(key).to_numpy())
        if len(dup):
            raise DataError(f"duplicate key ({', '.join(key)})", layer=layer.name, row=int(dup[0]) + 1,
                            field=",".join(key))
    return out


def _python_column(s: pd.Series, t: str) -> np.ndarray:
    """Column values as Python objects for COPY (None = NULL)."""
    if t == "json":
        memo: dict = {}

        def enc(v):
            k = tuple(v) if v is not None else ()
            r = memo.get(k)
            if r is None:
                r = memo[k] = json.dumps([str(x) for x in k], ensure_ascii=False)
            return r
        return np.array([enc(v) for v in s.tolist()], dtype=object)
    if t == "float":
        arr = s.to_numpy(dtype="float64")
        out = arr.astype(object)
        out[np.isnan(arr)] = None
        return out
    if t == "bool":
        return s.to_numpy(dtype=bool).astype(object)
    obj = s.astype(object)
    return obj.where(s.notna(), None).to_numpy(dtype=object)


def _copy_in(conn, layer: Layer, df: pd.DataFrame) -> None:
    if not len(df):
        return
    cols = list(layer.column_names) + ([GEOM] if layer.geometry else [])
    values = [_python_column(df[c], t) for c, t in layer.columns]
    if layer.geometry:
        geoms = np.asarray(df.geometry.values, dtype=object)
        geoms = shapely.set_srid(np.where(pd.isna(geoms), None, geoms), 4326)
        values.append(shapely.to_wkb(geoms, hex=True, include_srid=True))
    stmt = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(layer.name), sql.SQL(", ").join(sql.Identifier(c) for c in cols))
    try:
        with conn.cursor() as cur, cur.copy(stmt) as cp:
            for row in zip(*values):
                cp.write_row(row)
    except (psycopg.DataError, psycopg.IntegrityError) as e:
        raise _data_error(layer, e, cols) from None


def _data_error(layer: Layer, e: psycopg.Error, cols: list[str]) -> DataError:
    """A database refusal as a DataError naming layer, row and field (never the row's values)."""
    ctx = e.diag.context or ""
    m = re.search(r"line (\d+)", ctx)
    row = int(m.group(1)) if m else None
    f = re.search(r"column (\w+)", ctx)
    field = e.diag.column_name or (f.group(1) if f else "")
    if field == GEOM:
        field = "geometry"
    what = e.diag.message_primary or type(e).__name__
    if e.diag.constraint_name:
        what += f" (constraint {e.diag.constraint_name})"
    what = re.sub(r'"[^"]*"$', "(value)", what) if "invalid input syntax" in what else what
    return DataError(f"refused by the database: {what}", layer=layer.name, row=row, field=field)


def _read_layer(conn, layer: Layer) -> pd.DataFrame:
    cols = [ORD, *layer.column_names] + ([GEOM] if layer.geometry else [])
    stmt = sql.SQL("COPY (SELECT {} FROM {}) TO STDOUT (FORMAT csv, NULL {})").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in cols), sql.Identifier(layer.name), sql.Literal(NULL))
    buf = io.BytesIO()
    with conn.cursor() as cur, cur.copy(stmt) as cp:
        for chunk in cp:
            buf.write(chunk)
    if buf.tell() == 0:
        return empty_frame(layer)
    buf.seek(0)
    types = dict(layer.columns)
    dtypes = {ORD: "int64"}
    for c in cols[1:]:
        t = types.get(c, "str")
        dtypes[c] = {"int": "Int64", "float": "float64"}.get(t, object)
    # pandas >= 3 parses floats exactly by default (and deprecates float_precision)
    exact = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}
    df = pd.read_csv(buf, header=None, names=cols, dtype=dtypes, na_values=[NULL], keep_default_na=False,
                     encoding="utf-8", **exact)
    if not df[ORD].is_monotonic_increasing:
        df = df.sort_values(ORD, kind="stable")
    df = df.drop(columns=ORD).reset_index(drop=True)
    for c, t in layer.columns:
        if t == "bool":
            df[c] = df[c].map({"t": True, "f": False}).fillna(False).astype(bool)
        elif t == "json":
            memo: dict = {}

            def dec(v):
                if not isinstance(v, str):
                    return []
                r = memo.get(v)
                if r is None:
                    r = memo[v] = tuple(json.loads(v))
                return list(r)
            df[c] = pd.Series([dec(v) for v in df[c].tolist()], index=df.index, dtype=object)
        elif t not in ("int", "float"):
            df[c] = df[c].astype(object).where(df[c].notna(), None)
    if layer.geometry:
        hexes = df.pop(GEOM).to_numpy(dtype=object)
        hexes = np.where(pd.isna(hexes), None, hexes)
        geoms = shapely.set_srid(shapely.from_wkb(hexes), 0)
        return gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(geoms, crs=CRS), crs=CRS)
    return df
