"""Providers, precision and IO binding — the GPU code paths exercised through the CPU provider.

CI has no GPU. The provider list onnxruntime reports is injected so that a "CUDA build on a
machine without CUDA" is simulated: onnxruntime then falls back to the CPU, which is exactly the
silent failure the audit must catch.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

import runtime
from runtime import providers
from runtime.errors import ModelLoadError, ProviderError


@pytest.fixture
def cuda_build(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend the installed onnxruntime was built with CUDA but the device or its libraries are
    missing: the build lists CUDA, and session creation silently drops it, as onnxruntime-gpu does."""
    real_session = ort.InferenceSession
    built = ort.get_available_providers()

    def session_without_gpu(model: Any, sess_options: Any = None, providers: Any = None) -> Any:
        kept = [p for p in providers or [] if (p if isinstance(p, str) else p[0]) in built]
        return real_session(model, sess_options=sess_options, providers=kept)

    monkeypatch.setattr(ort, "get_available_providers", lambda: [providers.CUDA, providers.CPU])
    monkeypatch.setattr(ort, "InferenceSession", session_without_gpu)
    providers._warned.clear()


def test_auto_is_cpu_on_a_cpu_build() -> None:
    assert providers.resolve("auto") == [providers.CPU]


def test_auto_asks_for_cuda_with_tf32_unless_fp32(cuda_build: None) -> None:
    assert providers.resolve("auto") == [
        (providers.CUDA, {"device_id": "0", "use_tf32": "1"}),
        providers.CPU,
    ]
    cuda = providers.resolve("auto", precision="fp32", device_id=1)[0]
    assert cuda == (providers.CUDA, {"device_id": "1", "use_tf32": "0"})


def test_bad_precision_is_refused() -> None:
    with pytest.raises(ProviderError, match="precision='fp16'"):
        providers.resolve("auto", precision="fp16")


def test_requested_gpu_not_active_warns_once(cuda_build: None, iris_model: tuple[Path, Any, Any]) -> None:
    path, estimator, X = iris_model
    with pytest.warns(runtime.ProviderFallbackWarning, match=r"requested \['CUDAExecutionProvider'\]"):
        model = runtime.load(path, providers=[providers.CUDA])
    assert model.providers == [providers.CPU]
    np.testing.assert_array_equal(model.predict(X), estimator.predict(X))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second load of the same model does not warn again
        runtime.load(path, providers=[providers.CUDA])


def test_strict_raises_when_gpu_not_active(cuda_build: None, iris_model: tuple[Path, Any, Any]) -> None:
    with pytest.raises(
        ModelLoadError, match=r"requested \['CUDAExecutionProvider'\] but the session runs on"
    ):
        runtime.load(iris_model[0], providers="auto", strict=True)


def test_precision_reported(iris_model: tuple[Path, Any, Any]) -> None:
    assert runtime.load(iris_model[0]).precision == "fp32"
    assert providers.effective_precision([providers.CUDA, providers.CPU], "default") == "tf32"
    assert providers.effective_precision([providers.CUDA, providers.CPU], "fp32") == "fp32"


def test_io_binding_path_matches_plain_run(iris_model: tuple[Path, Any, Any]) -> None:
    path, _, X = iris_model
    plain = runtime.load(path, io_binding="never")
    bound = runtime.load(path, io_binding="always")
    np.testing.assert_array_equal(bound.predict(X), plain.predict(X))
    np.testing.assert_array_equal(bound.predict_proba(X), plain.predict_proba(X))


def test_io_binding_with_string_columns(frame_model: tuple[Path, Any, Any]) -> None:
    path, pipe, frame = frame_model
    bound = runtime.load(path, io_binding="always")
    np.testing.assert_allclose(bound.predict(frame), pipe.predict(frame), rtol=1e-5, atol=1e-3)


def test_bad_io_binding_option(iris_model: tuple[Path, Any, Any]) -> None:
    with pytest.raises(runtime.InvalidOptionError, match="io_binding='sometimes'"):
        runtime.load(iris_model[0], io_binding="sometimes")


def test_device_tensor_binding_through_cpu(iris_model: tuple[Path, Any, Any]) -> None:
    """The DeviceArray route (CUDA tensors bound in place) with a CPU tensor standing in."""
    import torch

    from runtime.inputs import DeviceArray
    from runtime.model import _run_bound

    path, estimator, X = iris_model
    model = runtime.load(path)
    tensor = torch.as_tensor(X, dtype=torch.float32)
    feed = DeviceArray(tensor, "cpu", 0, np.dtype(np.float32), tuple(tensor.shape))
    out = _run_bound(model._session(), {"X": feed}, ["probabilities"])
    np.testing.assert_allclose(out["probabilities"], estimator.predict_proba(X), atol=1e-6)
