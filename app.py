"""Minsheng Map (民生地图) dashboard.  `python app.py` opens the shipped sample.

create_app(settings) builds the Dash app, its layout and callbacks; nothing is loaded at import.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import dash

from minsheng.settings import Settings, from_env


def create_app(settings: Settings | None = None, store=None) -> dash.Dash:
    from callbacks import auth, circle_view, exports, import_view, planner_view, presentation, views
    from callbacks.context import AppContext
    from callbacks import layout

    from data import auth_store
    from data.store import open_store
    from minsheng import secret_key

    settings = settings or from_env()
    store = store or open_store(settings)
    # refuses (InsecureSecret) a default/short key whenever anyone can sign in; see minsheng/secret_key.py
    settings = settings.with_(secret_key=secret_key.resolve(
        settings, anyone_can_sign_in=settings.require_login or auth_store.has_users(store)))
    ctx = AppContext(settings, store)
    ctx.bundle()  # load once at start-up, not at import
    app = dash.Dash(__name__, title="民生地图 Minsheng Map", suppress_callback_exceptions=True,
                    update_title=None)
    app.layout = layout.shell()
    auth.register(app, ctx)
    layout.register(app, ctx, pages={"/present": presentation.layout})
    views.register(app, ctx)
    circle_view.register(app, ctx)
    planner_view.register(app, ctx)
    import_view.register(app, ctx)
    presentation.register(app, ctx)
    exports.register(app, ctx)
    app.server.config["MINSHENG_CONTEXT"] = ctx
    return app


def wsgi():
    """WSGI application factory for a production server, settings from the environment
    (MINSHENG_DATA or DATABASE_URL, MINSHENG_SECRET_KEY, ...): ``gunicorn 'app:wsgi()'``."""
    return create_app(from_env()).server


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Minsheng Map dashboard (default: the shipped sample)")
    p.add_argument("--data", help="project GeoPackage (default: shipped Haidian sample)")
    p.add_argument("--dsn", help="PostgreSQL/PostGIS connection string (or DATABASE_URL)")
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--lang", choices=["zh", "en"], default=None)
    p.add_argument("--require-login", action="store_true",
                   help="every page needs a signed-in user (default when --dsn/DATABASE_URL is used)")
    p.add_argument("--debug", action="store_true")
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    settings = from_env(data=a.data, dsn=a.dsn, host=a.host, port=a.port, language=a.lang, debug=a.debug or None,
                        require_login=a.require_login or None)
    if settings.dsn and not a.require_login and os.environ.get("MINSHENG_REQUIRE_LOGIN") not in ("0", "false"):
        settings = settings.with_(require_login=True)
    from minsheng.secret_key import InsecureSecret
    try:
        app = create_app(settings)
    except InsecureSecret as e:
        print(f"error: refusing to start: {e}", file=sys.stderr)
        return 2
    print(f"Minsheng Map ready in {time.perf_counter() - t0:.2f}s: http://{settings.host}:{settings.port}/",
          file=sys.stderr, flush=True)
    app.run(host=settings.host, port=settings.port, debug=settings.debug)
    return 0


if __name__ == "__main__":
    sys.exit(main())
