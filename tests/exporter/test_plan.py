"""Planning: stages, the native probe, and native failures reported as the user's problem."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

import exporter
from exporter.errors import NotFittedError, SampleError
from exporter.plan import make_stages
from tests.models import TorchClassifier


class FailingClassifier(TorchClassifier):
    def predict(self, X: Any) -> np.ndarray:
        raise ValueError("boom: this wrapper refuses the rows")


def test_stages_group_consecutive_sklearn_steps(iris_pipeline: Any) -> None:
    _, X, y = iris_pipeline
    inner = make_pipeline(StandardScaler(), PCA(2))
    pipe = Pipeline([("prep", inner), ("skip", "passthrough"), ("clf", TorchClassifier(epochs=2))])
    with pytest.raises(NotFittedError, match=r"step 2 'clf' \(tests.models.TorchClassifier\) is not fitted"):
        make_stages(pipe)
    stages = make_stages(pipe.fit(X, y))
    assert [(s.kind, [n for n, _ in s.steps]) for s in stages] == [
        ("sklearn", ["prep__standardscaler", "prep__pca"]),
        ("torch", ["clf"]),
    ]
    assert stages[-1].is_last and not stages[0].is_last


def test_native_failure_on_the_sample_is_a_sample_error(iris_pipeline: Any) -> None:
    _, X, y = iris_pipeline
    wrapper = FailingClassifier(epochs=2).fit(X, y)
    with pytest.raises(SampleError, match=r"failed natively on the sample rows .*boom"):
        exporter.export(wrapper, sample=X[:10])
