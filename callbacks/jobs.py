"""Long work as Dash background callbacks (app.background_manager): a progress bar, a cancel
button, and the controls that start the job disabled while it runs. Used by the imports, the
PNG/PDF map export and the automatic grid proposal.

A cancelled job is a killed process: a store write it had begun never commits, and its private
folder (data/scratch) is removed by the manager."""
from __future__ import annotations

from dash import html

from minsheng.i18n import t


def progress_box(pid: str, cancel_id: str, lang: str, *, stages: int, label: str, cancel: str) -> html.Div:
    """Hidden until the job runs: <progress> of `stages`, what is being done, a cancel button."""
    return html.Div([html.Progress(id=pid, value="0", max=str(stages)),
                     html.Span(t(label, lang), className="hint"),
                     html.Button(t(cancel, lang), id=cancel_id, n_clicks=0, className="btn")],
                    id=f"{pid}-box", className="import-progress", style={"display": "none"})


def background_options(pid: str, cancel_id: str, disable: tuple[str, ...] = ()) -> dict:
    """The background-callback options of one job: its progress bar (`pid`), its cancel button,
    and the components in `disable` (buttons: "disabled") disabled while it runs."""
    from dash import Input, Output
    return dict(background=True,
                progress=[Output(pid, "value")], progress_default=["0"],
                running=[(Output(f"{pid}-box", "style"), {"display": "flex"}, {"display": "none"}),
                         *[(Output(d, "disabled"), True, False) for d in disable]],
                cancel=[Input(cancel_id, "n_clicks")])
