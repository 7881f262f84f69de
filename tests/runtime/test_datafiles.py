"""runtime.datafiles: the strict CSV / NPY / Parquet reader, chunked reading and streamed writing."""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runtime.datafiles import iter_rows, predict_chunks, read_rows, write_chunks, write_columns
from runtime.errors import InvalidInputError, InvalidOptionError
from runtime.schema import InputSpec, Schema
from tests.runtime.test_cli import peak_growth

MATRIX = Schema("matrix", (InputSpec("X", "float32", 3),))
WIDE = Schema("matrix", (InputSpec("X", "float32", 30),))
NAMED = Schema("matrix", (InputSpec("X", "float32", 2),), ("b", "a"))
TEXT = Schema("text", (InputSpec("X", "string", 1),))
COLUMNS = Schema("columns", (InputSpec("age", "float32", 1), InputSpec("city", "string", 1)), ("age", "city"))


def _file(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_bom_does_not_shift_or_drop_rows(tmp_path: Path) -> None:
    path = _file(tmp_path, "bom.csv", "\ufeffa,b,c\n1,2,3\n4,5,6\n")
    np.testing.assert_array_equal(read_rows(path, MATRIX), [[1, 2, 3], [4, 5, 6]])
    path = _file(tmp_path, "bom_columns.csv", "\ufeffage,city\n30,paris\n")
    rows = read_rows(path, COLUMNS)
    assert list(rows["age"]) == [30.0] and list(rows["city"]) == ["paris"]
    path = _file(tmp_path, "bom_rows.csv", "\ufeff1,2,3\n4,5,6\n")  # no header: the BOM is no header
    np.testing.assert_array_equal(read_rows(path, MATRIX, header=False), [[1, 2, 3], [4, 5, 6]])
    with pytest.raises(InvalidInputError, match=r"the first line \('1,2,3'\) is all numbers"):
        read_rows(path, MATRIX)


def test_headerless_text_keeps_its_first_document(tmp_path: Path) -> None:
    path = _file(tmp_path, "docs.csv", "a great film\nawful stuff\n")  # no header line
    with pytest.raises(
        InvalidInputError, match=r"the first line \('a great film'\) does not look like a header"
    ):
        read_rows(path, TEXT)
    assert list(read_rows(path, TEXT, header=False)) == ["a great film", "awful stuff"]
    path = _file(tmp_path, "docs_quoted.csv", 'text\n"a great film"\n"awful, really"\n')
    assert list(read_rows(path, TEXT)) == ["a great film", "awful, really"]


def test_ragged_text_rows_are_refused_with_their_line(tmp_path: Path) -> None:
    path = _file(tmp_path, "docs.csv", "a great film\nawful, really\n")
    with pytest.raises(InvalidInputError, match=r"line 2: 2 cell\(s\) where line 1 has 1"):
        list(iter_rows(path, TEXT, header=False))


def test_a_row_of_numbers_is_never_taken_for_a_header(tmp_path: Path) -> None:
    lines = [",".join(map(str, range(30)))] + [",".join(["1.5"] * 30)] * 2
    path = _file(tmp_path, "rows.csv", "\n".join(lines) + "\n")
    with pytest.raises(
        InvalidInputError, match=r"is all numbers, so it may be a row, not a header; pass --no-header"
    ):
        read_rows(path, WIDE)
    assert read_rows(path, WIDE, header=False).shape == (3, 30)
    assert read_rows(path, WIDE, header=True).shape == (2, 30)  # pandas' 0,1,2,... names


def test_duplicate_column_names_are_refused(tmp_path: Path) -> None:
    path = _file(tmp_path, "twins.csv", "age,city,age\n30,paris,99\n")
    with pytest.raises(InvalidInputError, match=r"the header names column\(s\) \['age'\] more than once"):
        read_rows(path, COLUMNS)
    path = _file(tmp_path, "twins_matrix.csv", "x,y,x\n1,2,3\n")
    with pytest.raises(InvalidInputError, match=r"column\(s\) \['x'\] more than once"):
        read_rows(path, MATRIX)


def test_header_must_name_the_model_columns(tmp_path: Path) -> None:
    path = _file(tmp_path, "rows.csv", "30,paris\n40,rome\n")
    with pytest.raises(
        InvalidInputError, match=r"names none of the model's columns 'age,city'; pass --no-header"
    ):
        read_rows(path, COLUMNS)
    rows = read_rows(path, COLUMNS, header=False)  # model column order
    assert list(rows["age"]) == [30.0, 40.0] and list(rows["city"]) == ["paris", "rome"]
    path = _file(tmp_path, "partial.csv", "age,town\n30,paris\n")
    with pytest.raises(InvalidInputError, match=r"lacks column\(s\) \['city'\]; its header has 'age,town'"):
        read_rows(path, COLUMNS)
    path = _file(tmp_path, "named.csv", "a,extra,b\n1,9,2\n")  # named features: by name, in model order
    np.testing.assert_array_equal(read_rows(path, NAMED), [[2, 1]])
    with pytest.raises(InvalidInputError, match="names none of the model's columns 'b,a'"):
        read_rows(_file(tmp_path, "unnamed.csv", "1,2\n"), NAMED)


def test_every_row_is_accounted_for(tmp_path: Path) -> None:
    path = _file(tmp_path, "ragged.csv", "a,b,c\n1,2,3\n4,5\n")
    with pytest.raises(InvalidInputError, match=r"ragged.csv' line 3: 2 cell\(s\) where the header has 3"):
        read_rows(path, MATRIX)
    path = _file(tmp_path, "blank.csv", "a,b,c\n1,2,3\n\n4,5,6\n")
    with pytest.raises(InvalidInputError, match=r"line 3 is blank: remove it"):
        read_rows(path, MATRIX)
    path = _file(
        tmp_path, "tail.csv", "a,b,c\n1,2,3\n,,\n4,5,6\n\n"
    )  # empty cells: NaN; trailing blank: no row
    assert read_rows(path, MATRIX).shape == (3, 3) and np.isnan(read_rows(path, MATRIX)[1]).all()
    path = _file(tmp_path, "bad.csv", "a,b,c\n1,2,3\n1,x,3\n")
    with pytest.raises(InvalidInputError, match=r"bad.csv' line 3: column 'b' holds a non-number \('x'\)"):
        read_rows(path, MATRIX)


@pytest.mark.parametrize("size", [1, 3, 4, 100])
def test_chunks_hold_every_row_once(tmp_path: Path, size: int) -> None:
    values = np.arange(30, dtype=np.float64).reshape(10, 3)
    path = _file(tmp_path, "rows.csv", "a,b,c\n" + "".join(",".join(map(str, r)) + "\n" for r in values))
    chunks = list(iter_rows(path, MATRIX, batch_size=size))
    assert all(len(c) <= size for c in chunks)
    np.testing.assert_array_equal(np.concatenate(chunks), values)
    rows = "".join(f"{i},c{i}\n" for i in range(10))
    chunks = list(iter_rows(_file(tmp_path, "cols.csv", "age,city\n" + rows), COLUMNS, batch_size=size))
    assert [c for chunk in chunks for c in chunk["city"]] == [f"c{i}" for i in range(10)]


def test_a_file_without_rows_is_one_empty_chunk(tmp_path: Path) -> None:
    assert [c.shape for c in iter_rows(_file(tmp_path, "head.csv", "a,b,c\n"), MATRIX)] == [(0, 3)]
    with pytest.raises(InvalidInputError, match="is empty: no header line and no rows"):
        read_rows(_file(tmp_path, "empty.csv", ""), MATRIX)
    with pytest.raises(InvalidOptionError, match=r"batch_size=0: use a positive number of rows"):
        iter_rows(_file(tmp_path, "head.csv", "a,b,c\n"), MATRIX, batch_size=0)


def test_non_utf8_names_the_byte_and_line(tmp_path: Path) -> None:
    path = _file(tmp_path, "latin1.csv", b"a,b,c\n1,2,3\n" + "caf\xe9,1,2\n".encode("latin-1"))
    with pytest.raises(InvalidInputError) as info:
        read_rows(path, MATRIX)
    assert str(info.value).endswith(
        "latin1.csv' is not UTF-8 text: byte b'\\xe9' at offset 15 (line 3); re-save the file as UTF-8 "
        "(e.g. Excel: 'CSV UTF-8')"
    )


def test_a_cell_over_the_csv_field_limit_is_one_message(tmp_path: Path) -> None:
    path = _file(tmp_path, "quote.csv", 'a,b,c\n1,"2,3\n' + "x" * 200_000 + "\n")  # an unbalanced quote
    with pytest.raises(
        InvalidInputError, match=r"a cell is longer than 131,072 characters; an unbalanced quote"
    ):
        read_rows(path, MATRIX)


def test_corrupt_parquet_is_one_message(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    path = _file(tmp_path, "rows.parquet", b"PAR1 this is not parquet at all")
    with pytest.raises(InvalidInputError, match=r"cannot read '.*rows.parquet' as Parquet: "):
        read_rows(path, MATRIX)


def test_parquet_columns_and_chunks(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "rows.parquet"
    table = pa.table({"city": [f"c{i}" for i in range(5)], "age": [float(i) for i in range(5)], "x": [0] * 5})
    pq.write_table(table, path)
    chunks = list(iter_rows(path, COLUMNS, batch_size=2))
    assert [len(c["age"]) for c in chunks] == [2, 2, 1] and set(chunks[0]) == {"age", "city"}
    with pytest.raises(InvalidInputError, match=r"lacks column\(s\) \['b', 'a'\]"):
        read_rows(path, NAMED)


@pytest.mark.parametrize("kind", ["object", "pickle", "empty", "npz"])
def test_unreadable_npy_is_one_message(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "rows.npy"
    if kind == "object":
        np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    elif kind == "pickle":
        path.write_bytes(pickle.dumps([[1.0, 2.0, 3.0]]))
    elif kind == "empty":
        path.write_bytes(b"")
    else:
        with path.open("wb") as fh:
            np.savez(fh, X=np.zeros((2, 3)))
    expected = {
        "object": "holds Python objects (a pickled or object-dtype array), which the runtime never unpickles",
        "pickle": "holds Python objects",
        "empty": "as .npy: No data left in file",
        "npz": "is a .npz archive, not one array",
    }[kind]
    for size in (None, 4):
        with pytest.raises(InvalidInputError, match=expected.replace("(", r"\(").replace(")", r"\)")):
            list(iter_rows(path, MATRIX, batch_size=size))


def test_npy_chunks(tmp_path: Path) -> None:
    np.save(tmp_path / "rows.npy", np.arange(21.0).reshape(7, 3))
    chunks = list(iter_rows(tmp_path / "rows.npy", MATRIX, batch_size=3))
    assert [c.shape for c in chunks] == [(3, 3), (3, 3), (1, 3)] and all(
        type(c) is np.ndarray for c in chunks
    )


def test_json_written_in_chunks_is_one_document(tmp_path: Path) -> None:
    chunks = [
        {"label": np.array(["a", "b"]), "p": np.array([0.5, 0.25])},
        {"label": np.array(["c"]), "p": [1.0]},
    ]
    buffer = io.StringIO()
    assert write_chunks(chunks, fmt="json", stream=buffer) == 3
    assert json.loads(buffer.getvalue()) == [
        {"label": "a", "p": 0.5},
        {"label": "b", "p": 0.25},
        {"label": "c", "p": 1.0},
    ]
    whole = {"label": np.array(["a", "b", "c"]), "p": np.array([0.5, 0.25, 1.0])}
    assert write_columns(whole, None, "json") == buffer.getvalue()


def test_an_output_file_is_complete_or_absent(tmp_path: Path) -> None:
    def chunks() -> Any:
        yield {"y": np.array([1.0, 2.0])}
        raise InvalidInputError("line 9: broken")

    out = tmp_path / "out.csv"
    with pytest.raises(InvalidInputError, match="line 9: broken"):
        write_chunks(chunks(), out)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InvalidInputError, match=r"output format 'txt' \(from 'out.txt'\): use .csv or .json"):
        write_chunks([], "out.txt")


class _Identity:
    """The least a model needs for predict_chunks: a matrix regressor returning its first column."""

    schema = Schema("matrix", (InputSpec("X", "float32", 4),))
    metadata: dict[str, Any] = {"outputs": {"prediction": {}}}
    task = "regressor"

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X[:, 0], dtype=np.float32)


def test_predicting_a_large_csv_keeps_memory_bounded(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    block = "".join(",".join(repr(float(v)) for v in row) + "\n" for row in rng.normal(size=(1000, 4)))
    path = tmp_path / "big.csv"
    with path.open("w") as fh:
        fh.write("a,b,c,d\n")
        for _ in range(270):  # ~20 MB, 270,000 rows: 4 default chunks
            fh.write(block)
    size = path.stat().st_size
    assert size > 19e6
    with (tmp_path / "out.csv").open("w") as out:
        rows, peak = peak_growth(lambda: write_chunks(predict_chunks(_Identity(), path), stream=out))
    assert rows == 270_000
    assert sum(1 for _ in (tmp_path / "out.csv").open()) == 1 + 270_000
    # The rows as lists of text cells take ~5x the file (the old reader peaked at 1.3 GiB for
    # 192 MiB); one chunk of numbers plus its output rows takes a few MB.
    assert peak < size / 2, f"peak grew {peak / 2**20:.1f} MiB for a {size / 2**20:.1f} MiB file"
