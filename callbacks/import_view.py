"""Import view: users' own grid polygons (planners, admins) and household ledgers (admins:
personal data) uploaded in the browser, with the same importers and reports as the CLI.
Every error names the file, row and field and leaves the store as it was.

Imports are Dash background callbacks (app.background_manager: diskcache by default, Celery +
Redis when configured): they run outside the web request, show their stage in a progress bar and
can be cancelled; a cancelled import is a killed process whose store transaction never commits,
so nothing is changed."""
from __future__ import annotations

from dash import dcc, html

from callbacks.widgets import dropdown
from callbacks import ids, overview
from data.importers.messages import localized
from minsheng.i18n import t

traces = overview.traces
DATUMS = ("auto", "wgs84", "gcj02", "bd09")


def upload_limit(ctx) -> int:
    """Largest file the browser may send: the request limit less base64's 4/3 and a margin."""
    return int(ctx.settings.max_request_mb * 2**20 * 3 / 4) - 2**16


def panel(ctx, p, user) -> list:
    if not user.can("plan"):
        return [html.H2(t("tab_import", p.lang)), html.P(t("planner_forbidden", p.lang), id="import-forbidden")]
    out = [
        html.H2(t("tab_import", p.lang)),
        html.H3(t("import_grids", p.lang)),
        html.P(t("import_grids_help", p.lang), className="hint"),
        dropdown(p.lang, id=ids.IMPORT_DATUM, value="auto", clearable=False,
                     options=[{"label": t(f"datum_{d}", p.lang), "value": d} for d in DATUMS]),
        dcc.Checklist(id=ids.IMPORT_ALLOW_EMPTY, value=[],
                      options=[{"label": t("imp_allow_empty", p.lang), "value": "yes"}]),
        dcc.Upload(id=ids.UPLOAD_GRIDS, className="upload", max_size=upload_limit(ctx),
                   children=html.Div(t("upload_hint", p.lang))),
        *_progress(ids.IMPORT_GRIDS_PROGRESS, ids.IMPORT_GRIDS_CANCEL, p.lang),
        html.Div(id=ids.IMPORT_GRIDS_RESULT, className="message"),
    ]
    if user.can("all_personal"):
        out += [html.H3(t("import_households", p.lang)),
                html.P(t("import_households_help", p.lang), className="hint"),
                dcc.Checklist(id=ids.IMPORT_REPLACE_ROOMS, value=[],
                              options=[{"label": t("imp_replace_rooms", p.lang), "value": "yes"}]),
                dcc.Upload(id=ids.UPLOAD_HOUSEHOLDS, className="upload", max_size=upload_limit(ctx),
                           children=html.Div(t("upload_hint", p.lang))),
                *_progress(ids.IMPORT_HOUSEHOLDS_PROGRESS, ids.IMPORT_HOUSEHOLDS_CANCEL, p.lang),
                html.Div(id=ids.IMPORT_HOUSEHOLDS_RESULT, className="message")]
    return out


STAGES = 3  # reading the upload, importing (checks and one store transaction), report


def _progress(pid: str, cancel_id: str, lang: str) -> list:
    from callbacks.jobs import progress_box
    return [progress_box(pid, cancel_id, lang, stages=STAGES, label="import_progress", cancel="import_cancel")]


def _background(pid: str, cancel_id: str, upload_id: str) -> dict:
    """The background-callback options of one upload: progress bar, cancel button, and the
    upload disabled while it runs."""
    from callbacks.jobs import background_options
    return background_options(pid, cancel_id, (upload_id,))


def _error(e, lang) -> html.Div:
    return html.Div([html.B(t("import_failed", lang)), html.Br(), localized(e, lang)], className="error")


def grids_report(r, lang) -> list:
    rows = [html.Tr([html.Td(m.building_id), html.Td(t(f"misfit_{m.status}", lang)), html.Td(m.grid_id or "—"),
                     html.Td(f"{100 * m.share:.0f}%" if m.share == m.share else "—")])
            for m in r.misfits.head(30).itertuples()]
    return [html.P(t("import_grids_done", lang).format(plan=r.plan_id), id="import-grids-done"),
            html.P(r.summary(lang)),
            *[html.P(localized(w, lang), className="hint") for w in r.warnings],
            html.Table(rows, className="ledger", id="import-misfits") if rows else html.P(t("all_fit", lang))]


def households_report(r, lang) -> list:
    rows = [html.Tr([html.Td(int(u.row)), html.Td(str(u.reason))]) for u in r.unmatched.head(30).itertuples()]
    return [html.P(r.summary(lang), id="import-households-done"),
            *[html.P(localized(w, lang), className="hint") for w in r.warnings],
            html.Table(rows, className="ledger", id="import-unmatched") if rows else html.P(t("all_matched", lang))]


def register(app, ctx):
    from dash import Input, Output, State, no_update

    from callbacks.auth import current_user
    from callbacks.planner_view import plan_options
    from data.bundle import DataError
    from data.importers.grids import import_grids
    from data.importers.households import import_households
    from data.importers.upload import decode_upload, uploaded_file
    from data.store import ConflictError

    @app.callback(Output(ids.IMPORT_GRIDS_RESULT, "children"), Output(ids.PLAN, "options", allow_duplicate=True),
                  Input(ids.UPLOAD_GRIDS, "contents"), State(ids.UPLOAD_GRIDS, "filename"),
                  State(ids.IMPORT_DATUM, "value"), State(ids.IMPORT_ALLOW_EMPTY, "value"), State(ids.LANG, "data"),
                  prevent_initial_call=True,
                  **_background(ids.IMPORT_GRIDS_PROGRESS, ids.IMPORT_GRIDS_CANCEL, ids.UPLOAD_GRIDS))
    def upload_grids(set_progress, contents, filename, datum, allow_empty, lang):
        lang = lang or "zh"
        user = current_user(ctx)
        if not user.can("plan"):
            return _error(t("planner_forbidden", lang), lang), no_update
        if not contents:
            return no_update, no_update
        try:
            set_progress("1")
            with uploaded_file(filename, decode_upload(contents)) as path:
                set_progress("2")
                report = import_grids(ctx.store, path, datum=datum or "auto", created_by=user.username,
                                      allow_empty=bool(allow_empty), settings=ctx.settings)
        except (DataError, ConflictError, ValueError) as e:
            return _error(e, lang), no_update
        set_progress("3")  # plan_options reads the store's new version (checked in ctx.bundle())
        return grids_report(report, lang), plan_options(ctx, lang)

    @app.callback(Output(ids.IMPORT_HOUSEHOLDS_RESULT, "children"), Input(ids.UPLOAD_HOUSEHOLDS, "contents"),
                  State(ids.UPLOAD_HOUSEHOLDS, "filename"), State(ids.IMPORT_REPLACE_ROOMS, "value"),
                  State(ids.LANG, "data"), prevent_initial_call=True,
                  **_background(ids.IMPORT_HOUSEHOLDS_PROGRESS, ids.IMPORT_HOUSEHOLDS_CANCEL, ids.UPLOAD_HOUSEHOLDS))
    def upload_households(set_progress, contents, filename, replace_rooms, lang):
        lang = lang or "zh"
        user = current_user(ctx)
        if not user.can("all_personal"):
            return _error(t("forbidden", lang), lang)
        if not contents:
            return no_update
        try:
            set_progress("1")
            with uploaded_file(filename, decode_upload(contents)) as path:
                set_progress("2")
                report = import_households(ctx.store, path, user=user.username, replace_rooms=bool(replace_rooms),
                                           catalogue=ctx.settings.catalogue())
        except (DataError, ConflictError, ValueError) as e:
            return _error(e, lang)
        set_progress("3")
        return households_report(report, lang)
