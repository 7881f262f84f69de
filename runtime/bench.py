"""``python -m runtime bench``: latency percentiles and throughput per batch size and provider."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from runtime.model import Model
from runtime.schema import Schema


def synthetic_rows(schema: Schema, n_rows: int, golden: Any = None, seed: int = 0) -> Any:
    """n_rows of inputs shaped like the schema: tiled golden rows when present, else random numbers."""
    rng = np.random.default_rng(seed)
    if golden is not None:
        if isinstance(golden, dict):
            return {k: np.resize(np.asarray(v), n_rows) for k, v in golden.items()}
        golden = np.asarray(golden)
        return golden[rng.integers(0, len(golden), n_rows)]
    if schema.layout == "text":
        return np.array(["the quick brown fox jumps over the lazy dog"] * n_rows, dtype=object)
    if schema.layout == "columns":
        return {
            s.name: (np.full(n_rows, "a", dtype=object) if s.is_string else rng.normal(size=n_rows))
            for s in schema.inputs
        }
    return rng.normal(size=(n_rows, schema.inputs[0].width or 1)).astype(np.float32)


def bench(
    model: Model, batches: Sequence[int], *, min_time: float = 0.5, max_repeat: int = 1000
) -> list[dict[str, Any]]:
    """Median/p99 latency of ``Model.run`` per batch: warm-up, then repeats until min_time passes."""
    golden = model.metadata.get("golden", {}).get("inputs")
    results = []
    for batch in batches:
        X = synthetic_rows(model.schema, batch, golden)
        model.run(X)  # warm-up: first-run allocations, lazy kernels
        times: list[float] = []
        start = time.perf_counter()
        while len(times) < max_repeat and (time.perf_counter() - start < min_time or len(times) < 5):
            t0 = time.perf_counter()
            model.run(X)
            times.append(time.perf_counter() - t0)
        p50, p99 = np.percentile(times, [50, 99])
        results.append(
            {
                "provider": model.providers[0],
                "batch": batch,
                "repeats": len(times),
                "p50_ms": p50 * 1e3,
                "p99_ms": p99 * 1e3,
                "rows_per_s": batch / p50,
            }
        )
    return results


def format_bench(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'provider':<24} {'batch':>7} {'p50 ms':>10} {'p99 ms':>10} {'rows/s':>14}"]
    for r in rows:
        timing = f"{r['p50_ms']:>10.4f} {r['p99_ms']:>10.4f} {r['rows_per_s']:>14,.0f}"
        lines.append(f"{r['provider']:<24} {r['batch']:>7} {timing}")
    return "\n".join(lines)
