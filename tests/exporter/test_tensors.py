"""Inputs beyond 2-D float rows (images, token ids, named inputs) and what the probe exports when a
wrapper does more than its module's forward: refusals by the runtime, one-line export errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator, ClassifierMixin

import exporter
import runtime
from exporter.errors import SampleError, UnsupportedStepError
from runtime.errors import InvalidInputError
from tests.models import AutoEncoder, SmallCNN, TokenRNN, TwoInputNet, token_data


class _Wrapper(ClassifierMixin, BaseEstimator):
    """A hand-written classifier around an untrained module: parity only needs the same numbers."""

    def __init__(self, module: Any = None) -> None:
        self.module = module

    def fit(self, X: Any, y: Any) -> _Wrapper:
        torch.manual_seed(0)
        self.classes_ = np.unique(y)
        self.model_ = self.module
        return self

    def _inputs(self, X: Any) -> Any:
        if isinstance(X, dict):
            return {k: torch.as_tensor(np.asarray(v)) for k, v in X.items()}
        X = np.asarray(X)
        return torch.as_tensor(X if X.dtype.kind in "iu" else X.astype(np.float32))

    def predict_proba(self, X: Any) -> np.ndarray:
        with torch.no_grad():
            x = self._inputs(X)
            out = self.model_(**x) if isinstance(x, dict) else self.model_(x)
            return torch.softmax(out, dim=-1).numpy()

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


@pytest.fixture(scope="module")
def tokens() -> tuple[Any, np.ndarray, runtime.Model]:
    torch.manual_seed(0)
    X, y = token_data(n=80, length=10)
    est = _Wrapper(TokenRNN(vocab=20)).fit(X, y)
    result = exporter.export(est, sample=X[:40])
    return est, X, runtime.load(result.model.SerializeToString())


def test_token_ids_stay_integers_with_any_sequence_length(tokens: Any) -> None:
    est, X, model = tokens
    (spec,) = model.schema.inputs
    assert (model.schema.layout, spec.dtype, spec.shape, spec.id_range) == (
        "tensor",
        "int64",
        (None,),
        (0, 20),
    )
    shorter = X[40:, :7]  # the GRU takes any length: the graph kept T dynamic
    np.testing.assert_allclose(model.predict_proba(shorter), est.predict_proba(shorter), atol=1e-5)
    assert np.array_equal(model.predict(torch.as_tensor(shorter)), est.predict(shorter))


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (lambda X: X.astype(np.float32), r"holds float32 values; it takes integer ids \(int64 \(N, T\)\)"),
        (lambda X: np.where(X == 3, 25, X), r"holds id 25 at .*20 rows \(ids 0\.\.19\), and torch refuses"),
        (lambda X: np.where(X == 3, -1, X), r"holds id -1 at"),
        (lambda X: X[:, :, None], r"has shape \(40, 10, 1\); the model takes int64 \(N, T\)"),
        (lambda X: X[0], r"one example\? add the batch axis"),
        (lambda X: {"tokens": X}, r"the model takes the inputs \{X: int64 \(N, T\)\}; missing \['X'\]"),
    ],
)
def test_the_runtime_refuses_what_torch_refuses(tokens: Any, bad: Any, message: str) -> None:
    _, X, model = tokens
    with pytest.raises(InvalidInputError, match=message):
        model.predict(bad(X[40:]))


def test_images_check_their_trailing_dims() -> None:
    torch.manual_seed(0)
    X = np.random.default_rng(0).random((30, 1, 8, 8)).astype(np.float32)
    est = _Wrapper(SmallCNN(3)).fit(X, np.arange(30) % 3)
    model = runtime.load(exporter.export(est, sample=X[:20]).model.SerializeToString())
    assert model.schema.inputs[0].shape == (1, 8, 8)
    np.testing.assert_allclose(model.predict_proba(X.astype(np.float64)), est.predict_proba(X), atol=1e-5)
    with pytest.raises(InvalidInputError, match=r"axis 2 is 9, the model takes 8 \(float32 \(N, 1, 8, 8\)\)"):
        model.predict(np.zeros((2, 1, 9, 8), np.float32))


def test_named_inputs_from_a_dict_or_an_npz_sample(tmp_path: Path) -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    X = {"num": rng.normal(size=(40, 4)).astype(np.float32), "cat": rng.integers(0, 3, (40, 1))}
    est = _Wrapper(TwoInputNet()).fit(X, np.arange(40) % 2)
    np.savez(tmp_path / "sample.npz", **X)
    result = exporter.export(est, sample=tmp_path / "sample.npz")
    model = runtime.load(result.model.SerializeToString())
    assert [(s.name, s.dtype, s.shape) for s in model.schema.inputs] == [
        ("num", "float32", (4,)),
        ("cat", "int64", (1,)),
    ]  # forward's parameter order
    np.testing.assert_allclose(model.predict_proba(X), est.predict_proba(X), atol=1e-5)
    with pytest.raises(InvalidInputError, match=r"takes 2 named inputs; pass a dict"):
        model.predict(X["num"])
    with pytest.raises(InvalidInputError, match=r"missing \['cat'\]"):
        model.predict({"num": X["num"]})


def test_a_token_model_without_a_sample_is_refused_by_name() -> None:
    X, y = token_data(n=20)
    est = _Wrapper(TokenRNN()).fit(X, y)
    with pytest.raises(SampleError, match=r"takes token ids .* pass --sample"):
        exporter.export(est)


class _Coder(BaseEstimator):
    """``transform`` is the autoencoder's code, times ``scale``: the module's forward is neither."""

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale

    def fit(self, X: Any, y: Any = None) -> _Coder:
        torch.manual_seed(0)
        self.model_ = AutoEncoder(np.asarray(X).shape[1], 3)
        return self

    def transform(self, X: Any) -> np.ndarray:
        with torch.no_grad():
            return self.model_.encoder(torch.as_tensor(np.asarray(X, np.float32))).numpy() * self.scale


def test_the_probe_exports_what_transform_returns() -> None:
    X = np.random.default_rng(0).normal(size=(40, 6)).astype(np.float32)
    result = exporter.export(_Coder().fit(X), sample=X)
    (stage,) = result.metadata["stages"]
    assert stage["exported"] == "model_.encoder"
    assert stage["tried"][0].startswith("model_: output shape (40, 6), native (40, 3)")
    assert "exported model_.encoder" in result.summary()


def test_a_wrapper_nothing_reproduces_is_refused_in_one_line() -> None:
    X = np.random.default_rng(0).normal(size=(40, 6)).astype(np.float32)
    with pytest.raises(UnsupportedStepError) as info:
        exporter.export(_Coder(scale=10.0).fit(X), sample=X)
    message = str(info.value)
    assert "\n" not in message
    assert "no module it holds reproduces its own transform" in message
    assert "register_wrapper(_Coder, module=lambda step: ...)" in message


def test_a_declared_module_that_misses_a_rescaling_says_scale_not_rounding() -> None:
    X = np.random.default_rng(0).normal(size=(40, 6)).astype(np.float32)
    exporter.register_wrapper(_Coder, module=lambda step: step.model_.encoder, replace=True)
    try:
        with pytest.raises(exporter.ParityError) as info:
            exporter.export(_Coder(scale=10.0).fit(X), sample=X)
    finally:
        from exporter.registry import registry

        registry.unregister(_Coder)
    message = str(info.value)
    assert "scale x0.1" in message and "rounding" not in message
    assert "register_wrapper(Cls, module=...)" in message


def test_verify_and_check_replay_token_ids_as_integers(tokens: Any) -> None:
    from exporter.check import check
    from runtime.verify import verify

    est, X, model = tokens
    assert verify(model).passed  # the golden rows replayed on the device, ids as int64
    assert check(est, model).passed  # the native side gets them as integers too
    assert check(est, model, X[40:]).passed
