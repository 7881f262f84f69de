"""The input schema of a fitted estimator, and the sample rows used to probe and check it.

Array-trained estimators get one ``X`` input (rows x features); DataFrame-trained ones
(``feature_names_in_``) one input per column, float32 for numbers and string for categories.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from exporter.convert.boosters import takes_inf, takes_missing
from exporter.errors import SampleError
from exporter.steps import descendants, flatten_steps, has_infrequent_categories, walk
from runtime.schema import InputSpec, KnownValues, Schema

N_SYNTHETIC_ROWS = 64


def infer_schema(estimator: Any, sample: Any = None, dtype: str = "float32") -> Schema:
    """``dtype``: the element type of numeric inputs, float32 (default) or float64 (skl2onnx
    computes in double where it can: exact tree thresholds, at some speed cost).

    Besides names and types, each input says what values the native pipeline accepts, so that the
    runtime refuses exactly what sklearn would (or what the graph would answer differently): NaN
    and ±inf per column, the categories of encoders that raise on unseen values, and the
    lower-casing text vectorizers apply (see runtime.inputs.InputSpec).
    """
    if dtype not in ("float32", "float64"):
        raise SampleError(f"dtype={dtype!r}: use float32 or float64")
    if dtype == "float64":
        nested = [estimator, *descendants(estimator)]  # an imputer inside a container counts too
        imputers = [type(e).__name__ for e in nested if "Imputer" in type(e).__name__]
        if imputers:  # skl2onnx writes ai.onnx.ml Imputer, which onnxruntime runs in float32 only
            raise SampleError(
                f"dtype='float64' with {imputers[0]}: onnxruntime has no float64 Imputer kernel, so "
                "the model would not load; export with the default dtype='float32'"
            )

    first = flatten_steps(estimator)[0][1]
    tensors = tensor_schema(first, sample, dtype)
    if tensors is not None:
        return tensors
    vectorizers = text_vectorizers(first)
    if vectorizers:  # raw documents in: a vectorizer first, or a container of text pipelines
        lowering = {_lowering(v) for v in vectorizers}
        normalize = lowering.pop() if len(lowering) == 1 else None  # one str.lower() for all, or none
        spec = InputSpec("X", "string", 1, allow_nan=False, allow_inf=False, normalize=normalize)
        return Schema("text", (spec,))
    if _is_mapping(sample):  # a dict of columns is a DataFrame to sklearn's eyes (and ours)
        import pandas as pd

        sample = pd.DataFrame(sample)
    names = _feature_names(estimator)
    width = len(names) if names is not None else _n_features(estimator, sample)
    rules = column_rules(estimator, width)
    if names is not None:
        strings = _string_columns(estimator, sample)
        specs = tuple(
            InputSpec(
                n,
                "string" if n in strings else dtype,
                1,
                allow_nan=rules.nan[j],
                allow_inf=rules.inf[j],
                categories=tuple(replace(k, column=0) for k in rules.categories.get(j, ())),
                normalize=rules.normalize[j] if n in strings else None,
            )
            for j, n in enumerate(names)
        )
        return Schema("columns", specs, tuple(names))
    spec = InputSpec(
        "X",
        "string" if _holds_strings(estimator, sample) else dtype,
        width,
        allow_nan=all(rules.nan),
        nan_columns=_where(rules.nan),
        allow_inf=all(rules.inf),
        inf_columns=_where(rules.inf),
        categories=tuple(k for j in sorted(rules.categories) for k in rules.categories[j]),
    )
    return Schema("matrix", (spec,))


def tensor_schema(first: Any, sample: Any, dtype: str) -> Schema | None:
    """The inputs of a torch module that takes tensors, not 2-D float rows: images or sequences
    (rank 3-5), integer token ids into an nn.Embedding, several named inputs (a dict or skorch
    SliceDict, passed to ``forward`` by name). None: the first step takes 2-D rows."""
    from collections.abc import Mapping

    from exporter.convert.torch import find_module, input_names, module_input, takes_token_ids
    from exporter.registry import torch_adapter

    adapter = torch_adapter(first)
    if adapter is None:
        return None
    module = find_module(first, adapter.module, type(first).__name__)
    if sample is None:
        if takes_token_ids(module):
            raise SampleError(
                f"{type(first).__name__} takes token ids (its module starts with an embedding): pass "
                "--sample with a few real inputs (.npy, or .npz for several named inputs)"
            )
        return None
    if hasattr(sample, "iloc") or not (isinstance(sample, Mapping) or hasattr(sample, "shape")):
        return None  # a DataFrame or rows as lists: the table layouts
    x = module_input(sample)
    if isinstance(x, dict):
        names = input_names(module, x)
        specs = tuple(_tensor_spec(n, x[n], dtype, ids=x[n].dtype.kind in "biu") for n in names)
        return Schema("tensor", specs)
    ids = x.dtype.kind in "biu" and takes_token_ids(module)
    if x.ndim <= 2 and not ids:
        return None
    spec = _tensor_spec("X", x, dtype, ids)
    if ids:
        embedding = next(m for m in module.modules() if hasattr(m, "num_embeddings"))
        spec = replace(spec, id_range=(0, int(embedding.num_embeddings)))
    return Schema("tensor", (spec,))


def _tensor_spec(name: str, array: np.ndarray, dtype: str, ids: bool) -> InputSpec:
    if array.ndim < 2:
        raise SampleError(
            f"sample input {name!r} has shape {array.shape}; a module input needs a batch axis and at "
            "least one more (e.g. (N, 1) for one value per example)"
        )
    if not ids and array.dtype.kind not in "biuf":
        raise SampleError(f"sample input {name!r} holds {array.dtype} values; the module takes numbers")
    shape = tuple(int(d) for d in array.shape[1:])
    # Floats accept what torch does (NaN and inf propagate through the module as natively).
    return InputSpec(
        name,
        "int64" if ids else dtype,
        shape[0] if len(shape) == 1 else None,
        allow_nan=not ids,
        allow_inf=not ids,
        shape=shape,
    )


def with_graph_shapes(schema: Schema, model: Any) -> Schema:
    """A tensor schema with the trailing dims the exported graph really fixes: a dim the module
    took at any size (a sequence length) becomes None, and the runtime takes any length there."""
    if schema.layout != "tensor":
        return schema
    graph = {i.name: i.type.tensor_type.shape.dim for i in model.graph.input}
    specs = []
    for spec in schema.inputs:
        dims = graph.get(spec.name)
        if dims is None or spec.shape is None or len(dims) != 1 + len(spec.shape):
            specs.append(spec)
            continue
        shape = tuple(int(d.dim_value) if d.HasField("dim_value") else None for d in dims[1:])
        specs.append(replace(spec, shape=shape, width=shape[0] if len(shape) == 1 else None))
    return replace(schema, inputs=tuple(specs))


def _where(flags: list[bool]) -> tuple[int, ...] | None:
    """The positions that are True, when some are and some are not (else one flag says it all)."""
    return tuple(j for j, f in enumerate(flags) if f) if any(flags) and not all(flags) else None


def text_vectorizers(step: Any) -> list[Any]:
    """The vectorizers that read raw documents when ``step`` is given them: the step itself, the
    first step of a Pipeline, every estimator of an ensemble (Voting, Stacking, OneVsRest,
    Calibrated) over text pipelines. Empty when the step does not take documents."""
    if is_text_vectorizer(step):
        return [step]
    if hasattr(step, "steps"):
        first = next((s for _, s in step.steps if s is not None and s != "passthrough"), None)
        return text_vectorizers(first) if first is not None else []
    estimators = getattr(step, "estimators_", None)  # a list, or an array of trees (GradientBoosting)
    children = list(estimators) if isinstance(estimators, list) else []
    children += [c.estimator for c in getattr(step, "calibrated_classifiers_", None) or []]
    if not children or not all(hasattr(c, "get_params") for c in children):
        return []
    found = [text_vectorizers(c) for c in children]
    return [v for vs in found for v in vs] if all(found) else []


def is_text_vectorizer(step: Any) -> bool:
    """TfidfVectorizer / CountVectorizer (and subclasses): the pipeline takes raw documents."""
    return hasattr(step, "vocabulary_") and hasattr(step, "build_analyzer")


def _lowering(vectorizer: Any) -> str | None:
    """Return "lower" when the fitted vectorizer lower-cases with str.lower() (sklearn's own
    preprocessor does exactly that when no custom preprocessor or analyzer replaces it)."""
    plain = getattr(vectorizer, "preprocessor", None) is None and not callable(vectorizer.analyzer)
    return "lower" if getattr(vectorizer, "lowercase", False) and plain else None


@dataclass
class ColumnRules:
    """Per input column (by position): NaN accepted, ±inf accepted, the known categories where an
    unseen value must be refused (KnownValues keyed by column), lower-casing of text columns."""

    nan: list[bool]
    inf: list[bool]
    categories: dict[int, list[KnownValues]] = field(default_factory=dict)
    normalize: list[str | None] = field(default_factory=list)


def column_rules(estimator: Any, width: int) -> ColumnRules:
    """What the native pipeline accepts in each of its ``width`` input columns.

    With a ColumnTransformer first, each column follows the branches that read it (all of them
    must accept a value for it to be accepted); otherwise one rule, the first step's, holds for
    every column.
    """
    steps = [s for _, s in flatten_steps(estimator)]
    first, later = steps[0], steps[1:]
    indices = getattr(first, "_transformer_to_input_indices", None)
    if not hasattr(first, "transformers_") or indices is None:
        rules = ColumnRules(  # NaN: through scalers (which pass it) to an imputer, as natively
            [_chain_handles_nan(steps, j) for j in range(width)],
            [_takes_inf(first)] * width,
            normalize=[None] * width,
        )
        _add_categories(rules, steps, [], list(range(width)))
        return rules
    readers: list[list[Any]] = [[] for _ in range(width)]
    rules = ColumnRules([True] * width, [True] * width, normalize=[None] * width)
    for branch, transformer, _ in first.transformers_:
        columns = [int(j) for j in indices.get(branch, [])]
        for j in columns:
            readers[j].append(transformer)
        if not isinstance(transformer, str):
            _add_categories(rules, _chain(transformer), later, columns)
    positions = {  # column j is input position k of each branch that reads it
        branch: {int(j): k for k, j in enumerate(indices.get(branch, []))}
        for branch, _, _ in first.transformers_
    }
    for j, branches in enumerate(readers):
        named = [b for b, t, _ in first.transformers_ if j in positions[b]]
        rules.nan[j] = all(
            _branch_handles_nan(t, later, positions[b][j]) for b, t in zip(named, branches, strict=True)
        )
        rules.inf[j] = all(
            (isinstance(t, str) and t == "drop") or (_passes_through(t) and _starts_with_inf(later))
            for t in branches
        )
        lowering = [_lowering(t) if is_text_vectorizer(t) else None for t in branches]
        rules.normalize[j] = "lower" if lowering and all(lowering) else None
    return rules


def _chain(estimator: Any) -> list[Any]:
    """A Pipeline's steps (nested ones flattened, passthrough left out), or the estimator itself."""
    steps = getattr(estimator, "steps", None)
    if steps is None:
        return [estimator]
    return [s for _, step in steps if step is not None and step != "passthrough" for s in _chain(step)]


def _passes_through(transformer: Any) -> bool:
    """'passthrough', or the identity FunctionTransformer a fitted ColumnTransformer puts in its place."""
    if isinstance(transformer, str):
        return transformer == "passthrough"
    return type(transformer).__name__ == "FunctionTransformer" and transformer.func is None


def _branch_handles_nan(transformer: Any, later: list[Any], column: int | None = None) -> bool:
    if isinstance(transformer, str) and transformer == "drop":
        return True
    if _passes_through(transformer):
        return _chain_handles_nan(later)
    return _handles_nan(transformer, column)


def _handles_nan(estimator: Any, column: int | None = None) -> bool:
    """Whether NaN reaching this estimator is dealt with natively: an imputer whose missing value is
    NaN, a model that takes NaN (HistGradientBoosting), a Pipeline that reaches one through steps
    that pass NaN along, a ColumnTransformer / FeatureUnion whose every branch deals with it.
    Otherwise the runtime refuses NaN (a NaN that slipped past would give a silently wrong label:
    ArgMax of NaN still picks a class)."""
    name = type(estimator).__name__
    if "HistGradientBoosting" in name or takes_missing(estimator):  # boosters route NaN as learned
        return True
    if "Imputer" in name:
        missing = getattr(estimator, "missing_values", np.nan)
        return isinstance(missing, float) and bool(np.isnan(missing))
    if name == "MissingIndicator":
        return _indicator_takes_nan(estimator, column)
    if hasattr(estimator, "steps"):
        return _chain_handles_nan(_chain(estimator), column)
    branches = getattr(estimator, "transformers_", None)
    if branches is not None:
        return all(_branch_handles_nan(t, []) for _, t, _ in branches)
    union = getattr(estimator, "transformer_list", None)
    if union is not None:  # every branch reads every column
        return all(_branch_handles_nan(t, [], column) for _, t in union)
    return False


def _indicator_takes_nan(indicator: Any, column: int | None) -> bool:
    """MissingIndicator(error_on_new=True) raises on NaN in a column that had none at fit; its
    output holds no NaN (flags), so what comes after never sees one. ``column``: the position in
    the indicator's input (None: every column)."""
    missing = getattr(indicator, "missing_values", np.nan)
    if not (isinstance(missing, float) and np.isnan(missing)):
        return False
    if indicator.features == "all" or not indicator.error_on_new:
        return True
    flagged = {int(j) for j in indicator.features_}
    return column in flagged if column is not None else len(flagged) == indicator.n_features_in_


# Steps that pass NaN through unchanged (sklearn lets it through them; so does their ONNX graph).
_NAN_TRANSPARENT = (
    "StandardScaler",
    "MinMaxScaler",
    "MaxAbsScaler",
    "RobustScaler",
    "PowerTransformer",
    "QuantileTransformer",
)


def _chain_handles_nan(steps: list[Any], column: int | None = None) -> bool:
    """NaN entering a chain of steps is dealt with when it reaches a step that handles it through
    steps that pass it along (a PCA before the imputer refuses it natively). ``column``: NaN in
    that input column only (the steps that pass it keep columns in place)."""
    for step in steps:
        if _handles_nan(step, column):
            return True
        if type(step).__name__ not in _NAN_TRANSPARENT and not _passes_through(step):
            return False
    return False


def _takes_inf(estimator: Any) -> bool:
    """sklearn refuses ±inf ("Input X contains infinity") everywhere but in HistGradientBoosting
    (and the gradient-boosting libraries, which compare it like any number)."""
    return "HistGradientBoosting" in type(estimator).__name__ or takes_inf(estimator)


def _starts_with_inf(steps: list[Any]) -> bool:
    return bool(steps) and _takes_inf(steps[0])


def _add_categories(rules: ColumnRules, chain: list[Any], later: list[Any], columns: list[int]) -> None:
    """Known categories of the encoder of ``chain`` that first reads these columns (after imputers,
    which leave non-missing values as they are), where an unseen value would not be answered as
    natively; ``later``: the steps the chain's output goes on to."""
    position = 0
    while position < len(chain) and "Imputer" in type(chain[position]).__name__:
        position += 1
    if position == len(chain):
        return
    encoder, after = chain[position], [*chain[position + 1 :], *later]
    categories = getattr(encoder, "categories_", None)
    if categories is None or len(categories) != len(columns):
        return
    for k, (column, values) in enumerate(zip(columns, categories, strict=True)):
        rule = _unknown_rule(encoder, k, after)
        if rule is not None:
            reason, mode = rule
            known = KnownValues(
                column, tuple(np.asarray(values).tolist()), reason, mode == "truncated", mode == "cast"
            )
            rules.categories.setdefault(column, []).append(known)


def _unknown_rule(encoder: Any, k: int, after: list[Any]) -> tuple[str, str] | None:
    """(what native sklearn does with an unseen value, which unseen values to refuse: "" all of them,
    "truncated" or "cast" those the graph reads as a known one, see KnownValues) for column ``k``
    of a fitted encoder, or None where the exported graph answers an unseen value as sklearn does.

    Checked against native sklearn 1.9 / skl2onnx 1.20 (tests/runtime/test_refusals.py):
    OneHotEncoder "error" raises, the graph answered; "ignore" encodes zeros, as the graph does,
    except for a fraction in a numeric column (the graph casts it to int64: 2.5 is category 2);
    "infrequent_if_exist"/"warn" count unseen values as infrequent, as our converter's graph does
    (where there are no infrequent categories they encode zeros, and are exported as "ignore").
    OrdinalEncoder "error" raises, the graph answered -1 (an embedding then wraps to the last
    row); "use_encoded_value" matches, but unknown_value=nan raises later unless a step takes NaN,
    and a numeric column compares float32 values (2.0000001 is category 2 in the graph).
    TargetEncoder maps unseen values to the target mean, as its graph does: no rule.
    """
    name = type(encoder).__name__
    handle = getattr(encoder, "handle_unknown", None)
    numeric = np.asarray(encoder.categories_[k]).dtype.kind in "biuf"
    if name == "OneHotEncoder":
        if handle == "error":
            return "OneHotEncoder handle_unknown='error' would raise", ""
        if handle in ("infrequent_if_exist", "warn") and has_infrequent_categories(encoder):
            return None  # our converter (convert/repairs.py) counts them as infrequent, as sklearn
        if numeric:
            return f"OneHotEncoder handle_unknown={handle!r} would encode them as all zeros", "truncated"
        return None
    if name == "OrdinalEncoder":
        if handle == "error":
            return "OrdinalEncoder handle_unknown='error' would raise", ""
        unknown = getattr(encoder, "unknown_value", None)
        if isinstance(unknown, float) and np.isnan(unknown) and not _chain_handles_nan(after):
            return "OrdinalEncoder unknown_value=nan would pass NaN to a step that refuses it", ""
        if numeric:
            return f"OrdinalEncoder handle_unknown={handle!r} would encode them as unknown_value", "cast"
    return None


def _feature_names(estimator: Any) -> list[str] | None:
    names = getattr(estimator, "feature_names_in_", None)
    if names is None and hasattr(estimator, "steps"):
        names = getattr(estimator.steps[0][1], "feature_names_in_", None)
    return [str(n) for n in names] if names is not None else None


def _n_features(estimator: Any, sample: Any) -> int:
    for _, step in flatten_steps(estimator)[:1]:
        n = getattr(step, "n_features_in_", None)
        if n is not None:
            return int(n)
    if sample is not None and np.ndim(sample) == 2:  # the rows given beat a guess from the module
        return int(np.asarray(sample).shape[1])
    for _, step in flatten_steps(estimator)[:1]:
        first = _first_linear_width(step)
        if first is not None:
            return first
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


def _is_mapping(sample: Any) -> bool:
    from collections.abc import Mapping

    return isinstance(sample, Mapping)


def _holds_strings(estimator: Any, sample: Any) -> bool:
    """A numpy matrix of strings (or of str objects), for a first step that takes them (an
    encoder, a ColumnTransformer over text or categories)."""
    if sample is not None and not hasattr(sample, "dtypes"):
        array = np.asarray(sample)
        if array.dtype.kind in "US":
            return True
        if array.dtype.kind == "O" and array.size and all(isinstance(v, str) for v in array.ravel()[:1000]):
            return True
    first = flatten_steps(estimator)[0][1]  # numbers given to an encoder of strings: refused later
    categories = getattr(first, "categories_", None) or []
    return bool(categories) and all(np.asarray(c).dtype.kind in "OUS" for c in categories)


def _string_columns(estimator: Any, sample: Any) -> set[str]:
    if sample is not None and hasattr(sample, "dtypes"):
        return {str(c) for c, dt in sample.dtypes.items() if dt.kind not in "biuf"}
    strings: set[str] = set()
    ct = estimator.steps[0][1] if hasattr(estimator, "steps") else estimator
    names = _feature_names(estimator) or []
    for j, values in enumerate(getattr(ct, "categories_", None) or []):  # an encoder first
        if np.asarray(values).dtype.kind in "OUS" and j < len(names):
            strings.add(names[j])
    for _, transformer, columns in getattr(ct, "transformers_", []):
        if not isinstance(transformer, str) and is_text_vectorizer(_chain(transformer)[0]):
            strings.update(str(c) for c in ([columns] if isinstance(columns, str) else columns))
            continue
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
        if path.suffix == ".npz":  # several named inputs of a torch module
            return _read_npz(path)
        if path.suffix == ".csv":
            import pandas as pd

            return pd.read_csv(path)
    except (ValueError, OSError):
        return None  # read_sample reports the problem with the schema in hand
    return None


def read_sample(path: str | Path, schema: Schema) -> Any:
    """Rows from a .npy or .csv file, as a DataFrame (columns layout) or an array; a module's
    named inputs from a .npz file (one array per name)."""
    path = Path(path)
    if not path.is_file():
        raise SampleError(f"sample file not found: {str(path)!r}")
    try:
        if path.suffix == ".npy":
            data = np.load(path, allow_pickle=False)
        elif path.suffix == ".npz":
            data = _read_npz(path)
        elif path.suffix == ".csv":
            data = _read_csv(path, schema)
        else:
            raise SampleError(f"sample file {str(path)!r}: use .npy, .npz (named inputs) or .csv")
    except (ValueError, OSError) as exc:
        raise SampleError(f"cannot read sample file {str(path)!r}: {exc}") from None
    return coerce_sample(data, schema)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


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
    if schema.layout == "tensor":  # the module's own inputs, checked as the runtime will check them
        from runtime.errors import InvalidInputError
        from runtime.tensors import tensor_feeds

        try:
            _, n = tensor_feeds(data, schema.inputs)
        except InvalidInputError as exc:
            raise SampleError(f"sample: {exc}") from None
        if n == 0:
            raise SampleError("sample has no rows")
        return data
    if schema.layout == "text":
        docs = np.asarray(data.to_numpy() if hasattr(data, "to_numpy") else data, dtype=object).reshape(-1)
        if len(docs) == 0 or not all(isinstance(d, str) for d in docs):
            raise SampleError("a text pipeline's sample must be a non-empty list of strings (documents)")
        return docs
    if schema.layout == "columns":
        import pandas as pd

        names = list(schema.feature_names or ())
        if _is_mapping(data):
            data = pd.DataFrame(data)
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
    if schema.inputs[0].is_string:  # a matrix of categories or texts, as the encoder saw it
        if array.dtype.kind not in "OUS" or not all(isinstance(v, str) for v in array.ravel()):
            raise SampleError(f"sample holds {array.dtype} values; the pipeline takes a matrix of strings")
    elif array.dtype.kind not in "biuf":
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
        vocabulary = sorted(text_vectorizers(flatten_steps(estimator)[0][1])[0].vocabulary_)
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
