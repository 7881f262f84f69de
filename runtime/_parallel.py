"""Large batches split by rows across threads over one session, for graphs onnxruntime runs on one
thread (string tokenizers, many ``ai.onnx.ml`` ops): ``InferenceSession.run`` releases the GIL, so
two runs on halves of the rows can use two cores where one run uses one.

Whether that pays is a property of the model (and of the machine), so it is measured on the model's
own first large calls — one whole, one split, one whole, one split — and then fixed for the life of
the model in this process (``Model.parallel_batches`` says what was measured). Rows are independent
in every model the exporter writes (``batch_size`` relies on it too), so the split answers are the
whole answers.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

MIN_ROWS = 2048  # below this, a thread hand-off costs more than a split can save
MAX_PARTS = 4
SAMPLES = 2  # calls measured each way before deciding
FASTER = 0.85  # split must cost at most this much per row (noise must not flip the decision)

_POOL: list[ThreadPoolExecutor | None] = [None]
_POOL_LOCK = threading.Lock()


def _after_fork_in_child() -> None:
    _POOL[0] = None  # the parent's worker threads do not exist in the child


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _pool() -> ThreadPoolExecutor:
    pool = _POOL[0]
    if pool is None:
        with _POOL_LOCK:
            pool = _POOL[0]
            if pool is None:
                pool = _POOL[0] = ThreadPoolExecutor(MAX_PARTS - 1, thread_name_prefix="hybridonnx-rows")
    return pool


class RowSplitter:
    """The per-model decision, and the split run itself."""

    def __init__(self, parts: int) -> None:
        self.parts = max(1, min(parts, MAX_PARTS))
        self._seconds: dict[int, list[float]] = {1: [], self.parts: []}  # per row, by parts
        self.decided: int | None = None if self.parts > 1 else 1

    def describe(self) -> str:
        if self.parts == 1:
            return "off (one core or one intra-op thread)"
        whole, split = (min(v) if v else None for v in self._seconds.values())
        if self.decided is None:
            return f"not decided yet (measured on the first {2 * SAMPLES} calls of {MIN_ROWS:,}+ rows)"
        gain = f"{whole / split:.2f}x per row" if whole and split else "?"
        if self.decided > 1:
            return f"rows split across {self.decided} threads (measured {gain})"
        return f"one call (a split across {self.parts} threads measured {gain})"

    def run(
        self, run: Callable[[list[str], dict[str, Any]], list[Any]], names: list[str], feeds: dict[str, Any]
    ) -> list[Any]:
        """``run(names, feeds)``, split by rows where that was measured faster (or is being
        measured); feeds must be host arrays of at least MIN_ROWS rows."""
        decided = self.decided
        if decided == 1:
            return run(names, feeds)
        if decided is not None:
            return _split(run, names, feeds, decided)
        n_rows = len(next(iter(feeds.values())))
        whole, split = self._seconds[1], self._seconds[self.parts]
        parts = 1 if len(whole) <= len(split) else self.parts  # alternate: whole first
        start = time.perf_counter()
        out = run(names, feeds) if parts == 1 else _split(run, names, feeds, parts)
        self._seconds[parts].append((time.perf_counter() - start) / n_rows)
        if len(whole) >= SAMPLES and len(split) >= SAMPLES:
            self.decided = self.parts if min(split) < FASTER * min(whole) else 1
        return out


def _split(
    run: Callable[[list[str], dict[str, Any]], list[Any]], names: list[str], feeds: dict[str, Any], parts: int
) -> list[Any]:
    n_rows = len(next(iter(feeds.values())))
    bounds = np.linspace(0, n_rows, parts + 1).astype(int).tolist()
    pieces = [{k: v[a:b] for k, v in feeds.items()} for a, b in itertools.pairwise(bounds)]
    pool = _pool()
    futures: list[Future[list[Any]]] = [pool.submit(run, names, piece) for piece in pieces[1:]]
    first = run(names, pieces[0])  # this thread runs a part too
    results = [first, *(f.result() for f in futures)]
    return [np.concatenate([r[i] for r in results]) for i in range(len(names))]
