"""Seeds and shared fixtures. Cases are fitted once per session: fitting torch models is the slow part."""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings

from tests.cases import CASES, Case, fit_case

# Property tests: a small budget on every push, a long campaign on demand (HYPOTHESIS_PROFILE=campaign).
settings.register_profile("ci", max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "campaign", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

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
