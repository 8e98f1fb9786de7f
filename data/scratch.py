"""Private temporary folders for uploads and exports, removed however the work ends.

An upload (a household ledger: personal data) or an export is written to a folder
``<tmp>/minsheng-<kind>-<pid>-<random>`` that ``private_dir`` removes when the work succeeds or
fails. A background job that is cancelled is killed (SIGKILL: no ``finally`` runs), so the
folder's name carries the pid of the process that made it: the background manager removes the
folders of the job it has just killed (``sweep(pid)``), and every new upload and every start of
the app removes the folders of processes that no longer exist (``sweep()``: a job killed any
other way, a Celery worker terminated, a machine restarted mid-import). A SIGTERM (Celery's
revoke) is turned into an exception while a folder is open, so ``finally`` runs then too."""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import tempfile
import threading
from pathlib import Path

KINDS = ("upload", "export", "pack")
_NAME = re.compile(r"^minsheng-(?:%s)-(\d+)-" % "|".join(KINDS))


class Terminated(Exception):
    """The job was asked to stop (SIGTERM) while it held a private folder."""


def make_dir(kind: str) -> Path:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    return Path(tempfile.mkdtemp(prefix=f"minsheng-{kind}-{os.getpid()}-"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def sweep(pid: int | None = None, root: str | None = None) -> list[Path]:
    """Remove the private folders of process ``pid`` (a job just killed), or with pid=None of
    every process that no longer exists. Returns the folders removed."""
    gone = []
    base = Path(root or tempfile.gettempdir())
    try:
        entries = list(base.iterdir())
    except OSError:
        return gone
    for d in entries:
        m = _NAME.match(d.name)
        if not m or not d.is_dir():
            continue
        owner = int(m.group(1))
        if (owner == pid) if pid is not None else (owner != os.getpid() and not _alive(owner)):
            shutil.rmtree(d, ignore_errors=True)
            gone.append(d)
    return gone


@contextlib.contextmanager
def _sigterm_raises():
    """While the block runs in the main thread, SIGTERM raises Terminated (so finally runs)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise Terminated("terminated")
    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except (ValueError, OSError):
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def private_dir(kind: str):
    """A fresh private folder, removed afterwards whatever happens (see the module doc)."""
    sweep()
    d = make_dir(kind)
    try:
        with _sigterm_raises():
            yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)
