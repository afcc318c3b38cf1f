"""Rotation over several API keys: a 401 retires a key, a 429 rests it for Retry-After.

The state is per process (each instance learns on its own which keys work); the key in use
stays until it fails, so a healthy key keeps its rate-limit headroom warm.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence


class KeyRing:
    def __init__(self, keys: Sequence[str], *, clock: Callable[[], float] = time.monotonic) -> None:
        self._keys = list(keys)
        self._clock = clock
        self._current = 0
        self._dead: set[int] = set()
        self._resting_until: dict[int, float] = {}
        self._lock = threading.Lock()

    def pick(self) -> tuple[int, str] | None:
        """The key to use now, or None when every key is retired or resting."""
        now = self._clock()
        with self._lock:
            for step in range(len(self._keys)):
                index = (self._current + step) % len(self._keys)
                if index in self._dead or self._resting_until.get(index, 0.0) > now:
                    continue
                self._current = index
                return index, self._keys[index]
        return None

    def ready_besides(self, index: int) -> bool:
        """Whether a key other than ``index`` is usable now."""
        now = self._clock()
        with self._lock:
            return any(
                i != index and i not in self._dead and self._resting_until.get(i, 0.0) <= now
                for i in range(len(self._keys))
            )

    def wait_s(self) -> float | None:
        """Seconds until a resting key is usable again; None when all are retired."""
        now = self._clock()
        with self._lock:
            waits = [
                max(self._resting_until.get(i, 0.0) - now, 0.0)
                for i in range(len(self._keys))
                if i not in self._dead
            ]
        return min(waits) if waits else None

    def rest(self, index: int, seconds: float) -> None:
        with self._lock:
            self._resting_until[index] = self._clock() + seconds
            self._current = (index + 1) % len(self._keys)

    def retire(self, index: int) -> None:
        with self._lock:
            self._dead.add(index)
            self._current = (index + 1) % len(self._keys)
