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
import os
import re
import threading

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import shapely
from psycopg import sql

from data.bundle import CRS, DataError, empty_frame
from data.migrations import MIGRATIONS
from data.schema import LAYER_BY_NAME, LAYERS, Layer
from data.sqlstore import SqlStore, prepare_frame  # noqa: F401  (prepare_frame: re-exported)

GEOM = "geom"          # geometry column name in every table that has one
ORD = "_ord"           # hidden row-order column
NULL = "\\N"           # NULL marker in COPY output
MIGRATION_LOCK = 7_316_001  # pg_advisory_xact_lock key serialising migrations
COPY_CHUNK = 1 << 20


class StoreUnavailable(ConnectionError):
    """The database cannot be reached (wrong DSN, server down, authentication refused)."""


class PostgisStore(SqlStore):
    """A dataset in a PostgreSQL/PostGIS database. Thread-safe; create one per DSN and share it."""

    PH = "%s"
    VERSION_PREFIX = "pg"
    GEOM = GEOM
    ORDER = ORD
    AUDIT_ORDER = ORD

    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 4, timeout: float = 30.0):
        self.dsn = dsn
        self._pool_args = {"min_size": min_size, "max_size": max_size, "timeout": timeout}
        self._pool = None
        self._lock = threading.Lock()
        self._migrated = False
        self._pid = os.getpid()

    def __repr__(self) -> str:
        return f"PostgisStore({_redact(self.dsn)!r})"

    # -- connections -----------------------------------------------------------------
    def _get_pool(self):
        if self._pid != os.getpid():
            # a forked child (a background job of the dashboard) never uses its parent's pooled
            # connections (their sockets are shared) nor a lock a parent thread may hold
            self._pid, self._pool, self._lock = os.getpid(), None, threading.Lock()
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

    # -- dialect (data/sqlstore.py) ------------------------------------------------------
    def _source(self) -> str:
        return _redact(self.dsn)

    @contextlib.contextmanager
    def _read(self):
        with self.connection() as conn:
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                yield conn

    @contextlib.contextmanager
    def _write(self):
        with self.connection() as conn:
            with conn.transaction():
                yield conn

    def _in(self, column: str, values) -> tuple[str, object]:
        return f'"{column}" = ANY(%s)', [str(v) for v in values]

    def _lock_dataset(self, conn) -> None:
        conn.execute("SELECT 1 FROM dataset_version WHERE id = 1 FOR UPDATE")

    def _json_int(self, column: str, key: str) -> str:
        k = key.replace("'", "''")
        return f"coalesce(({column}::jsonb ->> '{k}')::bigint, 0)"

    def _read_frame(self, conn, layer, where: str = "", params=()) -> pd.DataFrame:
        return _read_layer(conn, layer, where, params)

    def _insert_frame(self, conn, layer, df) -> None:
        _copy_in(conn, layer, df)

    def _insert_rows(self, conn, table: str, columns, rows) -> None:
        if not rows:
            return
        stmt = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(c) for c in columns))
        with conn.cursor() as cur, cur.copy(stmt) as cp:
            for row in rows:
                cp.write_row(row)

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


# -- helpers -------------------------------------------------------------------------
def _version_string(dataset_id: str, number: int) -> str:
    return f"pg-{dataset_id}-{int(number)}"


def _redact(dsn: str) -> str:
    """The DSN without its password (safe to show and log)."""
    dsn = re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", dsn)
    return re.sub(r"(password\s*=\s*)\S+", r"\1***", dsn)


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


def _where(where: str, params) -> sql.Composable:
    """A WHERE fragment with %s placeholders, values bound client-side as literals (COPY takes no
    server-side parameters)."""
    parts = where.split("%s")
    if len(parts) - 1 != len(params):
        raise ValueError("placeholder count does not match the parameters")
    out: list = [sql.SQL(parts[0])]
    for value, tail in zip(params, parts[1:]):
        out += [sql.Literal(value), sql.SQL(tail)]
    return sql.SQL(" WHERE ") + sql.Composed(out)


def _read_layer(conn, layer: Layer, where: str = "", params=()) -> pd.DataFrame:
    cols = [ORD, *layer.column_names] + ([GEOM] if layer.geometry else [])
    types = dict(layer.columns)
    texts = {c for c in layer.column_names if types[c] not in ("int", "float", "bool")}
    # text values are read with a one-character prefix so that no stored text (not even "\N")
    # can be mistaken for the NULL marker of the CSV stream
    sel = [sql.SQL("CASE WHEN {c} IS NULL THEN NULL ELSE 'v' || {c}::text END").format(c=sql.Identifier(c))
           if c in texts else sql.Identifier(c) for c in cols]
    stmt = sql.SQL("COPY (SELECT {} FROM {}{}) TO STDOUT (FORMAT csv, NULL {})").format(
        sql.SQL(", ").join(sel), sql.Identifier(layer.name),
        _where(where, params) if where else sql.SQL(""), sql.Literal(NULL))
    buf = io.BytesIO()
    with conn.cursor() as cur, cur.copy(stmt) as cp:
        for chunk in cp:
            buf.write(chunk)
    if buf.tell() == 0:
        return empty_frame(layer)
    buf.seek(0)
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
    for c in texts:
        v = df[c].astype(object)
        df[c] = v.where(v.isna(), v.str[1:])
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
