"""Rows per second: one process vs Dask vs Spark, with 1 and 2 workers, on this machine.

    python benchmarks/scale.py          (writes benchmarks/scale.md)

The ColumnTransformer → MLP model of the tests, 400,000 mixed-dtype rows already in the engine's
memory (Dask: persisted partitions; Spark: a cached DataFrame), the timed part is scoring and
bringing the labels back (Dask: compute; Spark: a count over the scored frame, so the labels are
computed but not shipped to the driver). Median of 3 runs after a warm-up. This machine has 2
cores: expect the engines' overhead, not a speed-up.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
N_ROWS = 400_000
RUNS = 3


def timed(fn: Callable[[], object]) -> float:
    fn()  # warm-up: sessions built, JVM/JIT warm
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    import dask.dataframe as dd
    from dask.distributed import Client, LocalCluster
    from sklearn.pipeline import make_pipeline

    import exporter
    import runtime
    import runtime.dask as rdask
    import runtime.spark as rspark
    from tests.cases import _mixed_columns, mixed_frame
    from tests.models import TorchClassifier

    frame, labels = mixed_frame(n=2000)
    pipe = make_pipeline(_mixed_columns(), TorchClassifier(hidden=32, epochs=20)).fit(frame, labels)
    path = Path(tempfile.mkdtemp()) / "mixed.onnx"
    exporter.export(pipe, sample=frame.iloc[:300]).save(path)
    rows, _ = mixed_frame(n=N_ROWS, seed=3)
    rows["plan"] = rows["plan"].astype(str)
    results: dict[str, float] = {}

    single = runtime.load(path, providers=["CPUExecutionProvider"])
    results["one process (Model.predict, default threads)"] = timed(lambda: single.predict(rows))
    one_thread = runtime.load(path, providers=["CPUExecutionProvider"], threads=1)
    results["one process, 1 intra-op thread"] = timed(lambda: one_thread.predict(rows))

    for workers in (1, 2):
        with (
            LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
            ) as c,
            Client(c) as client,
        ):
            ddf = client.persist(dd.from_pandas(rows, npartitions=8))
            results[f"Dask LocalCluster, {workers} worker process(es)"] = timed(
                lambda ddf=ddf: rdask.predict(ddf, path).compute()
            )

    os.environ["PYSPARK_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    for cores in (1, 2):
        spark = (
            SparkSession.builder.master(f"local[{cores}]")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .getOrCreate()
        )
        spark.sparkContext.setLogLevel("ERROR")
        sdf = spark.createDataFrame(rows).repartition(8).cache()
        sdf.count()
        results[f"Spark local[{cores}]"] = timed(lambda sdf=sdf: rspark.predict(sdf, path).count())
        spark.stop()

    base = results["one process (Model.predict, default threads)"]
    lines = [
        "# Scoring at scale on this machine",
        "",
        f"{platform.machine()}, 2 cores; Python {platform.python_version()}, onnxruntime "
        f"{metadata.version('onnxruntime')}, dask {metadata.version('dask')}, "
        f"pyspark {metadata.version('pyspark')}; {N_ROWS:,} mixed-dtype rows (8 columns), "
        f"ColumnTransformer → MLP; median of {RUNS} runs after a warm-up.",
        "",
        "| how | seconds | rows/s | vs one process |",
        "|---|---:|---:|---:|",
        *(f"| {name} | {t:.2f} | {N_ROWS / t:,.0f} | {base / t:.2f}x |" for name, t in results.items()),
        "",
    ]
    text = "\n".join(lines)
    (ROOT / "benchmarks" / "scale.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
