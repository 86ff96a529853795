"""``Lru``: a small thread-safe least-recently-used cache (recorded frames, warp maps, drawing features)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Hashable


class Lru:
    """At most ``size`` entries; ``get`` refreshes one, ``put`` drops the least recently used beyond ``size``."""

    _missing = object()

    def __init__(self, size: int):
        self.size = int(size)
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, default: Any = None) -> Any:
        with self._lock:
            value = self._items.get(key, self._missing)
            if value is self._missing:
                return default
            self._items.move_to_end(key)
            return value

    def put(self, key: Hashable, value: Any) -> Any:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
