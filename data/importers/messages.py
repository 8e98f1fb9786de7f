"""Refusals and warnings of the importers that the dashboard shows in the UI language.

The wording lives in minsheng/i18n.py (keys "imp_..."); the CLI prints the English text.

    raise Refusal("imp_lost_digits", file=f, row=12, field="户号", value="1.10108e+17")
    warnings.append(Note("imp_dot_zero", column="联系电话", n=3, row=4))

A Refusal is a DataError (the CLI and every caller treat it as one); `text(lang)` gives the
message with "file …, row …, field …" in that language. A Note is a str (English) with a
`text(lang)` as well. `localized(x, lang)` works on both and on plain strings/DataErrors.
"""
from __future__ import annotations

from data.bundle import DataError
from minsheng.i18n import t


def _where(file: str, layer: str, row, field: str, lang: str) -> str:
    parts = [t("imp_where_file", lang).format(v=file) if file else "",
             t("imp_where_layer", lang).format(v=layer) if layer else "",
             t("imp_where_row", lang).format(v=row) if row is not None else "",
             t("imp_where_field", lang).format(v=field) if field else ""]
    return t("imp_where_sep", lang).join(p for p in parts if p)


class Refusal(DataError):
    """Bad input, worded in minsheng/i18n.py under `key` with `params`."""

    def __init__(self, key: str, *, file: str = "", layer: str = "", row: int | None = None, field: str = "",
                 **params):
        self.key, self.params = key, {k: v for k, v in params.items()}
        super().__init__(t(key, "en").format(**self.params), file=file, layer=layer, row=row, field=field)

    def text(self, lang: str) -> str:
        where = _where(self.file, self.layer, self.row, self.field, lang)
        body = t(self.key, lang).format(**self.params)
        return f"{where}{t('imp_colon', lang)}{body}" if where else body

    def renamed(self, file: str) -> "Refusal":
        """The same refusal naming `file` (an upload's own name instead of its temporary path)."""
        return Refusal(self.key, file=file, layer=self.layer, row=self.row, field=self.field, **self.params)


class Note(str):
    """A warning: English as a str (CLI, logs of counts), any language through text(lang)."""

    key: str
    params: dict

    def __new__(cls, key: str, **params):
        s = super().__new__(cls, t(key, "en").format(**params))
        s.key, s.params = key, params
        return s

    def text(self, lang: str) -> str:
        return t(self.key, lang).format(**self.params)


def localized(message, lang: str) -> str:
    """A Refusal/Note in `lang`; anything else as its str()."""
    text = getattr(message, "text", None)
    return text(lang) if callable(text) else str(message)
