"""Turn what users pass (arrays, DataFrames, dicts of columns, lists of rows, tensors) into feeds.

Everything is checked against the input schema the exporter embedded, so that a wrong width, a
missing column or a string in a numeric column fails here with a message that names it, instead of
deep inside onnxruntime or, worse, as a silently wrong answer.

DataFrames (pandas, polars) are duck-typed (``columns`` + ``__getitem__``) and so are PyTorch
tensors (``detach`` + ``device``): the runtime never imports pandas, polars or torch. CPU tensors are
read zero-copy through the array protocol; CUDA tensors stay on the device as ``DeviceArray`` feeds
when the session can bind them (IO binding), and are copied to the host otherwise.
"""

from __future__ import annotations

import warnings
from collections.abc import ItemsView, Iterator, KeysView, Mapping, Sequence, ValuesView
from dataclasses import dataclass
from typing import Any

import numpy as np

from runtime._columns import (  # noqa: F401 - SMALL_FRAME is read from here too
    SMALL_FRAME,
    _all_finite,
    _arrow_columns,
    _column_names,
    _fast_column_feeds,
    _is_arrow_table,
    _listed,
    _normalized,
    _refuse_unseen,
    _short,
    cast_checked,
)
from runtime.errors import InvalidInputError
from runtime.schema import (  # noqa: F401 - InputSpec, KnownValues, Schema are re-exported
    _NORMALIZE,
    _NUMERIC,
    _STRING,
    InputSpec,
    KnownValues,
    Schema,
)
from runtime.tensors import count_tensor_rows, tensor_feeds

_FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class DeviceArray:
    """A tensor that stays in device memory; the session reads it through IO binding."""

    tensor: Any  # holds the memory alive while the session runs
    device_type: str
    device_id: int
    dtype: np.dtype
    shape: tuple[int, ...]

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def ptr(self) -> int:
        return int(self.tensor.data_ptr())

    def rows(self, start: int, stop: int) -> DeviceArray:
        part = self.tensor[start:stop]
        return DeviceArray(part, self.device_type, self.device_id, self.dtype, tuple(part.shape))


Feed = np.ndarray | DeviceArray


def prepare_feeds(X: Any, schema: Schema, *, keep_device: bool = False) -> tuple[dict[str, Feed], int]:
    """Return ``(feeds, n_rows)`` for the session, or raise InvalidInputError.

    ``keep_device``: leave a CUDA tensor on its device (the session binds it in place).
    """
    if schema.layout == "tensor":  # images, token ids, named inputs: checked by their shapes
        return tensor_feeds(X, schema.inputs)  # type: ignore[return-value]
    fast = _fast_matrix_feed(X, schema)
    if fast is not None:
        return fast
    if schema.layout == "columns":  # DataFrames and dicts of columns at dict speed (see below)
        columns = _fast_column_feeds(X, schema)
        if columns is not None:
            return columns  # type: ignore[return-value]
    return _full_feeds(X, schema, keep_device)


def _full_feeds(X: Any, schema: Schema, keep_device: bool) -> tuple[dict[str, Feed], int]:
    """Every check, with the message that names the problem: what the fast paths fall back to."""
    if _is_arrow_table(X):  # the full path reads it as a dict of NumPy columns
        X = _arrow_columns(X)
        if schema.layout == "text" and len(X) == 1:
            X = next(iter(X.values()))
    _refuse_unreadable(X, schema)
    if _is_tensor(X):
        X = _readable_tensor(X)
        if X.device.type != "cpu":
            if keep_device and schema.layout == "matrix" and not schema.inputs[0].categories:
                return _device_feed(X, schema.inputs[0]), int(X.shape[0])
            X = _host_tensor(X)
        X = _tensor_array(X)
    feeds: dict[str, Feed]
    if schema.layout == "text":
        spec = schema.inputs[0]
        feeds = {spec.name: _text_feed(X, spec)}
    elif schema.layout == "columns":
        columns = _as_columns(X, schema)
        feeds = {spec.name: _column_feed(columns[spec.name], spec) for spec in schema.inputs}
    else:
        (spec,) = schema.inputs
        feeds = {spec.name: _matrix_feed(X, spec, schema.feature_names)}
    n_rows = {len(v) for v in feeds.values()}
    if len(n_rows) != 1:
        raise InvalidInputError(
            f"columns have different lengths: {sorted(n_rows)}; pass columns of one length"
        )
    return feeds, n_rows.pop()


def count_rows(X: Any, schema: Schema) -> int | None:
    """How many rows ``X`` holds, read without converting it; None when that cannot be told cheaply
    or ``X`` is not shaped like rows at all, or cannot be sliced by take_rows (a sparse or nested
    tensor, a dict holding a set): prepare_feeds then names the problem on the whole."""
    try:
        rows = _count_rows(X, schema)
        if rows is not None:
            take_rows(X, 0, 0)
    except Exception:  # whatever the object raises: the full checks will say what is wrong
        return None
    return rows


def _count_rows(X: Any, schema: Schema) -> int | None:
    if schema.layout == "tensor":
        return count_tensor_rows(X, schema.inputs)
    table = schema.layout != "text"  # a matrix or columns model takes 2-D rows; a text one a list
    if isinstance(X, np.ndarray) or _is_tensor(X):
        shape = tuple(X.shape)
        rows = len(shape) == 2 if table else len(shape) in (1, 2)
        return int(shape[0]) if rows else None
    if isinstance(X, (list, tuple)):
        if table and X and not all(isinstance(row, (list, tuple, np.ndarray)) for row in X[:1]):
            return None
        return len(X)
    if _is_dataframe(X) or hasattr(X, "iloc"):
        try:
            return len(X)
        except TypeError:
            return None
    if isinstance(X, Mapping):
        try:
            lengths = {len(v) for v in X.values()}
        except TypeError:  # a scalar value
            return None
        return lengths.pop() if len(lengths) == 1 else None
    return None


def take_rows(X: Any, start: int, stop: int) -> Any:
    """Rows ``start:stop`` of an input that count_rows could measure, without copying the rest:
    a view of an array or tensor, a slice of a DataFrame, of each column of a dict, of a list."""
    if hasattr(X, "iloc"):  # pandas: positional, whatever the index
        return X.iloc[start:stop]
    if isinstance(X, Mapping):
        return {k: (v.iloc[start:stop] if hasattr(v, "iloc") else v[start:stop]) for k, v in X.items()}
    if _is_dataframe(X) and hasattr(X, "slice"):  # polars
        return X.slice(start, stop - start)
    return X[start:stop]


def _refuse_unreadable(X: Any, schema: Schema) -> None:
    """Inputs that are not tables at all, named in one line instead of a 0-d array's shape ()."""
    what = type(X).__name__
    if X is None:
        raise InvalidInputError("the input is None; pass a 2-D array, a DataFrame or a list of rows")
    if isinstance(X, (set, frozenset)):
        raise InvalidInputError(f"a {what} has no row order; pass a list or an array instead")
    if isinstance(X, (str, bytes)) and schema.layout != "text":
        kind = "columns" if schema.layout == "columns" else "numbers"
        raise InvalidInputError(
            f"got one {what} ({X[:20]!r}); this model takes a 2-D table of {kind}: an array, "
            "a DataFrame or a list of rows"
        )
    if isinstance(X, (Iterator, KeysView, ValuesView, ItemsView)):
        raise InvalidInputError(f"a {what} is read once and has no length; pass list(X) or an array instead")
    if isinstance(X, (int, float, complex, np.generic)):
        raise InvalidInputError(
            f"got a single {what} ({X!r}); pass a 2-D array of rows (e.g. [[...]] for one row)"
        )


def _is_tensor(X: Any) -> bool:
    return hasattr(X, "detach") and hasattr(X, "device") and hasattr(X, "data_ptr")


def _readable_tensor(X: Any) -> Any:
    """The tensor, detached, or InvalidInputError for kinds that have no plain strided data."""
    if getattr(X, "is_nested", False):
        raise InvalidInputError(
            "a nested (ragged) tensor cannot feed the model: pad it to one 2-D tensor "
            "(torch.nested.to_padded_tensor(x, 0.0)) or stack rows of one length"
        )
    if X.device.type == "meta":
        raise InvalidInputError(
            f"the input is a 'meta' device tensor of shape {tuple(X.shape)}: it has a shape but no "
            "values; pass a tensor with data (on 'cpu' or a CUDA device)"
        )
    layout = str(getattr(X, "layout", "torch.strided"))
    if layout != "torch.strided":
        raise InvalidInputError(f"a {layout} tensor cannot feed the model; convert it with .to_dense()")
    if getattr(X, "is_quantized", False):
        raise InvalidInputError("a quantized tensor cannot feed the model; convert it with .dequantize()")
    if X.is_complex():
        raise InvalidInputError(
            f"the input tensor holds complex values ({X.dtype}); the model takes real numbers "
            "(pass x.real if the imaginary parts are zero)"
        )
    if X.is_neg():
        raise InvalidInputError(
            "the input tensor is a lazy negative view (its neg bit is set, e.g. from torch._neg_view); "
            "call .resolve_neg() on it first"
        )
    return X.detach()  # the classic trap: a tensor that requires grad refuses .numpy()


def _host_tensor(X: Any) -> Any:
    try:
        return X.cpu()
    except Exception as exc:  # a device this torch build cannot copy from
        raise InvalidInputError(
            f"cannot copy the input tensor from device {str(X.device)!r} to the host: "
            f"{_first_line(exc)}; move it with .to('cpu') first"
        ) from None


def _tensor_array(X: Any) -> np.ndarray:
    try:
        return np.asarray(X)  # zero-copy for CPU tensors
    except TypeError as exc:  # e.g. bfloat16 has no numpy dtype
        raise InvalidInputError(f"cannot read a {X.dtype} tensor: {exc}; convert it with .float()") from None
    except (RuntimeError, ValueError) as exc:
        raise InvalidInputError(
            f"cannot read the {X.dtype} tensor: {_first_line(exc)}; pass x.contiguous().cpu() "
            "or a numpy array"
        ) from None


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _fast_matrix_feed(X: Any, schema: Schema) -> tuple[dict[str, Feed], int] | None:
    """The hot path: a C-contiguous 2-D array already of the declared dtype and width, all finite
    (or with NaN where every column imputes it; any values where every column takes NaN and inf).

    Costs well under a microsecond on top of onnxruntime for small batches; anything else (or
    anything wrong) goes through the full checks, which build the precise error message.
    """
    fast = schema.fast
    if fast is None or type(X) is not np.ndarray:
        return None
    name, dtype, width, any_number = fast
    shape = X.shape
    if len(shape) != 2 or X.dtype != dtype or (width is not None and shape[1] != width):
        return None
    if not X.flags.c_contiguous:
        return None
    if not any_number and not _all_finite(X) and not _only_nan_where_imputed(X, schema.inputs[0]):
        return None
    return {name: X}, shape[0]


def _only_nan_where_imputed(X: np.ndarray, spec: InputSpec) -> bool:
    """Non-finite values that are all NaN, in a model that imputes every column: fine as they are
    (the common case of missing values, kept off the slow path). Anything else: the full check."""
    return spec.allow_nan and spec.nan_columns is None and not np.isinf(X).any()


# 0 x inf in the test below makes numpy warn "invalid value"; the runtime raises its own clear
# error right after, so the warning is noise. Scoped to this module's own calls. Likewise a cast
# to float32 that overflows to inf: _refuse_non_finite names the value right after.
warnings.filterwarnings("ignore", "invalid value encountered in dot", RuntimeWarning, r"runtime\.inputs")
warnings.filterwarnings("ignore", "overflow encountered in cast", RuntimeWarning, r"runtime\.inputs")


def _text_feed(X: Any, spec: InputSpec) -> np.ndarray:
    """Documents: a list / 1-D array / Series of strings (or an (n, 1) column of them)."""
    if isinstance(X, str):
        raise InvalidInputError("pass a list of documents, not one string: model.predict([text])")
    values = X.to_numpy() if hasattr(X, "to_numpy") else X
    docs = np.asarray(values, dtype=object)
    if docs.ndim == 2 and docs.shape[1] == 1:
        docs = docs[:, 0]
    if docs.ndim != 1:
        raise InvalidInputError(f"expected a list of documents (strings), got shape {docs.shape}")
    bad = [i for i, d in enumerate(docs) if not isinstance(d, str)]
    if bad:
        raise InvalidInputError(
            f"documents must be strings; row(s) {bad[:5]} hold {type(docs[bad[0]]).__name__} "
            "(replace missing texts with '')"
        )
    return _normalized(docs, spec).reshape(-1, 1)


def _device_feed(X: Any, spec: InputSpec) -> dict[str, Feed]:
    """A CUDA tensor checked and cast on its device, without a copy to the host."""
    if X.ndim != 2 or (spec.width is not None and X.shape[1] != spec.width):
        raise InvalidInputError(
            f"expected a 2-D tensor of shape (n_rows, {spec.width}), got {tuple(X.shape)}"
        )
    if X.is_floating_point() or str(X.dtype) in ("torch.int64", "torch.int32"):
        wide = X
        X = (X.double() if spec.dtype == "float64" else X.float()).contiguous()
    else:
        raise InvalidInputError(f"input {spec.name!r}: a {X.dtype} tensor cannot feed a {spec.dtype} input")
    if X.numel() and not spec.takes_any_number and not bool(X.isfinite().all()):
        # Only which columns hold what travels to the host: (width,) booleans.
        nan, inf = X.isnan().any(0), X.isinf().any(0)
        overflow = (X.isinf() & wide.isfinite()).any(0) if wide.is_floating_point() else inf & False
        _refuse_columns(
            spec,
            None,
            _true_at(nan.cpu().numpy()),
            _true_at((inf & ~overflow).cpu().numpy()),
            _true_at(overflow.cpu().numpy()),
            None,
        )
    device = X.device
    dtype = np.dtype(np.float64 if spec.dtype == "float64" else np.float32)
    return {spec.name: DeviceArray(X, device.type, device.index or 0, dtype, tuple(X.shape))}


def _is_dataframe(X: Any) -> bool:
    return hasattr(X, "columns") and hasattr(X, "__getitem__") and not isinstance(X, np.ndarray)


_BLOCK_SAFE = ("str", "string", "category", "object")  # extension dtypes whose NA stays nan/None


def _small_plain_pandas(X: Any) -> bool:
    """A pandas DataFrame of at most SMALL_FRAME rows whose columns convert to objects exactly as
    they do one by one: numpy dtypes, strings, categories. Nullable/Arrow numerics (pd.NA) and
    other frame types (polars) take the per-column path."""
    if not type(X).__module__.startswith("pandas") or len(X) > SMALL_FRAME:
        return False
    return all(isinstance(dt, np.dtype) or str(dt) in _BLOCK_SAFE for dt in X.dtypes)


def _as_columns(X: Any, schema: Schema) -> Mapping[str, Any]:
    """Map each expected column name to its values, from a DataFrame, a dict or a 2-D array."""
    names = [spec.name for spec in schema.inputs]
    if _is_dataframe(X) or isinstance(X, Mapping):
        present = list(X.columns) if _is_dataframe(X) else list(X.keys())
        missing = [n for n in names if n not in present]
        if missing:
            raise InvalidInputError(f"missing column(s) {missing}; the model expects columns {names}")
        if len(set(present)) == len(present) and _small_plain_pandas(X):
            # One conversion of the whole (small) frame beats a pandas lookup and conversion per
            # column: 51 µs vs 185 µs for one row of 8 mixed columns. Large frames box every value.
            block = np.asarray(X.to_numpy(dtype=object))
            return {n: block[:, present.index(n)] for n in names}
        return {n: X[n] for n in names}
    # Rows given as lists may mix numbers and text: keep each cell's own type (a plain asarray
    # would turn every number into text and blame the wrong column).
    array = _as_2d(np.asarray(X, dtype=object) if isinstance(X, (list, tuple)) else X)
    if array.shape[1] != len(names):
        raise InvalidInputError(
            f"expected {len(names)} features (columns {names}), got {array.shape[1]}; "
            "pass a DataFrame with these columns or an array in this column order"
        )
    return {n: array[:, j] for j, n in enumerate(names)}


def _as_array(values: Any) -> np.ndarray:
    """One column's values (a Series, a list, an array, a tensor) as an ndarray."""
    if _is_tensor(values):
        return _tensor_array(_host_tensor(_readable_tensor(values)))
    return np.asarray(values.to_numpy() if hasattr(values, "to_numpy") else values)


def _column_feed(values: Any, spec: InputSpec) -> np.ndarray:
    array = _as_array(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise InvalidInputError(f"column {spec.name!r} must be 1-D, got shape {array.shape}")
    return _cast(array, spec, spec.name).reshape(-1, 1)


def _matrix_feed(X: Any, spec: InputSpec, feature_names: Sequence[str] | None) -> np.ndarray:
    if _is_dataframe(X) or isinstance(X, Mapping):
        keys = list(X.columns) if _is_dataframe(X) else list(X.keys())
        if feature_names:
            missing = [n for n in feature_names if n not in keys]
            if missing:
                raise InvalidInputError(
                    f"missing column(s) {missing}; the model expects columns {list(feature_names)}"
                )
            keys = list(feature_names)
        elif isinstance(X, Mapping):
            raise InvalidInputError(
                "this model was trained on an array without column names: pass a 2-D array, "
                "not a dict of columns"
            )
        X = np.column_stack([_as_array(X[k]) for k in keys]) if keys else np.empty((0, 0))
    array = _as_2d(X)
    if spec.width is not None and array.shape[1] != spec.width:
        raise InvalidInputError(
            f"expected {spec.width} features, got {array.shape[1]} "
            f"(input shape {array.shape}); pass an array of shape (n_rows, {spec.width})"
        )
    columns = list(feature_names) if feature_names else None
    return _cast(array, spec, columns)


def _as_2d(X: Any) -> np.ndarray:
    try:
        array = np.asarray(X)
    except ValueError as exc:  # ragged lists of rows
        raise InvalidInputError(f"could not read the input as a table: {exc}") from None
    if array.ndim == 1:
        raise InvalidInputError(
            f"expected a 2-D input (rows x features), got a 1-D array of {array.shape[0]} values; "
            "use X.reshape(1, -1) for a single row"
        )
    if array.ndim == 0:
        raise InvalidInputError(
            f"expected a 2-D input (rows x features), got a {type(X).__name__} (shape ()); "
            "pass an array, a DataFrame or a list of rows"
        )
    if array.ndim != 2:
        raise InvalidInputError(f"expected a 2-D input (rows x features), got shape {array.shape}")
    return array


def _cast(array: np.ndarray, spec: InputSpec, where: str | list[str] | None) -> np.ndarray:
    """Cast to the declared element type, refusing values that would be silently wrong."""
    if spec.is_string:
        return _cast_strings(array, spec)
    target = _NUMERIC.get(spec.dtype)
    if target is None:  # pragma: no cover - the exporter writes only the types above
        raise InvalidInputError(f"input {spec.name!r} has an unsupported type {spec.dtype!r}")
    if array.dtype.kind not in "biufO":  # text, complex, dates: never silently made numbers
        raise InvalidInputError(
            f"{_describe(array, where)} holds non-numeric values ({array.dtype}) "
            f"but the model expects {spec.dtype}"
        )
    if array.dtype.kind == "O":  # e.g. a pandas object column of numbers (or None)
        array = _object_numbers(array, spec, where)
    out, finite = cast_checked(array, target, not spec.takes_any_number)  # one pass, not two
    if not finite:
        _refuse_non_finite(array, out, spec, where)
    if spec.categories:
        _refuse_unseen(array, spec, where)
    return out


def _cast_strings(array: np.ndarray, spec: InputSpec) -> np.ndarray:
    if array.dtype.kind not in "OUS":
        raise InvalidInputError(
            f"column {spec.name!r} holds {array.dtype} values but the model expects strings"
        )
    # set(map(type, ...)) runs in C: 5x faster than an isinstance loop on large columns. Python
    # strings are what onnxruntime takes: those go on without a copy (unless lower-cased).
    if array.dtype.kind != "O" or set(map(type, array.ravel())) != {str}:
        missing = [i for i, v in enumerate(array.ravel()) if not isinstance(v, str)]
        if missing:
            raise InvalidInputError(
                f"column {spec.name!r} has missing or non-text values at row(s) {missing[:5]}; "
                "the exported model cannot represent a missing category: fill them (e.g. with '') "
                "first"
            )
        array = array.astype(str).astype(object)
    if spec.categories:
        _refuse_unseen(array, spec, spec.name)
    return _normalized(array, spec)


def _object_numbers(array: np.ndarray, spec: InputSpec, where: str | list[str] | None) -> np.ndarray:
    """An object array of numbers (Python ints and floats, None) as float64."""
    if any(issubclass(t, (str, bytes)) for t in set(map(type, array.ravel()))):  # "0.5": text
        raise InvalidInputError(
            f"{_describe(array, where)} holds non-numeric values (text) but the model expects "
            f"{spec.dtype}: convert the column to numbers first"
        )
    try:
        return array.astype(np.float64)
    except OverflowError:  # a Python int beyond float64 (10**400)
        cols = _columns_where(array, _too_big_for_float)
        example = next(v for v in array.ravel().tolist() if _too_big_for_float(v))
        raise InvalidInputError(
            f"{_column_names(cols, where)} holds an integer too large for a float ({_short(example)}); "
            f"the model takes {spec.dtype} values (at most {_limit(spec):.4g} in magnitude): "
            "clip or rescale the column"
        ) from None
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"{_describe(array, where)} holds non-numeric values ({array.dtype}) "
            f"but the model expects {spec.dtype}"
        ) from None


def _too_big_for_float(value: Any) -> bool:
    try:
        float(value)
    except OverflowError:
        return True
    except (TypeError, ValueError):
        return False
    return False


def _limit(spec: InputSpec) -> float:
    return _FLOAT32_MAX if spec.dtype == "float32" else float(np.finfo(np.float64).max)


def _columns_where(array: np.ndarray, test: Any) -> list[int]:
    if array.ndim == 1:
        return [0]
    return [j for j in range(array.shape[1]) if any(test(v) for v in array[:, j].tolist())]


def _true_at(mask: np.ndarray) -> list[int]:
    return np.flatnonzero(mask).tolist()


def _refuse_non_finite(original: np.ndarray, out: np.ndarray, spec: InputSpec, where: Any) -> None:
    """Some value of ``out`` is NaN or ±inf: raise unless every one sits where the model takes it.

    ±inf that came from a finite value is an overflow of the cast (1e39 in a float32 input); sklearn
    itself would have seen the finite number, so it is refused wherever inf is not accepted.
    """
    inf = np.isinf(out)
    if spec.allow_nan and spec.nan_columns is None and not inf.any():
        return  # NaN only, and every column imputes it
    nan = np.isnan(out)
    wider = original.dtype.kind == "f" and original.dtype.itemsize > out.dtype.itemsize
    overflow = inf & np.isfinite(original) if wider else np.zeros_like(inf)
    by_column = (lambda m: m.any(axis=0)) if out.ndim == 2 else (lambda m: np.atleast_1d(m.any()))
    example = original[overflow].flat[0] if overflow.any() else None
    _refuse_columns(
        spec,
        where,
        _true_at(by_column(nan)),
        _true_at(by_column(inf & ~overflow)),
        _true_at(by_column(overflow)),
        example,
    )


def _refuse_columns(
    spec: InputSpec, where: Any, nan: list[int], inf: list[int], overflow: list[int], example: Any
) -> None:
    """Raise for the first column holding what it does not take: overflow, inf, then NaN."""
    bad = [j for j in overflow if not spec.inf_ok(j)]
    if bad:
        shown = f" (e.g. {float(example):g})" if example is not None else ""
        raise InvalidInputError(
            f"{_column_names(bad, where)} holds value(s) beyond the {spec.dtype} range{shown}, which "
            f"the model would read as infinite (|x| > {_limit(spec):.4g}); clip them to that range "
            "first, or export the model with dtype='float64' where the pipeline allows it"
        )
    bad = [j for j in inf if not spec.inf_ok(j) and spec.nan_ok(j)]
    if bad:
        raise InvalidInputError(
            f"{_column_names(bad, where)} holds infinite values (inf): the native pipeline refuses "
            "them (imputers fill NaN, never inf); replace them with NaN or a finite value"
        )
    bad = sorted({j for j in nan if not spec.nan_ok(j)} | {j for j in inf if not spec.inf_ok(j)})
    if bad:
        imputed = ""
        if spec.nan_columns:
            imputed = f" (it imputes {_column_names(list(spec.nan_columns), where)} only)"
        raise InvalidInputError(
            f"{_column_names(bad, where)} holds NaN or infinite values and this model has no "
            f"imputer for them{imputed}; fill or drop those rows first"
        )


def _describe(array: np.ndarray, where: str | list[str] | None) -> str:
    """Name the columns whose values do not convert to numbers: 'column 'age'', 'feature 3' (all
    of them for text that happens to parse)."""
    if isinstance(where, str):
        return f"column {where!r}"
    bad_cols = []
    for j in range(array.shape[1] if array.ndim == 2 else 0):
        try:
            array[:, j].astype(np.float64)
        except (TypeError, ValueError, OverflowError):
            bad_cols.append(j)
    if not bad_cols and array.ndim == 2 and array.dtype.kind in "USc":
        bad_cols = list(range(array.shape[1]))
    return _column_names(bad_cols, where) if bad_cols else "the input"
