"""Login, logout, the signed session and per-request user; export routes guarded by role.

Flask's session cookie is signed with settings.secret_key; passwords are checked against
scrypt hashes in the store's `users` table. Every login and every export of personal data
goes to the audit log (never the password, never the exported personal data)."""
from __future__ import annotations

import csv
import html as _html
import io

import flask

from data.catalogue import key_groups
from minsheng.auth import ANONYMOUS, User, authenticate, find_user
from minsheng.i18n import t

OPEN_PATHS = ("/login", "/logout", "/assets/", "/_dash-component-suites/", "/_favicon.ico", "/_dash-dependencies")


def current_user(ctx) -> User:
    try:
        name = flask.session.get("user")
    except RuntimeError:  # outside a request (tests calling view functions directly)
        return ANONYMOUS
    if not name:
        return ANONYMOUS
    return find_user(ctx.bundle().users, name) or ANONYMOUS


def _login_page(lang: str, error: str = "") -> str:
    other = "en" if lang == "zh" else "zh"
    err = f'<p class="err">{_html.escape(error)}</p>' if error else ""
    return f"""<!doctype html><html lang="{'zh-CN' if lang == 'zh' else 'en'}"><head><meta charset="utf-8">
<title>{t('login', lang)} · {t('title', lang)}</title><link rel="stylesheet" href="/assets/style.css"></head>
<body class="login-body"><form class="login" method="post" action="/login?lang={lang}">
<h1>{t('title', lang)}</h1><h2>{t('login', lang)}</h2>{err}
<label>{t('username', lang)}<input name="username" id="username" autocomplete="username" required></label>
<label>{t('password', lang)}<input name="password" id="password" type="password" autocomplete="current-password" required></label>
<button type="submit" id="login-submit">{t('login', lang)}</button>
<p><a href="/login?lang={other}">{'English' if lang == 'zh' else '中文'}</a></p></form></body></html>"""


def register(app, ctx):
    server = app.server
    server.secret_key = ctx.settings.secret_key
    server.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax")

    @server.before_request
    def require_login():
        if not ctx.settings.require_login or flask.session.get("user"):
            return None
        path = flask.request.path
        if path.startswith(OPEN_PATHS):
            return None
        if path.startswith("/_dash-") or path.startswith("/export/"):
            return flask.jsonify({"error": "login required"}), 401
        return flask.redirect(f"/login?next={flask.request.full_path}")

    @server.route("/login", methods=["GET", "POST"])
    def login():
        lang = flask.request.args.get("lang", ctx.settings.language)
        lang = lang if lang in ("zh", "en") else "zh"
        if flask.request.method == "GET":
            return _login_page(lang)
        username = flask.request.form.get("username", "")
        user = authenticate(ctx.bundle().users, username, flask.request.form.get("password", ""))
        if user is None:
            ctx.store.append_audit(username[:64] or "-", "login_failed", "session", "")
            return _login_page(lang, t("login_failed", lang)), 401
        flask.session.clear()
        flask.session["user"] = user.username
        ctx.store.append_audit(user.username, "login", "session", f"role={user.role}")
        ctx.reload()
        nxt = flask.request.args.get("next", "/")
        return flask.redirect(nxt if nxt.startswith("/") and not nxt.startswith("//") else "/")

    @server.route("/logout")
    def logout():
        flask.session.clear()
        return flask.redirect("/")

    @server.route("/export/households/<plan_id>/<grid_id>.csv")
    def export_households(plan_id, grid_id):
        """A grid's household ledger: only for a user allowed to see that grid's personal data."""
        user = current_user(ctx)
        b = ctx.bundle()
        grids = b.plan_grids(plan_id)
        if grid_id not in set(grids["id"]):
            return flask.jsonify({"error": f"unknown grid {grid_id} in plan {plan_id}"}), 404
        parents = dict(zip(grids["id"], grids["parent_id"]))
        if not user.may_see_personal(grid_id, parents):
            ctx.store.append_audit(user.username or "anonymous", "export_refused", f"grid:{grid_id}", "")
            return flask.jsonify({"error": "forbidden: your role may not export this grid's households"}), 403
        from data.exporters.common import neutralise_cell  # formula-leading cells stay text (issue 12)
        hh = b.grid_households(plan_id, grid_id)
        labels = {g.key: g.zh for g in key_groups()}
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["户编号", "楼栋", "单元", "房号", "人数", "重点人群", "户主", "电话", "合成数据"])
        for r in hh.itertuples():
            w.writerow(map(neutralise_cell, [r.id, r.building_id, r.unit, r.room, r.persons,
                                             ";".join(labels.get(k, k) for k in r.tags), r.head_name, r.phone,
                                             "是" if r.synthetic else "否"]))
        ctx.store.append_audit(user.username, "export_personal", f"grid:{grid_id}", f"households={len(hh)}")
        ctx.reload()
        return flask.Response("\ufeff" + buf.getvalue(), mimetype="text/csv",
                              headers={"Content-Disposition": f"attachment; filename=households-{grid_id}.csv"})
