"""minsheng serve: run the dashboard under gunicorn (production; --dev: Flask's development server)."""
NAME = "serve"
HELP = "run the dashboard (gunicorn; --dev for the development server)"


def add_arguments(p):
    from app import add_serve_arguments
    add_serve_arguments(p)


def run(args) -> int:
    import app
    argv = []
    for k in ("data", "dsn", "settings", "host", "port", "lang", "workers", "threads"):
        v = getattr(args, k)
        if v is not None:
            argv += [f"--{k}", str(v)]
    argv += [f"--{f.replace('_', '-')}" for f in ("require_login", "dev", "debug") if getattr(args, f)]
    return app.main(argv)
