"""The input schema of a fitted estimator, and the sample rows used to probe and check it.

Array-trained estimators get one ``X`` input (rows x features); DataFrame-trained ones
(``feature_names_in_``) one input per column, float32 for numbers and string for categories.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from exporter.errors import SampleError
from runtime.inputs import InputSpec, Schema

N_SYNTHETIC_ROWS = 64


def infer_schema(estimator: Any, sample: Any = None, dtype: str = "float32") -> Schema:
    """``dtype``: the element type of numeric inputs, float32 (default) or float64 (skl2onnx
    computes in double where it can: exact tree thresholds, at some speed cost)."""
    if dtype not in ("float32", "float64"):
        raise SampleError(f"dtype={dtype!r}: use float32 or float64")
    from exporter.plan import flatten_steps

    if is_text_vectorizer(flatten_steps(estimator)[0][1]):
        return Schema("text", (InputSpec("X", "string", 1, allow_nan=False),))
    names = _feature_names(estimator)
    allow_nan = _first_step_handles_nan(estimator)
    if names is not None:
        strings = _string_columns(estimator, sample)
        nan_ok = _nan_columns(estimator, names)
        specs = tuple(
            InputSpec(
                n, "string" if n in strings else dtype, 1, n in nan_ok if nan_ok is not None else allow_nan
            )
            for n in names
        )
        return Schema("columns", specs, tuple(names))
    width = _n_features(estimator, sample)
    return Schema("matrix", (InputSpec("X", dtype, width, allow_nan),))


def is_text_vectorizer(step: Any) -> bool:
    """TfidfVectorizer / CountVectorizer (and subclasses): the pipeline takes raw documents."""
    return hasattr(step, "vocabulary_") and hasattr(step, "build_analyzer")


def _feature_names(estimator: Any) -> list[str] | None:
    names = getattr(estimator, "feature_names_in_", None)
    if names is None and hasattr(estimator, "steps"):
        names = getattr(estimator.steps[0][1], "feature_names_in_", None)
    return [str(n) for n in names] if names is not None else None


def _n_features(estimator: Any, sample: Any) -> int:
    from exporter.plan import flatten_steps

    for _, step in flatten_steps(estimator)[:1]:
        n = getattr(step, "n_features_in_", None)
        if n is not None:
            return int(n)
        first = _first_linear_width(step)
        if first is not None:
            return first
    if sample is not None:
        return int(np.asarray(sample).shape[1])
    raise SampleError(
        "cannot tell how many features the pipeline takes (no n_features_in_); pass --sample with a few rows"
    )


def _first_linear_width(step: Any) -> int | None:
    """A wrapper without n_features_in_: the in_features of its module's first Linear layer."""
    from exporter.convert.torch import module_attributes

    for module in module_attributes(step).values():
        for layer in module.modules():
            if hasattr(layer, "in_features"):
                return int(layer.in_features)
    return None


def _handles_nan(estimator: Any) -> bool:
    """Whether some step deals with missing values; otherwise the runtime refuses NaN input."""
    text = repr(type(estimator)) + "".join(repr(type(s)) for s in walk(estimator))
    return "Imputer" in text or "HistGradientBoosting" in text


def _nan_columns(estimator: Any, names: list[str]) -> set[str] | None:
    """Columns where NaN is handled, when the pipeline starts with a ColumnTransformer: those its
    imputing branches read, those it drops, and passthrough ones if a later step imputes.
    None when there is no ColumnTransformer to tell (then one rule holds for every input)."""
    steps = estimator.steps if hasattr(estimator, "steps") else [("", estimator)]
    ct = steps[0][1]
    indices = getattr(ct, "_transformer_to_input_indices", None)
    if not hasattr(ct, "transformers_") or indices is None:
        return None
    later = _handles_nan_any([s for _, s in steps[1:]])
    ok: set[str] = set()
    for branch, transformer, _ in ct.transformers_:
        handles = transformer == "drop" or (
            later if transformer == "passthrough" else _handles_nan(transformer)
        )
        if handles:
            ok.update(names[i] for i in indices.get(branch, []))
    return ok


def _first_step_handles_nan(estimator: Any) -> bool:
    """NaN may reach the model only if the first step deals with it for every column: an imputer,
    a HistGradientBoosting model, or a ColumnTransformer whose every branch imputes or drops.
    (A NaN that slipped past would give a silently wrong label: ArgMax of NaN still picks a class.)"""
    from exporter.plan import flatten_steps

    first = flatten_steps(estimator)[0][1]
    branches = getattr(first, "transformers_", None)
    if branches is not None:
        return all(t == "drop" or (t != "passthrough" and _handles_nan(t)) for _, t, _ in branches)
    return _handles_nan(first)


def _handles_nan_any(estimators: list[Any]) -> bool:
    return any(_handles_nan(e) for e in estimators)


def walk(estimator: Any) -> list[Any]:
    """Every estimator nested in Pipelines, ColumnTransformers and FeatureUnions."""
    found = []
    for attr in ("steps", "transformers", "transformer_list"):
        for item in getattr(estimator, attr, None) or []:
            child = item[1]
            if hasattr(child, "get_params"):
                found += [child, *walk(child)]
    return found


def _string_columns(estimator: Any, sample: Any) -> set[str]:
    if sample is not None and hasattr(sample, "dtypes"):
        return {str(c) for c, dt in sample.dtypes.items() if dt.kind not in "biuf"}
    strings: set[str] = set()
    ct = estimator.steps[0][1] if hasattr(estimator, "steps") else estimator
    for _, transformer, columns in getattr(ct, "transformers_", []):
        categories = [c for t in [transformer, *walk(transformer)] for c in getattr(t, "categories_", [])]
        if any(np.asarray(c).dtype.kind in "OUS" for c in categories) and isinstance(columns, (list, tuple)):
            strings.update(str(c) for c in columns)
    return strings


def peek_sample(path: str | Path) -> Any:
    """The sample file read without a schema (to infer one): an array, or a DataFrame for CSV."""
    path = Path(path)
    try:
        if path.suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if path.suffix == ".csv":
            import pandas as pd

            return pd.read_csv(path)
    except (ValueError, OSError):
        return None  # read_sample reports the problem with the schema in hand
    return None


def read_sample(path: str | Path, schema: Schema) -> Any:
    """Rows from a .npy or .csv file, as a DataFrame (columns layout) or an array."""
    path = Path(path)
    if not path.is_file():
        raise SampleError(f"sample file not found: {str(path)!r}")
    try:
        if path.suffix == ".npy":
            data = np.load(path, allow_pickle=False)
        elif path.suffix == ".csv":
            data = _read_csv(path, schema)
        else:
            raise SampleError(f"sample file {str(path)!r}: use .npy or .csv")
    except (ValueError, OSError) as exc:
        raise SampleError(f"cannot read sample file {str(path)!r}: {exc}") from None
    return coerce_sample(data, schema)


def _read_csv(path: Path, schema: Schema) -> Any:
    import pandas as pd

    if schema.layout == "text":  # one document per row, in the first column
        return pd.read_csv(path, dtype=str, keep_default_na=False).iloc[:, 0].to_numpy(dtype=object)
    frame = pd.read_csv(path)
    names = schema.feature_names
    if names and set(names) <= set(map(str, frame.columns)):
        return frame[list(names)]
    positional = [str(c) for c in frame.columns] == [str(i) for i in range(frame.shape[1])]
    if not positional and all(_is_number(c) for c in frame.columns):  # no header: the first row is data
        frame = pd.read_csv(path, header=None)
    return frame.to_numpy()


def _is_number(text: Any) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


def coerce_sample(data: Any, schema: Schema) -> Any:
    """Check the sample against the schema; give DataFrame-trained pipelines a DataFrame."""
    if schema.layout == "text":
        docs = np.asarray(data.to_numpy() if hasattr(data, "to_numpy") else data, dtype=object).reshape(-1)
        if len(docs) == 0 or not all(isinstance(d, str) for d in docs):
            raise SampleError("a text pipeline's sample must be a non-empty list of strings (documents)")
        return docs
    if schema.layout == "columns":
        import pandas as pd

        names = list(schema.feature_names or ())
        if isinstance(data, pd.DataFrame):
            missing = [n for n in names if n not in data.columns]
            if missing:
                raise SampleError(
                    f"sample is missing column(s) {missing}; the pipeline was trained on {names}"
                )
            return data[names].reset_index(drop=True)
        array = np.asarray(data)
        if array.ndim != 2 or array.shape[1] != len(names):
            raise SampleError(f"sample has shape {array.shape}; expected {len(names)} columns {names}")
        return pd.DataFrame(array, columns=names)
    array = np.asarray(data)
    width = schema.inputs[0].width
    if array.ndim != 2 or (width is not None and array.shape[1] != width):
        raise SampleError(f"sample has shape {array.shape}; the pipeline takes rows of {width} features")
    if array.dtype.kind not in "biuf":
        raise SampleError(f"sample holds {array.dtype} values; the pipeline takes numbers")
    if len(array) == 0:
        raise SampleError("sample has no rows")
    return array


def synthesize_sample(estimator: Any, schema: Schema, n_rows: int = N_SYNTHETIC_ROWS, seed: int = 0) -> Any:
    """Rows drawn around what the first step saw at fit time (its mean/scale or min/max).

    Real rows (``--sample``) are better: synthetic ones may miss the regions where the model's
    decisions are made. The report says which was used.
    """
    rng = np.random.default_rng(seed)
    if schema.layout == "text":  # documents made of the fitted vocabulary's words
        from exporter.plan import flatten_steps

        vocabulary = sorted(flatten_steps(estimator)[0][1].vocabulary_)
        words = [w for term in vocabulary for w in term.split(" ")] or ["text"]
        return np.array([" ".join(rng.choice(words, 8)) for _ in range(n_rows)], dtype=object)
    if schema.layout == "columns":
        import pandas as pd

        columns = {}
        categories = _known_categories(estimator)
        for spec in schema.inputs:
            if spec.is_string:
                values = categories.get(spec.name) or ["a", "b"]
                columns[spec.name] = rng.choice(np.asarray(values, dtype=object), n_rows)
            else:
                columns[spec.name] = rng.normal(size=n_rows)
        return pd.DataFrame(columns)
    width = schema.inputs[0].width or 1
    low, high = _fitted_range(estimator, width)
    return rng.uniform(low, high, size=(n_rows, width))


def _fitted_range(estimator: Any, width: int) -> tuple[np.ndarray, np.ndarray]:
    from exporter.plan import flatten_steps

    first = flatten_steps(estimator)[0][1]
    if hasattr(first, "data_min_") and hasattr(first, "data_max_"):
        return np.asarray(first.data_min_), np.asarray(first.data_max_)
    if hasattr(first, "mean_") and getattr(first, "scale_", None) is not None:
        mean, scale = np.asarray(first.mean_), np.asarray(first.scale_)
        return mean - 2 * scale, mean + 2 * scale
    return np.full(width, -2.0), np.full(width, 2.0)


def _known_categories(estimator: Any) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    ct = estimator.steps[0][1] if hasattr(estimator, "steps") else estimator
    for _, transformer, columns in getattr(ct, "transformers_", []):
        cats: list[Any] = [
            t.categories_ for t in [transformer, *walk(transformer)] if hasattr(t, "categories_")
        ]
        if cats and isinstance(columns, (list, tuple)) and len(cats[0]) == len(columns):
            for column, values in zip(columns, cats[0], strict=True):
                found[str(column)] = list(values)
    return found
