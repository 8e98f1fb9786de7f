"""Files uploaded through the dashboard (dcc.Upload gives a name and bytes, not a path).

    with uploaded_file("台账.xlsx", content) as path:
        import_households(store, path)

The bytes are saved under their own name in a private temporary folder (removed afterwards,
also when the import fails or its background job is cancelled: data/scratch.py),
so the importers see the right suffix; a DataError raised inside names the uploaded file, not
the temporary path.
"""
from __future__ import annotations

import base64
import contextlib
from pathlib import Path

from data.bundle import DataError


def decode_upload(contents: str) -> bytes:
    """The bytes of a dcc.Upload `contents` string ("data:<mime>;base64,<data>")."""
    _, _, data = contents.partition(",")
    try:
        return base64.b64decode(data or contents, validate=False)
    except ValueError as e:
        raise DataError(f"the upload could not be decoded: {e}") from None


MAX_NAME_BYTES = 180  # well under the 255-byte file-name limit of common file systems


def safe_name(filename) -> str:
    """A file name safe to create in a private folder: the last path part (/ or \\), without
    control characters, leading dots or spaces, at most MAX_NAME_BYTES in UTF-8 (the suffix is
    kept, so the importer still recognises .xlsx/.csv/.geojson/.zip ...); "upload" when nothing is
    left (e.g. "..")."""
    raw = str(filename or "")
    base = raw.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable() and ch not in '<>:"|?*').strip().lstrip(". ")
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    suffix = suffix[:16]
    tail = f".{suffix}" if suffix else ""
    budget = MAX_NAME_BYTES - len(tail.encode())
    stem = stem.encode("utf-8")[:budget].decode("utf-8", "ignore").rstrip(". ")
    return (stem or "upload") + tail


@contextlib.contextmanager
def uploaded_file(filename: str, content: bytes):
    """The upload saved in a private folder (data/scratch.private_dir: removed on success, on
    failure, and by the background manager when the job is cancelled)."""
    from data.scratch import private_dir
    name = safe_name(filename)
    with private_dir("upload") as d:
        path = Path(d) / name
        path.write_bytes(content)
        try:
            yield path
        except DataError as e:
            if e.file != str(path):
                raise
            renamed = getattr(e, "renamed", None)
            if callable(renamed):  # a worded refusal (data.importers.messages): keep its key for the UI language
                raise renamed(name) from None
            where = ", ".join(p for p in (f"file {e.file}", f"layer {e.layer}" if e.layer else "",
                                          f"row {e.row}" if e.row is not None else "",
                                          f"field {e.field}" if e.field else "") if p)
            message = str(e)[len(where) + 2:] if str(e).startswith(where + ": ") else str(e)
            raise DataError(message, file=name, layer=e.layer, row=e.row, field=e.field) from None
