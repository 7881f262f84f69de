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


# -- inputs beyond 2-D float rows (images, token ids, several named inputs) -------------------------


class SmallCNN(torch.nn.Module):
    """Images (N, C, 8, 8) → logits, as skorch's MNIST example (scaled down)."""

    def __init__(self, n_out: int = 10, channels: int = 1) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(channels, 4, kernel_size=3, padding=1)
        self.pool = torch.nn.MaxPool2d(2)
        self.head = torch.nn.Linear(4 * 4 * 4, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.pool(torch.relu(self.conv(x))), 1))


class TokenRNN(torch.nn.Module):
    """int64 token ids (N, T) → nn.Embedding → GRU / LSTM → the last step's state → logits."""

    def __init__(self, vocab: int = 20, n_out: int = 2, cell: str = "gru", hidden: int = 16) -> None:
        super().__init__()
        self.embedding = torch.nn.Embedding(vocab, 8)
        rnn = torch.nn.GRU if cell == "gru" else torch.nn.LSTM
        self.rnn = rnn(8, hidden, batch_first=True)
        self.out = torch.nn.Linear(hidden, n_out)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        states, _ = self.rnn(self.embedding(tokens))
        return self.out(states[:, -1])


class TokenTransformer(torch.nn.Module):
    """int64 token ids (N, T) → embedding + one TransformerEncoder layer → mean over T → logits."""

    def __init__(self, vocab: int = 20, n_out: int = 2) -> None:
        super().__init__()
        self.embedding = torch.nn.Embedding(vocab, 16)
        layer = torch.nn.TransformerEncoderLayer(
            16, nhead=2, dim_feedforward=32, batch_first=True, dropout=0.0
        )
        self.encoder = torch.nn.TransformerEncoder(layer, num_layers=1, enable_nested_tensor=False)
        self.out = torch.nn.Linear(16, n_out)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.out(self.encoder(self.embedding(tokens)).mean(dim=1))


class TwoInputNet(torch.nn.Module):
    """Two named inputs, as skorch passes a dict / SliceDict: numeric rows and a category id."""

    def __init__(self, n_num: int = 4, n_cat: int = 3, n_out: int = 2) -> None:
        super().__init__()
        self.embedding = torch.nn.Embedding(n_cat, 3)
        self.mlp = MLP(n_num + 3, n_out)

    def forward(self, num: torch.Tensor, cat: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.cat([num, self.embedding(cat.reshape(-1))], dim=1))


def token_data(
    n: int = 300, length: int = 12, vocab: int = 20, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Token ids and a label that depends on their order (token 3 before token 5)."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, vocab, size=(n, length)).astype(np.int64)
    first3 = np.where((X == 3).any(1), (X == 3).argmax(1), length)
    first5 = np.where((X == 5).any(1), (X == 5).argmax(1), length)
    return X, (first3 < first5).astype(np.int64)


class ReshapingCNNClassifier(ClassifierMixin, BaseEstimator):
    """Takes flat rows (N, 64) and reshapes them to images (N, 1, 8, 8) before its CNN."""

    def __init__(self, epochs: int = 30) -> None:
        self.epochs = epochs

    def _images(self, X: Any) -> torch.Tensor:
        return _tensor(X).reshape(-1, 1, 8, 8)

    def fit(self, X: Any, y: Any) -> ReshapingCNNClassifier:
        torch.manual_seed(0)
        self.classes_, index = np.unique(y, return_inverse=True)
        self.model_ = SmallCNN(len(self.classes_))
        opt = torch.optim.Adam(self.model_.parameters(), lr=1e-2)
        images, target = self._images(X), torch.as_tensor(index)
        for _ in range(self.epochs):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(self.model_(images), target).backward()
            opt.step()
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        with torch.no_grad():
            return torch.softmax(self.model_(self._images(X)), dim=-1).numpy()

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


class AutoEncoder(torch.nn.Module):
    def __init__(self, n_in: int, n_code: int = 4) -> None:
        super().__init__()
        self.encoder = torch.nn.Sequential(
            torch.nn.Linear(n_in, 16), torch.nn.Tanh(), torch.nn.Linear(16, n_code)
        )
        self.decoder = torch.nn.Sequential(
            torch.nn.Linear(n_code, 16), torch.nn.Tanh(), torch.nn.Linear(16, n_in)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class AutoEncoderTransformer(BaseEstimator):
    """Trains the whole autoencoder; ``transform`` returns the code (the encoder's output), not the
    module's forward (the reconstruction)."""

    def __init__(self, n_code: int = 4, epochs: int = 60) -> None:
        self.n_code = n_code
        self.epochs = epochs

    def fit(self, X: Any, y: Any = None) -> AutoEncoderTransformer:
        torch.manual_seed(0)
        x = _tensor(X)
        self.model_ = AutoEncoder(x.shape[1], self.n_code)
        _train(self.model_, X, x, torch.nn.functional.mse_loss, self.epochs)
        return self

    def transform(self, X: Any) -> np.ndarray:
        with torch.no_grad():
            return self.model_.encoder(_tensor(X)).numpy()


class ColumnTargetClassifier(ClassifierMixin, BaseEstimator):
    """A binary net fit on ``y`` of shape (N, 1) (as for BCE): ``predict`` answers (N, 1) and
    ``predict_proba`` (N, 2, 1), the shapes skorch's binary head gives such a target."""

    def __init__(self, epochs: int = 60) -> None:
        self.epochs = epochs

    def fit(self, X: Any, y: Any) -> ColumnTargetClassifier:
        target = torch.as_tensor(np.asarray(y, dtype=np.float32).reshape(-1, 1))
        self.classes_ = np.array([0, 1])
        self.model_ = MLP(np.asarray(X).shape[1], 1)
        _train(self.model_, X, target, torch.nn.functional.binary_cross_entropy_with_logits, self.epochs)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        with torch.no_grad():
            p = torch.sigmoid(self.model_(_tensor(X))).numpy()
        return np.stack([1 - p, p], axis=1)

    def predict(self, X: Any) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] > 0.5).astype(np.int64)
