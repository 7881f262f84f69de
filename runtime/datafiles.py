"""Read input rows from CSV / NPY / Parquet and write predictions as CSV / JSON, without pandas.

The reader is strict: it never guesses. A CSV has a header line unless ``header=False``
(``--no-header``); by default that line must name the model's columns, or, for a model trained on an
unnamed array, hold something other than numbers: a file whose first line could be data is refused
with the fix (``--no-header``, or ``--header`` to take it as a header anyway) instead of losing a
row. Cells are read as text and converted per the model's schema: numbers for numeric inputs (an
empty cell is NaN), text for string inputs. Every data line is one row: a line with the wrong number
of cells, a blank line between rows, a duplicated column name, a file that is not UTF-8 (a BOM is
fine) is refused with its line.

Files are read in chunks of ``batch_size`` rows (``iter_rows``, ``predict_chunks``) so memory stays
bounded whatever the file's size; ``read_rows`` and ``predict_file`` return everything at once.
Parquet needs pyarrow (``pip install hybridonnx[parquet]``).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import secrets
import sys
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from runtime.contract import METHODS, TASK_OUTPUTS
from runtime.errors import InvalidInputError, InvalidOptionError
from runtime.schema import Schema

DEFAULT_BATCH_ROWS = 65_536  # rows read, predicted and written at a time by predict_chunks
_NAME_MAX = 64  # characters: longer first-line cells of a text file are documents, not column names


def read_rows(path: str | Path, schema: Schema, header: bool | None = None) -> Any:
    """All the rows of a data file: an array (matrix models), documents (text) or a dict of columns.

    ``header`` (CSV only): None, the first line is a header and must look like one; True, it is a
    header, whatever it holds; False, there is none and every line is data.
    """
    return next(iter_rows(path, schema, header, batch_size=None))


def iter_rows(
    path: str | Path, schema: Schema, header: bool | None = None, batch_size: int | None = DEFAULT_BATCH_ROWS
) -> Iterator[Any]:
    """The rows of a data file in chunks of at most ``batch_size`` rows (None: one chunk), each
    shaped like ``read_rows``' answer. Yields at least one chunk, empty for a file without rows."""
    if batch_size is not None and (isinstance(batch_size, bool) or batch_size < 1):
        raise InvalidOptionError(f"batch_size={batch_size!r}: use a positive number of rows")
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"data file not found: {str(path)!r}")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _csv_chunks(path, schema, header, batch_size)
    if suffix == ".npy":
        return _npy_chunks(path, batch_size)
    if suffix in (".parquet", ".pq"):
        return _parquet_chunks(path, schema, batch_size)
    raise InvalidInputError(f"data file {str(path)!r}: use .csv, .npy or .parquet")


# -- CSV ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """Which cells of a CSV row feed which input, decided once from the first line."""

    width: int  # cells per line
    numbers: Sequence[int]  # cell indices read as numbers, in output order
    number_names: Sequence[str]  # their names (column names, or what messages call them)
    texts: Sequence[int]  # cell indices kept as text
    text_names: Sequence[str]


def _csv_chunks(path: Path, schema: Schema, header: bool | None, size: int | None) -> Iterator[Any]:
    try:
        fh = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise InvalidInputError(f"cannot open {str(path)!r}: {exc.strerror}") from None
    with fh:
        reader = csv.reader(fh)
        try:
            yield from _parse_csv(path, schema, header, size, reader)
        except UnicodeDecodeError:
            raise InvalidInputError(_not_utf8(path)) from None
        except csv.Error as exc:
            raise InvalidInputError(_csv_error(path, reader.line_num, exc)) from None


def _parse_csv(
    path: Path, schema: Schema, header: bool | None, size: int | None, reader: Any
) -> Iterator[Any]:
    name = str(path)
    first = next(reader, None)
    if first is None:
        raise InvalidInputError(f"{name!r} is empty: no header line and no rows")
    if not first:
        raise InvalidInputError(
            f"{name!r} line 1 is blank: remove it (the first line is the header or a row)"
        )
    plan = _plan(path, schema, first, header)
    numbers: array[float] = array("d")
    texts: list[str] = []
    n_rows = 0
    pick_numbers = _picker(plan.numbers, plan.width)
    pick_texts = _picker(plan.texts, plan.width)
    blank = 0  # the first blank line since the last row: refused if a row follows it
    chunks = 0
    lines: Iterable[list[str]] = reader if header is not False else _prepend(first, reader)
    for row in lines:
        if len(row) != plan.width:
            if not row:
                blank = blank or reader.line_num
                continue
            ref = "the header has" if header is not False else "line 1 has"
            raise InvalidInputError(
                f"{name!r} line {reader.line_num}: {len(row)} cell(s) where {ref} {plan.width}; "
                "every row needs the same cells (quote values that contain commas)"
            )
        if blank:
            raise InvalidInputError(
                f'{name!r} line {blank} is blank: remove it, or write an empty value as ""'
            )
        if pick_numbers is not None:
            try:
                numbers.extend(map(float, pick_numbers(row)))
            except ValueError:
                del numbers[n_rows * len(plan.numbers) :]
                numbers.extend(_numbers_slowly(path, plan, pick_numbers(row), reader.line_num))
        if pick_texts is not None:
            texts.extend(pick_texts(row))
        n_rows += 1
        if n_rows == size:
            yield _chunk(schema, plan, numbers, texts, n_rows)
            numbers, texts, n_rows = array("d"), [], 0
            chunks += 1
    if n_rows or not chunks:  # the last rows; or the one (empty) chunk of a file without rows
        yield _chunk(schema, plan, numbers, texts, n_rows)


def _prepend(first: list[str], rows: Iterable[list[str]]) -> Iterator[list[str]]:
    yield first
    yield from rows


def _plan(path: Path, schema: Schema, first: list[str], header: bool | None) -> _Plan:
    name, width = str(path), len(first)
    if schema.layout == "text":  # documents in the first cell; other cells are ignored
        if header is None and not all(_looks_like_name(c) for c in first):
            raise InvalidInputError(
                f"{name!r}: the first line ({_preview(first)}) does not look like a header (column "
                f"names are single words of at most {_NAME_MAX} characters); pass --no-header "
                "(header=False) if every line is a document, or --header (header=True) to drop it anyway"
            )
        if header is not False:
            _refuse_duplicates(path, first)
        return _Plan(width, (), (), (0,), ("documents",))
    if header is False:  # every line is data, columns in the model's order
        if schema.layout == "columns":
            specs = schema.inputs
            if width != len(specs):
                raise InvalidInputError(
                    f"{name!r} line 1 has {width} cell(s) but the model takes {len(specs)} columns "
                    f"{[s.name for s in specs]} (in this order, as the file has no header line)"
                )
            return _split(width, specs, list(range(width)))
        names = list(schema.feature_names or ())
        if len(names) != width:
            names = [f"feature {j}" for j in range(width)]
        return _Plan(width, range(width), names, (), ())
    wanted = [s.name for s in schema.inputs] if schema.layout == "columns" else schema.feature_names
    if not wanted:  # an array model without column names: the header names the features in order
        if header is None and all(_is_number(c) for c in first):
            raise InvalidInputError(
                f"{name!r}: the first line ({_preview(first)}) is all numbers, so it may be a row, not "
                "a header; pass --no-header (header=False) if the file has no header line, or --header "
                "(header=True) if this line is one (e.g. pandas' 0,1,2,... column names)"
            )
        _refuse_duplicates(path, first)
        return _Plan(width, range(width), first, (), ())
    missing = [n for n in wanted if n not in first]
    if missing and len(missing) == len(wanted):
        raise InvalidInputError(
            f"{name!r}: the first line ({_preview(first)}) names none of the model's columns "
            f"{_preview(list(wanted))}; pass --no-header (header=False) if the file has no header "
            "line (cells then in the model's column order), or fix the header"
        )
    _refuse_duplicates(path, first)
    if missing:
        raise InvalidInputError(
            f"{name!r} lacks column(s) {missing}; its header has {_preview(first)} and the model "
            f"takes {_preview(list(wanted))}: add or rename them"
        )
    index = [first.index(n) for n in wanted]
    if schema.layout == "columns":  # other columns of the file are ignored
        return _split(width, schema.inputs, index)
    return _Plan(width, index, list(wanted), (), ())


def _split(width: int, specs: Sequence[Any], index: list[int]) -> _Plan:
    """Numeric and string inputs of a columns model, read from the cells at ``index``."""
    numeric = [(j, s.name) for j, s in zip(index, specs, strict=True) if not s.is_string]
    text = [(j, s.name) for j, s in zip(index, specs, strict=True) if s.is_string]
    return _Plan(
        width, [j for j, _ in numeric], [n for _, n in numeric], [j for j, _ in text], [n for _, n in text]
    )


def _picker(index: Sequence[int], width: int) -> Callable[[list[str]], Sequence[str]] | None:
    """A fast function taking the cells at ``index`` out of a row (None: no cells wanted)."""
    if not index:
        return None
    if list(index) == list(range(width)):
        return lambda row: row
    if len(index) == 1:
        (j,) = index
        return lambda row: (row[j],)
    return itemgetter(*index)


def _numbers_slowly(path: Path, plan: _Plan, cells: Sequence[str], line: int) -> list[float]:
    """The cells of one row as numbers, an empty cell as NaN; or the error naming the bad cell."""
    values = []
    for cell, column in zip(cells, plan.number_names, strict=True):
        if cell.strip() == "":
            values.append(float("nan"))
            continue
        try:
            values.append(float(cell))
        except ValueError:
            raise InvalidInputError(
                f"{str(path)!r} line {line}: column {column!r} holds a non-number ({cell[:40]!r}); "
                "the model expects numbers there"
            ) from None
    return values


def _chunk(schema: Schema, plan: _Plan, numbers: array[float], texts: list[str], n_rows: int) -> Any:
    if schema.layout == "text":
        docs = np.empty(n_rows, dtype=object)
        docs[:] = texts
        return docs
    k = len(plan.numbers)
    matrix = np.frombuffer(numbers, dtype=np.float64).reshape(n_rows, k) if k else np.empty((n_rows, 0))
    if schema.layout == "matrix":
        return matrix
    columns: dict[str, np.ndarray] = {n: matrix[:, j] for j, n in enumerate(plan.number_names)}
    step = len(plan.texts)
    for j, name in enumerate(plan.text_names):
        column = np.empty(n_rows, dtype=object)
        column[:] = texts[j::step]
        columns[name] = column
    return columns


def _refuse_duplicates(path: Path, header: list[str]) -> None:
    twice = sorted({c for c in header if header.count(c) > 1}) if len(set(header)) < len(header) else []
    if twice:
        raise InvalidInputError(
            f"{str(path)!r}: the header names column(s) {twice} more than once; give each column its own name"
        )


def _looks_like_name(cell: str) -> bool:
    return 0 < len(cell) <= _NAME_MAX and not any(c.isspace() for c in cell)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return text.strip().lower() in ("", "nan")
    return True


def _preview(cells: Sequence[str], n: int = 6) -> str:
    shown = ",".join(c[:24] for c in cells[:n])
    return repr(shown + (f",… ({len(cells)} cells)" if len(cells) > n else ""))


def _not_utf8(path: Path) -> str:
    """Where the first byte that is not UTF-8 sits: the byte offset and the line."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, lines = 0, 1  # bytes and lines before the current block
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            data = decoder.getstate()[0] + block  # what decode() sees: an unfinished character first
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                held = len(data) - len(block)
                lines += block[: max(exc.start - held, 0)].count(b"\n")
                return (
                    f"{str(path)!r} is not UTF-8 text: byte {data[exc.start : exc.start + 1]!r} at offset "
                    f"{offset - held + exc.start:,} (line {lines}); re-save the file as UTF-8 "
                    "(e.g. Excel: 'CSV UTF-8')"
                )
            lines += block.count(b"\n")
            offset += len(block)
    return f"{str(path)!r} is not UTF-8 text; re-save the file as UTF-8"  # pragma: no cover


def _csv_error(path: Path, line: int, exc: csv.Error) -> str:
    if "field larger than field limit" in str(exc):
        return (
            f"{str(path)!r} line {line}: a cell is longer than {csv.field_size_limit():,} characters; "
            'an unbalanced quote (") may have joined many lines into one cell: check the quoting'
        )
    return f"{str(path)!r} line {line}: not a valid CSV line ({exc}): check the quoting"


# -- NPY / Parquet ------------------------------------------------------------------------------


def _npy_chunks(path: Path, size: int | None) -> Iterator[Any]:
    name = str(path)
    try:
        data = np.load(path, mmap_mode="r" if size else None, allow_pickle=False)
    except ValueError as exc:
        if any(word in str(exc) for word in ("pickle", "Object arrays", "Python objects")):
            raise InvalidInputError(
                f"{name!r} holds Python objects (a pickled or object-dtype array), which the runtime "
                "never unpickles (unsafe): save numbers or strings, e.g. np.save(path, X.astype('float32'))"
            ) from None
        raise InvalidInputError(f"cannot read {name!r} as .npy: {_first_line(exc)}") from None
    except (OSError, EOFError) as exc:
        raise InvalidInputError(f"cannot read {name!r} as .npy: {_first_line(exc)}") from None
    if not isinstance(data, np.ndarray):  # a .npz archive under a .npy name
        data.close()
        raise InvalidInputError(f"{name!r} is a .npz archive, not one array: save one array with np.save")
    if size is None or data.ndim == 0:
        yield np.asarray(data)
        return
    for start in range(0, max(len(data), 1), size):
        yield np.array(data[start : start + size])


def _parquet_chunks(path: Path, schema: Schema, size: int | None) -> Iterator[Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise InvalidInputError(
            "reading Parquet needs pyarrow: pip install pyarrow (or hybridonnx[parquet])"
        ) from None
    name = str(path)
    try:
        file = pq.ParquetFile(path)
        names = list(file.schema_arrow.names)
        _refuse_duplicates(path, names)
        wanted = [s.name for s in schema.inputs] if schema.layout == "columns" else schema.feature_names
        if schema.layout == "text":
            wanted = names[:1]
        if wanted:
            missing = [n for n in wanted if n not in names]
            if missing:
                raise InvalidInputError(
                    f"{name!r} lacks column(s) {missing}; it has {_preview(names)} and the model "
                    f"takes {_preview(list(wanted))}"
                )
        columns = list(wanted) if wanted else names
        batches: Iterable[Any] = (
            [file.read(columns=columns)]
            if size is None
            else file.iter_batches(batch_size=size, columns=columns)
        )
        empty = True
        for batch in batches:
            empty = False
            yield _parquet_rows(batch, columns, schema)
        if empty:
            yield _parquet_rows(file.schema_arrow.empty_table().select(columns), columns, schema)
    except InvalidInputError:
        raise
    except (pa.ArrowException, OSError, ValueError, TypeError) as exc:
        raise InvalidInputError(f"cannot read {name!r} as Parquet: {_first_line(exc)}") from None


def _parquet_rows(batch: Any, columns: list[str], schema: Schema) -> Any:
    arrays = {n: batch.column(j).to_numpy(zero_copy_only=False) for j, n in enumerate(columns)}
    if schema.layout == "text":
        return np.asarray(next(iter(arrays.values())), dtype=object)
    if schema.layout == "matrix":
        return np.column_stack(list(arrays.values())) if arrays else np.empty((batch.num_rows, 0))
    return arrays


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# -- Predictions --------------------------------------------------------------------------------

# method → public output name, per task, for ``method="auto"``: every public output.
_AUTO_OUTPUTS = {task: [(METHODS[name], name) for name in names] for task, names in TASK_OUTPUTS.items()}


def predict_chunks(
    model: Any,
    path: str | Path,
    method: str = "auto",
    batch_size: int | None = None,
    header: bool | None = None,
) -> Iterator[dict[str, np.ndarray]]:
    """The model's answers on a data file, ``batch_size`` rows (default DEFAULT_BATCH_ROWS) at a
    time, as named columns ready to write: memory stays bounded whatever the file's size.

    ``method="auto"``: label + probabilities for classifiers, predictions for regressors, features
    for transformers, in the native dtypes; ``"run"``: every graph output.
    """
    classes = model.metadata.get("classes")
    for rows in iter_rows(path, model.schema, header, batch_size or DEFAULT_BATCH_ROWS):
        yield output_columns(_answer(model, rows, method), classes)


def predict_file(
    model: Any,
    path: str | Path,
    method: str = "auto",
    batch_size: int | None = None,
    header: bool | None = None,
) -> dict[str, np.ndarray]:
    """``predict_chunks``' answers for the whole file, concatenated."""
    chunks = list(predict_chunks(model, path, method, batch_size, header))
    return {name: np.concatenate([c[name] for c in chunks]) for name in chunks[0]}


def _answer(model: Any, rows: Any, method: str) -> dict[str, np.ndarray]:
    available = model.metadata.get("outputs", {})
    if method == "auto" and model.task:
        pairs = [(m, name) for m, name in _AUTO_OUTPUTS[model.task] if name in available]
        return {name: getattr(model, m)(rows) for m, name in pairs}
    if method in ("auto", "run"):
        return dict(model.run(rows))
    return {method: getattr(model, method)(rows)}


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


def output_format(out: str | Path | None, fmt: str | None = None) -> str:
    """``csv`` or ``json``: ``fmt``, else the suffix of ``out``, else csv; anything else refused."""
    fmt = fmt or (Path(out).suffix.lstrip(".").lower() if out else "csv")
    if fmt not in ("csv", "json"):
        raise InvalidInputError(f"output format {fmt!r} (from {str(out)!r}): use .csv or .json")
    return fmt


def write_chunks(
    chunks: Iterable[dict[str, np.ndarray]],
    out: str | Path | None = None,
    fmt: str | None = None,
    stream: TextIO | None = None,
) -> int:
    """Write each chunk's rows as it comes, as CSV or as one JSON array of row objects, to the file
    ``out`` (complete or not at all: written beside it, renamed at the end) or to ``stream``
    (default stdout). Returns the number of rows written."""
    fmt = output_format(out, fmt)
    if not out:
        return _write_rows(stream or sys.stdout, chunks, fmt)
    target = Path(os.path.realpath(out))  # a symlink: replace the file it points to
    fd, tmp = _temp_beside(target)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            n = _write_rows(fh, chunks, fmt)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return n


def _temp_beside(target: Path) -> tuple[int, Path]:
    """A new temp file next to ``target`` with the mode a plain write gives (the umask's, or the
    old file's), not mkstemp's 0600: the predictions stay readable by whoever could read them."""
    temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        if target.exists():
            os.chmod(temp, target.stat().st_mode & 0o7777)
    except OSError:
        os.close(fd)
        temp.unlink(missing_ok=True)
        raise
    return fd, temp


def write_columns(columns: dict[str, np.ndarray], out: str | Path | None, fmt: str | None = None) -> str:
    """Write columns as CSV (default) or JSON (a list of row objects) to a file, or return the text."""
    buffer = io.StringIO()
    write_chunks([columns], None, output_format(out, fmt), buffer)
    text = buffer.getvalue()
    if out:
        Path(out).write_text(text, encoding="utf-8")
    return text


def _write_rows(fh: TextIO, chunks: Iterable[dict[str, np.ndarray]], fmt: str) -> int:
    names: list[str] | None = None
    writer = csv.writer(fh, lineterminator="\n")
    n = 0
    for columns in chunks:
        if names is None:
            names = list(columns)
            if fmt == "csv":
                writer.writerow(names)
            else:
                fh.write("[")
        elif list(columns) != names:  # pragma: no cover - every chunk has the model's outputs
            raise InvalidInputError(f"output columns changed from {names} to {list(columns)}")
        rows = zip(*(np.asarray(columns[k]).tolist() for k in names), strict=True)
        if fmt == "csv":
            for row in rows:
                writer.writerow(row)
                n += 1
        else:
            for row in rows:
                fh.write((", " if n else "") + json.dumps(dict(zip(names, row, strict=True))))
                n += 1
    if fmt == "json":
        fh.write("[]\n" if names is None else "]\n")
    elif names is None:
        writer.writerow([])
    return n
