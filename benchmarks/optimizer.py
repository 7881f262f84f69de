"""Optimized (lowered + folded) vs as-merged graph, 1 → 65,536 rows, against the native pipeline.

    python benchmarks/optimizer.py                         CPU; writes benchmarks/optimizer.md
    python benchmarks/optimizer.py --build DIR             only write DIR/plain.onnx, DIR/optimized.onnx
    python benchmarks/optimizer.py --models DIR --provider cuda
                                                           time prebuilt models on a CUDA machine
                                                           (needs numpy + onnxruntime-gpu only);
                                                           writes benchmarks/optimizer_cuda.md

Pipeline: StandardScaler → PCA(200 → 64) → MLP(64 → 128 → 3), digits-like synthetic data with
200 features. Both graphs come from the same export (``optimize=False`` / default). Timed: one
``InferenceSession.run`` of the probabilities output (CPU), or ``run_with_iobinding`` with input
and output on the device (CUDA: what ``runtime`` does with CUDA tensors). Each figure is the
median of 7 timed loops, the two graphs interleaved so machine noise hits both alike.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
N_FEATURES = 200
BATCHES = (1, 64, 1024, 8192, 65536)
REPS = 7


def build(folder: Path) -> object:
    """Fit the pipeline and write both graphs; returns the fitted pipeline (the native path)."""
    from sklearn.datasets import make_classification
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import exporter
    from tests.models import TorchClassifier

    X, y = make_classification(
        n_samples=3000, n_features=N_FEATURES, n_informative=40, n_classes=3, random_state=0
    )
    X = (X * 4 + 10).astype(np.float32)
    pipe = make_pipeline(
        StandardScaler(), PCA(64, random_state=0), TorchClassifier(hidden=128, epochs=20)
    ).fit(X, y)
    folder.mkdir(parents=True, exist_ok=True)
    plain = exporter.export(pipe, sample=X[:500], optimize=False)
    optimized = exporter.export(pipe, sample=X[:500])
    plain.save(folder / "plain.onnx")
    optimized.save(folder / "optimized.onnx")
    print(optimized.summary(), file=sys.stderr)
    return pipe


def session(path: Path, provider: str) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers = (
        ["CUDAExecutionProvider", "CPUExecutionProvider"] if provider == "cuda" else ["CPUExecutionProvider"]
    )
    sess = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    if provider == "cuda" and sess.get_providers()[0] != "CUDAExecutionProvider":
        raise SystemExit(f"CUDA was requested but the session runs on {sess.get_providers()}")
    return sess


def runner(sess: ort.InferenceSession, X: np.ndarray, provider: str) -> Callable[[], object]:
    if provider != "cuda":
        return lambda: sess.run(["probabilities"], {"X": X})
    binding = sess.io_binding()
    binding.bind_ortvalue_input("X", ort.OrtValue.ortvalue_from_numpy(X, "cuda", 0))
    binding.bind_output("probabilities", "cuda", 0)

    def run() -> object:
        sess.run_with_iobinding(binding)
        binding.synchronize_outputs()
        return binding

    return run


def per_call(fn: Callable[[], object], loops: int) -> float:
    fn()  # warm-up: first-run allocations are not what a server sees
    start = time.perf_counter()
    for _ in range(loops):
        fn()
    return (time.perf_counter() - start) / loops


def cpu_only(path: Path) -> str:
    try:
        import onnx

        from exporter.passes import cpu_only_nodes
    except ImportError:  # a runtime-only GPU machine
        return "(not computed here)"
    found = cpu_only_nodes(onnx.load(str(path)))
    return ", ".join(f"{n} {op}" for op, n in found.items()) or "none"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--provider", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--models", type=Path, help="folder with plain.onnx and optimized.onnx")
    parser.add_argument("--build", type=Path, help="only build the two models into this folder")
    args = parser.parse_args()
    if args.build:
        build(args.build)
        return
    folder = args.models or Path(tempfile.mkdtemp())
    pipe = None if args.models else build(folder)
    plain, optimized = (session(folder / f"{n}.onnx", args.provider) for n in ("plain", "optimized"))
    rng = np.random.default_rng(0)
    rows = []
    for batch in BATCHES:
        X = (rng.normal(size=(batch, N_FEATURES)) * 4 + 10).astype(np.float32)
        want = plain.run(["probabilities"], {"X": X})[0]
        got = optimized.run(["probabilities"], {"X": X})[0]
        diff = float(np.abs(got - want).max())
        loops = max(3, min(2000, 400_000 // batch))
        paths = [
            ("plain", runner(plain, X, args.provider)),
            ("optimized", runner(optimized, X, args.provider)),
        ]
        if pipe is not None:
            paths.append(("native", lambda X=X: pipe.predict_proba(X)))  # type: ignore[attr-defined]
        times: dict[str, list[float]] = {name: [] for name, _ in paths}
        for rep in range(REPS):  # alternate the order so drifts in machine load cancel
            for name, fn in paths if rep % 2 == 0 else reversed(paths):
                times[name].append(per_call(fn, loops))
        med = {name: statistics.median(t) for name, t in times.items()}
        rows.append((batch, med, diff))
    device = "CPU" if args.provider == "cpu" else "CUDA (IO binding, data on the device)"
    lines = [
        f"# Optimizer: lowered + folded graph vs the graph as merged ({device})",
        "",
        f"Machine: {platform.machine()}, Python {platform.python_version()}, "
        f"onnxruntime {ort.__version__}; StandardScaler → PCA(200 → 64) → MLP(128), 3 classes; "
        f"median of {REPS} timed loops.",
        f"CPU-only nodes: as merged {cpu_only(folder / 'plain.onnx')}; "
        f"optimized {cpu_only(folder / 'optimized.onnx')}.",
        "",
        "| rows | as merged (µs) | optimized (µs) | speed-up | optimized rows/s | native (µs) | "
        "native / optimized | max abs diff |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for batch, med, diff in rows:
        native = med.get("native")
        lines.append(
            f"| {batch} | {med['plain'] * 1e6:.1f} | {med['optimized'] * 1e6:.1f} | "
            f"{med['plain'] / med['optimized']:.2f}x | {batch / med['optimized']:,.0f} | "
            + (f"{native * 1e6:.1f} | {native / med['optimized']:.2f}x" if native else "n/a | n/a")
            + f" | {diff:.1e} |"
        )
    lines.append("")
    out = ROOT / "benchmarks" / ("optimizer.md" if args.provider == "cpu" else "optimizer_cuda.md")
    out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
