"""Fresh events in memory: what POST /events accepted since start, per user or session id, by
shop ids, so that any model serving a request can fold them in (serving.snapshot; the holder
keeps one FreshEvents across model swaps)."""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Fresh:
    """One user's fresh events, oldest first, as parallel tuples: shop item ids, event types
    (view, add_to_cart, purchase, return) and times (seconds since the epoch)."""

    item_ids: tuple[str, ...]
    event_types: tuple[str, ...]
    times: tuple[float, ...]

    def __len__(self) -> int:
        return len(self.item_ids)


class FreshEvents:
    """Per user (or session) id, their last max_events events since start; at most max_users
    ids, the least recently active forgotten first. Thread-safe; get() copies."""

    def __init__(self, max_events: int = 200, max_users: int = 100_000) -> None:
        self.max_events = max_events
        self.max_users = max_users
        self._events: OrderedDict[str, deque] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, who: str, item_id: str, event_type: str, at: float) -> None:
        with self._lock:
            events = self._events.get(who)
            if events is None:
                events = self._events[who] = deque(maxlen=self.max_events)
                if len(self._events) > self.max_users:
                    self._events.popitem(last=False)
            else:
                self._events.move_to_end(who)
            events.append((item_id, event_type, at))

    def get(self, who: str) -> Fresh | None:
        """who's events (None: none since start)."""
        with self._lock:
            events = self._events.get(who)
            if not events:
                return None
            items, types, times = zip(*events, strict=True)
        return Fresh(items, types, times)

    def __len__(self) -> int:
        return len(self._events)
