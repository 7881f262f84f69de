"""The benchmark harness: hybridonnx against what a user would pick instead, in one run.

    python benchmarks/run.py            (≈ 15 min; writes benchmarks/RESULTS.md and latency.png)
    python benchmarks/run.py --quick    (fewer repetitions, no 65,536-row batch: a smoke run)
    python benchmarks/run.py --only trees --no-env   (a subset; no cold-start processes)

Five models, each timed along every path below in one process, interleaved (the order alternates
every repetition), after a warm-up; each figure is the median of several timed loops:

- three hybrid pipelines — StandardScaler → PCA → MLP (50 features), a mixed-dtype DataFrame through
  a ColumnTransformer → MLP, TF-IDF → MLP — at 1, 16, 256, 4,096 and 65,536 rows:
  - native: the fitted pipeline's ``predict`` (sklearn + torch, the wrapper's own method);
  - native inference_mode: the hand-written fast native path — the sklearn steps' ``transform``,
    the module under ``torch.inference_mode()``, argmax → classes;
  - torch.compile: the same with ``torch.compile(module)`` (skipped with a note where it fails);
  - chained: the unmerged way — the sklearn part (skl2onnx) and the torch part (torch.onnx) in two
    sessions glued in Python;
- two tree ensembles — a 500-tree RandomForest and a 200-tree GradientBoosting — at 1, 1,000 and
  10,000 rows, against hummingbird (sklearn trees compiled to tensor ops) on its torch and
  TorchScript backends (its CPU backends that run here: the notes say why the others are left out);
- and on every model: hybridonnx (``runtime.Model.predict``) and a raw ``InferenceSession.run`` of
  the same model with prebuilt feeds (what the runtime wraps).

Plus export time and model size, and cold start / peak memory of a fresh process (runtime-only
environment vs native, from benchmarks/edge.py's measurement). The report ends with the goals,
checked against this run.

hummingbird is optional and installs beside the project, not into it (its ``onnx<=1.16`` pin is
stale and it ships a top-level ``benchmarks`` package)::

    pip install --no-deps --target .venv/bench-extra hummingbird-ml==0.4.12 \\
        onnxconverter-common==1.16.0 dill==0.4.1

The harness appends that folder (or ``$HYBRIDONNX_BENCH_EXTRA``) to ``sys.path``; without it the
hummingbird paths are skipped with a note.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OURS, RAW, NATIVE = "hybridonnx", "raw run", "native"
HB = ("hummingbird torch", "hummingbird torch.jit")
STYLES = {
    NATIVE: "o-",
    "native inference_mode": "o--",
    "torch.compile": "o:",
    OURS: "s-",
    RAW: "^--",
    "chained": "v:",
    HB[0]: "D-",
    HB[1]: "D--",
}
MLP_BATCHES = (1, 16, 256, 4096, 65536)
TREE_BATCHES = (1, 1000, 10000)


@dataclass
class Bench:
    name: str
    short: str  # for the goals table
    pipe: Any
    rows: Callable[[int], Any]  # n → n input rows
    batches: tuple[int, ...]
    export_s: float = 0.0
    size: int = 0
    model: Any = None
    raw: Any = None
    peers: dict[str, Callable[[Any], Any]] = field(default_factory=dict)  # path → X → labels
    notes: list[str] = field(default_factory=list)


def pipelines(only: str | None) -> list[Bench]:
    import pandas as pd
    from sklearn.datasets import make_classification
    from sklearn.decomposition import PCA
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from tests.cases import _mixed_columns, documents, mixed_frame
    from tests.models import TorchClassifier

    rng = np.random.default_rng(1)

    def tile(data: Any, n: int) -> Any:
        index = rng.integers(0, len(data), n)
        return data.iloc[index].reset_index(drop=True) if isinstance(data, pd.DataFrame) else data[index]

    benches = []
    if only in (None, "mlp"):
        X, y = make_classification(
            n_samples=4000, n_features=50, n_informative=20, n_classes=3, random_state=0
        )
        X = X.astype(np.float32)
        dense = make_pipeline(
            StandardScaler(), PCA(10, random_state=0), TorchClassifier(hidden=64, epochs=30)
        )
        frame, labels = mixed_frame(n=4000)
        tabular = make_pipeline(_mixed_columns(), TorchClassifier(hidden=64, epochs=30))
        docs, sentiment = documents(n=4000)
        text = make_pipeline(TfidfVectorizer(), TorchClassifier(hidden=64, epochs=30))
        benches += [
            Bench(
                "StandardScaler → PCA → MLP (50 features)",
                "dense",
                dense.fit(X, y),
                lambda n: tile(X, n),
                MLP_BATCHES,
            ),
            Bench(
                "DataFrame ColumnTransformer → MLP (8 mixed columns)",
                "DataFrame",
                tabular.fit(frame, labels),
                lambda n: tile(frame, n),
                MLP_BATCHES,
            ),
            Bench(
                "TF-IDF → MLP (documents)",
                "TF-IDF",
                text.fit(docs, sentiment),
                lambda n: tile(docs, n),
                MLP_BATCHES,
            ),
        ]
    if only in (None, "trees"):
        Xt, yt = make_classification(n_samples=5000, n_features=20, n_informative=10, random_state=0)
        Xt = Xt.astype(np.float32)
        forest = RandomForestClassifier(n_estimators=500, random_state=0, n_jobs=1)
        boosting = GradientBoostingClassifier(n_estimators=200, random_state=0)
        benches += [
            Bench(
                "RandomForest (500 trees, 20 features)",
                "RandomForest",
                forest.fit(Xt, yt),
                lambda n: tile(Xt, n),
                TREE_BATCHES,
            ),
            Bench(
                "GradientBoosting (200 trees, 20 features)",
                "GradientBoosting",
                boosting.fit(Xt, yt),
                lambda n: tile(Xt, n),
                TREE_BATCHES,
            ),
        ]
    return benches


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
    if hasattr(bench.pipe, "steps"):  # the hybrid pipelines: the torch peers and the chained sessions
        bench.peers["native inference_mode"] = hand_written(bench.pipe)
        compiled = compiled_path(bench)
        if compiled is not None:
            bench.peers["torch.compile"] = compiled
        bench.peers["chained"] = chained(bench, options)
    else:
        bench.peers.update(hummingbird_paths(bench))


def hand_written(pipe: Any, module: Any = None) -> Callable[[Any], Any]:
    """What a user writes for speed without an export: the sklearn steps' transform, then the
    module under inference_mode (no autograd bookkeeping), argmax → classes."""
    import torch

    head = pipe.steps[-1][1]
    net = head.model_ if module is None else module
    prefix, classes = pipe[:-1], np.asarray(head.classes_)

    def run(X: Any) -> np.ndarray:
        Z = prefix.transform(X)
        Z = Z.toarray() if hasattr(Z, "toarray") else Z
        with torch.inference_mode():
            logits = net(torch.from_numpy(np.ascontiguousarray(Z, dtype=np.float32)))
        return classes[logits.argmax(dim=1).numpy()]

    return run


def compiled_path(bench: Bench) -> Callable[[Any], Any] | None:
    """hand_written with torch.compile(module): compiled (per batch shape) in the warm-up call."""
    try:
        import torch

        path = hand_written(bench.pipe, torch.compile(bench.pipe.steps[-1][1].model_))
        path(bench.rows(2))  # compiles now: a failure is a note, not a crash
    except Exception as exc:
        bench.notes.append(f"torch.compile skipped: {_short_error(exc)}")
        return None
    return path


def chained(bench: Bench, options: Any) -> Callable[[Any], Any]:
    """Two sessions, as hand-written glue would run them: the sklearn steps exported on their own
    (a transformer model), then the torch wrapper exported on the features they produce."""
    import exporter
    from runtime.inputs import prepare_feeds

    sample = bench.rows(400)
    prefix, head = bench.pipe[:-1], bench.pipe.steps[-1][1]
    first = exporter.export(prefix, sample=sample)
    features = prefix.transform(sample)
    features = features.toarray() if hasattr(features, "toarray") else features
    second = exporter.export(head, sample=np.asarray(features, dtype=np.float32))
    sk = ort.InferenceSession(first.model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    net = ort.InferenceSession(second.model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    import runtime

    schema = runtime.load(first.model.SerializeToString()).schema
    sk_out = sk.get_outputs()[0].name
    net_input = net.get_inputs()[0].name

    def run(X: Any) -> np.ndarray:
        feeds, _ = prepare_feeds(X, schema)
        z = sk.run([sk_out], feeds)[0]
        return net.run(["label"], {net_input: z.astype(np.float32, copy=False)})[0]

    return run


def _hummingbird() -> Any:
    """hummingbird.ml, from this environment or the bench-extra folder; None when absent."""
    try:
        import hummingbird.ml as hb

        return hb
    except ImportError:
        pass
    extra = os.environ.get("HYBRIDONNX_BENCH_EXTRA", str(ROOT / ".venv" / "bench-extra"))
    if not Path(extra).is_dir():
        return None
    sys.path.append(extra)  # last: its top-level ``benchmarks`` package must not shadow ours
    try:
        import hummingbird.ml as hb
    except ImportError:
        return None
    return hb


def hummingbird_paths(bench: Bench) -> dict[str, Callable[[Any], Any]]:
    hb = _hummingbird()
    if hb is None:
        bench.notes.append(
            "hummingbird skipped: not installed (see the module docstring of benchmarks/run.py)"
        )
        return {}
    paths = {}
    sample = bench.rows(100)
    for name, backend in zip(HB, ("torch", "torch.jit"), strict=True):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                container = hb.convert(bench.pipe, backend, sample if backend != "torch" else None)
            container.predict(bench.rows(3))
            paths[name] = container.predict
        except Exception as exc:
            bench.notes.append(f"{name} skipped: {_short_error(exc)}")
    for backend, why in (("onnx", None), ("tvm", "TVM is not installed (no wheel for this Python)")):
        if why is None:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    hb.convert(bench.pipe, backend, sample).predict(sample)
                bench.notes.append(
                    "hummingbird onnx converts here but is not timed (an ONNX model like ours)"
                )
                continue
            except Exception as exc:
                why = _short_error(exc)
        bench.notes.append(f"hummingbird {backend} backend left out: {why}")
    return paths


def _short_error(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    for marker in ("\x1b", "Refer to", "Next steps"):
        text = text.split(marker)[0]
    return f"{type(exc).__name__}: {text[:160]}".rstrip(" :.")


def per_call(fn: Callable[[], Any], loops: int) -> float:
    start = time.perf_counter()
    for _ in range(loops):
        fn()
    return (time.perf_counter() - start) / loops


def time_paths(bench: Bench, reps: int, batches: tuple[int, ...]) -> dict[int, dict[str, float]]:
    from runtime.inputs import prepare_feeds

    out = {}
    for n in batches:
        X = bench.rows(n)
        feeds, _ = prepare_feeds(X, bench.model.schema)
        label = bench.raw.get_outputs()[0].name
        paths: dict[str, Callable[[], Any]] = {
            NATIVE: lambda X=X: bench.pipe.predict(X),
            OURS: lambda X=X: bench.model.predict(X),
            RAW: lambda feeds=feeds, label=label: bench.raw.run([label], feeds),
            **{k: (lambda X=X, f=f: f(X)) for k, f in bench.peers.items()},
        }
        native = np.asarray(paths[NATIVE]())
        assert np.mean(np.asarray(paths[OURS]()) == native) >= 0.99, (bench.name, n)
        for key in bench.peers:
            agree = np.mean(np.asarray(paths[key]()).ravel() == native)
            assert agree >= 0.99, (bench.name, key, n, agree)
        for fn in paths.values():
            fn()  # warm-up (torch.compile compiles for this shape here)
        budget = max(0.02, min(0.3, 3e-6 * n))  # seconds per timed loop, roughly
        loops = {k: max(1, int(budget / max(per_call(fn, 1), 1e-6))) for k, fn in paths.items()}
        order = list(paths)
        times: dict[str, list[float]] = {k: [] for k in paths}
        for rep in range(reps):  # interleave, alternating the order
            for key in order if rep % 2 == 0 else reversed(order):
                times[key].append(per_call(paths[key], loops[key]))
        out[n] = {k: statistics.median(v) for k, v in times.items()}
        print(f"  {bench.short} {n:>6} rows: " + ", ".join(f"{k} {v * 1e6:,.0f}" for k, v in out[n].items()))
    return out


def plot(results: dict[str, dict[int, dict[str, float]]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 4.2))
    for ax, (name, by_batch) in zip(np.atleast_1d(axes), results.items(), strict=True):
        batches = sorted(by_batch)
        for key in by_batch[batches[0]]:
            ax.loglog(batches, [by_batch[b][key] * 1e6 for b in batches], STYLES.get(key, "x-"), label=key)
        ax.set_title(name, fontsize=8)
        ax.set_xlabel("rows per call")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=6)
    np.atleast_1d(axes)[0].set_ylabel("latency per call (µs, median)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def report(
    benches: list[Bench],
    results: dict[str, dict[int, dict[str, float]]],
    env: list[str],
    command: str,
) -> str:
    lines = [
        "# Benchmark results",
        "",
        f"{dt.date.today().isoformat()}; {platform.machine()}, {_cpu()}, {os.cpu_count()} cores shared "
        f"(noisy: compare within a run); Python {platform.python_version()}, onnxruntime {ort.__version__}, "
        f"torch {metadata.version('torch')}, scikit-learn {metadata.version('scikit-learn')}, "
        f"skl2onnx {metadata.version('skl2onnx')}{_hb_version()}. `{command}`; "
        "medians of interleaved timed loops after a warm-up.",
        "",
        "![latency vs batch size](latency.png)",
        "",
        "| model | export (s) | model size (KiB) |",
        "|---|---:|---:|",
        *(f"| {b.name} | {b.export_s:.1f} | {b.size / 1024:.1f} |" for b in benches),
        "",
    ]
    for bench in benches:
        by_batch = results[bench.name]
        keys = list(by_batch[min(by_batch)])
        peers = [k for k in keys if k not in (NATIVE, OURS, RAW)]
        head = [f"{k} (µs)" for k in keys]
        ratios = ["native / hybridonnx", "hybridonnx / raw", *(f"{p} / hybridonnx" for p in peers)]
        lines += [
            f"## {bench.name}",
            "",
            "| rows | " + " | ".join(head + ratios) + " | hybridonnx rows/s |",
            "|---:|" + "---:|" * (len(head) + len(ratios) + 1),
        ]
        for n in sorted(by_batch):
            t = by_batch[n]
            cells = [f"{t[k] * 1e6:,.1f}" if t[k] < 1e-3 else f"{t[k] * 1e6:,.0f}" for k in keys]
            cells += [f"{t[NATIVE] / t[OURS]:.1f}x", f"{t[OURS] / t[RAW]:.2f}x"]
            cells += [f"{t[p] / t[OURS]:.2f}x" for p in peers]
            lines.append(f"| {n:,} | " + " | ".join(cells) + f" | {n / t[OURS]:,.0f} |")
        lines.append("")
        lines += [f"- {note}" for note in dict.fromkeys(bench.notes)]
        parallel = getattr(bench.model, "parallel_batches", None)
        if parallel is not None:
            lines.append(f"- parallel batches (runtime, measured at the first large calls): {parallel}")
        lines.append("")
    if env:
        lines += ["## Cold start and memory (fresh processes, first pipeline)", "", *env, ""]
    lines += ["## Goals", "", "| goal | measured | met |", "|---|---|---|", *goals(benches, results), ""]
    return "\n".join(lines)


def goals(benches: list[Bench], results: dict[str, dict[int, dict[str, float]]]) -> list[str]:
    """The issues' goals, checked against this run (per model where they are per model)."""
    from benchmarks.edge import RATIOS

    def row(goal: str, values: list[float], fmt: str, ok: Callable[[float], bool]) -> str:
        if not values:
            return f"| {goal} | not measured in this run | - |"
        shown = ", ".join(format(v, fmt) for v in values)
        return f"| {goal} | {shown} | {'yes' if all(map(ok, values)) else 'no'} |"

    by = {b.short: results[b.name] for b in benches}
    mlp = [by[k] for k in ("dense", "DataFrame", "TF-IDF") if k in by]

    def at(short: str, n: int, fn: Callable[[dict[str, float]], float]) -> list[float]:
        return [fn(by[short][n])] if short in by and n in by[short] else []

    speedup: Callable[[dict[str, float]], float] = lambda t: t[NATIVE] / t[OURS]  # noqa: E731
    over_raw: Callable[[dict[str, float]], float] = lambda t: t[OURS] / t[RAW]  # noqa: E731
    lines = [
        row(
            "1 row: ≥ 25x faster than native (per pipeline)",
            [speedup(p[1]) for p in mlp],
            ".1f",
            lambda v: v >= 25,
        ),
        row(
            "1 row: within 1.2x of a raw onnxruntime run",
            [over_raw(p[1]) for p in mlp],
            ".2f",
            lambda v: v <= 1.2,
        ),
        row(
            "4,096 rows: ≥ 5x faster than native",
            [speedup(p[4096]) for p in mlp if 4096 in p],
            ".1f",
            lambda v: v >= 5,
        ),
        row(
            "merged graph faster than two chained sessions, every batch (worst chained/merged)",
            [min(p[n]["chained"] / p[n][OURS] for n in p) for p in mlp],
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
    trees = [by[k] for k in ("RandomForest", "GradientBoosting") if k in by]
    hb_best = [
        min(t[k] for k in HB if k in t) / t[OURS]
        for p in trees
        for t in p.values()
        if any(k in t for k in HB)
    ]
    lines += [
        row("dense, 1 row: ≤ 1.15x a raw run", at("dense", 1, over_raw), ".2f", lambda v: v <= 1.15),
        row(
            "dense, 65,536 rows: ≤ 1.05x a raw run", at("dense", 65536, over_raw), ".2f", lambda v: v <= 1.05
        ),
        row(
            "DataFrame, 1 row: ≤ 2x a raw run with prebuilt feeds",
            at("DataFrame", 1, over_raw),
            ".2f",
            lambda v: v <= 2,
        ),
        row("DataFrame, 4,096 rows: ≥ 5x native", at("DataFrame", 4096, speedup), ".1f", lambda v: v >= 5),
        row("TF-IDF, 4,096 documents: ≥ 4x native", at("TF-IDF", 4096, speedup), ".1f", lambda v: v >= 4),
        row(
            "trees: ahead of hummingbird's best CPU backend at every batch "
            "(best hummingbird / hybridonnx, RandomForest then GradientBoosting, by batch)",
            hb_best,
            ".2f",
            lambda v: v > 1,
        ),
        row(
            "GradientBoosting (200 trees), 10,000 rows: ≥ 1.5x native",
            at("GradientBoosting", 10000, speedup),
            ".2f",
            lambda v: v >= 1.5,
        ),
    ]
    return lines


def _hb_version() -> str:
    try:
        return f", hummingbird-ml {metadata.version('hummingbird-ml')}"
    except metadata.PackageNotFoundError:
        return ""


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
    parser.add_argument("--only", choices=("mlp", "trees"))
    parser.add_argument("--no-env", action="store_true", help="skip the cold-start processes")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks", help="folder for the report")
    args = parser.parse_args()
    reps = 3 if args.quick else 7
    folder = Path(tempfile.mkdtemp())
    benches = pipelines(args.only)
    results = {}
    for bench in benches:
        prepare(bench, folder)
        batches = tuple(n for n in bench.batches if not (args.quick and n > 4096))
        try:
            results[bench.name] = time_paths(
                bench, reps if bench.short not in ("RandomForest",) else 5, batches
            )
        except Exception:
            traceback.print_exc()
            raise
        print(f"timed {bench.name}", file=sys.stderr)
    env: list[str] = []
    if not args.no_env and benches and benches[0].short == "dense":
        from benchmarks.edge import environment_rows

        env = environment_rows(folder, benches[0].pipe, benches[0].rows(1), folder / "0.onnx")
    args.out.mkdir(parents=True, exist_ok=True)
    plot(results, args.out / "latency.png")
    command = "python benchmarks/run.py " + " ".join(sys.argv[1:])
    text = report(benches, results, env, command.strip())
    (args.out / "RESULTS.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
