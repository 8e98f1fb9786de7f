"""The joint-meeting pack (联席会议材料) in the dashboard: a block in the header's export menu
(quarter, PDF or PPTX, exact figures for roles allowed) whose button starts a Dash background
callback (app.background_manager: diskcache by default, Celery + Redis when configured), as the
imports do (callbacks/import_view.py). The job shows its progress (a bar, and the steps or the
pages written of the total), can be cancelled, and hands the file to the browser through
dcc.Download (the callback's result travels through the manager's cache, so it reaches the
browser from any worker, Celery included).

Role checks are those of the /export/pack.<fmt> route (callbacks/exports.py), done once, here,
for both: every role that may view gets the aggregate pack (suppressed small cells, masked
names); exact counts and names only for a role allowed every grid's personal data (refusals
and personal packs go to the audit log); planners and admins freeze the quarter (write-once,
data/snapshots), other roles only read the previous quarter's snapshot. A cancelled job is a
killed process: the freeze is the job's last, single transaction, so a cancelled pack freezes
nothing."""
from __future__ import annotations

import base64
import logging
import traceback
from pathlib import Path

from dash import ALL, dcc, html

from callbacks import ids
from minsheng.i18n import t

log = logging.getLogger("minsheng.pack")
BUILD_SHARE = 60   # percent of the bar for building the pages; the rest for writing the file
FORMATS = ("pdf", "pptx")


class PackRefused(Exception):
    """The pack was not made: ``status`` (HTTP) and ``key`` (the i18n message)."""

    def __init__(self, status: int, key: str, detail: str = ""):
        super().__init__(key)
        self.status, self.key, self.detail = status, key, detail

    def text(self, lang: str) -> str:
        return self.detail or t(self.key, lang)


def allowed(user) -> bool:
    """Who gets the pack button (and the /export/pack route): every role that may view."""
    return user is not None and user.can("view")


def make_pack_file(ctx, user, quarter, fmt: str, lang: str, personal: bool, out_dir, progress=None) -> dict:
    """The pack of `quarter` as `fmt` in out_dir for `user` (role rules: module doc); the result
    of data.exporters.pack.make_pack. Raises PackRefused (403 personal data not allowed, 400 bad
    quarter or input, 503 no PDF renderer)."""
    from data.bundle import DataError
    from data.exporters import record_export
    from data.exporters.image import ChromiumMissing
    from data.exporters.pack import make_pack
    from data.snapshots import import_legacy, legacy_dir, normal_quarter
    who = user.username or "anonymous"
    if not allowed(user):
        raise PackRefused(403, "forbidden")
    if fmt not in FORMATS:
        raise PackRefused(404, "bad_value", t("bad_value", lang).format(field=t("pack_format", lang)))
    if personal and not user.can("all_personal"):
        from callbacks.auth import audit_refusal
        audit_refusal(ctx, who, "export_refused", "pack", f"{fmt} personal=1")
        raise PackRefused(403, "export_forbidden")
    try:
        quarter = normal_quarter(quarter)
    except DataError:
        raise PackRefused(400, "pack_bad_quarter") from None
    b = ctx.bundle()
    try:
        import_legacy(ctx.store, legacy_dir(ctx.settings), user=who)
        res = make_pack(b, ctx.settings, quarter, out_dir, lang=lang, personal=personal, formats=(fmt,),
                        store=ctx.store, user=who, freeze=user.can("plan"), progress=progress)
    except ChromiumMissing:
        raise PackRefused(503, "export_no_chromium") from None
    except (DataError, ValueError) as e:
        from data.importers.messages import localized
        raise PackRefused(400, "pack_failed", f"{t('pack_failed', lang)}: {localized(e, lang)}") from None
    if personal:  # an audit row: the dataset is unchanged
        record_export(ctx.store, fmt=f"pack-{fmt}", out=res["files"][fmt].name, user=who, allow_personal=True,
                      plan_id=b.adopted_plan_id())
    return res


def bar_progress(set_progress, lang: str):
    """make_pack's progress(done, total, what) as the bar's (value of 100, label): building the
    pages fills the first BUILD_SHARE percent, writing the file the rest; the label counts the
    steps, then the pages written. Reported only when it changes, never backwards."""
    last = {"value": -1, "label": None}

    def report(done, total, what):
        total = max(int(total), 1)
        done = min(max(int(done), 0), total)
        if what in FORMATS:
            value = BUILD_SHARE + (100 - BUILD_SHARE) * done // total
            label = t("pack_progress_pages", lang).format(fmt=what.upper(), done=done, total=total)
        else:
            value = BUILD_SHARE * done // total
            label = t("pack_progress", lang).format(done=done, total=total)
        value = max(value, last["value"])
        if value != last["value"] or label != last["label"]:
            last.update(value=value, label=label)
            set_progress((str(value), label))
    return report


def run_job(ctx, user, set_progress, quarter, fmt, lang, personal) -> tuple:
    """The background job: (dcc.Download data or None, the message). The file is read back
    into the result and its temporary folder removed before returning."""
    from callbacks.exports import MIMETYPES
    lang = lang if lang in ("zh", "en") else "zh"
    from data.scratch import private_dir
    # a private folder (data/scratch): removed on success, failure, SIGTERM and after a cancel's kill
    with private_dir("pack") as tmpdir:
        try:
            res = make_pack_file(ctx, user, quarter, fmt, lang, bool(personal), tmpdir,
                                 progress=bar_progress(set_progress, lang))
        except PackRefused as e:
            return None, html.Div(e.text(lang), className="error", id="pack-error")
        except Exception as e:  # noqa: BLE001 - a message in the UI, never a traceback (callbacks/errors.py)
            where = traceback.extract_tb(e.__traceback__)[-3:]
            log.error("pack job failed: %s at %s", type(e).__name__,
                      " <- ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}" for f in reversed(where)))
            return None, html.Div(t("pack_failed", lang), className="error", id="pack-error")
        out = Path(res["files"][fmt])
        data = {"content": base64.b64encode(out.read_bytes()).decode("ascii"), "filename": out.name,
                "base64": True, "type": MIMETYPES[fmt]}
    pages = len(res["pack"].pages)
    notes = [html.P(t("pack_ready", lang).format(name=out.name, pages=pages), id="pack-done")]
    if res["frozen_now"]:
        notes.append(html.P(t("pack_frozen", lang).format(quarter=res["quarter"]), className="hint"))
    elif res["refused"] is not None:
        notes.append(html.P(res["refused"].text(lang), className="hint", id="pack-already-frozen"))
    return data, html.Div(notes)


def controls(lang: str, user) -> list:
    """The pack block of the export menu (nothing for a role that may not have the pack)."""
    from minsheng.auth import ANONYMOUS
    user = user if user is not None else ANONYMOUS
    if not allowed(user):
        return []
    from callbacks.exports import current_quarter
    extra = []
    if user.can("all_personal"):
        extra.append(dcc.Checklist(id={"type": ids.PACK_PERSONAL, "key": "personal"}, value=[],
                                   options=[{"label": t("pack_personal", lang), "value": "yes"}]))
    if user.can("plan"):
        extra.append(html.Div(t("pack_freeze_note", lang), className="hint"))
    return [html.Div(id=ids.PACK_BOX, className="pack-box", children=[
        html.Div(t("pack", lang), className="pack-head"),
        html.Label(t("pack_quarter_field", lang)),
        dcc.Input(id=ids.PACK_QUARTER, type="text", value=current_quarter(), debounce=True, maxLength=6,
                  style={"width": "90px"}),
        dcc.RadioItems(id=ids.PACK_FORMAT, value="pdf", inline=True,
                       options=[{"label": f.upper(), "value": f} for f in FORMATS]),
        *extra,
        html.Button(t("pack_generate", lang), id=ids.PACK_BUTTON, n_clicks=0, className="btn primary",
                    title=t("pack_button", lang)),
        html.Div(id=ids.PACK_PROGRESS_BOX, className="import-progress", style={"display": "none"}, children=[
            html.Progress(id=ids.PACK_PROGRESS, value="0", max="100"),
            html.Span(t("pack_waiting", lang), id=ids.PACK_PROGRESS_LABEL, className="hint"),
            html.Button(t("pack_cancel", lang), id=ids.PACK_CANCEL, n_clicks=0, className="btn")]),
        html.Div(id=ids.PACK_RESULT, className="message"),
        dcc.Download(id=ids.PACK_DOWNLOAD),
    ])]


def register(app, ctx):
    from dash import Input, Output, State, no_update

    from callbacks.auth import current_user

    @app.callback(Output(ids.PACK_DOWNLOAD, "data"), Output(ids.PACK_RESULT, "children"),
                  Input(ids.PACK_BUTTON, "n_clicks"), State(ids.PACK_QUARTER, "value"),
                  State(ids.PACK_FORMAT, "value"), State({"type": ids.PACK_PERSONAL, "key": ALL}, "value"),
                  State(ids.LANG, "data"), prevent_initial_call=True, background=True,
                  progress=[Output(ids.PACK_PROGRESS, "value"), Output(ids.PACK_PROGRESS_LABEL, "children")],
                  progress_default=["0", ""],
                  running=[(Output(ids.PACK_PROGRESS_BOX, "style"), {"display": "flex"}, {"display": "none"}),
                           (Output(ids.PACK_BUTTON, "disabled"), True, False)],
                  cancel=[Input(ids.PACK_CANCEL, "n_clicks")])
    def generate(set_progress, n_clicks, quarter, fmt, personal, lang):
        if not n_clicks:
            return no_update, no_update
        wants_personal = any("yes" in (v or []) for v in (personal or []))
        return run_job(ctx, current_user(ctx), set_progress, quarter, fmt, lang or "zh", wants_personal)
