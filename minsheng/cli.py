"""`minsheng` command line. Each subcommand lives in minsheng/commands/<name>.py and
exposes NAME, HELP, add_arguments(parser) and run(args) -> exit code."""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from data.bundle import DataError
from minsheng.settings import SettingsError


def _commands():
    import minsheng.commands as pkg
    mods = [importlib.import_module(f"minsheng.commands.{m.name}") for m in pkgutil.iter_modules(pkg.__path__)]
    return sorted(mods, key=lambda m: m.NAME)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="minsheng", description="Minsheng Map (民生地图) — community grid management")
    sub = p.add_subparsers(dest="command", required=True)
    for mod in _commands():
        sp = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(sp)
        sp.set_defaults(_run=mod.run)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except SettingsError as e:
        print(f"设置文件错误 / settings error: {e}", file=sys.stderr)
        return 2
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
