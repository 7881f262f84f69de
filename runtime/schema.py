"""The input schema a model carries: what each graph input is and what it accepts.

The exporter writes it (``exporter/schema.py`` infers it from the fitted pipeline), the runtime checks
every call against it (``runtime/inputs.py``, ``_columns.py``, ``tensors.py``): one definition, both
sides. numpy only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Element types the hot paths feed directly (dtype name → numpy type).
_NUMERIC = {"float32": np.float32, "float64": np.float64, "int64": np.int64, "int32": np.int32}
_STRING = "string"
_NORMALIZE = ("lower",)


@dataclass(frozen=True)
class KnownValues:
    """The values an encoder saw at fit, for one column of an input where an unseen value would
    be answered differently by the native pipeline (it raises) than by the graph (it encodes it
    as something): the runtime refuses such values instead.

    ``truncated``: refuse only unseen numbers whose integer part is a known value (the graph
    casts numeric categories to int64, so 2.5 would silently become category 2).
    ``cast``: refuse only unseen numbers that the input's element type turns into a known value
    (the graph compares float32 values: 2.0000001 is category 2.0 there, unseen natively).
    Both judge the value as the graph reads it, after the cast to the input's element type.
    """

    column: int  # position within the input (0 for a one-column input)
    values: tuple[Any, ...]
    reason: str  # what the native pipeline does, e.g. "OrdinalEncoder handle_unknown='error' would raise"
    truncated: bool = False
    cast: bool = False
    _lookup: Any = field(default=None, init=False, compare=False, repr=False)
    _floats: frozenset[float] = field(default=frozenset(), init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        numeric = all(isinstance(v, (int, float, np.number)) for v in self.values)
        if numeric:  # few rows are looked up in a set: np.isin sorts, 15 µs even for one value
            numbers = np.asarray(self.values, dtype=np.float64)
            object.__setattr__(self, "_lookup", numbers)
            object.__setattr__(self, "_floats", frozenset(numbers.tolist()))
        else:
            object.__setattr__(self, "_lookup", frozenset(self.values))

    @property
    def numeric(self) -> bool:
        return isinstance(self._lookup, np.ndarray)

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"column": self.column, "values": list(self.values), "reason": self.reason}
        if self.truncated:
            doc["truncated"] = True
        if self.cast:
            doc["cast"] = True
        return doc

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> KnownValues:
        return cls(
            int(doc["column"]),
            tuple(doc["values"]),
            str(doc["reason"]),
            bool(doc.get("truncated")),
            bool(doc.get("cast")),
        )


@dataclass(frozen=True)
class InputSpec:
    """One ONNX graph input: its name, element type and width (columns), and what it accepts.

    ``allow_nan``: NaN is accepted in every column (an imputer, or a model that takes NaN, reads
    it). ``nan_columns``: for a matrix whose columns differ, the positions where NaN is accepted
    (it overrides ``allow_nan``, which is then False: what runtimes that predate the list read).
    ``allow_inf`` / ``inf_columns``: the same for ±inf, which sklearn refuses almost everywhere
    (imputers fill NaN, never inf); None follows ``allow_nan`` (foreign models: no rule known).
    ``categories``: known values per column where unseen ones must be refused (see KnownValues).
    ``normalize="lower"``: documents / text columns are lower-cased with Python's ``str.lower()``
    before the graph, exactly as sklearn does; the graph lower-cases again (per code point, which
    differs for final sigma and dotted I), so other consumers should apply ``str.lower()`` too.
    """

    name: str
    dtype: str
    width: int | None
    allow_nan: bool = False
    nan_columns: tuple[int, ...] | None = None
    allow_inf: bool | None = None
    inf_columns: tuple[int, ...] | None = None
    categories: tuple[KnownValues, ...] = ()
    normalize: str | None = None
    # Tensor inputs (layout "tensor", runtime/tensors.py): the dims after the batch axis (None: any
    # length), and for integer ids the range an embedding accepts ([low, high)).
    shape: tuple[int | None, ...] | None = None
    id_range: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.normalize is not None and self.normalize not in _NORMALIZE:
            raise ValueError(f"input {self.name!r}: unknown normalize={self.normalize!r}")

    @property
    def is_string(self) -> bool:
        return self.dtype == _STRING

    def nan_ok(self, column: int) -> bool:
        return column in self.nan_columns if self.nan_columns is not None else self.allow_nan

    def inf_ok(self, column: int) -> bool:
        if self.inf_columns is not None:
            return column in self.inf_columns
        return self.allow_nan if self.allow_inf is None else self.allow_inf

    @property
    def takes_any_number(self) -> bool:
        """NaN and ±inf accepted in every column: no finiteness check needed at all."""
        every = self.nan_columns is None and self.inf_columns is None
        return every and self.allow_nan and (self.allow_nan if self.allow_inf is None else self.allow_inf)

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "name": self.name,
            "dtype": self.dtype,
            "width": self.width,
            "allow_nan": self.allow_nan,
            "allow_inf": self.inf_ok(0) if self.inf_columns is None else False,
        }
        if self.nan_columns is not None:
            doc["nan_columns"] = list(self.nan_columns)
        if self.inf_columns is not None:
            doc["inf_columns"] = list(self.inf_columns)
        if self.categories:
            doc["categories"] = [k.to_dict() for k in self.categories]
        if self.normalize is not None:
            doc["normalize"] = self.normalize
        if self.shape is not None:
            doc["shape"] = list(self.shape)
        if self.id_range is not None:
            doc["id_range"] = list(self.id_range)
        return doc

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> InputSpec:
        """Models exported before ``allow_inf`` existed refuse ±inf everywhere (as sklearn does)."""
        nan_columns, inf_columns = doc.get("nan_columns"), doc.get("inf_columns")
        return cls(
            doc["name"],
            doc["dtype"],
            doc.get("width"),
            bool(doc.get("allow_nan", False)),
            tuple(int(j) for j in nan_columns) if nan_columns is not None else None,
            bool(doc.get("allow_inf", False)),
            tuple(int(j) for j in inf_columns) if inf_columns is not None else None,
            tuple(KnownValues.from_dict(k) for k in doc.get("categories") or ()),
            doc.get("normalize"),
            tuple(None if d is None else int(d) for d in doc["shape"])
            if doc.get("shape") is not None
            else None,
            (int(doc["id_range"][0]), int(doc["id_range"][1])) if doc.get("id_range") is not None else None,
        )


@dataclass(frozen=True)
class Schema:
    """What the model expects.

    ``layout="matrix"``: one input holding every feature (a model trained on an array).
    ``layout="columns"``: one input per DataFrame column, named after it (a model trained on a
    DataFrame); ``feature_names`` gives their order for positional input.
    ``layout="text"``: one input of documents.
    ``layout="tensor"``: one input per tensor the first torch module takes (images, token ids,
    several named inputs), each with its dtype and trailing ``shape`` (runtime/tensors.py).
    """

    layout: str
    inputs: tuple[InputSpec, ...]
    feature_names: tuple[str, ...] | None = None
    # (name, numpy dtype, width, takes_any_number) of the single matrix input: what the hot path
    # checks (takes_any_number: no finiteness test). None when values need more checks than
    # finiteness (known categories): those inputs always take the full path.
    fast: tuple[str, np.dtype, int | None, bool] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.layout == "matrix" and self.inputs[0].dtype in _NUMERIC and not self.inputs[0].categories:
            spec = self.inputs[0]
            fast = (spec.name, np.dtype(_NUMERIC[spec.dtype]), spec.width, spec.takes_any_number)
            object.__setattr__(self, "fast", fast)

    @property
    def n_features(self) -> int | None:
        if self.layout == "columns":
            return len(self.inputs)
        return self.inputs[0].width

    @classmethod
    def from_metadata(cls, meta: Mapping[str, Any]) -> Schema:
        specs = tuple(InputSpec.from_dict(i) for i in meta["inputs"])
        names = meta.get("feature_names")
        return cls(meta["layout"], specs, tuple(names) if names else None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "layout": self.layout,
            "inputs": [s.to_dict() for s in self.inputs],
            "feature_names": list(self.feature_names) if self.feature_names else None,
        }
