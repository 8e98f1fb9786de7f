"""Per-app state: settings, the store, the loaded bundle and a result cache keyed by
(dataset version, parameters). Created by create_app; never module-level."""
from __future__ import annotations

import threading
from collections import OrderedDict

from data.store import open_store


class AppContext:
    def __init__(self, settings, store=None, cache_size: int = 64):
        self.settings = settings
        self.store = store or open_store(settings)
        self._bundle = None
        self._lock = threading.Lock()
        self._cache: OrderedDict = OrderedDict()
        self._cache_size = cache_size

    def bundle(self):
        with self._lock:
            if self._bundle is None:
                self._bundle = self.store.load()
            return self._bundle

    def reload(self):
        with self._lock:
            self._bundle = self.store.load()
            self._cache.clear()
            return self._bundle

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
