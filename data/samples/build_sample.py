"""Regenerate the shipped sample byte-for-byte:  python -m data.samples.build_sample

Source: data/samples/source/beijing_haidian_xueqing.osm (real OpenStreetMap export,
© OpenStreetMap contributors, ODbL 1.0; see source/SOURCE.md). Communities, grids and
households are generated deterministically; households are synthetic.
"""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "source" / "beijing_haidian_xueqing.osm"
TARGET = HERE / "haidian_xueqing.gpkg"
SEED = 20261123


def main(out: Path = TARGET) -> Path:
    from data.gpkg_store import GpkgStore
    from minsheng.commands.import_osm import build
    bundle, _ = build(SOURCE, seed=SEED, county_code="110108", street_code="012", street_name="学院路街道",
                      progress=lambda m: print(m, file=sys.stderr))
    out = Path(out)
    if out.exists():
        out.unlink()
    from data.gpkg_store import FIXED_DATE
    store = GpkgStore(out, timestamp=FIXED_DATE, dataset_id="sample01")
    store.write_all(bundle)
    store.checkpoint()  # one plain file: no write-ahead log beside it
    return out


if __name__ == "__main__":
    print(main(Path(sys.argv[1]) if len(sys.argv) > 1 else TARGET))
