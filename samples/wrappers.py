"""The user's own code: a torch module and the sklearn-style wrapper around it.

It lives in a module (not in the training script's __main__) so that the pickled pipeline can be
unpickled by the exporter: pass this folder with ``--path samples``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin


class MLP(torch.nn.Module):
    def __init__(self, n_in: int, n_out: int, hidden: int = 32) -> None:
        super().__init__()
        self.layers = torch.nn.Sequential(
            torch.nn.Linear(n_in, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, n_out)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class TorchMLPClassifier(ClassifierMixin, BaseEstimator):
    """fit/predict/predict_proba around an MLP; the fitted module is kept in ``model_``."""

    def __init__(self, hidden: int = 32, epochs: int = 200, lr: float = 1e-2) -> None:
        self.hidden = hidden
        self.epochs = epochs
        self.lr = lr

    def fit(self, X: Any, y: Any) -> TorchMLPClassifier:
        torch.manual_seed(0)
        self.classes_, index = np.unique(y, return_inverse=True)
        x = torch.as_tensor(np.asarray(X), dtype=torch.float32)
        self.model_ = MLP(x.shape[1], len(self.classes_), self.hidden)
        optimizer = torch.optim.Adam(self.model_.parameters(), lr=self.lr)
        target = torch.as_tensor(index)
        for _ in range(self.epochs):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(self.model_(x), target).backward()
            optimizer.step()
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        with torch.no_grad():
            logits = self.model_(torch.as_tensor(np.asarray(X), dtype=torch.float32))
        return torch.softmax(logits, dim=-1).numpy()

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]
