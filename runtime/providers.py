"""Execution providers: what to ask onnxruntime for, and an audit of what it actually gave.

A GPU session whose CUDA libraries are missing silently runs on the CPU with only a log line; the
audit compares the active providers with the requested ones and raises (``strict=True``) or warns
once, so a misconfigured GPU machine is never mistaken for a working one.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import onnxruntime as ort

from runtime.errors import ModelLoadError, ProviderError

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"
GPU_PROVIDERS = (TENSORRT, CUDA, "ROCMExecutionProvider", "DmlExecutionProvider", "CoreMLExecutionProvider")
# Providers whose device memory the runtime binds through IO binding (device type "cuda").
CUDA_PROVIDERS = (TENSORRT, CUDA)
PRECISIONS = ("default", "fp32")

ProviderSpec = str | tuple[str, dict[str, Any]]


class ProviderFallbackWarning(RuntimeWarning):
    """A requested GPU provider is not active: the model runs on the CPU."""


def available() -> list[str]:
    """Providers compiled into the installed onnxruntime (not a promise that a device exists)."""
    return list(ort.get_available_providers())


def resolve(
    providers: str | Sequence[str], *, precision: str = "default", device_id: int = 0
) -> list[ProviderSpec]:
    """The provider list for InferenceSession, with options, always ending in the CPU provider.

    ``"auto"``: CUDA when this onnxruntime build has it, then CPU (TensorRT only when asked for:
    its engine build makes the first call take minutes). ``precision="fp32"`` turns off TF32 on
    CUDA, which otherwise moves float32 results by ~1e-4.
    """
    if precision not in PRECISIONS:
        raise ProviderError(f"precision={precision!r}: use one of {PRECISIONS}")
    built = available()
    if isinstance(providers, str):
        names = (
            [CUDA] if providers == "auto" and CUDA in built else [] if providers == "auto" else [providers]
        )
    elif isinstance(providers, (list, tuple)) and all(isinstance(p, str) for p in providers):
        names = list(providers)
    else:
        raise ProviderError(
            f"providers={providers!r}: use 'auto', a provider name, or a list of names such as "
            f"['CUDAExecutionProvider', 'CPUExecutionProvider'] (available: {built})"
        )
    if not isinstance(device_id, int) or isinstance(device_id, bool) or device_id < 0:
        raise ProviderError(f"device_id={device_id!r}: use a GPU index, an int >= 0")
    unknown = [p for p in names if p not in built]
    if unknown:
        raise ProviderError(
            f"execution provider(s) {unknown} are not in this onnxruntime build (available: {built}); "
            "for CUDA install onnxruntime-gpu instead of onnxruntime"
        )
    if CPU not in names:
        names.append(CPU)  # nodes a GPU provider cannot run (e.g. ai.onnx.ml ops) fall back here
    return [_with_options(name, precision, device_id) for name in names]


def _with_options(name: str, precision: str, device_id: int) -> ProviderSpec:
    if name == CUDA:
        return (name, {"device_id": str(device_id), "use_tf32": "0" if precision == "fp32" else "1"})
    if name == TENSORRT:
        return (name, {"device_id": str(device_id), "trt_fp16_enable": "False"})
    return name


def names(specs: Sequence[ProviderSpec]) -> list[str]:
    return [s if isinstance(s, str) else s[0] for s in specs]


_warned: set[tuple[str, ...]] = set()


def audit(requested: Sequence[ProviderSpec], active: Sequence[str], *, strict: bool, source: str) -> None:
    """Raise (strict) or warn once when a requested GPU provider did not become active."""
    missing = [p for p in names(requested) if p in GPU_PROVIDERS and p not in active]
    if not missing:
        return
    message = (
        f"{source}: requested {missing} but the session runs on {list(active)}; the GPU libraries "
        "(CUDA/cuDNN) or the device are missing — on CUDA 12+ wheels try onnxruntime.preload_dlls()"
    )
    if strict:
        raise ModelLoadError(message)
    key = (source, *missing)
    if key not in _warned:
        _warned.add(key)
        warnings.warn(message, ProviderFallbackWarning, stacklevel=3)


def effective_precision(active: Sequence[str], precision: str) -> str:
    """What the numbers are computed in: TF32 on CUDA unless fp32 was asked, else fp32."""
    if active and active[0] == CUDA and precision != "fp32":
        return "tf32"
    return "fp32"
