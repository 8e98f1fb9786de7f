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
    from callbacks import auth, errors, exports, import_view, planner_view, presentation, views
    from callbacks.context import AppContext
    from callbacks import layout

    settings = settings or from_env()
    ctx = AppContext(settings, store)
    ctx.bundle()  # load once at start-up, not at import
    app = dash.Dash(__name__, title="民生地图 Minsheng Map", suppress_callback_exceptions=True,
                    update_title=None)
    app.layout = layout.shell()
    errors.register(app, ctx)
    auth.register(app, ctx)
    layout.register(app, ctx, pages={"/present": presentation.layout})
    views.register(app, ctx)
    planner_view.register(app, ctx)
    import_view.register(app, ctx)
    presentation.register(app, ctx)
    exports.register(app, ctx)
    app.server.config["MINSHENG_CONTEXT"] = ctx
    return app


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
    if settings.require_login and settings.secret_key == Settings().secret_key:
        print("warning: set MINSHENG_SECRET_KEY to a long random value; sessions are signed with it",
              file=sys.stderr)
    app = create_app(settings)
    print(f"Minsheng Map ready in {time.perf_counter() - t0:.2f}s: http://{settings.host}:{settings.port}/",
          file=sys.stderr, flush=True)
    app.run(host=settings.host, port=settings.port, debug=settings.debug)
    return 0


if __name__ == "__main__":
    sys.exit(main())
