"""Seeds and shared fixtures. Cases are fitted once per session: fitting torch models is the slow part."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest
import torch

from tests.cases import CASES, Case, fit_case

_FITTED: dict[str, tuple[Any, Any, Any]] = {}


@pytest.fixture(autouse=True)
def _seed() -> None:
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


def fitted(case: Case) -> tuple[Any, Any, Any]:
    if case.id not in _FITTED:
        _FITTED[case.id] = fit_case(case)
    return _FITTED[case.id]


@pytest.fixture(scope="session")
def iris_pipeline() -> tuple[Any, Any, Any]:
    """StandardScaler → TorchClassifier on iris: the workhorse of the CLI and error tests."""
    case = next(c for c in CASES if c.id == "string-labels")
    return fitted(case)
