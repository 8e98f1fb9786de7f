"""GET /healthz: is the store reachable, which dataset version is stored and which one this
process serves. 200 {"status": "ok", ...}; 503 {"status": "unavailable"} when the store cannot be
read (for load balancers, systemd/compose health checks). Answered before any login check and
without a session: it reveals versions only."""
from __future__ import annotations

import flask

HEALTH_PATH = "/healthz"


def register(app, ctx):
    server = app.server

    @server.before_request
    def healthz():
        if flask.request.path != HEALTH_PATH:
            return None
        try:
            stored = ctx.store.version()
        except Exception as e:  # noqa: BLE001  the store is down: say so, never a traceback
            return flask.jsonify({"status": "unavailable", "store": type(ctx.store).__name__,
                                  "error": type(e).__name__}), 503
        b = ctx.bundle()
        body = {"status": "ok", "store": type(ctx.store).__name__, "dataset_version": stored,
                "served_version": b.version, "current": stored == b.version}
        r = flask.jsonify(body)
        r.headers["Cache-Control"] = "no-store"
        return r
