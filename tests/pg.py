"""A throwaway PostgreSQL + PostGIS cluster for tests (and benchmarks).

Fixtures (imported into tests/conftest.py, so every test can use them):

* ``pg_cluster`` (session): starts one cluster on 127.0.0.1 on a free port in a fresh
  temporary directory, with a template database that has the PostGIS extension;
  stopped and removed at the end of the session.
* ``pg_dsn`` (function): a DSN to a brand-new, empty PostGIS database (created from the
  template, so it costs a few tens of milliseconds).

Use them in a test::

    @pytest.mark.postgis
    def test_something(pg_dsn):
        store = PostgisStore(pg_dsn)
        ...

If the PostgreSQL/PostGIS binaries are missing the fixtures FAIL with a clear message;
set ``MINSHENG_SKIP_POSTGIS=1`` to skip those tests instead. ``MINSHENG_PG_BINDIR``
overrides where the binaries are looked for.

``PgCluster`` is usable outside pytest too (``with PgCluster.start() as c: c.new_database()``).
"""
from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

TEMPLATE = "minsheng_template"
SKIP_ENV = "MINSHENG_SKIP_POSTGIS"


class PgUnavailable(RuntimeError):
    """The PostgreSQL/PostGIS binaries needed to start a test cluster are missing."""


def find_bindir() -> Path:
    env = os.environ.get("MINSHENG_PG_BINDIR")
    if env:  # exclusive when set
        candidates = [Path(env)]
    else:
        on_path = shutil.which("pg_ctl")
        candidates = [Path(on_path).resolve().parent] if on_path else []
        candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
        candidates += [Path(p) for p in sorted(glob.glob("/usr/pgsql-*/bin"), reverse=True)]
    for d in candidates:
        if (d / "initdb").exists() and (d / "pg_ctl").exists() and (d / "postgres").exists():
            return d
    raise PgUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found; install them "
        "(Debian: apt-get install postgresql postgresql-15-postgis-3) or set MINSHENG_PG_BINDIR, "
        f"or set {SKIP_ENV}=1 to skip the PostGIS tests")


def _sharedir(bindir: Path) -> Path:
    pg_config = bindir / "pg_config"
    if pg_config.exists():
        out = subprocess.run([str(pg_config), "--sharedir"], capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.strip():
            return Path(out.stdout.strip())
    # Debian layout: /usr/lib/postgresql/15/bin -> /usr/share/postgresql/15
    return Path("/usr/share/postgresql") / bindir.parent.name


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgCluster:
    """One running throwaway cluster. Trust authentication, superuser ``postgres``."""

    def __init__(self, bindir: Path, root: Path, port: int, run_as: str | None):
        self.bindir, self.root, self.port, self.run_as = bindir, root, port, run_as
        self.datadir = root / "data"
        self.logfile = root / "postgres.log"
        self._counter = itertools.count(1)

    # -- lifecycle -----------------------------------------------------------------
    @classmethod
    def start(cls) -> "PgCluster":
        bindir = find_bindir()
        if not (_sharedir(bindir) / "extension" / "postgis.control").exists():
            raise PgUnavailable(
                f"the PostGIS extension is not installed for {bindir} (no postgis.control under "
                f"{_sharedir(bindir)}/extension); Debian: apt-get install postgresql-15-postgis-3, "
                f"or set {SKIP_ENV}=1 to skip the PostGIS tests")
        run_as = None
        root = Path(tempfile.mkdtemp(prefix="minsheng-pg-"))
        if os.geteuid() == 0:  # initdb refuses to run as root
            import pwd
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise PgUnavailable("running as root but there is no 'postgres' OS user to run the cluster") from None
            run_as = "postgres"
            os.chown(root, pw.pw_uid, pw.pw_gid)
            os.chmod(root, 0o700)
        cluster = cls(bindir, root, _free_port(), run_as)
        try:
            cluster._initdb_and_start()
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def _cmd(self, *args: str) -> list[str]:
        cmd = [str(a) for a in args]
        return ["runuser", "-u", self.run_as, "--", *cmd] if self.run_as else cmd

    def _run(self, *args: str) -> None:
        res = subprocess.run(self._cmd(*args), capture_output=True, text=True, cwd=self.root)
        if res.returncode != 0:
            log = self.logfile.read_text(errors="replace")[-2000:] if self.logfile.exists() else ""
            raise RuntimeError(f"{' '.join(args[:2])} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}\n{log}")

    def _initdb_and_start(self) -> None:
        self._run(self.bindir / "initdb", "-D", self.datadir, "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--locale=C", "--no-sync")
        # many apps of the suite keep a pool open until they are collected: room for them
        opts = (f"-p {self.port} -h 127.0.0.1 -k {self.root} -c fsync=off -c synchronous_commit=off "
                f"-c full_page_writes=off -c max_connections=200 -c shared_buffers=128MB "
                f"-c max_wal_size=2GB -c checkpoint_timeout=30min")
        self._run(self.bindir / "pg_ctl", "-D", self.datadir, "-l", self.logfile, "-o", opts, "-w", "-t", "60",
                  "start")
        import psycopg
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {TEMPLATE}")
        with psycopg.connect(self.dsn(TEMPLATE), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION postgis")
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f"ALTER DATABASE {TEMPLATE} WITH is_template = true")

    def stop(self) -> None:
        if (self.datadir / "postmaster.pid").exists():
            subprocess.run(self._cmd(self.bindir / "pg_ctl", "-D", self.datadir, "-m", "immediate", "-w", "stop"),
                           capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "PgCluster":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- databases -----------------------------------------------------------------
    def dsn(self, dbname: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def new_database(self, prefix: str = "t") -> str:
        """Create an empty database with PostGIS (from the template) and return its DSN."""
        import psycopg
        name = f"{prefix}_{os.getpid()}_{next(self._counter)}"
        for attempt in range(20):  # the template must have no other connection
            try:
                with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
                    conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
                break
            except psycopg.errors.ObjectInUse:
                time.sleep(0.05 * (attempt + 1))
        else:
            raise RuntimeError(f"could not create database {name} from {TEMPLATE}")
        return self.dsn(name)


# -- pytest fixtures ----------------------------------------------------------------
@pytest.fixture(scope="session")
def pg_cluster():
    try:
        cluster = PgCluster.start()
    except PgUnavailable as e:
        if os.environ.get(SKIP_ENV) == "1":
            pytest.skip(f"PostGIS tests skipped ({SKIP_ENV}=1): {e}")
        pytest.fail(f"PostGIS tests need a PostgreSQL/PostGIS installation: {e}", pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_dsn(pg_cluster) -> str:
    """DSN of a fresh, empty PostGIS database (one per test)."""
    return pg_cluster.new_database()
