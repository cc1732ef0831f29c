"""Dynamic batching: requests that arrive together share one forward pass.

As Triton Inference Server and TorchServe do it: one model thread takes the oldest waiting request, waits
at most ``max_wait_ms`` for others of the same render size to join it (up to ``max_batch``), runs them as
one batch and hands each its ab. The queue is bounded: a request that finds it full is refused at once
(``QueueFull``), so memory under load stays the queue plus one batch. ``max_batch=1`` is one at a time.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .colorizer import Colorizer


class QueueFull(RuntimeError):
    """Every place in the queue is taken; try again shortly."""


@dataclass
class _Request:
    small: np.ndarray  # (S, S) L at render size
    saturation: float
    future: Future


@dataclass
class BatcherStats:
    requests: int = 0
    batches: int = 0
    refused: int = 0
    largest_batch: int = 0

    @property
    def mean_batch(self) -> float:
        return self.requests / self.batches if self.batches else 0.0


class DynamicBatcher:
    def __init__(self, colorizer: Colorizer, max_batch: int = 8, max_wait_ms: float = 5.0, max_queue: int = 32):
        if max_batch < 1 or max_queue < 1 or max_wait_ms < 0:
            raise ValueError("max_batch and max_queue must be at least 1 and max_wait_ms at least 0")
        self.colorizer = replace(colorizer, saturation=1.0)  # each request applies its own gain
        self.default_saturation = colorizer.saturation
        self.max_batch, self.max_wait, self.max_queue = max_batch, max_wait_ms / 1000, max_queue
        self.stats = BatcherStats()
        self._queue: deque[_Request] = deque()
        self._ready = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="chromafuse-batcher", daemon=True)
        self._thread.start()

    def submit(self, small: np.ndarray, saturation: float | None = None) -> Future:
        """Queue one render-size L image; the Future gives its (S, S, 2) ab. Raises QueueFull at once when full."""
        request = _Request(np.asarray(small, np.float32), self._gain(saturation), Future())
        with self._ready:
            if self._closed:
                raise RuntimeError("the batcher is closed")
            if len(self._queue) >= self.max_queue:
                self.stats.refused += 1
                raise QueueFull(f"{len(self._queue)} requests are waiting (the limit)")
            self._queue.append(request)
            self._ready.notify()
        return request.future

    def _gain(self, saturation: float | None) -> float:
        return float(self.default_saturation if saturation is None else saturation)

    @property
    def waiting(self) -> int:
        return len(self._queue)

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify_all()
        self._thread.join(timeout=30)

    def _take_batch(self) -> list[_Request] | None:
        with self._ready:
            while not self._queue and not self._closed:
                self._ready.wait()
            if not self._queue:
                return None
            first = self._queue[0]
            deadline = time.monotonic() + self.max_wait
            while self.max_batch > 1 and not self._closed:
                same = sum(r.small.shape == first.small.shape for r in self._queue)
                left = deadline - time.monotonic()
                if same >= self.max_batch or left <= 0:
                    break
                self._ready.wait(left)
            batch = [r for r in self._queue if r.small.shape == first.small.shape][: self.max_batch]
            for request in batch:
                self._queue.remove(request)
            return batch

    def _loop(self) -> None:
        while (batch := self._take_batch()) is not None:
            live = [r for r in batch if r.future.set_running_or_notify_cancel()]
            if not live:
                continue
            try:
                ab = self.colorizer.predict_ab(np.stack([r.small for r in live]))
            except BaseException as error:  # the callers get the error; the thread lives on
                for request in live:
                    request.future.set_exception(error)
                continue
            self.stats.requests += len(live)
            self.stats.batches += 1
            self.stats.largest_batch = max(self.stats.largest_batch, len(live))
            for request, one in zip(live, ab):
                request.future.set_result(one * request.saturation if request.saturation != 1.0 else one)
