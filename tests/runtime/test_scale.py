"""runtime.dask and runtime.spark on real engines started here: a 2-process Dask LocalCluster and a
Spark local[2] session, scoring 200,000 mixed-dtype rows row for row like one process does."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import exporter
import runtime
from runtime.errors import InvalidInputError
from tests.cases import _mixed_columns, mixed_frame
from tests.models import TorchClassifier

N_ROWS = 200_000
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hybrid(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """A ColumnTransformer → MLP model exported from a real fit, and 200,000 fresh rows."""
    from sklearn.pipeline import make_pipeline

    frame, labels = mixed_frame(n=2000)
    pipe = make_pipeline(_mixed_columns(), TorchClassifier(hidden=32, epochs=20)).fit(frame, labels)
    path = tmp_path_factory.mktemp("scale") / "mixed.onnx"
    exporter.export(pipe, sample=frame.iloc[:300]).save(path)
    rows, _ = mixed_frame(n=N_ROWS, seed=3)
    rows["plan"] = rows["plan"].astype(str)  # Spark has no categorical type; strings are what it sends
    return path, rows


@pytest.fixture(scope="module")
def array_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    from sklearn.datasets import load_iris
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_iris(return_X_y=True)
    X = X.astype(np.float32)
    pipe = make_pipeline(StandardScaler(), TorchClassifier(hidden=8, epochs=30)).fit(X, y)
    path = tmp_path_factory.mktemp("scale") / "iris.onnx"
    exporter.export(pipe, sample=X).save(path)
    return path, X


# -- Dask ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    from dask.distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        yield client


def test_dask_scores_like_one_process(dask_client: Any, hybrid: tuple[Path, pd.DataFrame]) -> None:
    import dask.dataframe as dd

    import runtime.dask as rdask

    path, rows = hybrid
    single = runtime.load(path)
    ddf = dd.from_pandas(rows, npartitions=8)
    labels = rdask.predict(ddf, path)  # lazy until compute
    assert isinstance(labels, dd.Series) and labels.name == "label"
    np.testing.assert_array_equal(labels.compute().to_numpy(), single.predict(rows))
    proba = rdask.predict(ddf, path.read_bytes(), "predict_proba").compute()  # bytes travel too
    assert list(proba.columns) == [str(c) for c in single.classes_]
    np.testing.assert_array_equal(proba.to_numpy(), single.predict_proba(rows))
    everything = rdask.predict(ddf, path, "run").compute()
    assert list(everything.columns) == ["label", "probabilities_0", "probabilities_1"]
    # One model per worker process, loaded once and reused for every partition.
    loads = dask_client.run(lambda: len(__import__("runtime._batch").__dict__["_batch"]._MODELS))
    assert sorted(loads.values()) == [2, 2]  # two keys: the path and the bytes


def test_dask_bad_rows_raise_the_runtime_error(dask_client: Any, hybrid: tuple[Path, pd.DataFrame]) -> None:
    import dask.dataframe as dd

    import runtime.dask as rdask

    path, rows = hybrid
    bad = rows.iloc[:1000].copy()
    bad.loc[500, "score"] = np.nan  # no imputer on this column
    with pytest.raises(InvalidInputError, match="column 'score' holds NaN"):
        rdask.predict(dd.from_pandas(bad, npartitions=2), path).compute()
    with pytest.raises(InvalidInputError, match="method='score'"):
        rdask.predict(dd.from_pandas(bad, npartitions=2), path, "score")


def test_dask_feature_vector_column(dask_client: Any, array_model: tuple[Path, np.ndarray]) -> None:
    import dask
    import dask.dataframe as dd

    import runtime.dask as rdask

    path, X = array_model
    frame = pd.DataFrame({"id": np.arange(len(X)), "features": list(X)})
    with pytest.raises(InvalidInputError, match="convert-string"):  # dask's default stringifies arrays
        rdask.predict(dd.from_pandas(frame, npartitions=3), path, features_col="features").compute()
    with dask.config.set({"dataframe.convert-string": False}):
        vectors = dd.from_pandas(frame, npartitions=3)
    got = rdask.predict(vectors, path, features_col="features").compute()
    np.testing.assert_array_equal(got.to_numpy(), runtime.load(path).predict(X))


# -- Spark -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    os.environ["PYSPARK_PYTHON"] = sys.executable  # the workers need this environment's packages
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("hybridonnx-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def test_spark_scores_like_one_process(spark: Any, hybrid: tuple[Path, pd.DataFrame]) -> None:
    import runtime.spark as rspark

    path, rows = hybrid
    single = runtime.load(path)
    sdf = spark.createDataFrame(rows.assign(row=np.arange(len(rows))))
    scored = rspark.predict(sdf, path)
    assert scored.columns == [*sdf.columns, "prediction"]
    got = scored.select("row", "prediction").toPandas().sort_values("row")
    np.testing.assert_array_equal(
        got["prediction"].to_numpy(dtype=object), single.predict(rows).astype(object)
    )
    proba = rspark.predict(sdf, path, "predict_proba", output_col="p").select("row", "p_no", "p_yes")
    proba_rows = proba.toPandas().sort_values("row")
    np.testing.assert_array_equal(proba_rows[["p_no", "p_yes"]].to_numpy(), single.predict_proba(rows))


def test_spark_bad_input(spark: Any, hybrid: tuple[Path, pd.DataFrame]) -> None:
    """Wrong columns fail on the driver, before Spark runs; bad values fail in the worker with the
    runtime's message, which Spark hands back to the driver."""
    import runtime.spark as rspark

    path, rows = hybrid
    small = spark.createDataFrame(rows.iloc[:1000])
    with pytest.raises(InvalidInputError, match=r"missing column\(s\) \['age'\]"):
        rspark.predict(small.drop("age"), path)
    with pytest.raises(InvalidInputError, match="column 'city' is bigint; the model expects strings"):
        rspark.predict(small.withColumn("city", small["age"]), path)
    bad = rows.iloc[:1000].copy()
    bad.loc[500, "score"] = np.nan
    with pytest.raises(Exception, match="InvalidInputError: column 'score' holds NaN"):
        rspark.predict(spark.createDataFrame(bad), path).collect()


def test_spark_feature_vector_column(spark: Any, array_model: tuple[Path, np.ndarray]) -> None:
    import runtime.spark as rspark

    path, X = array_model
    frame = pd.DataFrame({"id": np.arange(len(X)), "features": [row.astype(float).tolist() for row in X]})
    scored = rspark.predict(spark.createDataFrame(frame), path, "predict", features_col="features")
    got = scored.toPandas().sort_values("id")["prediction"].to_numpy()
    np.testing.assert_array_equal(got, runtime.load(path).predict(X))
