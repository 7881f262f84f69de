"""Feeds for models whose inputs are tensors, not 2-D float rows: images (N, C, H, W), integer token
ids (N, T), several named inputs (what skorch passes to ``forward`` from a dict / SliceDict).

The schema (layout ``"tensor"``) records per input its dtype and the dims after the batch axis
(None where the model takes any length, e.g. a sequence); the feeds are checked against them with
the errors torch would raise natively, named in one line: rank, trailing dims, dtype, token ids
outside the embedding. Integer ids stay integers end to end. numpy only; torch tensors are read
through ``.numpy()`` without importing torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from runtime.errors import InvalidInputError

_FLOAT_MAX = {name: float(np.finfo(name).max) for name in ("float32", "float64", "float16")}


def tensor_feeds(X: Any, specs: tuple[Any, ...]) -> tuple[dict[str, np.ndarray], int]:
    """``(feeds, n_rows)`` for a tensor-layout model (``specs``: its InputSpecs), or raise
    InvalidInputError naming the input and what differs."""
    values = _by_name(X, specs)
    feeds = {spec.name: _feed(values[spec.name], spec) for spec in specs}
    rows = {name: len(v) for name, v in feeds.items()}
    if len(set(rows.values())) > 1:
        raise InvalidInputError(
            f"the inputs hold different numbers of rows: {rows}; pass one row per example"
        )
    return feeds, next(iter(rows.values()))


def count_tensor_rows(X: Any, specs: tuple[Any, ...]) -> int | None:
    """Rows of a tensor input without converting it (None: the full check will say what is wrong)."""
    try:
        first = X[specs[0].name] if isinstance(X, Mapping) else X
        shape = getattr(first, "shape", None)
        return int(shape[0]) if shape is not None and len(shape) == 1 + len(specs[0].shape or ()) else None
    except Exception:
        return None


def describe(spec: Any) -> str:
    """``int64 (N, T)`` / ``float32 (N, 1, 28, 28)``: what an input takes, for messages."""
    dims = ", ".join("N" if d == "N" else "T" if d is None else str(d) for d in ["N", *(spec.shape or ())])
    return f"{spec.dtype} ({dims})"


def _by_name(X: Any, specs: tuple[Any, ...]) -> Mapping[str, Any]:
    names = [s.name for s in specs]
    if isinstance(X, Mapping):
        missing = [n for n in names if n not in X]
        extra = [str(k) for k in X if k not in names]
        if missing or extra:
            wanted = ", ".join(f"{s.name}: {describe(s)}" for s in specs)
            raise InvalidInputError(
                f"the model takes the inputs {{{wanted}}}; "
                + (f"missing {missing}" if missing else "")
                + ("; " if missing and extra else "")
                + (f"unknown {extra}" if extra else "")
            )
        return X
    if len(specs) > 1:
        wanted = ", ".join(f"{s.name!r}: {describe(s)}" for s in specs)
        raise InvalidInputError(
            f"the model takes {len(specs)} named inputs; pass a dict {{{wanted}}} (a skorch SliceDict works)"
        )
    return {names[0]: X}


def _array(value: Any, name: str) -> np.ndarray:
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor
        if str(getattr(value, "layout", "torch.strided")) != "torch.strided":
            raise InvalidInputError(f"input {name!r}: a sparse tensor cannot feed the model; use .to_dense()")
        value = value.detach().cpu().numpy()
    if value is None or isinstance(value, (str, bytes, int, float)):
        raise InvalidInputError(
            f"input {name!r}: got {type(value).__name__}; pass an array with a batch axis"
        )
    try:
        return np.asarray(value)
    except ValueError as exc:  # ragged nested lists
        raise InvalidInputError(f"input {name!r}: not a rectangular array ({exc})") from None


def _feed(value: Any, spec: Any) -> np.ndarray:
    array = _array(value, spec.name)
    want = (None, *(spec.shape or ()))
    if array.ndim != len(want):
        hint = " (one example? add the batch axis: X[None])" if array.ndim == len(want) - 1 else ""
        raise InvalidInputError(
            f"input {spec.name!r} has shape {array.shape}; the model takes {describe(spec)}{hint}"
        )
    wrong = [
        (axis, got, dim)
        for axis, (got, dim) in enumerate(zip(array.shape, want, strict=True))
        if dim is not None and got != dim
    ]
    if wrong:
        axis, got, dim = wrong[0]
        raise InvalidInputError(
            f"input {spec.name!r} has shape {array.shape}: axis {axis} is {got}, the model takes {dim} "
            f"({describe(spec)})"
        )
    if spec.dtype == "int64":
        return _ids(array, spec)
    if array.dtype.kind not in "biuf":
        raise InvalidInputError(
            f"input {spec.name!r} holds {array.dtype} values; the model takes {describe(spec)}"
        )
    dtype = np.dtype(spec.dtype if spec.dtype in _FLOAT_MAX else "float32")
    if array.dtype.kind == "f" and array.dtype.itemsize > dtype.itemsize and array.size:
        finite = np.abs(array[np.isfinite(array)])
        largest = float(finite.max()) if finite.size else 0.0
        if largest > _FLOAT_MAX[dtype.name]:
            raise InvalidInputError(
                f"input {spec.name!r} holds {largest:.3g}, beyond {dtype.name}; the model would "
                "compute with inf where torch computes with the value"
            )
    return np.ascontiguousarray(array, dtype=dtype)


def _ids(array: np.ndarray, spec: Any) -> np.ndarray:
    """Integer ids: integers only (torch's Embedding refuses floats), within the embedding's rows
    (torch raises IndexError; the graph's Gather would wrap a negative id to another row)."""
    if array.dtype.kind not in "iu":
        raise InvalidInputError(
            f"input {spec.name!r} holds {array.dtype} values; it takes integer ids ({describe(spec)}), "
            "as the module's embedding does"
        )
    if array.dtype.kind == "u" and array.size and int(array.max()) > np.iinfo(np.int64).max:
        raise InvalidInputError(f"input {spec.name!r}: id {int(array.max())} does not fit int64")
    ids = np.ascontiguousarray(array, dtype=np.int64)
    bounds = getattr(spec, "id_range", None)
    if bounds is not None and ids.size:
        low, high = bounds
        bad = np.nonzero((ids < low) | (ids >= high))
        if bad[0].size:
            where = tuple(int(i[0]) for i in bad)
            raise InvalidInputError(
                f"input {spec.name!r} holds id {int(ids[where])} at {where}; the model's embedding has "
                f"{high - low} rows (ids {low}..{high - 1}), and torch refuses the others"
            )
    return ids
