"""minsheng serve: run the dashboard."""
NAME = "serve"
HELP = "run the dashboard (default: the shipped sample)"


def add_arguments(p):
    p.add_argument("--data", help="project GeoPackage (default: shipped sample)")
    p.add_argument("--dsn", help="PostgreSQL/PostGIS connection string (or DATABASE_URL)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--lang", choices=["zh", "en"])
    p.add_argument("--require-login", action="store_true", help="every page needs a signed-in user")
    p.add_argument("--debug", action="store_true")


def run(args) -> int:
    import app
    argv = []
    for k in ("data", "dsn", "host", "port", "lang"):
        v = getattr(args, k)
        if v is not None:
            argv += [f"--{k}", str(v)]
    return app.main(argv + (["--debug"] if args.debug else []) + (["--require-login"] if args.require_login else []))
