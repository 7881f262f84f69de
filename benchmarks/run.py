"""The benchmark harness: hybridonnx vs the native pipeline vs two chained ONNX sessions.

    python benchmarks/run.py            (≈ 10 min; writes benchmarks/RESULTS.md and latency.png)
    python benchmarks/run.py --quick    (fewer repetitions and no 65,536-row batch: a smoke run)

Three pipelines — StandardScaler → PCA → MLP (50 features), a mixed-dtype DataFrame through a
ColumnTransformer → MLP, TF-IDF → MLP — each timed at 1, 16, 256, 4,096 and 65,536 rows along
four paths, in one process, interleaved, after a warm-up, median of several timed loops:

- native:  the fitted pipeline's ``predict`` (sklearn + torch);
- hybridonnx: ``runtime.Model.predict`` on the exported model;
- raw run: ``InferenceSession.run`` on the same model (what the runtime wraps);
- chained: the unmerged way — the sklearn part (skl2onnx) and the torch part (torch.onnx) in two
  sessions glued in Python, softmax/argmax in NumPy.

Plus export time and model size per pipeline, and cold start / peak memory of a fresh process
(runtime-only environment vs native), from benchmarks/edge.py's measurement.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PATHS = ("native", "hybridonnx", "raw run", "chained")


@dataclass
class Bench:
    name: str
    pipe: Any
    rows: Callable[[int], Any]  # n → n input rows
    export_s: float = 0.0
    size: int = 0
    model: Any = None
    raw: Any = None
    chain: Callable[[Any], Any] | None = None


def pipelines() -> list[Bench]:
    import pandas as pd
    from sklearn.datasets import make_classification
    from sklearn.decomposition import PCA
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from tests.cases import _mixed_columns, documents, mixed_frame
    from tests.models import TorchClassifier

    X, y = make_classification(n_samples=4000, n_features=50, n_informative=20, n_classes=3, random_state=0)
    X = X.astype(np.float32)
    dense = make_pipeline(StandardScaler(), PCA(10, random_state=0), TorchClassifier(hidden=64, epochs=30))
    frame, labels = mixed_frame(n=4000)
    tabular = make_pipeline(_mixed_columns(), TorchClassifier(hidden=64, epochs=30))
    docs, sentiment = documents(n=4000)
    text = make_pipeline(TfidfVectorizer(), TorchClassifier(hidden=64, epochs=30))
    rng = np.random.default_rng(1)

    def tile(data: Any, n: int) -> Any:
        index = rng.integers(0, len(data), n)
        return data.iloc[index].reset_index(drop=True) if isinstance(data, pd.DataFrame) else data[index]

    return [
        Bench("StandardScaler → PCA → MLP (50 features)", dense.fit(X, y), lambda n: tile(X, n)),
        Bench(
            "DataFrame ColumnTransformer → MLP (8 mixed columns)",
            tabular.fit(frame, labels),
            lambda n: tile(frame, n),
        ),
        Bench("TF-IDF → MLP (documents)", text.fit(docs, sentiment), lambda n: tile(docs, n)),
    ]


def prepare(bench: Bench, folder: Path) -> None:
    import exporter
    import runtime

    sample = bench.rows(400)
    start = time.perf_counter()
    result = exporter.export(bench.pipe, sample=sample)
    bench.export_s = time.perf_counter() - start
    path = result.save(folder / f"{len(list(folder.iterdir()))}.onnx")
    bench.size = path.stat().st_size
    bench.model = runtime.load(path, providers=["CPUExecutionProvider"])
    options = ort.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    bench.raw = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    bench.chain = chained(result, options)


def chained(result: Any, options: Any) -> Callable[[Any], Any]:
    """Two sessions, as hand-written glue would run them: the sklearn stage's skl2onnx graph, then
    the module's torch.onnx graph; softmax, argmax and classes in NumPy."""
    from exporter.convert import convert_plan
    from runtime.inputs import prepare_feeds

    plan = result.plan
    parts = convert_plan(plan)  # the per-stage graphs the merge would chain
    index = {stage.kind: int(stage.part[1:-1]) for stage in plan.stages}  # "p0_" → 0
    torch_stage = plan.stages[-1]
    sk = ort.InferenceSession(
        parts[index["sklearn"]].SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    net = ort.InferenceSession(
        parts[index["torch"]].SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    classes = np.asarray(torch_stage.step.classes_)
    sk_input = [i.name for i in sk.get_inputs()]
    net_input = net.get_inputs()[0].name

    def run(X: Any) -> np.ndarray:
        feeds, _ = prepare_feeds(X, plan.schema)
        features = sk.run(None, {name: feeds[name] for name in sk_input})[0]
        logits = net.run(None, {net_input: features.astype(np.float32, copy=False)})[0]
        return classes[logits.argmax(axis=1)]  # softmax is monotonic: argmax of the logits

    return run


def per_call(fn: Callable[[], Any], loops: int) -> float:
    start = time.perf_counter()
    for _ in range(loops):
        fn()
    return (time.perf_counter() - start) / loops


def time_paths(bench: Bench, batches: tuple[int, ...], reps: int) -> dict[int, dict[str, float]]:
    out = {}
    for n in batches:
        X = bench.rows(n)
        feeds, _ = _feeds(bench, X)
        paths = {
            "native": lambda X=X: bench.pipe.predict(X),
            "hybridonnx": lambda X=X: bench.model.predict(X),
            "raw run": lambda feeds=feeds: bench.raw.run(["label"], feeds),
            "chained": lambda X=X: bench.chain(X),  # type: ignore[misc]
        }
        agree = np.mean(np.asarray(paths["hybridonnx"]()) == np.asarray(paths["native"]()))
        assert agree >= 0.99 and np.array_equal(paths["chained"](), paths["hybridonnx"]()), (bench.name, n)
        for fn in paths.values():
            fn()  # warm-up
        budget = max(0.02, min(0.3, 3e-6 * n))  # seconds per timed loop, roughly
        loops = {k: max(1, int(budget / max(per_call(fn, 1), 1e-6))) for k, fn in paths.items()}
        times: dict[str, list[float]] = {k: [] for k in paths}
        for rep in range(reps):  # interleave, alternating the order
            for key in PATHS if rep % 2 == 0 else reversed(PATHS):
                times[key].append(per_call(paths[key], loops[key]))
        out[n] = {k: statistics.median(v) for k, v in times.items()}
    return out


def _feeds(bench: Bench, X: Any) -> tuple[dict[str, Any], int]:
    from runtime.inputs import prepare_feeds

    return prepare_feeds(X, bench.model.schema)


def plot(results: dict[str, dict[int, dict[str, float]]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 4), sharey=True)
    for ax, (name, by_batch) in zip(np.atleast_1d(axes), results.items(), strict=True):
        batches = sorted(by_batch)
        for key, style in zip(PATHS, ("o-", "s-", "^--", "v:"), strict=True):
            ax.loglog(batches, [by_batch[b][key] * 1e6 for b in batches], style, label=key)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("rows per call")
        ax.grid(True, which="both", alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("latency per call (µs, median)")
    np.atleast_1d(axes)[0].legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def report(
    benches: list[Bench], results: dict[str, dict[int, dict[str, float]]], env: list[str], quick: bool
) -> str:
    lines = [
        "# Benchmark results",
        "",
        f"{dt.date.today().isoformat()}; {platform.machine()}, {_cpu()}, 2 cores shared (noisy: compare "
        f"within a run); Python {platform.python_version()}, onnxruntime {ort.__version__}, "
        f"torch {metadata.version('torch')}, scikit-learn {metadata.version('scikit-learn')}, "
        f"skl2onnx {metadata.version('skl2onnx')}. `python benchmarks/run.py{' --quick' if quick else ''}`; "
        "medians of interleaved timed loops after a warm-up.",
        "",
        "![latency vs batch size](latency.png)",
        "",
        "| pipeline | export (s) | model size (KiB) |",
        "|---|---:|---:|",
        *(f"| {b.name} | {b.export_s:.1f} | {b.size / 1024:.1f} |" for b in benches),
        "",
    ]
    for name, by_batch in results.items():
        lines += [
            f"## {name}",
            "",
            "| rows | native (µs) | hybridonnx (µs) | raw run (µs) | chained (µs) | native / hybridonnx | "
            "hybridonnx / raw | chained / hybridonnx | hybridonnx rows/s |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for n in sorted(by_batch):
            t = by_batch[n]
            lines.append(
                f"| {n:,} | {t['native'] * 1e6:,.0f} | {t['hybridonnx'] * 1e6:,.1f} | "
                f"{t['raw run'] * 1e6:,.1f} | "
                f"{t['chained'] * 1e6:,.1f} | {t['native'] / t['hybridonnx']:.1f}x | "
                f"{t['hybridonnx'] / t['raw run']:.2f}x | {t['chained'] / t['hybridonnx']:.2f}x | "
                f"{n / t['hybridonnx']:,.0f} |"
            )
        lines.append("")
    lines += ["## Cold start and memory (fresh processes, first pipeline)", "", *env, ""]
    lines += ["## Goals", "", "| goal | measured | met |", "|---|---|---|", *goals(results), ""]
    return "\n".join(lines)


def goals(results: dict[str, dict[int, dict[str, float]]]) -> list[str]:
    """The issue's goals, checked against this run (per pipeline where they are per pipeline)."""
    from benchmarks.edge import RATIOS

    def row(goal: str, values: list[float], fmt: str, ok: Callable[[float], bool]) -> str:
        shown = ", ".join(format(v, fmt) for v in values)
        return f"| {goal} | {shown} | {'yes' if all(map(ok, values)) else 'no'} |"

    pipes = list(results.values())
    lines = [
        row(
            "1 row: ≥ 25x faster than native (per pipeline)",
            [p[1]["native"] / p[1]["hybridonnx"] for p in pipes],
            ".1f",
            lambda v: v >= 25,
        ),
        row(
            "1 row: within 1.2x of a raw onnxruntime run",
            [p[1]["hybridonnx"] / p[1]["raw run"] for p in pipes],
            ".2f",
            lambda v: v <= 1.2,
        ),
        row(
            "4,096 rows: ≥ 5x faster than native",
            [p[4096]["native"] / p[4096]["hybridonnx"] for p in pipes],
            ".1f",
            lambda v: v >= 5,
        ),
        row(
            "merged graph faster than two chained sessions, every batch (worst chained/merged)",
            [min(p[n]["chained"] / p[n]["hybridonnx"] for n in p) for p in pipes],
            ".2f",
            lambda v: v > 1,
        ),
    ]
    if RATIOS:
        lines += [
            row("cold start ≥ 10x faster", [RATIOS["cold_start"]], ".1f", lambda v: v >= 10),
            row(
                "peak memory ≤ 1/4 of native (native / runtime)", [RATIOS["memory"]], ".1f", lambda v: v >= 4
            ),
        ]
    return lines


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    batches = (1, 16, 256, 4096) if args.quick else (1, 16, 256, 4096, 65536)
    reps = 3 if args.quick else 7
    folder = Path(tempfile.mkdtemp())
    benches = pipelines()
    results = {}
    for bench in benches:
        prepare(bench, folder)
        results[bench.name] = time_paths(bench, batches, reps)
        print(f"timed {bench.name}", file=sys.stderr)
    from benchmarks.edge import environment_rows

    env = environment_rows(folder, benches[0].pipe, benches[0].rows(1), folder / "0.onnx")
    out = ROOT / "benchmarks"
    plot(results, out / "latency.png")
    text = report(benches, results, env, args.quick)
    (out / "RESULTS.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
