"""The model being served, and how a newly promoted champion replaces it.

Requests read `holder.current` once and use that ServingModel to the end, so a swap never
changes a model under a request in flight. A swap is one attribute assignment of a fully built
ServingModel (atomic under the GIL); the old one is freed when its last request finishes.

Fresh events (POST /events) live here, beside the model: FreshEvents keeps each user's (or
session's) events since start by shop ids, and a request folds them into whatever model serves
it (ServingModel.recommend_with_rules), so they survive a swap: the new model re-applies them
on its first request. Until the spool's ingest exists (a follow-up) a new model never holds
them, so none is dropped at a swap.

New champions are picked up by polling: a daemon thread asks the registry every poll_seconds
which version holds the alias (one small SQLite query) and loads it when it changed. POST
/admin/reload runs the same check at once. A failed check or load keeps the current model.
"""

from __future__ import annotations

import gc
import logging
import threading
import time

from serving.fresh import FreshEvents
from serving.loader import NoChampion, RegistrySource
from serving.settings import ServeSettings
from serving.snapshot import ServingModel

log = logging.getLogger("recomart.serving")


class ModelHolder:
    """The current ServingModel (None until a champion loads) and the reason when None."""

    def __init__(self, source: RegistrySource, settings: ServeSettings) -> None:
        self.source = source
        self.settings = settings
        # events since start per user or session id (POST /events): folded in per request
        self.fresh = FreshEvents(settings.fresh_events_per_user, settings.fresh_users)
        self.current: ServingModel | None = None
        self.not_ready_reason = "the model is loading"
        self.last_error: str | None = None
        self.reloads = 0
        # stock changes (PATCH /items/{id}) since start: applied to every model loaded later
        self.stock: dict[str, bool] = {}
        self._lock = threading.Lock()  # one check/load at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> bool:
        """Load the champion if it is not the version being served; True if a new one loaded."""
        with self._lock:
            try:
                version = self.source.champion_version()
            except NoChampion as exc:
                if self.current is None:
                    self.not_ready_reason = str(exc)
                return False
            except Exception as exc:  # registry busy or broken: keep serving what we have
                self.last_error = f"registry check failed: {exc}"
                log.warning(self.last_error)
                return False
            current = self.current
            if current is not None and current.info.version == version:
                return False
            started = time.perf_counter()
            try:
                model = self.source.load(
                    version, self.settings.max_k, self.settings.precompute_max_users
                )
            except Exception as exc:
                self.last_error = f"loading version {version} failed: {exc}"
                log.exception(self.last_error)
                if self.current is None:
                    self.not_ready_reason = self.last_error
                return False
            for item_id, in_stock in self.stock.items():
                if model.can_list(item_id):
                    model.table.set_stock(item_id, in_stock)
            self.current = model  # the swap
            gc.collect()  # the old model's cycles, now, not during a request
            gc.freeze()
            self.reloads += 1
            self.last_error = None
            log.info(
                "serving %s version %s (%d users, %d items), loaded in %.2f s",
                model.info.name, version, model.n_users, model.n_items,
                time.perf_counter() - started,
            )  # fmt: skip
            return True

    def set_stock(self, item_id: str, in_stock: bool) -> None:
        """Record a stock change and apply it to the model being served (under the lock: a
        model loading now gets it too)."""
        with self._lock:
            self.stock[item_id] = in_stock
            current = self.current
            if current is not None and current.can_list(item_id):
                current.table.set_stock(item_id, in_stock)

    def start_polling(self) -> None:
        if self.settings.poll_seconds > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._poll, name="champion-poll", daemon=True)
            self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(self.settings.poll_seconds):
            self.refresh()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.source.close()


class FixedSource:
    """A model source for ModelHolder that hands over one ServingModel, no registry: for
    serving a model built in process (benchmarks, tests)."""

    def __init__(self, served: ServingModel) -> None:
        self.served = served

    def champion_version(self) -> str:
        return self.served.info.version

    def load(self, version: str, max_k: int, precompute_max_users: int) -> ServingModel:
        return self.served

    def close(self) -> None:
        return None
