"""A small thread-safe memo: computed values kept while their stamp is unchanged."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")


class Memo:
    """Least-recently-used cache of ``key -> (stamp, value)``.

    A value is recomputed when its stamp (e.g. a projection's ``updated_at`` and the view
    it was built for) differs from the stored one. Two threads may compute the same value
    at once; the later result wins (values are pure functions of key and stamp).

    Parameters
    ----------
    size : int
        Entries kept.
    """

    def __init__(self, size: int = 16) -> None:
        self._size = size
        self._items: OrderedDict[Hashable, tuple[Hashable, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, stamp: Hashable, compute: Callable[[], T]) -> T:
        """The value of ``key`` at ``stamp``, computed by ``compute()`` on a miss."""
        with self._lock:
            hit = self._items.get(key)
            if hit is not None and hit[0] == stamp:
                self._items.move_to_end(key)
                return hit[1]
        value = compute()
        with self._lock:
            self._items[key] = (stamp, value)
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._items.clear()
