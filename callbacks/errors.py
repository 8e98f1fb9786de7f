"""Every bad request gets a clear 4xx answer in the UI language, never a 500 or a traceback.

- BadInput (raised by callbacks/views.read_params and others for malformed callback inputs: an
  unknown view, minutes as text or negative, a dict as grid id ...) -> 400 with its message.
- A body over the configured limit -> 413, checked from Content-Length before anything is read
  (Flask's MAX_CONTENT_LENGTH; anonymous visitors, who cannot upload, get the smaller
  settings.max_anonymous_request_kb limit).
- Any other exception while answering -> 400 with a generic message; the server log gets the
  exception type and the code location only (never its message or the request: they may hold
  personal cell values).

Callback requests (/_dash-*) get JSON {"error": message}; other pages get a small HTML page.
The language is the request's ?lang=, else the callback's language store, else the default."""
from __future__ import annotations

import html as _html
import logging
import traceback

import flask
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from minsheng.i18n import t

log = logging.getLogger("minsheng.errors")


class BadInput(ValueError):
    """A malformed request value; the message is already in the UI language."""


def _lang(ctx) -> str:
    lang = flask.request.args.get("lang")
    if lang not in ("zh", "en"):
        lang = None
        try:  # the callback's language store (only when the body is already small enough to have been read)
            body = flask.request.get_json(silent=True, cache=True) if flask.request.content_length else None
        except Exception:  # noqa: BLE001
            body = None
        from callbacks import ids
        for item in (body or {}).get("inputs", []) + (body or {}).get("state", []) if isinstance(body, dict) else []:
            if isinstance(item, dict) and item.get("id") == ids.LANG and item.get("value") in ("zh", "en"):
                lang = item["value"]
    return lang or ctx.settings.language


def _answer(ctx, status: int, message: str):
    if flask.request.path.startswith("/_dash-"):
        return flask.jsonify({"error": message}), status
    lang = _lang(ctx)
    page = (f'<!doctype html><html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8">'
            f'<title>{_html.escape(t("title", lang))}</title></head><body style="font:18px sans-serif;margin:40px">'
            f'<h1>{_html.escape(t("title", lang))}</h1><p id="request-error">{_html.escape(message)}</p>'
            f'<p><a href="/?lang={lang}">{_html.escape(t("present_exit", lang))}</a></p></body></html>')
    return flask.Response(page, status=status, mimetype="text/html")


def _limit_text(n: int) -> str:
    return f"{n / 2**20:.0f} MiB" if n >= 2**20 else f"{n / 2**10:.0f} KiB"


def register(app, ctx):
    server = app.server
    s = ctx.settings
    server.config["MAX_CONTENT_LENGTH"] = int(s.max_request_mb * 2**20)

    @server.before_request
    def smaller_limit_for_anonymous():
        """Anonymous visitors cannot upload: their requests are small. Checked from the
        Content-Length header before the body is read."""
        if flask.session.get("user"):
            return None
        limit = int(s.max_anonymous_request_kb * 2**10)
        flask.request.max_content_length = limit
        n = flask.request.content_length
        if n is not None and n > limit:
            raise RequestEntityTooLarge()
        return None

    @server.errorhandler(BadInput)
    def bad_input(e):
        return _answer(ctx, 400, t("bad_request", _lang(ctx)).format(detail=str(e)))

    @server.errorhandler(RequestEntityTooLarge)
    def too_large(e):
        limit = flask.request.max_content_length or server.config["MAX_CONTENT_LENGTH"]
        lang = flask.request.args.get("lang") if flask.request.args.get("lang") in ("zh", "en") else s.language
        return _answer(ctx, 413, t("too_large", lang).format(limit=_limit_text(limit)))

    @server.errorhandler(HTTPException)
    def http_error(e):
        if e.code is not None and e.code < 500:
            lang = _lang(ctx)
            msg = t("not_found", lang) if e.code == 404 else t("bad_request_generic", lang)
            return _answer(ctx, e.code, msg)
        return unexpected(e)

    @server.errorhandler(Exception)
    def unexpected(e):
        where = traceback.extract_tb(e.__traceback__)[-3:]
        log.error("request %s failed: %s at %s", flask.request.path, type(e).__name__,
                  " <- ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}" for f in reversed(where)))
        return _answer(ctx, 400, t("bad_request_generic", _lang(ctx)))
