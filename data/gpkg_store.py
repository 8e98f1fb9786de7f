"""GeoPackage store: one .gpkg file (OGC standard, opens in QGIS), written as the SQLite
database it is.

Every write is one SQLite transaction (``BEGIN IMMEDIATE`` … ``COMMIT``) on the rows it
changes, in WAL mode so readers in other processes never wait for a writer and a killed
writer leaves the file as it was (SQLite discards the uncommitted part of the log on the
next open). The GeoPackage stays valid while we write it with plain SQL: geometries are
GeoPackage binary blobs (header + envelope + WKB), the R-tree triggers GDAL installed are
served by the ``ST_IsEmpty/ST_MinX/…`` functions registered on each connection, and every
extra table (dataset_version, layer_versions, building_stats, plan_leases; quarter_snapshots,
made on the first freeze) is registered in ``gpkg_contents`` as an attributes table. New
files get their layers from GDAL (pyogrio) first, empty, so the schema is exactly what QGIS
expects.

A file that is not a Minsheng project (a foreign GeoPackage, a CSV, a truncated file) is
refused with a DataError and never written to.
"""
from __future__ import annotations

import contextlib
import secrets
import sqlite3
import struct
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from data.bundle import CRS, DataError, empty_frame
from data.schema import LAYERS, LAYER_BY_NAME, Layer
from data.sqlstore import SqlStore, prepare_frame

FIXED_DATE = "2026-01-01T00:00:00.000Z"  # reproducible GeoPackage timestamps (sample build)
GEOM = "geom"
SRS_ID = 4326
GPKG_APPLICATION_ID = 0x47504B47  # "GPKG"
_ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}
CORE_LAYERS = ("communities", "plans", "grids", "buildings", "assignments")

EXTRA_TABLES = {
    "dataset_version": "id INTEGER NOT NULL UNIQUE CHECK (id = 1), dataset_id TEXT NOT NULL, "
                       "version INTEGER NOT NULL",
    "layer_versions": "layer TEXT NOT NULL UNIQUE, version INTEGER NOT NULL",
    "building_stats": "building_id TEXT NOT NULL UNIQUE, households INTEGER NOT NULL, persons INTEGER NOT NULL, "
                      "synthetic INTEGER NOT NULL, tags TEXT NOT NULL",
    "plan_leases": "plan_id TEXT NOT NULL UNIQUE, token TEXT NOT NULL, since REAL NOT NULL",
}
#: quarter snapshots (data/snapshots.py): made on the first freeze, so reading a project (the
#: shipped sample, a file of an earlier version) never writes to it; write-once by trigger
SNAPSHOTS_DDL = (
    "CREATE TABLE IF NOT EXISTS quarter_snapshots (fid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, "
    "quarter TEXT NOT NULL UNIQUE CHECK (quarter GLOB '[0-9][0-9][0-9][0-9]Q[1-4]'), created_at TEXT NOT NULL, "
    "created_by TEXT NOT NULL, plan_id TEXT, version TEXT, payload TEXT NOT NULL)",
    "CREATE TRIGGER IF NOT EXISTS quarter_snapshots_no_update BEFORE UPDATE ON quarter_snapshots "
    "BEGIN SELECT RAISE(ABORT, 'quarter snapshots are write-once'); END",
    "CREATE TRIGGER IF NOT EXISTS quarter_snapshots_no_delete BEFORE DELETE ON quarter_snapshots "
    "BEGIN SELECT RAISE(ABORT, 'quarter snapshots are write-once'); END",
)
INDEXES = (
    ("households_building", "households", "building_id"),
    ("households_id", "households", "id"),
    ("assignments_plan_grid", "assignments", "plan_id, grid_id"),
    ("assignments_plan_building", "assignments", "plan_id, building_id"),
    ("assignments_building", "assignments", "building_id"),
    ("grids_plan_id", "grids", "plan_id, id"),
    ("grids_plan_parent", "grids", "plan_id, parent_id"),
    ("plans_id", "plans", "id"),
    ("users_username", "users", "username"),
    ("audit_log_action", "audit_log", "action"),
    ("audit_log_user", "audit_log", '"user"'),
    ("gates_compound", "gates", "compound_id"),
    ("scenarios_id", "scenarios", "id"),
)


# -- GeoPackage geometry blobs ---------------------------------------------------------------
def to_gpkg_blobs(geoms) -> list:
    """Shapely geometries -> GeoPackage binary (little-endian, xy envelope, EPSG:4326)."""
    geoms = np.asarray(geoms, dtype=object)
    if not len(geoms):
        return []
    geoms = np.where(pd.isna(geoms), None, geoms)
    wkb = shapely.to_wkb(geoms, byte_order=1, flavor="iso")
    bounds = shapely.bounds(geoms)
    empty = shapely.is_empty(geoms)
    head_empty = b"GP\x00\x11" + struct.pack("<i", SRS_ID)
    pack = struct.Struct("<i4d").pack
    out = []
    for w, (x0, y0, x1, y1), e in zip(wkb, bounds.tolist(), empty.tolist()):
        if w is None:
            out.append(None)
        elif e:
            out.append(head_empty + w)
        else:
            out.append(b"GP\x00\x03" + pack(SRS_ID, x0, x1, y0, y1) + w)
    return out


def _wkb_of(blob) -> bytes | None:
    if blob is None:
        return None
    b = bytes(blob)
    return b[8 + _ENVELOPE_BYTES.get((b[3] >> 1) & 7, 0):]


def from_gpkg_blobs(blobs) -> np.ndarray:
    return shapely.from_wkb([_wkb_of(b) for b in blobs])


def _envelope(blob):
    if blob is None:
        return None
    b = bytes(blob)
    kind = (b[3] >> 1) & 7
    if kind:
        order = "<" if b[3] & 1 else ">"
        x0, x1, y0, y1 = struct.unpack(order + "4d", b[8:40])
        return x0, x1, y0, y1
    g = shapely.from_wkb(_wkb_of(b))
    if g is None or g.is_empty:
        return None
    x0, y0, x1, y1 = g.bounds
    return x0, x1, y0, y1


def _st(i):
    def f(blob):
        e = _envelope(blob)
        return None if e is None else e[i]
    return f


def _st_is_empty(blob):
    if blob is None:
        return None
    b = bytes(blob)
    return int(bool(b[3] & 0x10))


def _register_functions(conn: sqlite3.Connection) -> None:
    conn.create_function("ST_IsEmpty", 1, _st_is_empty, deterministic=True)
    for i, name in enumerate(("ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY")):
        conn.create_function(name, 1, _st(i), deterministic=True)


def _is_sqlite(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


# -- the store -------------------------------------------------------------------------------
class GpkgStore(SqlStore):
    PH = "?"
    VERSION_PREFIX = "gpkg"
    GEOM = GEOM
    ORDER = "fid"
    AUDIT_ORDER = "fid"

    def __init__(self, path, *, timestamp: str | None = None, dataset_id: str | None = None):
        self.path = Path(path)
        self._timestamp = timestamp  # fixed gpkg_contents.last_change (reproducible builds)
        self._dataset_id = dataset_id  # fixed dataset id of a new file (reproducible builds)
        self._checked = False
        self._wal = False

    def __repr__(self) -> str:
        return f"GpkgStore({str(self.path)!r})"

    def _source(self) -> str:
        return str(self.path)

    # -- connections -----------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(str(self.path), timeout=60, isolation_level=None, check_same_thread=False)
        _register_functions(conn)
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    def _open(self) -> sqlite3.Connection:
        """A connection to a checked project file (upgraded once from an older layout)."""
        with self._damaged():
            return self._open_checked()

    def _open_checked(self) -> sqlite3.Connection:
        if not self.path.exists():
            raise DataError("file not found", file=str(self.path))
        if not _is_sqlite(self.path):
            raise DataError("not a GeoPackage (not an SQLite database); nothing was changed", file=str(self.path))
        conn = self._connect()
        try:
            if not self._checked:
                self._check_project(conn)
                self._checked = True
        except BaseException:
            conn.close()
            raise
        return conn

    def _tables(self, conn) -> set[str]:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}

    def _check_project(self, conn) -> None:
        try:
            tables = self._tables(conn)
        except sqlite3.DatabaseError as e:
            raise DataError(f"not a readable GeoPackage ({e}); nothing was changed", file=str(self.path)) from None
        if "gpkg_contents" not in tables:
            raise DataError("not a GeoPackage (no gpkg_contents table); nothing was changed", file=str(self.path))
        missing = [n for n in CORE_LAYERS if n not in tables]
        if missing:
            raise DataError(f"not a Minsheng project: layers {', '.join(missing)} are missing "
                            f"(has: {', '.join(sorted(t for t in tables if not t.startswith(('gpkg_', 'rtree_', 'sqlite_')))) or 'none'}); "
                            f"nothing was changed", file=str(self.path))
        if "dataset_version" not in tables or "plan_leases" not in tables or \
                any(layer.name not in tables for layer in LAYERS):
            self._upgrade(conn, tables)

    def _upgrade(self, conn, tables: set[str]) -> None:
        """Add what this version needs to a project made by an earlier one (or by GDAL only):
        missing contract layers (e.g. compounds, gates and scenarios, new in this version; they
        start empty), version tables, indexes, per-building aggregates."""
        c = self._connect()
        try:
            c.execute("BEGIN IMMEDIATE")
            have = self._tables(c)
            missing_layers = [layer for layer in LAYERS if layer.name not in have]
            if missing_layers:
                _add_layers(c, missing_layers)
            if "dataset_version" in have and "plan_leases" in have:
                for name, table, cols in INDEXES:
                    c.execute(f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" ({cols})')
                c.execute("COMMIT")
                return
            self._create_extra(c)
            from data.catalogue import key_groups
            from data.bundle import conform
            from geo.stats import building_stats
            hh = conform("households", self._read_frame(c, LAYER_BY_NAME["households"]))
            self._write_stats(c, building_stats(hh, [g.key for g in key_groups()]), None)
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        finally:
            c.close()

    def _create_extra(self, c) -> None:
        ts = self._timestamp or FIXED_DATE
        have = self._tables(c)
        for name, cols in EXTRA_TABLES.items():
            if name in have:
                continue
            c.execute(f'CREATE TABLE "{name}" (fid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, {cols})')
            c.execute("INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, description, "
                      "last_change) VALUES (?, 'attributes', ?, ?, ?)",
                      (name, name, "Minsheng Map internal table", ts))
        if not c.execute("SELECT 1 FROM dataset_version WHERE id = 1").fetchone():
            c.execute("INSERT INTO dataset_version (id, dataset_id, version) VALUES (1, ?, 0)",
                      (self._dataset_id or secrets.token_hex(4),))
        for name, table, cols in INDEXES:
            c.execute(f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" ({cols})')

    def _snapshots_ready(self, conn, *, create: bool) -> bool:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'quarter_snapshots'").fetchone():
            return True
        if not create:
            return False
        for stmt in SNAPSHOTS_DDL:  # inside the freeze's own transaction (SQLite DDL is transactional)
            conn.execute(stmt)
        conn.execute("INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, description, "
                     "last_change) VALUES ('quarter_snapshots', 'attributes', 'quarter_snapshots', ?, "
                     "strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))", ("Minsheng Map: frozen quarter snapshots",))
        return True

    @contextlib.contextmanager
    def _read(self):
        with self._damaged():
            conn = self._open()
            try:
                conn.execute("BEGIN")  # WAL: one snapshot from the first read to the end
                yield conn
            finally:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                conn.close()

    @contextlib.contextmanager
    def _damaged(self):
        """A damaged or truncated file is bad input, not a crash."""
        try:
            yield
        except sqlite3.OperationalError:
            raise
        except sqlite3.DatabaseError as e:
            raise DataError(f"not a readable GeoPackage ({e}); nothing was changed", file=str(self.path)) from None

    @contextlib.contextmanager
    def _write(self):
        with self._damaged(), self._write_conn() as conn:
            yield conn

    @contextlib.contextmanager
    def _write_conn(self):
        conn = self._open()
        try:
            if not self._wal:
                # write-ahead log: readers in other processes never wait for a writer; set
                # on the first write (reading a shipped file leaves it byte-identical)
                if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    conn.execute("PRAGMA journal_mode = WAL")
                self._wal = True
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
        finally:
            conn.close()

    def _bump(self, conn, layers) -> str:
        v = super()._bump(conn, layers)
        ts = self._timestamp
        if ts:
            conn.execute(f"UPDATE gpkg_contents SET last_change = ? WHERE table_name IN "
                         f"({', '.join('?' * len(set(layers)))})", (ts, *sorted(set(layers))))
        else:
            conn.execute(f"UPDATE gpkg_contents SET last_change = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') "
                         f"WHERE table_name IN ({', '.join('?' * len(set(layers)))})", tuple(sorted(set(layers))))
        return v

    def _in(self, column: str, values) -> tuple[str, object]:
        import json
        return f'"{column}" IN (SELECT value FROM json_each(?))', json.dumps([str(v) for v in values])

    # -- frames ----------------------------------------------------------------------------
    def _read_frame(self, conn, layer: Layer, where: str = "", params=()) -> pd.DataFrame:
        cols = list(layer.column_names)
        present = {r[1] for r in conn.execute(f'PRAGMA table_info("{layer.name}")')}
        if not present:
            return empty_frame(layer)
        sel = [f'"{c}"' if c in present else f'NULL AS "{c}"' for c in cols]
        if layer.geometry:
            sel.append(f'"{GEOM}"')
        sql = f'SELECT {", ".join(sel)} FROM "{layer.name}"' + (f" WHERE {where}" if where else "") + " ORDER BY fid"
        rows = conn.execute(sql, params).fetchall()
        if not rows:
            return empty_frame(layer)
        names = cols + ([GEOM] if layer.geometry else [])
        data = list(zip(*rows))
        frame = {}
        for name, values in zip(names, data):
            if name == GEOM:
                continue
            frame[name] = pd.Series(values, dtype=object)
        df = pd.DataFrame(frame)
        for c, t in layer.columns:
            if t == "bool":
                df[c] = df[c].map(lambda v: bool(v) if v is not None else False)
        if layer.geometry:
            geoms = from_gpkg_blobs(data[-1])
            return gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(geoms, crs=CRS), crs=CRS)
        return df

    def _insert_frame(self, conn, layer: Layer, df: pd.DataFrame) -> None:
        if not len(df):
            return
        import json
        cols = list(layer.column_names)
        values = []
        for c, t in layer.columns:
            s = df[c]
            if t == "json":
                memo: dict = {}

                def enc(v, memo=memo):
                    k = tuple(v) if isinstance(v, (list, tuple)) else ()
                    r = memo.get(k)
                    if r is None:
                        r = memo[k] = json.dumps([str(x) for x in k], ensure_ascii=False)
                    return r
                values.append([enc(v) for v in s.tolist()])
            elif t == "bool":
                values.append(s.fillna(False).astype(bool).astype(int).tolist())
            elif t == "int":
                values.append([None if pd.isna(v) else int(v) for v in s.tolist()])
            elif t == "float":
                arr = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)
                values.append([None if np.isnan(v) else float(v) for v in arr])
            else:
                values.append([None if (v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA)
                               else str(v) for v in s.tolist()])
        if layer.geometry:
            cols.append(GEOM)
            values.append(to_gpkg_blobs(df.geometry.values))
        names = ", ".join(f'"{c}"' for c in cols)
        marks = ", ".join("?" * len(cols))
        conn.executemany(f'INSERT INTO "{layer.name}" ({names}) VALUES ({marks})', zip(*values))
        if layer.geometry:
            self._extend_extent(conn, layer.name, df)

    @staticmethod
    def _extend_extent(conn, table: str, df) -> None:
        g = np.asarray(df.geometry.values, dtype=object)
        g = g[~pd.isna(g)]
        if not len(g):
            return
        x0, y0, x1, y1 = shapely.total_bounds(g).tolist()
        if any(np.isnan([x0, y0, x1, y1])):
            return
        conn.execute("UPDATE gpkg_contents SET min_x = min(coalesce(min_x, ?), ?), min_y = min(coalesce(min_y, ?), ?), "
                     "max_x = max(coalesce(max_x, ?), ?), max_y = max(coalesce(max_y, ?), ?) WHERE table_name = ?",
                     (x0, x0, y0, y0, x1, x1, y1, y1, table))

    def _lock_dataset(self, conn) -> None:
        return None  # BEGIN IMMEDIATE already serialises every writer of the file

    def _geom_sql(self) -> str:
        return "?"

    def _geom_value(self, geom):
        return to_gpkg_blobs([geom])[0]

    def _geometry_written(self, conn, table: str, geoms) -> None:
        self._extend_extent(conn, table, gpd.GeoDataFrame(geometry=list(geoms), crs=CRS))

    # -- creating a file -------------------------------------------------------------------
    def write_all(self, bundle, *, progress=None) -> None:
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _create_layers(self.path, LAYERS, store=self)
        super().write_all(bundle, progress=progress)

    def checkpoint(self) -> None:
        """Fold the write-ahead log into the file and switch to a plain rollback journal (a
        file to ship or copy: no -wal/-shm beside it)."""
        conn = self._open()
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute("PRAGMA journal_mode = DELETE")
            conn.execute("VACUUM")
        finally:
            conn.close()
        self._checked = False
        self._wal = False


def _create_layers(path: Path, layers, *, extra: bool = True, store: "GpkgStore | None" = None) -> None:
    """Create empty contract layers with GDAL (valid GeoPackage tables, R-tree indexes, triggers)."""
    import pyogrio
    from data.bundle import conform
    for layer in layers:
        df = conform(layer.name, empty_frame(layer))
        kw = {"layer": layer.name, "driver": "GPKG"}
        with warnings.catch_warnings(), pyogrio_config(OGR_CURRENT_DATE=FIXED_DATE):
            warnings.simplefilter("ignore", RuntimeWarning)
            if layer.geometry:
                pyogrio.write_dataframe(gpd.GeoDataFrame(df, geometry="geometry", crs=CRS), path,
                                        geometry_type=layer.geometry,
                                        promote_to_multi=layer.geometry.startswith("Multi"), **kw)
            else:
                pyogrio.write_dataframe(pd.DataFrame(df), path, **kw)
    if not extra:
        return
    conn = sqlite3.connect(str(path), isolation_level=None)
    try:
        _register_functions(conn)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("BEGIN IMMEDIATE")
        (store or GpkgStore(path))._create_extra(conn)
        conn.execute("COMMIT")
    finally:
        conn.close()


_RTREE_SHADOW = ("_node", "_parent", "_rowid")
_GPKG_META = ("gpkg_contents", "gpkg_geometry_columns", "gpkg_extensions", "gpkg_ogr_contents")


def _add_layers(conn: sqlite3.Connection, layers) -> None:
    """Add empty contract layers to an open project, inside the caller's transaction, with GDAL's
    own DDL: GDAL makes the layers in a scratch GeoPackage, and its statements (table, R-tree,
    triggers) and gpkg_* rows are replayed here. GDAL never writes a file this process has open
    with Python's SQLite: two SQLite libraries in one process do not see each other's locks, and
    the file would be corrupted."""
    import tempfile
    names = [layer.name for layer in layers]
    with tempfile.TemporaryDirectory(prefix="minsheng-layers-") as d:
        scratch = Path(d) / "layers.gpkg"
        _create_layers(scratch, layers, extra=False)
        src = sqlite3.connect(str(scratch))
        try:
            have = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            for meta in _GPKG_META:  # a GeoPackage not made by GDAL may lack GDAL's optional tables
                if meta not in have:
                    row = src.execute("SELECT sql FROM sqlite_master WHERE name = ?", (meta,)).fetchone()
                    if row:
                        conn.execute(row[0])
            marks = ", ".join("?" * len(names))
            rtrees = [f"rtree_{n}_geom" for n in names]
            objs = src.execute(
                f"SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND (tbl_name IN ({marks}) "
                f"OR name IN ({', '.join('?' * len(rtrees))})) ORDER BY rowid", (*names, *rtrees)).fetchall()
            for kind, name, sql in objs:
                if kind == "table" and name.startswith("rtree_") and name.endswith(_RTREE_SHADOW):
                    continue  # made by CREATE VIRTUAL TABLE ... USING rtree
                conn.execute(sql)
            for meta in _GPKG_META:
                cols = [r[1] for r in src.execute(f'PRAGMA table_info("{meta}")')]
                if not cols:
                    continue
                rows = src.execute(f'SELECT {", ".join(cols)} FROM "{meta}" WHERE table_name IN ({marks})',
                                   names).fetchall()
                conn.executemany(f'INSERT OR IGNORE INTO "{meta}" ({", ".join(cols)}) '
                                 f'VALUES ({", ".join("?" * len(cols))})', rows)
        finally:
            src.close()


@contextlib.contextmanager
def pyogrio_config(**options):
    import pyogrio
    old = pyogrio.get_gdal_config_option
    prev = {k: old(k) for k in options}
    pyogrio.set_gdal_config_options(options)
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options(prev)


__all__ = ["GpkgStore", "from_gpkg_blobs", "prepare_frame", "to_gpkg_blobs"]
