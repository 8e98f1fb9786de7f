"""Per-app state: settings, the store, the read model of the current dataset version and a
result cache keyed by (dataset version, parameters). Created by create_app; never module-level.

Many processes, one truth: every request checks the store's dataset version with one cheap
read (once per request) and refreshes the read model when it changed — only the layers
whose version changed are re-read (data/sqlstore.py read_model). So a save by another
worker, a plan made by ``minsheng propose`` or an import shows on the next interaction."""
from __future__ import annotations

import threading
from collections import OrderedDict

from data.store import open_store

_G_KEY = "_minsheng_read_model"


def _request_g():
    try:
        import flask
        return flask.g if flask.has_request_context() else None
    except ImportError:  # pragma: no cover
        return None


class AppContext:
    def __init__(self, settings, store=None, cache_size: int = 64):
        self.settings = settings
        self.store = store or open_store(settings)
        self._bundle = None
        self._lock = threading.Lock()
        self._cache: OrderedDict = OrderedDict()
        self._cache_size = cache_size
        self.server_ref = None  # weakref to the Flask server (create_app): jobs without a request check cookies with it

    def bundle(self):
        """The read model at the store's current version (checked once per request)."""
        g = _request_g()
        if g is not None:
            cur = getattr(g, _G_KEY, None)
            if cur is not None:
                return cur
        cur = self._refresh()
        if g is not None:
            setattr(g, _G_KEY, cur)
        return cur

    def _refresh(self, force: bool = False):
        with self._lock:
            cur = self._bundle
            if force or cur is None or self.store.version() != cur.version:
                cur = self._bundle = self.store.read_model(None if force else cur)
                live = cur.version
                for key in [k for k in self._cache if k[0] != live]:
                    del self._cache[key]
            return cur

    def reload(self):
        """Re-read after a write made by this request (the next request would see it anyway)."""
        cur = self._refresh()
        g = _request_g()
        if g is not None:
            setattr(g, _G_KEY, cur)
        return cur

    def cached(self, name: str, params: tuple, compute):
        """compute() once per (dataset version, name, params)."""
        key = (self.bundle().version, name, params)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        value = compute()
        with self._lock:
            self._cache[key] = value
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return value
