"""Admin view: the audit log and the users. Checked on the server: other roles get nothing."""
from __future__ import annotations

import pandas as pd
from dash import html

from callbacks import overview
from minsheng.i18n import t

traces = overview.traces


def panel(ctx, p, user) -> list:
    if not user.can("audit"):
        return [html.H2(t("forbidden", p.lang), id="admin-forbidden")]
    log = ctx.store.audit_rows(limit=200)
    from data.auth_store import list_users
    users = pd.DataFrame(list_users(ctx.store), columns=["username", "role", "grid_id", "display_name"])
    return [
        html.H2(t("audit_log", p.lang)),
        html.Table([html.Tr([html.Th(t(f"audit_{c}", p.lang)) for c in ("ts", "user", "action", "object", "detail")])] +
                   [html.Tr([html.Td(str(v)) for v in (r.ts, r.user, r.action, r.object, r.detail)])
                    for r in log.itertuples()], id="audit-table", className="ledger"),
        html.H3(t("users", p.lang)),
        html.Table([html.Tr([html.Td(r.username), html.Td(t(f"role_{r.role}", p.lang)), html.Td(r.grid_id or "")])
                    for r in users.itertuples()], id="users-table"),
    ]
