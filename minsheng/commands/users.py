"""minsheng users: manage dashboard accounts (add / list / remove)."""
from __future__ import annotations

import sys

NAME = "users"
HELP = "manage dashboard users: add, list, remove (passwords are stored as scrypt hashes)"


def add_arguments(p):
    p.add_argument("action", choices=["add", "list", "remove"])
    p.add_argument("--data", help="project GeoPackage")
    p.add_argument("--dsn", help="PostgreSQL/PostGIS connection string (or DATABASE_URL)")
    p.add_argument("--username")
    p.add_argument("--role", choices=["viewer", "grid_worker", "planner", "admin"], default="viewer")
    p.add_argument("--grid", help="grid workers: the id of their own grid")
    p.add_argument("--display-name", default="")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")


def run(args) -> int:
    from data.bundle import DataError
    from minsheng.auth import hash_password
    from minsheng.commands import open_cli_store
    _settings, store = open_cli_store(args)
    if args.action == "list":
        for r in store.list_users().itertuples():
            print(f"{r.username}\t{r.role}\t{r.grid_id or ''}")
        return 0
    if not args.username:
        raise DataError("--username is required")
    if args.action == "remove":
        if not store.remove_user(args.username, actor="cli"):
            raise DataError(f"no user {args.username!r}")
        print(f"removed {args.username}")
        return 0
    if store.get_user(args.username) is not None:
        raise DataError(f"user {args.username!r} exists already")
    if args.role == "grid_worker":
        grids = store.read_model().grids
        if not args.grid or args.grid not in set(grids["id"]):
            raise DataError(f"a grid worker needs --grid with an existing grid id, got {args.grid!r}")
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        import getpass
        password = getpass.getpass("password: ")
    try:
        hashed = hash_password(password)
    except ValueError as e:
        raise DataError(str(e), field="password") from None
    store.put_user({"username": args.username, "password_hash": hashed, "role": args.role,
                    "grid_id": args.grid, "display_name": args.display_name}, actor="cli")
    print(f"added {args.username} ({args.role})")
    return 0
