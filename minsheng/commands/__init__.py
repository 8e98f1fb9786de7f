"""Subcommands of `minsheng`, discovered by minsheng.cli (one module per command).

Every command that reads or writes a project opens it the way the dashboard does:
``add_store_arguments`` (--data / --dsn) and ``open_cli_store`` (--dsn or DATABASE_URL wins over
--data or MINSHENG_DATA; neither: a working copy of the shipped sample) with the deployment settings
file of ``--settings`` or MINSHENG_SETTINGS (grid codes, bands, catalogue overrides)."""
from __future__ import annotations


def add_store_arguments(p) -> None:
    p.add_argument("--data", default=None,
                   help="project GeoPackage (default: MINSHENG_DATA, else a working copy of the shipped sample)")
    p.add_argument("--dsn", default=None, help="PostgreSQL/PostGIS connection string (default: DATABASE_URL)")
    add_settings_argument(p)


def add_settings_argument(p) -> None:
    p.add_argument("--settings", default=None,
                   help="deployment settings file (TOML; default: MINSHENG_SETTINGS): codes, bands, catalogues ...")


def open_cli_store(args, **overrides):
    """(settings, store) for a command's --data/--dsn (see data.store.open_store)."""
    from data.store import open_store
    from minsheng.settings import from_env
    settings = from_env(data=getattr(args, "data", None) or None, dsn=getattr(args, "dsn", None) or None,
                        settings_file=getattr(args, "settings", None) or None, **overrides)
    return settings, open_store(settings)
