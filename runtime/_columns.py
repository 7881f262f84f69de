"""The input side's hot path: DataFrames (pandas 2 and 3, polars), Arrow tables and dicts of
columns turned into feeds at dict speed, plus what it shares with the full checks in
``runtime.inputs`` (the finiteness test, known-category lookups, text normalisation).

pandas column access is what made one DataFrame row cost 10x a raw run (a Series per column, 15 µs
just to list a str column index). The fast path reads each column's values once — pandas blocks,
Arrow buffers, polars series, NumPy arrays — and casts them straight into the feeds. It only
ever accepts: whatever it is unsure of (a missing value, ±inf, an object column, an unseen
category, a dtype it does not know) returns None, and the full path, with its precise
messages (runtime.inputs), judges the input afresh: the checks and the answers are its own.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from runtime.errors import InvalidInputError
from runtime.schema import _NUMERIC, InputSpec, Schema

# ONNX tensor element types the runtime knows how to feed, by the names the exporter writes.
_SHOWN = 5  # values named in a message; more are counted, not listed
SMALL_FRAME = 64  # rows: up to this, a DataFrame is converted in one go (see inputs._as_columns)


_ZEROS: dict[tuple[int, str], np.ndarray] = {}
# 0 x inf in the test below makes numpy warn "invalid value"; the runtime raises its own clear
# error right after, so the warning is noise. Scoped to this module's own calls. Likewise a cast
# to float32 that overflows to inf: the full path names the value right after.
warnings.filterwarnings("ignore", "invalid value encountered in dot", RuntimeWarning, r"runtime\._columns")
warnings.filterwarnings("ignore", "overflow encountered in cast", RuntimeWarning, r"runtime\._columns")


def _all_finite(X: np.ndarray) -> bool:
    """A cheap finiteness test: the dot product with zeros is 0 when every value is finite and NaN
    otherwise (0 x NaN and 0 x inf are NaN), and it cannot overflow. 0.7 µs for one row of 50
    values where numpy's isfinite().all() costs 2.6 µs (a few values: their Python sum, 0.3 µs);
    large arrays use isfinite directly (as fast, one pass, on this machine)."""
    flat = X.ravel()
    if flat.size <= 16:  # a Python sum of a few values is faster still; it can overflow only to a
        return math.isfinite(sum(flat.tolist()))  # False, after which callers check precisely
    if flat.size > 65536:
        return bool(np.isfinite(flat).all())
    key = (flat.size, flat.dtype.str)
    zeros = _ZEROS.get(key)
    if zeros is None:
        if len(_ZEROS) > 32:
            _ZEROS.clear()
        zeros = _ZEROS[key] = np.zeros(flat.size, dtype=flat.dtype)
    return math.isfinite(flat.dot(zeros))


FUSED = 1 << 16  # elements per chunk of a fused cast and check: 256 KiB of float32, in cache


def cast_checked(array: np.ndarray, target: Any, check: bool) -> tuple[np.ndarray, bool]:
    """``(np.ascontiguousarray(array, dtype=target), all finite)``: a large cast is done chunk by
    chunk, each checked while it is still in cache, instead of a cast pass then a check pass."""
    target = np.dtype(target)
    if not check or target.kind != "f" or array.size <= FUSED or not array.flags.c_contiguous:
        out = np.ascontiguousarray(array, dtype=target)
        return out, not check or out.dtype.kind != "f" or not out.size or _all_finite(out)
    if array.dtype == target:
        return array, _all_finite(array)
    out = np.empty(array.shape, dtype=target)
    source, flat, finite = array.reshape(-1), out.reshape(-1), True
    for start in range(0, flat.size, FUSED):
        chunk = flat[start : start + FUSED]
        np.copyto(chunk, source[start : start + FUSED], casting="unsafe")
        finite = finite and _all_finite(chunk)
    return out, finite


@dataclass(frozen=True)
class _Quick:
    """What the fast path needs of one column input, read once per schema."""

    name: str
    target: np.dtype | None  # None: a string input
    check: bool  # whether the values must be finite (NaN where ``nan_ok``)
    nan_ok: bool
    extra: InputSpec | None  # known categories or normalisation to apply: the spec itself


def _quick_plan(schema: Schema) -> tuple[_Quick, ...]:
    plan = schema.__dict__.get("_quick")
    if plan is None:
        plan = tuple(
            _Quick(
                spec.name,
                None if spec.is_string else np.dtype(_NUMERIC.get(spec.dtype, np.void)),
                not spec.takes_any_number,
                spec.nan_ok(0),
                spec if spec.categories or spec.normalize else None,
            )
            for spec in schema.inputs
        )
        object.__setattr__(schema, "_quick", plan)  # frozen: cached beside the fields, like ``fast``
    return plan


def _fast_column_feeds(X: Any, schema: Schema) -> tuple[dict[str, np.ndarray], int] | None:
    try:
        plan = _quick_plan(schema)
        sources = _column_sources(X, [q.name for q in plan])
        if sources is None:
            return None
        feeds: dict[str, np.ndarray] = {}
        cast: dict[tuple[int, np.dtype], tuple[np.ndarray, bool]] = {}  # one cast per pandas block
        n_rows = -1
        for quick, source in zip(plan, sources, strict=True):
            if type(source) is tuple:  # row k of a pandas NumPy block
                feed = _block_column(source[0], source[1], quick, cast)
            else:
                feed = _quick_column(source, quick)
            if feed is None or (n_rows >= 0 and len(feed) != n_rows):
                return None
            n_rows = len(feed)
            feeds[quick.name] = feed
    except Exception:  # an internal layout this code does not know (another pandas): the full path
        return None
    return (feeds, n_rows) if n_rows > 0 else None


def _column_sources(X: Any, names: list[str]) -> list[Any] | None:
    """Each input's column values, in schema order, read without per-column pandas overhead; None
    for anything else (the full path then reads it or says what is wrong)."""
    if type(X) is dict:
        return [X[n] for n in names] if all(n in X for n in names) else None
    module = type(X).__module__
    if module.startswith("pandas") and hasattr(X, "_mgr"):
        return _pandas_columns(X, names)
    if module.startswith("polars") and hasattr(X, "get_column"):
        present = set(X.columns)  # polars names are unique
        return [X.get_column(n) for n in names] if present.issuperset(names) else None
    if _is_arrow_table(X):
        present = set(X.column_names)
        unique = len(present) == len(X.column_names)
        return [X.column(n) for n in names] if unique and present.issuperset(names) else None
    return None


_LABELS: list[tuple[Any, dict[Any, int]]] = [(None, {})]  # the last pandas Index seen, label → column


def _pandas_columns(X: Any, names: list[str]) -> list[Any] | None:
    """A pandas DataFrame's columns straight from its blocks (pandas 2 and 3 alike): a NumPy block
    holds several columns as the rows of one 2-D array — given as (block, row), so that the block
    is cast once — and an extension block holds one extension array."""
    index = X.columns
    last, position = _LABELS[0]
    if last is not index:  # frames sliced from one another share their Index (immutable)
        labels = _index_labels(index)
        if labels is None or len(set(labels)) != len(labels):
            return None
        position = {label: j for j, label in enumerate(labels)}
        _LABELS[0] = (index, position)  # one tuple: threads never see an index with another's map
    mgr = X._mgr
    blocks, blknos, blklocs = mgr.blocks, mgr.blknos, mgr.blklocs  # column → block, row in it
    sources: list[Any] = []
    for name in names:
        j = position.get(name)
        if j is None:
            return None
        values = blocks[blknos[j]].values
        if isinstance(values, np.ndarray) and values.ndim == 2:
            sources.append((values, int(blklocs[j])))
        else:  # an extension array; None for a 2-D one (dates), which the full path judges
            sources.append(values if getattr(values, "ndim", 0) == 1 else None)
    return sources


def _block_column(block: np.ndarray, k: int, quick: _Quick, cast: dict[Any, Any]) -> np.ndarray | None:
    """Row ``k`` of a pandas block as a column feed: numeric blocks are cast and checked for
    finiteness once for all their columns (what numpy does per call dominates one row)."""
    target = quick.target
    kind = block.dtype.kind
    if target is None or kind not in "biuf" or target.kind not in "biuf" or (kind == "f" != target.kind):
        return _quick_column(block[k], quick)  # (floats cast to ints: row by row, as the full path)
    key = (id(block), target)
    got = cast.get(key)
    if got is None:
        out = np.ascontiguousarray(block, dtype=target)  # C order: every row is contiguous
        got = cast[key] = (out, target.kind != "f" or _all_finite(out))
    out, finite = got
    column = out[k]
    if not finite and quick.check and not _all_finite(column) and _refused(column, quick):
        return None
    if quick.extra is not None and _has_unseen(block[k], quick.extra):
        return None
    return column.reshape(-1, 1)


def _index_labels(index: Any) -> list[Any] | None:
    """A pandas Index as a list, without iterating it (15 µs for a str index of 8 labels)."""
    if getattr(index, "nlevels", 1) != 1:
        return None
    values = index._values
    plain = _plain_values(values)
    return (plain[0] if plain is not None else np.asarray(values, dtype=object)).tolist()


_CATEGORIES: dict[int, tuple[Any, np.ndarray | None]] = {}  # id(dtype) → (dtype, categories)


def _plain_values(values: Any) -> tuple[np.ndarray, bool] | None:
    """``(array, all_text)``: one column's values as a 1-D NumPy array — what ``to_numpy()`` gives —
    with no missing value among them; ``all_text``: every value is known to be a Python str.
    None for missing values or a kind of column this fast path does not read."""
    if isinstance(values, np.ndarray):
        if values.ndim == 2 and values.shape[1] == 1:
            values = values[:, 0]
        return (values, False) if values.ndim == 1 else None
    kind = type(values)
    if kind is list:  # what np.asarray makes of it, as the full path reads it
        return np.asarray(values), False
    module = kind.__module__  # dispatched on first: polars answers unknown attributes slowly
    if module.startswith("pyarrow"):
        return _plain_arrow(values)
    if module.startswith("polars"):
        text = str(values.dtype) in ("String", "Utf8", "Categorical", "Enum") and not values.null_count()
        return np.asarray(values.to_numpy()), text
    if not module.startswith("pandas"):
        return None
    arrow = getattr(values, "_pa_array", None)  # pandas Arrow-backed arrays (pandas 3's str)
    if arrow is not None:
        return _plain_arrow(arrow)
    if hasattr(values, "_codes") and hasattr(values, "categories"):  # pandas Categorical
        codes = values._codes
        if not len(codes) or (min(codes.tolist()) if len(codes) <= 16 else codes.min()) < 0:  # -1: NaN
            return None
        categories = _category_values(values.dtype, values.categories)
        return (categories.take(codes), True) if categories is not None else None
    mask = getattr(values, "_mask", None)  # pandas nullable numbers and booleans
    if isinstance(mask, np.ndarray):
        if not mask.any():
            return values._data, False
        numbers = values._data.astype(np.float64)  # pd.NA read as NaN, as the full path reads it
        numbers[mask] = np.nan
        return numbers, False
    ndarray = getattr(values, "_ndarray", None)  # pandas StringArray (python storage): objects
    if isinstance(ndarray, np.ndarray) and ndarray.ndim == 1 and ndarray.dtype.kind == "O":
        return ndarray, False  # (other NumPy-backed arrays, e.g. periods as int64: the full path)
    if hasattr(values, "_values") and getattr(values, "ndim", 0) == 1:
        return _plain_values(values._values)  # a Series (in a dict): its ndarray or extension array
    return None


_ARROW_TEXT = ("string", "large_string", "string_view")


def _plain_arrow(arrow: Any) -> tuple[np.ndarray, bool] | None:
    """A pyarrow Array or ChunkedArray (also inside pandas Arrow-backed arrays)."""
    kind = str(arrow.type)
    if kind.startswith("dictionary"):  # a categorical: the dictionary taken by the indices
        if arrow.null_count or str(arrow.type.value_type) not in _ARROW_TEXT:
            return None
        chunks = arrow.chunks if hasattr(arrow, "chunks") else [arrow]
        parts = [
            c.dictionary.to_numpy(zero_copy_only=False).take(c.indices.to_numpy(zero_copy_only=False))
            for c in chunks
        ]
        return (parts[0] if len(parts) == 1 else np.concatenate(parts)), True
    array = arrow.to_numpy() if hasattr(arrow, "chunks") else arrow.to_numpy(zero_copy_only=False)
    if arrow.null_count:  # numbers: nulls are NaN (as pandas and the full path read them)
        return (array, False) if array.dtype.kind == "f" else None
    return array, kind in _ARROW_TEXT


def _category_values(dtype: Any, categories: Any) -> np.ndarray | None:
    """A Categorical's categories as an object array of str (None: not all text), cached by dtype:
    frames sliced from one another share it."""
    cached = _CATEGORIES.get(id(dtype))
    if cached is not None and cached[0] is dtype:
        return cached[1]
    plain = _plain_values(categories._values)
    values = None
    if plain is not None:
        array, text = plain
        array = array.astype(object, copy=False)
        if text or set(map(type, array.tolist())) == {str}:
            values = array
    if len(_CATEGORIES) > 64:
        _CATEGORIES.clear()
    _CATEGORIES[id(dtype)] = (dtype, values)  # the dtype is held: its id is not reused meanwhile
    return values


def _quick_column(values: Any, quick: _Quick) -> np.ndarray | None:
    """One column's (n, 1) feed if every value passes the full path's checks as they are; None
    when any might not (the full path then decides, and names the problem)."""
    plain = _plain_values(values)
    if plain is None:
        return None
    array, text = plain
    if array.ndim != 1 or not len(array):
        return None
    target, extra = quick.target, quick.extra
    if target is None:
        if array.dtype.kind != "O" or not (text or set(map(type, array.tolist())) == {str}):
            return None
        if extra is not None:
            if extra.categories and _has_unseen(array, extra):
                return None
            array = _normalized(array, extra)
        return np.ascontiguousarray(array).reshape(-1, 1)  # (rows of a reversed frame are strided)
    if array.dtype.kind not in "biuf" or target.kind not in "biuf":  # object numbers, text, dates
        return None
    out = np.ascontiguousarray(array, dtype=target)
    # NaN where this column takes it passes, as in _refuse_non_finite; inf, overflow and NaN
    # elsewhere go to the full path (it accepts or names them)
    if quick.check and target.kind == "f" and not _all_finite(out) and _refused(out, quick):
        return None
    if extra is not None and _has_unseen(array, extra):
        return None
    return out.reshape(-1, 1)


def _refused(column: np.ndarray, quick: _Quick) -> bool:
    """Some value is not finite: NaN passes where the column takes it; the rest is for the full
    path to judge (inf where taken, overflow of the cast, NaN where not imputed)."""
    return not quick.nan_ok or bool(np.isinf(column).any())


def _has_unseen(array: np.ndarray, spec: InputSpec) -> bool:
    try:
        _refuse_unseen(array, spec, spec.name)
    except InvalidInputError:
        return True
    return False


def _is_arrow_table(X: Any) -> bool:
    return type(X).__module__.startswith("pyarrow") and hasattr(X, "column_names")


def _arrow_columns(X: Any) -> dict[str, np.ndarray]:
    """A pyarrow Table or RecordBatch as a dict of NumPy columns (nulls as NaN / None, as pandas
    and polars give them), for the full path; the fast path reads the Arrow buffers themselves."""
    return {name: _arrow_numpy(X.column(name)) for name in X.column_names}


def _arrow_numpy(column: Any) -> np.ndarray:
    if str(column.type).startswith("dictionary"):  # decoded first: to_numpy reads a null's index
        column = column.cast(column.type.value_type)
    return column.to_numpy() if hasattr(column, "chunks") else column.to_numpy(zero_copy_only=False)


def _normalized(texts: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Python's str.lower(), as sklearn's vectorizers apply it (final sigma, dotted I): a new array,
    the caller's is never changed."""
    if spec.normalize != "lower":
        return texts
    out = np.empty(texts.shape, dtype=object)
    out.ravel()[:] = [t.lower() for t in texts.ravel().tolist()]
    return out


def _short(value: Any) -> str:
    """A value for a message: 10**400 as 100000000000...(401 digits), long texts cut."""
    text = repr(value)
    if len(text) <= 24:
        return text
    return f"{text[:12]}...({len(text)} digits)" if isinstance(value, int) else f"{text[:20]}...'"


def _refuse_unseen(values: np.ndarray, spec: InputSpec, where: Any) -> None:
    """Values an encoder never saw at fit, in columns where native sklearn would not answer as the
    graph does (see KnownValues)."""
    for known in spec.categories:
        column = values if values.ndim == 1 else values[:, known.column]
        if known.numeric:
            numbers = np.asarray(column, dtype=np.float64)
            if numbers.size <= SMALL_FRAME:
                floats = known._floats  # v == v: NaN is not unseen (the NaN rules judge it)
                unseen = np.array([v for v in numbers.ravel().tolist() if v not in floats and v == v])
            else:
                unseen = numbers[~np.isin(numbers, known._lookup) & ~np.isnan(numbers)]
            if unseen.size and (known.truncated or known.cast):  # only those the graph reads as known
                graph_dtype = _NUMERIC.get(spec.dtype, np.float64)
                seen_as = unseen.astype(graph_dtype)  # what the graph's input holds (float32)
                seen_as = np.trunc(seen_as) if known.truncated else seen_as  # its int64 cast
                unseen = unseen[np.isin(seen_as, known._lookup.astype(graph_dtype))]
            found = list(dict.fromkeys(unseen.tolist()))
        else:
            values_here = column.tolist()
            unseen_set = set(values_here).difference(known._lookup)  # in C; ordered below if any
            found = list(dict.fromkeys(v for v in values_here if v in unseen_set)) if unseen_set else []
        if found:
            graph = (
                "; the exported graph would drop the fraction and read a known one"
                if known.truncated
                else f"; the exported graph would read them as {spec.dtype}, a known one"
                if known.cast
                else ""
            )
            raise InvalidInputError(
                f"{_column_names([known.column], where)} holds value(s) {_listed(found)} the model "
                f"never saw at fit ({known.reason}{graph}); known: {_listed(list(known.values))}"
            )


def _listed(values: list[Any], limit: int = _SHOWN * 2) -> str:
    """A list for a message, cut after ``limit`` values: [a, b, c, ... (40 in all)]."""
    shown = [_short(v) for v in values[:limit]]
    more = f", ... ({len(values)} in all)" if len(values) > limit else ""
    return "[" + ", ".join(shown) + more + "]"


def _column_names(columns: list[int], where: str | list[str] | None) -> str:
    """'column 'age'', 'feature 3', 'column a, b' (named matrix features); at most _SHOWN named."""
    if isinstance(where, str):
        return f"column {where!r}"
    names = [str(where[j]) if where else f"feature {j}" for j in columns[:_SHOWN]]
    more = f" (and {len(columns) - _SHOWN} more)" if len(columns) > _SHOWN else ""
    return ("column " if where else "") + ", ".join(names) + more
