"""minsheng users: manage dashboard accounts (add / list / remove / passwd).

Each change is one short transaction on the store's ``users`` table with its audit row
(data/auth_store.py); removing a user or changing a password ends that user's sessions at
once, also on a running server."""
from __future__ import annotations

import sys

NAME = "users"
HELP = "manage dashboard users: add, list, remove, passwd (passwords are stored as scrypt hashes)"


def add_arguments(p):
    p.add_argument("action", choices=["add", "list", "remove", "passwd"])
    p.add_argument("--data", help="project GeoPackage")
    p.add_argument("--dsn", help="PostgreSQL/PostGIS connection string (or DATABASE_URL)")
    from minsheng.commands import add_settings_argument
    add_settings_argument(p)
    p.add_argument("--username")
    p.add_argument("--role", choices=["viewer", "grid_worker", "planner", "admin"], default="viewer")
    p.add_argument("--grid", help="grid workers: the id of their own grid in the adopted plan")
    p.add_argument("--display-name", default="")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")


def _password(args) -> str:
    from data.bundle import DataError
    from minsheng.auth import hash_password
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        import getpass
        password = getpass.getpass("password: ")
    try:
        return hash_password(password)
    except ValueError as e:
        raise DataError(str(e), field="password") from None


def run(args) -> int:
    from data import auth_store
    from data.bundle import DataError
    from minsheng.commands import open_cli_store
    _settings, store = open_cli_store(args)
    try:
        if args.action == "list":
            for r in auth_store.list_users(store):
                print(f"{r['username']}\t{r['role']}\t{r['grid_id'] or ''}")
            return 0
        if not args.username:
            raise DataError("--username is required")
        if not auth_store.valid_username(args.username):
            raise DataError("a user name has 1-64 letters, digits or _ . @ -", field="username")
        if args.action == "remove":
            n = auth_store.remove_user(store, args.username)
            print(f"removed {args.username} ({n} session(s) ended)")
            return 0
        if args.action == "passwd":
            if auth_store.get_user(store, args.username) is None:
                raise DataError(f"no user {args.username!r}", field="username")
            n = auth_store.set_password(store, args.username, _password(args))
            print(f"password of {args.username} changed ({n} session(s) ended)")
            return 0
        if auth_store.get_user(store, args.username) is not None:
            raise DataError(f"user {args.username!r} exists already", field="username")
        if args.role == "grid_worker":
            from minsheng.auth import adopted_plan_id
            b = store.read_model()
            adopted = adopted_plan_id(b.plans)
            grids = b.plan_grids(adopted) if adopted else b.grids.iloc[:0]
            if not args.grid or args.grid not in set(grids["id"]):
                raise DataError(f"a grid worker needs --grid with the id of a grid of the adopted plan "
                                f"({adopted or 'none adopted'}), got {args.grid!r}", field="grid")
        auth_store.add_user(store, args.username, _password(args), args.role,
                            args.grid if args.role == "grid_worker" else None, args.display_name)
    except auth_store.UserError as e:
        raise DataError(str(e), field="username") from None
    except auth_store.AuthStoreError as e:
        raise DataError(str(e)) from None
    print(f"added {args.username} ({args.role})")
    return 0
