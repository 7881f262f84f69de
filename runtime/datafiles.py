"""Read input rows from CSV / NPY / Parquet and write predictions as CSV / JSON, without pandas.

CSV cells are read as text and converted per the model's schema: numbers for numeric inputs,
text for string inputs. Parquet needs pyarrow (``pip install hybridonnx[parquet]``).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from runtime.errors import InvalidInputError
from runtime.inputs import Schema


def read_rows(path: str | Path, schema: Schema) -> Any:
    """The rows of a data file as an array (matrix models) or a dict of columns."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"data file not found: {str(path)!r}")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            return np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise InvalidInputError(f"cannot read {str(path)!r} as .npy: {exc}") from None
    if suffix == ".csv":
        return _read_csv(path, schema)
    if suffix in (".parquet", ".pq"):
        columns = _read_parquet(path)
        if schema.layout == "text":  # documents in the first column
            return np.asarray(next(iter(columns.values()), []), dtype=object)
        if schema.layout == "matrix":  # features in file order
            return np.column_stack(list(columns.values())) if columns else np.empty((0, 0))
        return columns
    raise InvalidInputError(f"data file {str(path)!r}: use .csv, .npy or .parquet")


def _read_csv(path: Path, schema: Schema) -> Any:
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        raise InvalidInputError(f"{str(path)!r} is empty")
    if schema.layout == "text":  # one document per row in the first column, after a header
        return np.asarray([r[0] if r else "" for r in rows[1:]], dtype=object)
    header, body = rows[0], rows[1:]
    if not _is_header(header, schema):  # no header line: every row is data, in schema order
        header, body = list(schema.feature_names or [f"x{i}" for i in range(len(rows[0]))]), rows
        if schema.layout == "matrix":
            return _numbers([r for r in body], path)
    widths = {len(r) for r in body}
    if widths - {len(header)}:
        raise InvalidInputError(
            f"{str(path)!r}: rows have {sorted(widths)} cells but the header has {len(header)}"
        )
    columns = {name: [r[j] for r in body] for j, name in enumerate(header)}
    if schema.layout == "columns":
        specs = {s.name: s for s in schema.inputs}
        # Columns the model does not take are ignored; missing ones are named by the runtime.
        return {
            name: np.asarray(values, dtype=object) if specs[name].is_string else _numbers(values, path, name)
            for name, values in columns.items()
            if name in specs
        }
    names = list(schema.feature_names) if schema.feature_names else header
    missing = [n for n in names if n not in columns]
    if missing:
        raise InvalidInputError(f"{str(path)!r} lacks column(s) {missing}")
    return (
        np.column_stack([_numbers(columns[n], path, n) for n in names]) if body else np.empty((0, len(names)))
    )


def _is_header(first_row: list[str], schema: Schema) -> bool:
    """A header names the columns: the schema's names, any text, or 0, 1, 2... (what pandas
    writes for an unnamed DataFrame). A row of other numbers is data."""
    names = set(schema.feature_names or ())
    if names and names & set(first_row):
        return True
    if [c.strip() for c in first_row] == [str(i) for i in range(len(first_row))]:
        return True
    return not all(_is_number(cell) for cell in first_row)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return text.strip().lower() in ("", "nan")
    return True


def _numbers(values: list[Any], path: Path, column: str | None = None) -> np.ndarray:
    try:
        return np.asarray([[_cell(c) for c in v] if isinstance(v, list) else _cell(v) for v in values])
    except ValueError as exc:
        where = f"column {column!r}" if column else "a row"
        raise InvalidInputError(f"{str(path)!r}: {where} holds a non-number ({exc})") from None


def _cell(text: str) -> float:
    return float("nan") if text.strip() == "" else float(text)


def _read_parquet(path: Path) -> dict[str, np.ndarray]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InvalidInputError(
            "reading Parquet needs pyarrow: pip install pyarrow (or hybridonnx[parquet])"
        ) from None
    table = pq.read_table(path)
    return {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}


# method → public output name, per task, for ``method="auto"``.
_AUTO_OUTPUTS = {
    "classifier": [("predict", "label"), ("predict_proba", "probabilities")],
    "regressor": [("predict", "prediction")],
    "transformer": [("transform", "features")],
}


def predict_file(
    model: Any, path: str | Path, method: str = "auto", batch_size: int | None = None
) -> dict[str, np.ndarray]:
    """The model's answers on a data file, as named columns ready to write.

    ``method="auto"``: label + probabilities for classifiers, predictions for regressors, features
    for transformers, in the native dtypes; ``"run"``: every graph output.
    """
    rows = read_rows(path, model.schema)
    available = model.metadata.get("outputs", {})
    if method == "auto" and model.task:
        pairs = [(m, name) for m, name in _AUTO_OUTPUTS[model.task] if name in available]
        result = {name: getattr(model, m)(rows, batch_size=batch_size) for m, name in pairs}
    elif method in ("auto", "run"):
        result = model.run(rows, batch_size=batch_size)
    else:
        result = {method: getattr(model, method)(rows, batch_size=batch_size)}
    return output_columns(result, model.metadata.get("classes"))


def output_columns(result: dict[str, np.ndarray], classes: list[Any] | None) -> dict[str, np.ndarray]:
    """Flatten outputs to named 1-D columns: label, proba_<class>..., prediction[_k], features_k."""
    columns: dict[str, np.ndarray] = {}
    for name, value in result.items():
        value = np.asarray(value)
        if value.ndim == 1:
            columns[name] = value
            continue
        for j in range(value.shape[1]):
            if name == "probabilities" and classes is not None and j < len(classes):
                key = f"proba_{classes[j]}"
            else:
                key = f"{name}_{j}"
            columns[key] = value[:, j]
    return columns


def write_columns(columns: dict[str, np.ndarray], out: str | Path | None, fmt: str | None = None) -> str:
    """Write columns as CSV (default) or JSON (a list of row objects) to a file, or return the text."""
    fmt = fmt or (Path(out).suffix.lstrip(".").lower() if out else "csv")
    if fmt not in ("csv", "json"):
        raise InvalidInputError(f"output format {fmt!r}: use .csv or .json")
    names = list(columns)
    n = len(next(iter(columns.values()))) if columns else 0
    buffer = io.StringIO()
    if fmt == "json":
        rows = [{k: _plain(columns[k][i]) for k in names} for i in range(n)]
        json.dump(rows, buffer)
        buffer.write("\n")
    else:
        _write_csv(buffer, names, columns, n)
    text = buffer.getvalue()
    if out:
        Path(out).write_text(text)
    return text


def _write_csv(fh: TextIO, names: list[str], columns: dict[str, np.ndarray], n: int) -> None:
    writer = csv.writer(fh, lineterminator="\n")
    writer.writerow(names)
    for i in range(n):
        writer.writerow([_plain(columns[k][i]) for k in names])


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
