"""Minsheng Map (民生地图) dashboard.  `python app.py` opens the shipped sample.

create_app(settings) builds the Dash app, its layout and callbacks; nothing is loaded at import.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import dash
import flask

from minsheng.settings import Settings, from_env


def task_dir(settings: Settings) -> str:
    """Where background jobs keep their state: settings.task_dir, else one folder per project
    in the system temp dir, shared by every worker process serving that project."""
    import hashlib
    import tempfile
    if settings.task_dir:
        return settings.task_dir
    key = settings.dsn or str(settings.data_path.resolve())
    return os.path.join(tempfile.gettempdir(), "minsheng-tasks-" + hashlib.sha256(key.encode()).hexdigest()[:12])


def background_manager(settings: Settings):
    """Runs long callbacks (imports, PNG/PDF exports, proposals, the joint-meeting pack) outside the request: Celery with
    Redis when settings.celery_broker is set (every gunicorn worker and the celery worker share
    it; a revoked job gets SIGTERM, which data/scratch turns into an exception so its private
    folder is removed), else diskcache with worker subprocesses (one machine; a cancelled job is
    killed, then its private folders are removed: data/scratch.sweep)."""
    if settings.celery_broker:
        from celery import Celery
        from dash import CeleryManager
        celery_app = Celery("minsheng", broker=settings.celery_broker, backend=settings.celery_broker)
        return CeleryManager(celery_app)
    import diskcache
    from dash import DiskcacheManager

    class Manager(DiskcacheManager):
        def terminate_job(self, job):
            import psutil
            pids = {int(job)} if job is not None else set()
            try:  # the job and what it started (a folder is named after the process that made it)
                pids |= {c.pid for c in psutil.Process(int(job)).children(recursive=True)} if pids else set()
            except psutil.Error:
                pass
            super().terminate_job(job)
            if pids:
                from data.scratch import sweep

                def running(pid):
                    try:
                        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
                    except psutil.Error:
                        return False
                deadline = time.monotonic() + 5  # a killed process may take a moment to go
                while any(running(p) for p in pids) and time.monotonic() < deadline:
                    time.sleep(0.05)
                for p in pids:
                    sweep(p)  # the killed job ran no finally: its upload/export folders go now
    return Manager(diskcache.Cache(task_dir(settings)), expire=3600)


def create_app(settings: Settings | None = None, store=None, warm: bool = False) -> dash.Dash:
    from callbacks import (auth, circle_view, errors, exports, health, import_view, pack_view, planner_view,
                           presentation, views)
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
    if warm:  # served: the first answers' figures are computed in the background (callbacks/lod.warm)
        from callbacks.lod import warm_in_background
        warm_in_background(ctx)
    from data.scratch import sweep
    sweep()  # private upload/export folders left by processes that no longer exist
    app = dash.Dash(__name__, title="民生地图 Minsheng Map", suppress_callback_exceptions=True, compress=True,
                    update_title=None, background_callback_manager=background_manager(settings))
    app.layout = layout.shell()

    @app.server.before_request
    def _this_app():
        # Dash signs background-job handles with dash.get_app()'s key; with more than one app in a
        # process (the test suite) that may be another app, and then a cancel cannot verify the
        # handle and never stops the job. Every request of this server makes this app current.
        from dash._get_app import app_context
        flask.g.minsheng_app_token = app_context.set(app)

    @app.server.teardown_request
    def _no_longer_current(_exc):
        token = flask.g.pop("minsheng_app_token", None)
        if token is not None:
            from dash._get_app import app_context
            app_context.reset(token)  # hold no reference to the app once its request is done
    errors.register(app, ctx)
    health.register(app, ctx)  # before auth: /healthz needs no session
    auth.register(app, ctx)
    layout.register(app, ctx, pages={"/present": presentation.layout})
    views.register(app, ctx)
    circle_view.register(app, ctx)
    planner_view.register(app, ctx)
    import_view.register(app, ctx)
    presentation.register(app, ctx)
    exports.register(app, ctx)
    pack_view.register(app, ctx)
    app.server.config["MINSHENG_CONTEXT"] = ctx
    import weakref
    # background jobs without a request (Celery) check the session cookie with the server's key;
    # a weak reference, so the context does not keep the app (and its store's connections) alive
    ctx.server_ref = weakref.ref(app.server)
    return app


def wsgi():
    """WSGI application factory for a production server, settings from the environment
    (MINSHENG_DATA or DATABASE_URL, MINSHENG_SECRET_KEY, ...): ``gunicorn 'app:wsgi()'``."""
    from minsheng.settings import SettingsError
    try:
        settings = from_env()
    except SettingsError as e:  # gunicorn would print a traceback: a message and exit instead
        print(f"设置文件错误 / settings error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    return create_app(settings, warm=True).server


def add_serve_arguments(p) -> None:
    """Options of `python app.py` and `minsheng serve` (one list for both)."""
    p.add_argument("--data", help="project GeoPackage (default: shipped Haidian sample)")
    p.add_argument("--dsn", help="PostgreSQL/PostGIS connection string (or DATABASE_URL)")
    p.add_argument("--settings", help="deployment settings file (TOML; or MINSHENG_SETTINGS)")
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--lang", choices=["zh", "en"], default=None)
    p.add_argument("--require-login", action="store_true",
                   help="every page needs a signed-in user (default when --dsn/DATABASE_URL is used)")
    p.add_argument("--workers", type=int, default=None, help="gunicorn worker processes (default: settings, 2)")
    p.add_argument("--threads", type=int, default=None, help="gunicorn threads per worker (default: settings, 4)")
    p.add_argument("--dev", action="store_true",
                   help="Flask's development server (one process; for development only) instead of gunicorn")
    p.add_argument("--debug", action="store_true", help="Dash debug mode (implies --dev)")


def settings_from_args(a) -> Settings:
    settings = from_env(settings_file=a.settings, data=a.data, dsn=a.dsn, host=a.host, port=a.port,
                        language=a.lang, debug=a.debug or None, require_login=a.require_login or None,
                        workers=a.workers, threads=a.threads)
    if settings.dsn and not a.require_login and os.environ.get("MINSHENG_REQUIRE_LOGIN") not in ("0", "false"):
        settings = settings.with_(require_login=True)
    return settings


def gunicorn_options(settings: Settings) -> dict:
    """gunicorn settings for the dashboard: threaded workers (gthread); each worker opens the
    store and loads the dataset after the fork (no connection crosses a fork)."""
    return {"bind": f"{settings.host}:{settings.port}", "workers": max(1, settings.workers),
            "threads": max(1, settings.threads), "worker_class": "gthread", "timeout": 120,
            "graceful_timeout": 30, "preload_app": False, "accesslog": None, "errorlog": "-",
            "loglevel": "info", "proc_name": "minsheng"}


def run_gunicorn(settings: Settings) -> int:
    from gunicorn.app.base import BaseApplication

    class Dashboard(BaseApplication):
        def load_config(self):
            for k, v in gunicorn_options(settings).items():
                self.cfg.set(k, v)

        def load(self):
            return create_app(settings, warm=True).server

    Dashboard().run()
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Minsheng Map dashboard (default: the shipped sample)")
    add_serve_arguments(p)
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    from minsheng.settings import SettingsError
    try:
        settings = settings_from_args(a)
    except SettingsError as e:
        print(f"设置文件错误 / settings error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from minsheng.secret_key import InsecureSecret
    try:  # resolved once here, so every gunicorn worker signs sessions with the same key
        from data import auth_store
        from data.store import open_store
        from minsheng import secret_key
        settings = settings.with_(secret_key=secret_key.resolve(
            settings, anyone_can_sign_in=settings.require_login or auth_store.has_users(open_store(settings))))
    except InsecureSecret as e:
        print(f"error: refusing to start: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - a store that cannot be opened: a message, not a traceback
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not (a.dev or a.debug):
        print(f"Minsheng Map (gunicorn, {settings.workers} worker(s) x {settings.threads} threads): "
              f"http://{settings.host}:{settings.port}/", file=sys.stderr, flush=True)
        return run_gunicorn(settings)
    try:
        app = create_app(settings, warm=True)
    except InsecureSecret as e:
        print(f"error: refusing to start: {e}", file=sys.stderr)
        return 2
    print(f"Minsheng Map ready in {time.perf_counter() - t0:.2f}s (development server): "
          f"http://{settings.host}:{settings.port}/", file=sys.stderr, flush=True)
    app.run(host=settings.host, port=settings.port, debug=settings.debug)
    return 0


if __name__ == "__main__":
    sys.exit(main())
