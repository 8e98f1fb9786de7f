"""Sign-in, sign-out, server-side sessions, the per-request user, what each user may see of
personal data, the closed-dashboard guard, security headers and the grid ledger export.

Sessions live in the store (data/auth_store.py): the cookie (signed with the secret key of
minsheng/secret_key.py) holds only a random session token and the CSRF token of the forms.
Logout, "sign out everywhere", a password change and removing the user end sessions at once;
sessions also end after settings.session_idle_minutes unused and session_absolute_hours after
sign-in. Signing in reads one user row, checks the throttle, and writes the session row and its
audit row in one transaction: if the audit row cannot be written, there is no session and the
answer is a clear 503 page. Failed sign-ins are throttled per account and per client address;
their audit rows name an existing account or a fixed placeholder, never what was typed.

Personal data of a grid worker: households of buildings in the worker's grid of the ADOPTED
plan only (visible_households), whatever plan or grid id the browser sends; a draft or imported
plan can never widen it."""
from __future__ import annotations

import csv
import hmac
import html as _html
import io
import logging
import math
import secrets
from urllib.parse import urlencode, urlsplit

import flask

from data import auth_store
from minsheng.auth import ANONYMOUS, User, adopted_plan_id, authenticate, user_from_row
from minsheng.i18n import t

log = logging.getLogger(__name__)

OPEN_EXACT = frozenset({"/login", "/logout", "/_favicon.ico"})
OPEN_PREFIXES = ("/assets/", "/_dash-component-suites/")
NO_STORE_PREFIXES = ("/_dash-", "/export/", "/login", "/logout")
MAX_PASSWORD = 1024
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSP = "frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'"


# -- paths and redirects -------------------------------------------------------------------
def is_open_path(path: str) -> bool:
    """Paths served to anonymous visitors of a closed dashboard: exactly the login and logout
    pages and the favicon, and the static files under /assets/ and /_dash-component-suites/
    (no ``..``, ``.`` or empty segment). Nothing of the callback graph (/_dash-layout,
    /_dash-dependencies, /_dash-update-component)."""
    if path in OPEN_EXACT:
        return True
    if not path.startswith(OPEN_PREFIXES) or "\\" in path or "\x00" in path:
        return False
    segments = path.split("/")[1:]
    return all(s not in ("", ".", "..") for s in segments)


def safe_next(raw) -> str:
    """Where to go after signing in: a path on this site, else "/". Refuses absolute and
    scheme-relative URLs, backslashes and every control or space character (browsers drop
    tabs and newlines, so ``/\\t/host`` would become ``//host``)."""
    if not isinstance(raw, str) or not raw.startswith("/") or len(raw) > 2048:
        return "/"
    if any(c in raw for c in "\\") or any(ord(c) < 0x21 or ord(c) == 0x7F for c in raw):
        return "/"
    if raw.startswith("//"):
        return "/"
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc:
        return "/"
    return raw


def _lang() -> str:
    lang = flask.request.args.get("lang", "")
    return lang if lang in ("zh", "en") else flask.current_app.config.get("MINSHENG_LANG", "zh")


# -- CSRF ----------------------------------------------------------------------------------
def csrf_token() -> str:
    """The session's CSRF token (created on first use), for every form that POSTs."""
    tok = flask.session.get("csrf")
    if not isinstance(tok, str) or len(tok) < 32:
        tok = secrets.token_urlsafe(32)
        flask.session["csrf"] = tok
    return tok


def csrf_ok() -> bool:
    sent = flask.request.form.get("csrf", "")
    tok = flask.session.get("csrf")
    return isinstance(tok, str) and len(tok) >= 32 and hmac.compare_digest(sent.encode(), tok.encode())


# -- the user of this request ---------------------------------------------------------------
def current_user(ctx) -> User:
    """The signed-in user of this request (looked up in the store once per request), or ANONYMOUS."""
    if not flask.has_request_context():  # a Celery job (no request), or a test calling a view directly
        return job_user(ctx)
    cached = flask.g.get("minsheng_user")
    if cached is not None:
        return cached
    user = ANONYMOUS
    token = flask.session.get("sid")
    if token:
        s = ctx.settings
        try:
            row = auth_store.session_user(ctx.store, token, idle_s=s.session_idle_minutes * 60,
                                          absolute_s=s.session_absolute_hours * 3600)
        except auth_store.AuthStoreError as e:
            log.warning("session lookup failed: %s", e)  # fail closed: anonymous
            row = None
        user = user_from_row(row) or ANONYMOUS
        if user.anonymous:
            flask.session.pop("sid", None)
    flask.g.minsheng_user = user
    return user


def job_user(ctx) -> User:
    """The user of a background job run where there is no request (a Celery worker): Dash hands
    the job the cookies of the request that started it; the signed session cookie is checked
    with the app's key and its server-side session looked up as for a request (revoked or
    expired: anonymous). Anywhere else: anonymous."""
    ref = getattr(ctx, "server_ref", None)
    server = ref() if ref is not None else None
    if server is None:
        return ANONYMOUS
    try:
        from dash import callback_context
        cookies = callback_context.cookies or {}
    except Exception:  # noqa: BLE001 - no callback context at all
        return ANONYMOUS
    raw = cookies.get(server.config.get("SESSION_COOKIE_NAME") or "session")
    if not raw:
        return ANONYMOUS
    from flask.sessions import SecureCookieSessionInterface
    ser = SecureCookieSessionInterface().get_signing_serializer(server)
    try:
        data = ser.loads(raw, max_age=int(server.permanent_session_lifetime.total_seconds())) if ser else None
    except Exception:  # noqa: BLE001 - forged, expired or foreign cookie: anonymous
        return ANONYMOUS
    token = data.get("sid") if isinstance(data, dict) else None
    if not token:
        return ANONYMOUS
    s = ctx.settings
    try:
        row = auth_store.session_user(ctx.store, token, idle_s=s.session_idle_minutes * 60,
                                      absolute_s=s.session_absolute_hours * 3600)
    except auth_store.AuthStoreError:
        return ANONYMOUS
    return user_from_row(row) or ANONYMOUS


def visible_households(ctx, user: User, plan_id, grid_id):
    """The households of grid ``grid_id`` of plan ``plan_id`` this user may see with names,
    phones and sensitive tags, or None when there are none. Admins: all of them. Grid workers:
    only those living in buildings of their own grid in the ADOPTED plan (a draft, an imported
    or a crafted plan reusing the worker's grid id shows nothing more). Others: None."""
    scope = user.personal_scope
    if not scope or not isinstance(plan_id, str) or not isinstance(grid_id, str):
        return None
    b = ctx.bundle()
    wanted = ctx.store.grid_households(plan_id, grid_id)  # on demand, through the building index
    if scope == "all":
        return wanted
    adopted = adopted_plan_id(b.plans)
    if adopted is None:
        return None
    own = ctx.cached("own_household_ids", (adopted, user.grid_id),
                     lambda: frozenset(ctx.store.grid_households(adopted, user.grid_id)["id"]))
    hh = wanted[wanted["id"].isin(own)]
    return hh if len(hh) else None


def audit_refusal(ctx, who: str, action: str, obj: str, detail: str = "") -> None:
    """Record a refused request; the refusal stands even when the audit log cannot be written."""
    try:
        auth_store.append_audit(ctx.store, who, action, obj, detail)
    except auth_store.AuthStoreError as e:
        log.error("could not record %s on %s: %s", action, obj, e)


# -- pages -----------------------------------------------------------------------------------
def _page(lang: str, title: str, body: str) -> str:
    return (f'<!doctype html><html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8">'
            f'<title>{_html.escape(title)} · {_html.escape(t("title", lang))}</title>'
            f'<link rel="stylesheet" href="/assets/style.css"></head><body class="login-body">{body}</body></html>')


def _login_page(lang: str, error: str = "", nxt: str = "/") -> str:
    other = "en" if lang == "zh" else "zh"
    err = f'<p class="err" id="login-error">{_html.escape(error)}</p>' if error else ""
    q = {"lang": lang, **({"next": nxt} if nxt and nxt != "/" else {})}
    action = _html.escape("/login?" + urlencode(q), quote=True)
    return _page(lang, t("login", lang), f"""<form class="login" method="post" action="{action}">
<h1>{_html.escape(t('title', lang))}</h1><h2>{_html.escape(t('login', lang))}</h2>{err}
<input type="hidden" name="csrf" value="{_html.escape(csrf_token(), quote=True)}">
<label>{_html.escape(t('username', lang))}<input name="username" id="username" autocomplete="username" maxlength="64" required></label>
<label>{_html.escape(t('password', lang))}<input name="password" id="password" type="password" autocomplete="current-password" required></label>
<button type="submit" id="login-submit">{_html.escape(t('login', lang))}</button>
<p><a href="/login?lang={other}">{'English' if lang == 'zh' else '中文'}</a></p></form>""")


def _logout_page(lang: str, error: str = "") -> str:
    err = f'<p class="err" id="logout-error">{_html.escape(error)}</p>' if error else ""
    tok = _html.escape(csrf_token(), quote=True)
    return _page(lang, t("logout", lang), f"""<form class="login" method="post" action="/logout?lang={lang}">
<h1>{_html.escape(t('title', lang))}</h1><h2>{_html.escape(t('logout_confirm', lang))}</h2>{err}
<input type="hidden" name="csrf" value="{tok}">
<button type="submit" id="logout-submit">{_html.escape(t('logout', lang))}</button>
<button type="submit" name="everywhere" value="1" id="logout-everywhere">{_html.escape(t('logout_everywhere', lang))}</button>
<p><a href="/?lang={lang}">{_html.escape(t('present_exit', lang))}</a></p></form>""")


def _client() -> str:
    return (flask.request.remote_addr or "-")[:64]


def register(app, ctx):
    server = app.server
    s = ctx.settings
    server.secret_key = s.secret_key
    server.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                         SESSION_COOKIE_SECURE=bool(s.secure_cookies), MINSHENG_LANG=s.language)
    if s.secure_cookies:
        server.config["SESSION_COOKIE_NAME"] = "__Host-session"  # Secure, host-only, Path=/
    throttle = auth_store.Throttle.from_settings(s)
    if s.trusted_proxies:  # the client address (throttling) and scheme as the proxy saw them
        from werkzeug.middleware.proxy_fix import ProxyFix
        n = int(s.trusted_proxies)
        server.wsgi_app = ProxyFix(server.wsgi_app, x_for=n, x_proto=n, x_host=n)

    @server.before_request
    def guard():
        req = flask.request
        unsafe = req.method not in SAFE_METHODS
        if unsafe:
            origin = req.headers.get("Origin")
            if origin is not None and urlsplit(origin).netloc != req.host:
                return flask.jsonify({"error": "cross-site request refused"}), 403
        if s.require_login and not is_open_path(req.path) and current_user(ctx).anonymous:
            if req.path.startswith("/_") or req.path.startswith("/export/") or unsafe:
                return flask.jsonify({"error": t("login_required", _lang())}), 401
            nxt = req.path + (f"?{req.query_string.decode('latin-1')}" if req.query_string else "")
            return flask.redirect("/login?" + urlencode({"next": safe_next(nxt)}))
        if unsafe and req.path == "/_dash-update-component" and not req.is_json:
            return flask.jsonify({"error": "callbacks take application/json"}), 400
        return None

    @server.after_request
    def headers(resp):
        h = resp.headers
        h.setdefault("X-Frame-Options", "DENY")
        h.setdefault("Content-Security-Policy", CSP)
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("Referrer-Policy", "same-origin")
        if s.secure_cookies:
            h.setdefault("Strict-Transport-Security", "max-age=31536000")
        if flask.request.path.startswith(NO_STORE_PREFIXES):
            h["Cache-Control"] = "no-store"
        return resp

    @server.route("/login", methods=["GET", "POST"])
    def login():
        lang = _lang()
        nxt = safe_next(flask.request.args.get("next", "/"))
        if flask.request.method == "GET":
            return _login_page(lang, nxt=nxt)
        if not csrf_ok():
            return _login_page(lang, t("csrf_failed", lang), nxt), 400
        username = flask.request.form.get("username", "")
        password = flask.request.form.get("password", "")
        client = _client()
        try:
            account = auth_store.get_user(ctx.store, username)  # None for a malformed name (never queried)
            logged = auth_store.failed_login_name(username, account)
            wait = auth_store.locked_for(ctx.store, account and account["username"], client, throttle=throttle)
            if wait > 0:
                auth_store.record_throttled(ctx.store, logged)
                return _login_page(lang, t("login_locked", lang).format(minutes=max(1, math.ceil(wait / 60))),
                                   nxt), 429
            if not auth_store.valid_username(username):
                auth_store.record_failed_login(ctx.store, logged, None, client, throttle=throttle)
                return _login_page(lang, t("login_bad_name", lang), nxt), 400
            user = authenticate(account, password) if len(password) <= MAX_PASSWORD else None
            if user is None:
                auth_store.record_failed_login(ctx.store, logged, account and account["username"], client,
                                               throttle=throttle)
                return _login_page(lang, t("login_failed", lang), nxt), 401
            token = secrets.token_urlsafe(32)
            auth_store.create_session(ctx.store, user.username, token, detail=f"role={user.role}")
        except auth_store.AuthStoreError as e:
            log.error("sign-in refused: %s", e)
            return _login_page(lang, t("login_unavailable", lang), nxt), 503
        flask.session.clear()   # a new cookie: no session fixation
        flask.session["sid"] = token
        csrf_token()
        return flask.redirect(nxt)

    @server.route("/logout", methods=["GET", "POST"])
    def logout():
        lang = _lang()
        user = current_user(ctx)
        if flask.request.method == "GET":
            return flask.redirect(f"/?lang={lang}") if user.anonymous else _logout_page(lang)
        if not csrf_ok():
            return _logout_page(lang, t("csrf_failed", lang)), 400
        token = flask.session.get("sid")
        try:
            if not user.anonymous and flask.request.form.get("everywhere"):
                auth_store.delete_user_sessions(ctx.store, user.username,
                                                audit=(user.username, "logout_everywhere", "session", ""))
            elif token and not user.anonymous:
                auth_store.delete_session(ctx.store, token, audit=(user.username, "logout", "session", ""))
        except auth_store.AuthStoreError as e:
            log.error("sign-out failed: %s", e)
            return _logout_page(lang, t("login_unavailable", lang)), 503
        flask.session.clear()
        return flask.redirect(f"/login?lang={lang}" if s.require_login else f"/?lang={lang}")

    @server.route("/export/households/<plan_id>/<grid_id>.csv")
    def export_households(plan_id, grid_id):
        """A grid's household ledger: only the households this user may see (visible_households)."""
        user = current_user(ctx)
        who = user.username or "anonymous"
        b = ctx.bundle()
        grids = b.plan_grids(plan_id)
        if grid_id not in set(grids["id"]):
            return flask.jsonify({"error": f"unknown grid {grid_id} in plan {plan_id}"}), 404
        hh = visible_households(ctx, user, plan_id, grid_id)
        if hh is None:
            audit_refusal(ctx, who, "export_refused", f"grid:{grid_id}", f"plan={plan_id}")
            return flask.jsonify({"error": "forbidden: your role may not export this grid's households"}), 403
        from data.exporters.common import neutralise_cell  # formula-leading cells stay text (issue 12)
        try:  # fail closed: no personal data leaves without its audit row
            auth_store.append_audit(ctx.store, who, "export_personal", f"grid:{grid_id}",
                                    f"plan={plan_id} households={len(hh)}")
        except auth_store.AuthStoreError as e:
            log.error("export refused, audit log unavailable: %s", e)
            return flask.jsonify({"error": t("audit_unavailable", _lang())}), 503
        labels = ctx.settings.catalogue().key_group_labels("zh")
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["户编号", "楼栋", "单元", "房号", "人数", "重点人群", "户主", "电话", "合成数据"])
        for r in hh.itertuples():
            w.writerow(map(neutralise_cell, [r.id, r.building_id, r.unit, r.room, r.persons,
                                             ";".join(labels.get(k, k) for k in r.tags), r.head_name, r.phone,
                                             "是" if r.synthetic else "否"]))
        return flask.Response("\ufeff" + buf.getvalue(), mimetype="text/csv",
                              headers={"Content-Disposition": f"attachment; filename=households-{grid_id}.csv"})
