"""Export what the wrapper does, not just its module's ``forward``: find, by measuring, the
composition of the step's modules that reproduces its own ``predict`` / ``transform``.

Wrappers do work around their module: ``predict`` reshapes flat rows to images before a CNN,
``transform`` returns an autoencoder's code (its ``encoder``, not the reconstruction). The probe runs
the module on the rows the step receives and compares with the step's own answer; when the module
fails on those rows or answers something else, it tries, in order:

1. the input reshaped to what the first layer takes (Conv1d/2d/3d channels and a square/cube image,
   an RNN's (T, input_size) steps), each shape measured against the native answer;
2. every child module of the module and every other module the step holds (``encoder``, ``net_``),
   with and without those reshapes.

The first candidate whose output matches the native answer (within the per-node tolerance) is the
one exported, as a small ``nn.Module`` (reshape, then the child). When none does, the export is
refused in one line: the step, the measured difference, and how to declare it
(``register_wrapper(Cls, module=callable)``). A module the user declared is taken as it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from exporter.convert.heads import Head, apply_head_numpy, resolve_head
from exporter.convert.torch import is_module, module_attributes, run_module
from exporter.errors import UnsupportedStepError

TOLERANCE = (1e-4, 1e-3)  # as diagnosis judges a node's output


@dataclass(frozen=True)
class Reproduction:
    """What to export for a torch step, and what the probe measured to choose it."""

    module: Any  # the nn.Module to export (the step's own, or a composition)
    output: np.ndarray  # its raw output on the probe rows
    what: str  # e.g. "model_", "model_ on inputs reshaped to (1, 8, 8)", "model_.encoder"
    tried: list[str] = field(default_factory=list)  # every candidate and why it was not taken


def reproduce(
    step: Any, module: Any, name: str, x: Any, native: Any, head: Head, task: str, label: str
) -> Reproduction:
    """The module (or composition) whose output gives ``native`` (the step's own answer on ``x``)."""
    tried: list[str] = []
    fallback: Reproduction | None = None
    for candidate, what in _candidates(step, module, name, x):
        try:
            out = run_module(candidate, x)
        except Exception as exc:  # the wrong input shape for this layer: try the next
            tried.append(f"{what}: fails ({_first_line(exc)})")
            continue
        verdict = _matches(step, out, native, head, task)
        if verdict is None:
            return Reproduction(candidate, out, what, tried)
        tried.append(f"{what}: {verdict}")
        if candidate is module and _plausible(out, native, task):
            fallback = Reproduction(module, out, what, tried)
    if fallback is not None:
        # The module runs on the rows with a shape the head can map: nothing reproduces the step
        # exactly, so the parity check judges it and names what differs (a wrong head, a scale).
        return fallback
    raise UnsupportedStepError(
        f"{label}: no module it holds reproduces its own {_method(task)} ({tried[0]}); tried "
        f"{len(tried)} compositions (reshaped inputs, child modules); declare what to export: "
        f"exporter.register_wrapper({type(step).__name__}, module=lambda step: ...) returning the "
        "nn.Module that maps the rows to the output (README 'Torch-backed steps')"
    )


def _method(task: str) -> str:
    return {"transformer": "transform", "classifier": "predict/predict_proba"}.get(task, "predict")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:160]}" if text else type(exc).__name__


def _plausible(out: np.ndarray, native: Any, task: str) -> bool:
    """Shapes a head can map to the native answer."""
    native = np.asarray(native)
    if task == "classifier":
        return out.ndim in (1, 2) and len(out) == len(native)
    return out.size == native.size


def _matches(step: Any, out: np.ndarray, native: Any, head: Head, task: str) -> str | None:
    """None when ``out`` gives the native answer; else what differs, in a few words."""
    native = np.asarray(native)
    if task == "classifier":
        if out.ndim not in (1, 2) or len(out) != len(native):
            return f"output shape {out.shape} for {len(native)} rows"
        resolved = resolve_head(head, step, out, native, "classifier")
        label, _ = apply_head_numpy(resolved, out)
        agree = label.astype(str) == native.astype(str) if label.shape == native.shape else np.zeros(1)
        return None if bool(np.all(agree)) else f"labels agree on {float(np.mean(agree)):.0%} of rows"
    if out.size != native.size:
        return f"output shape {out.shape}, native {native.shape}"
    got = out.reshape(native.shape).astype(np.float64)
    err = np.abs(got - native.astype(np.float64))
    atol, rtol = TOLERANCE
    if bool(np.all(err <= atol + rtol * np.abs(native))):
        return None
    return f"max abs difference {float(err.max()):.3g}"


def _candidates(step: Any, module: Any, name: str, x: Any) -> Iterator[tuple[Any, str]]:
    yield module, name
    if isinstance(x, dict):
        return  # named inputs go to forward as they are: nothing to reshape
    shapes = list(_input_shapes(module, np.asarray(x)))
    for shape in shapes:
        yield _reshaped(module, shape), f"{name} on inputs reshaped to {shape}"
    for child, child_name in _children(step, module, name):
        yield child, child_name
        for shape in _input_shapes(child, np.asarray(x)):
            yield _reshaped(child, shape), f"{child_name} on inputs reshaped to {shape}"


def _children(step: Any, module: Any, name: str) -> Iterator[tuple[Any, str]]:
    seen = {id(module)}
    for child_name, child in module.named_children():  # direct children: an encoder, a backbone
        if id(child) not in seen and is_module(child):
            seen.add(id(child))
            yield child, f"{name}.{child_name}"
    for attr, other in module_attributes(step).items():
        if id(other) not in seen:
            seen.add(id(other))
            yield other, attr


def _input_shapes(module: Any, x: np.ndarray) -> Iterator[tuple[int, ...]]:
    """Per-example shapes the module's first layer takes, for flat rows of ``x``."""
    import torch

    if x.ndim != 2:
        return
    width = x.shape[1]
    first = next((m for m in module.modules() if any(True for _ in m.parameters(recurse=False))), None)
    if isinstance(first, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)):
        channels = first.in_channels
        if width % channels:
            return
        per_channel = width // channels
        rank = {torch.nn.Conv1d: 1, torch.nn.Conv2d: 2, torch.nn.Conv3d: 3}[type(first)]
        side = round(per_channel ** (1 / rank))
        if rank == 1:
            yield (channels, per_channel)
        elif side**rank == per_channel:
            yield (channels, *([side] * rank))
        if rank == 2:  # non-square images: every factor pair, the squarest first
            pairs = [(h, per_channel // h) for h in range(1, per_channel + 1) if per_channel % h == 0]
            for h, w in sorted(pairs, key=lambda p: abs(p[0] - p[1])):
                if h != w:
                    yield (channels, h, w)
    elif (
        isinstance(first, (torch.nn.RNN, torch.nn.GRU, torch.nn.LSTM))
        and first.batch_first
        and width % first.input_size == 0
    ):
        yield (width // first.input_size, first.input_size)


def _reshaped(module: Any, shape: tuple[int, ...]) -> Any:
    """``module`` behind a reshape of each example, as an exportable nn.Module."""
    import torch

    class Reshaped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = module

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(x.reshape((-1, *shape)))

    return Reshaped()
