"""Micro-batching: one worker thread per group of models (a *lane*), which gathers the jobs that wait
together into one model pass.

Concurrent requests submit jobs (a key, a handler, a list of items) and await a future. The worker takes the
oldest job, then, for a short window, every waiting job with the same key, up to ``max_items`` items, and calls
the handler once on all their items; each job gets its own slice of the results. A job whose key is unique
(a seeded or streamed generation) runs alone. If a gathered pass fails, its jobs are retried one by one, so one
bad request cannot fail the others. Only the lane's thread touches its models, so tokenizers and models are
never used from two threads at once.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

Handler = Callable[[list[Any]], Sequence[Any]]


class ServerBusy(Exception):
    """More jobs wait for a lane than ``max_queue`` allows."""


@dataclass
class Job:
    key: Hashable
    handler: Handler
    items: list[Any]
    future: Future = field(default_factory=Future)


@dataclass
class LaneStats:
    """Counts since start: passes run, jobs and items served, the largest pass (for /health and tests)."""

    passes: int = 0
    jobs: int = 0
    items: int = 0
    largest: int = 0


class Lane:
    """A worker thread that owns some models and runs their jobs, gathered into passes."""

    def __init__(self, name: str, window_s: float, max_items: int, max_queue: int, batching: bool = True) -> None:
        self.name = name
        self.window_s = window_s if batching else 0.0
        self.max_items = max_items
        self.max_queue = max_queue
        self.batching = batching
        self.stats = LaneStats()
        self._queue: collections.deque[Job] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"preforch-{name}", daemon=True)
        self._thread.start()

    def submit(self, key: Hashable, handler: Handler, items: list[Any]) -> Future:
        """Queue ``items`` for ``handler``; the future's result is the list of per-item results."""
        job = Job(key, handler, list(items))
        with self._cond:
            if self._closed:
                raise ServerBusy(f"the {self.name} worker is shutting down")
            if len(self._queue) >= self.max_queue:
                raise ServerBusy(f"{len(self._queue)} requests wait for the {self.name} model "
                                 f"(max_queue {self.max_queue})")
            self._queue.append(job)
            self._cond.notify()
        return job.future

    def call(self, handler: Callable[[], Any]) -> Future:
        """Run one function alone on the lane's thread (e.g. a streamed generation)."""
        return self.submit(object(), lambda _items: [handler()], [None])

    @property
    def waiting(self) -> int:
        with self._cond:
            return len(self._queue)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # ---- the worker -----------------------------------------------------------------------------------

    def _gather(self) -> list[Job] | None:
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if not self._queue:
                return None
            batch = [self._queue.popleft()]
            if not self.batching:
                return batch
            count, deadline = len(batch[0].items), time.monotonic() + self.window_s
            while count < self.max_items:
                for job in [j for j in self._queue if j.key == batch[0].key]:
                    if count + len(job.items) > self.max_items:
                        break
                    self._queue.remove(job)
                    batch.append(job)
                    count += len(job.items)
                left = deadline - time.monotonic()
                if count >= self.max_items or left <= 0 or self._closed:
                    break
                self._cond.wait(left)
            return batch

    def _run(self) -> None:
        while True:
            batch = self._gather()
            if batch is None:
                return
            live = [job for job in batch if job.future.set_running_or_notify_cancel()]  # skip cancelled ones
            if live:
                self._pass(live)

    def _pass(self, jobs: list[Job]) -> None:
        items = [item for job in jobs for item in job.items]
        try:
            results = list(jobs[0].handler(items))
            if len(results) != len(items):
                raise RuntimeError(f"{self.name} handler returned {len(results)} results for {len(items)} items")
        except BaseException as err:  # noqa: BLE001 - delivered to the waiting request, never raised here
            if len(jobs) > 1:
                for job in jobs:  # alone, so only the job that fails sees the error
                    self._pass_alone(job)
                return
            jobs[0].future.set_exception(err)
            return
        self._record(jobs, len(items))
        start = 0
        for job in jobs:
            job.future.set_result(results[start:start + len(job.items)])
            start += len(job.items)

    def _pass_alone(self, job: Job) -> None:
        try:
            results = list(job.handler(job.items))
        except BaseException as err:  # noqa: BLE001
            job.future.set_exception(err)
            return
        self._record([job], len(job.items))
        job.future.set_result(results)

    def _record(self, jobs: list[Job], items: int) -> None:
        s = self.stats
        s.passes, s.jobs, s.items, s.largest = s.passes + 1, s.jobs + len(jobs), s.items + items, max(s.largest, items)
