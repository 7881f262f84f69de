"""Torch modules and sklearn-style wrappers used by the tests, as users write them.

They live in an importable module (not in a test file) so pickles of them load in the CLI
subprocess, exactly like a user's own ``my_wrappers.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin


class MLP(torch.nn.Module):
    def __init__(self, n_in: int, n_out: int, hidden: int = 16, softmax: bool = False) -> None:
        super().__init__()
        layers: list[torch.nn.Module] = [
            torch.nn.Linear(n_in, hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden, n_out),
        ]
        if softmax:
            layers.append(torch.nn.Softmax(dim=-1))
        self.layers = torch.nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def _train(module: torch.nn.Module, X: Any, target: torch.Tensor, loss: Any, epochs: int) -> None:
    torch.manual_seed(0)
    opt = torch.optim.Adam(module.parameters(), lr=1e-2)
    x = _tensor(X)
    for _ in range(epochs):
        opt.zero_grad()
        loss(module(x), target).backward()
        opt.step()


def _tensor(X: Any) -> torch.Tensor:
    if hasattr(X, "toarray"):  # sparse (TF-IDF): what a wrapper fed by a vectorizer does
        X = X.toarray()
    return torch.as_tensor(np.asarray(X), dtype=torch.float32)


class TorchClassifier(ClassifierMixin, BaseEstimator):
    """The common hand-written wrapper: softmax over logits, labels = classes_[argmax]."""

    def __init__(self, hidden: int = 16, epochs: int = 60) -> None:
        self.hidden = hidden
        self.epochs = epochs

    def fit(self, X: Any, y: Any) -> TorchClassifier:
        torch.manual_seed(0)
        self.classes_, index = np.unique(y, return_inverse=True)
        self.n_features_in_ = X.shape[1]
        self.model_ = MLP(self.n_features_in_, len(self.classes_), self.hidden)
        _train(self.model_, X, torch.as_tensor(index), torch.nn.functional.cross_entropy, self.epochs)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        with torch.no_grad():
            return torch.softmax(self.model_(_tensor(X)), dim=-1).numpy()

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


class PlainTorchClassifier:
    """A wrapper that is NOT a BaseEstimator (common in the wild); its module sits in ``net_``."""

    def __init__(self, epochs: int = 60) -> None:
        self.epochs = epochs

    def fit(self, X: Any, y: Any) -> PlainTorchClassifier:
        torch.manual_seed(0)
        self.classes_, index = np.unique(y, return_inverse=True)
        self.net_ = MLP(np.asarray(X).shape[1], len(self.classes_))
        self.loss_ = torch.nn.CrossEntropyLoss()  # a loss module must not confuse module detection
        _train(self.net_, X, torch.as_tensor(index), self.loss_, self.epochs)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        with torch.no_grad():
            return torch.softmax(self.net_(_tensor(X)), dim=-1).numpy()

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


class SingleLogitClassifier(ClassifierMixin, BaseEstimator):
    """Binary wrapper with one logit and a sigmoid."""

    def __init__(self, epochs: int = 60) -> None:
        self.epochs = epochs

    def fit(self, X: Any, y: Any) -> SingleLogitClassifier:
        self.classes_, index = np.unique(y, return_inverse=True)
        self.model_ = MLP(np.asarray(X).shape[1], 1)
        target = torch.as_tensor(index, dtype=torch.float32).reshape(-1, 1)
        _train(self.model_, X, target, torch.nn.functional.binary_cross_entropy_with_logits, self.epochs)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        with torch.no_grad():
            p = torch.sigmoid(self.model_(_tensor(X))).numpy()
        return np.hstack([1 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


class ProbabilityModuleClassifier(TorchClassifier):
    """Its module ends in Softmax: the default head (another softmax) is wrong for it."""

    def fit(self, X: Any, y: Any) -> ProbabilityModuleClassifier:
        super().fit(X, y)
        trained = self.model_
        self.model_ = MLP(self.n_features_in_, len(self.classes_), self.hidden, softmax=True)
        self.model_.layers[:3].load_state_dict(trained.layers.state_dict())
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        with torch.no_grad():
            return self.model_(_tensor(X)).numpy()


class TorchRegressor(RegressorMixin, BaseEstimator):
    """Regression wrapper; ``predict`` is (N,) for one target and (N, k) for several."""

    def __init__(self, hidden: int = 32, epochs: int = 200) -> None:
        self.hidden = hidden
        self.epochs = epochs

    def fit(self, X: Any, y: Any) -> TorchRegressor:
        y = np.asarray(y, dtype=np.float32)
        self._single = y.ndim == 1
        target = torch.as_tensor(y.reshape(len(y), -1))
        self.model_ = MLP(np.asarray(X).shape[1], target.shape[1], self.hidden)
        _train(self.model_, X, target, torch.nn.functional.mse_loss, self.epochs)
        return self

    def predict(self, X: Any) -> np.ndarray:
        with torch.no_grad():
            out = self.model_(_tensor(X)).numpy()
        return out.ravel() if self._single else out


class Doubler(BaseEstimator):
    """A custom sklearn-style step no converter knows."""

    def fit(self, X: Any, y: Any = None) -> Doubler:
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def transform(self, X: Any) -> np.ndarray:
        return np.asarray(X) * 2


class TorchEncoder(BaseEstimator):
    """An sklearn-style transformer around a fitted encoder module (trained as an autoencoder)."""

    def __init__(self, n_components: int = 4, epochs: int = 60) -> None:
        self.n_components = n_components
        self.epochs = epochs

    def fit(self, X: Any, y: Any = None) -> TorchEncoder:
        torch.manual_seed(0)
        n_in = np.asarray(X).shape[1]
        self.encoder_ = torch.nn.Sequential(
            torch.nn.Linear(n_in, 16), torch.nn.Tanh(), torch.nn.Linear(16, self.n_components)
        )
        decoder = torch.nn.Linear(self.n_components, n_in)
        x = _tensor(X)
        opt = torch.optim.Adam([*self.encoder_.parameters(), *decoder.parameters()], lr=1e-2)
        for _ in range(self.epochs):
            opt.zero_grad()
            torch.nn.functional.mse_loss(decoder(self.encoder_(x)), x).backward()
            opt.step()
        return self

    def transform(self, X: Any) -> np.ndarray:
        with torch.no_grad():
            return self.encoder_(_tensor(X)).numpy()

    def fit_transform(self, X: Any, y: Any = None) -> np.ndarray:
        return self.fit(X, y).transform(X)
