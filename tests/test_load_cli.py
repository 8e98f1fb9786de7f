"""`minsheng load`: GeoPackage -> PostGIS -> GeoPackage, end to end on the shipped sample."""
from __future__ import annotations

import re

import pytest

from data.bundle import content_version
from data.gpkg_store import GpkgStore
from data.schema import LAYERS
from minsheng.cli import build_parser, main
from minsheng.settings import sample_path


def test_load_command_is_discovered():
    p = build_parser()
    args = p.parse_args(["load", "--data", "x.gpkg", "--dsn", "postgresql://h/db"])
    assert args.command == "load" and args.data == "x.gpkg" and args.dsn == "postgresql://h/db"


def test_load_without_dsn_is_a_clear_error(capsys, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert main(["load", "--data", str(sample_path()), "--dsn", ""]) == 2
    assert "--dsn" in capsys.readouterr().err


@pytest.mark.postgis
def test_load_round_trip_sample(pg_dsn, tmp_path, capsys):
    src = GpkgStore(sample_path()).load()
    assert main(["load", "--data", str(sample_path()), "--dsn", pg_dsn]) == 0
    out = capsys.readouterr().out
    for layer in LAYERS:  # one progress line per layer with its row count
        n = len(src.layers[layer.name])
        assert re.search(rf"^\s+{layer.name}\s+{n:,}\s+rows", out, re.M), (layer.name, out)
    heads = [h for h in src.households["head_name"].dropna().tolist() if h][:50]
    assert heads and not any(h in out for h in heads)  # counts only, no personal data

    back = tmp_path / "back.gpkg"
    assert main(["load", "--dsn", pg_dsn, "--out", str(back)]) == 0
    out = capsys.readouterr().out
    assert re.search(rf"^\s+households\s+{len(src.households):,}\s+rows", out, re.M), out
    again = GpkgStore(back).load()
    for layer in LAYERS:  # lossless: every layer's content identical
        assert content_version({layer.name: again.layers[layer.name]}) == \
            content_version({layer.name: src.layers[layer.name]}), layer.name

    # --reverse writes to --data when --out is not given
    other = tmp_path / "other.gpkg"
    assert main(["load", "--dsn", pg_dsn, "--reverse", "--data", str(other)]) == 0
    assert content_version({"b": GpkgStore(other).load().buildings}) == content_version({"b": src.buildings})


@pytest.mark.postgis
def test_load_replaces_target_and_bad_source_changes_nothing(pg_dsn, tmp_path, capsys):
    from data.postgis_store import PostgisStore
    assert main(["load", "--data", str(sample_path()), "--dsn", pg_dsn]) == 0
    with PostgisStore(pg_dsn) as pg:
        v = pg.version()
    missing = tmp_path / "missing.gpkg"
    assert main(["load", "--data", str(missing), "--dsn", pg_dsn]) == 2
    assert "missing.gpkg" in capsys.readouterr().err
    with PostgisStore(pg_dsn) as pg:
        assert pg.version() == v
        assert pg.counts()["buildings"] == len(GpkgStore(sample_path()).load().buildings)


def test_load_unreachable_database_is_a_clear_error(capsys, tmp_path):
    import socket
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dsn = f"postgresql://me:s3cret@127.0.0.1:{port}/nodb?connect_timeout=2"
    assert main(["load", "--dsn", dsn, "--out", str(tmp_path / "x.gpkg")]) == 2
    err = capsys.readouterr().err
    assert "cannot connect to" in err and "s3cret" not in err and not (tmp_path / "x.gpkg").exists()
