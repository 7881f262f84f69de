"""The registry: explicit loading, MRO lookup, loud duplicates, and register_wrapper heads."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.preprocessing import StandardScaler

import exporter
from exporter.convert.heads import Head
from exporter.errors import RegistrationError
from exporter.registration import load_builtin
from exporter.registry import SKLEARN, TorchAdapter, registry
from tests.models import ProbabilityModuleClassifier, TorchClassifier


@pytest.fixture
def clean_registry() -> Iterator[None]:
    yield
    for cls in (ProbabilityModuleClassifier, TorchClassifier):
        registry.unregister(cls)


def test_load_builtin_is_idempotent() -> None:
    assert load_builtin() is load_builtin()
    assert registry.lookup(StandardScaler) is SKLEARN


def test_sklearn_entries_match_exact_type_only() -> None:
    class MyScaler(StandardScaler):
        pass

    assert registry.lookup(MyScaler) is None


def test_torch_adapters_are_inherited_along_the_mro() -> None:
    import skorch

    class MyNet(skorch.NeuralNetClassifier):
        pass

    entry = registry.lookup(MyNet)
    assert isinstance(entry, TorchAdapter) and entry.source == "skorch"


def test_duplicate_registration_fails_loudly(clean_registry: None) -> None:
    exporter.register_wrapper(TorchClassifier, module="model_")
    with pytest.raises(RegistrationError, match=r"already registered.*replace=True"):
        exporter.register_wrapper(TorchClassifier, module="model_")
    exporter.register_wrapper(TorchClassifier, module="model_", replace=True)


def test_register_wrapper_declares_the_head(clean_registry: None) -> None:
    X, y = load_iris(return_X_y=True)
    X = X.astype(np.float32)
    wrapper = ProbabilityModuleClassifier(epochs=20).fit(X, y)
    with pytest.raises(exporter.ParityError):
        exporter.export(wrapper, sample=X)
    exporter.register_wrapper(ProbabilityModuleClassifier, head=Head(proba="identity"))
    result = exporter.export(wrapper, sample=X)
    assert result.report.passed, result.report.format()


def test_head_rejects_unknown_values() -> None:
    with pytest.raises(ValueError, match=r"proba='tanh'"):
        Head(proba="tanh")  # type: ignore[arg-type]


def test_supported_steps_lists_both_kinds() -> None:
    kinds = dict(exporter.supported_steps())
    assert kinds["sklearn.preprocessing.StandardScaler"] == "skl2onnx"
    assert kinds["skorch.NeuralNetClassifier"] == "torch"


def test_several_modules_need_a_declaration() -> None:
    from exporter.errors import UnsupportedStepError
    from tests.models import MLP

    wrapper = TorchClassifier()
    wrapper.encoder_, wrapper.decoder_ = MLP(4, 3), MLP(3, 3)
    wrapper.classes_ = np.arange(3)
    with pytest.raises(UnsupportedStepError, match=r"several torch modules.*register_wrapper"):
        exporter.export(wrapper, sample=np.zeros((4, 4), np.float32))


def test_readme_support_matrix_is_generated_from_the_registry() -> None:
    from pathlib import Path

    from exporter.support import readme_block, support_matrix

    readme = Path(__file__).resolve().parents[2] / "README.md"
    assert readme_block(readme.read_text()) == support_matrix(), (
        "README's support matrix is stale: run python -m exporter.support --write README.md"
    )
