"""``runtime.load`` and ``Model``: one composable class for every model the exporter writes.

Loading checks the file before onnxruntime sees it (size, protobuf header, external-data paths).
The session itself is created on first use, in each process (onnxruntime sessions must not cross
a fork and cannot be pickled), with idle threads that do not spin.
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import re
import stat
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from runtime import _parallel, integrity
from runtime import providers as _providers
from runtime._proto import ModelHeader, ProtoError, graph_sha256, is_ort_format, read_header
from runtime.compat import installed_too_old, parse_version
from runtime.contract import FORMATS, LABEL_INDEX, METADATA_KEY, ORT_TYPES
from runtime.errors import (
    InvalidInputError,
    InvalidOptionError,
    ModelClosedError,
    ModelLoadError,
    UnsupportedMethodError,
)
from runtime.inputs import (
    DeviceArray,
    Feed,
    _all_finite,
    _fast_column_feeds,
    prepare_feeds,
)
from runtime.metadata import Metadata, MetadataError
from runtime.schema import InputSpec, Schema

# Incremented in every forked child: a session made under another value belongs to the parent.
# Cheaper than os.getpid() (a system call) on the hot path.
_PROCESS = [0]
# Every live Model, so that a forked child can drop the sessions it inherited.
_LIVE: weakref.WeakSet[Model] = weakref.WeakSet()


def _leak(session: Any) -> None:
    """Keep an inherited session alive for the life of the process, shutdown included.

    Its destructor would join thread-pool threads that exist only in the parent and hang the child
    forever (reproduced: a forked child that used a model never finished sys.exit). One extra
    reference, never released, is the only way to stop Python from destroying it at exit.
    """
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(session))


def _after_fork_in_child() -> None:
    _PROCESS[0] += 1
    for model in list(_LIVE):
        if model._sess is not None:
            _leak(model._sess)
        model._sess = None
        model._fast = {}
        model._lock = threading.Lock()  # another thread may have held it at fork time


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
# Rows from which a CUDA session binds host inputs once (IO binding) instead of plain run().
IO_BINDING_MIN_ROWS = 1024


# ONNX protobuf files cannot exceed 2 GiB (protobuf's own limit): a larger file is refused before
# it is read. External data (weights kept beside the model) is capped by load(max_bytes=).
MAX_PROTOBUF_BYTES = 2**31 - 1
DEFAULT_MAX_BYTES = 8 * 2**30
# More intra-op threads than this per core only adds memory (each thread has its own stack and
# arena): threads=10**6 was accepted and took 21.7 GB.
MAX_THREADS_PER_CORE = 4


def load(
    model: str | os.PathLike[str] | bytes,
    providers: str | Sequence[str] = "auto",
    *,
    threads: int | None = None,
    strict: bool = False,
    precision: str = "default",
    device_id: int = 0,
    spinning: bool = False,
    io_binding: str = "auto",
    lazy: bool = False,
    key: bytes | str | None = None,
    check_hash: bool = True,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Model:
    """Load an ONNX model written by ``exporter`` (or any ONNX model) for inference.

    providers:  ``"auto"`` (CUDA when this onnxruntime has it, else CPU) or an explicit list.
    strict:     raise instead of warning when a requested GPU provider is not active.
    precision:  ``"fp32"`` turns TF32 off on CUDA (exact float32 math, slower matmuls).
    threads:    intra-op threads (default: onnxruntime's choice, one per core).
    spinning:   let idle worker threads spin (lower latency, burns CPU between calls).
    io_binding: ``"auto"`` (CUDA tensors, and large batches on CUDA), ``"always"``, ``"never"``.
    lazy:       defer creating the session to the first call (the file is still checked now).
    key:        refuse the model unless it was signed with this key (``exporter --sign-key``).
    check_hash: recompute the content hash sealed at export and refuse a file that differs
                (default; costs one SHA-256 pass over the file, see README "Integrity").
    max_bytes:  refuse models whose file plus external data exceed this size.
    """
    flags = {"lazy": lazy, "check_hash": check_hash, "strict": strict, "spinning": spinning}
    _check_options(threads, io_binding, flags, max_bytes)
    key_bytes = integrity.as_key(key)
    if isinstance(model, (bytes, bytearray, memoryview)):
        data, path = bytes(model), None
    elif isinstance(model, (str, os.PathLike)):
        path = Path(model)
        if not path.is_file():
            raise ModelLoadError(f"model file not found: {str(path)!r}")
        data = read_file(path, max_bytes)
    else:
        raise InvalidOptionError(f"load() takes a path or the model's bytes, got {type(model).__name__}")
    source = str(path) if path else "<bytes>"
    if not data:
        raise ModelLoadError(f"model file {source!r} is empty")
    if len(data) > min(max_bytes, MAX_PROTOBUF_BYTES):
        raise ModelLoadError(_too_large(source, len(data), max_bytes))
    header = _check_header(data, path, source)
    external = _read_external(header, path, source, max_bytes - len(data))
    document = _decode_metadata(header.metadata.get(METADATA_KEY))  # parsed once, checked below
    fields = document if isinstance(document, dict) else {}
    fmt, legacy_hash = fields.get("format"), fields.get("graph_sha256")
    # The seal first: a damaged file is reported as damaged, whatever part the damage hit.
    seal = integrity.check(
        data,
        header,
        external,
        source,
        key=key_bytes,
        check_hash=check_hash,
        sealed_format=FORMATS.get(str(fmt), False),
        legacy_graph_sha256=legacy_hash if fmt == "hybridonnx/1" else None,
    )
    meta = {} if document is None else check_metadata(document, source)
    specs = _providers.resolve(providers, precision=precision, device_id=device_id)
    model_ = Model(
        data,
        specs,
        header,
        path=path,
        threads=threads,
        strict=strict,
        precision=precision,
        spinning=spinning,
        io_binding=io_binding,
        device_id=device_id,
        external=external,
        metadata=meta if header.format == "onnx" else None,
        seal=seal,
    )
    if not lazy:
        model_._session()
    if header.format == "ort":
        model_.metadata  # noqa: B018 - read now: a malformed document fails load, not a later call
    return model_


def _check_options(threads: Any, io_binding: Any, flags: dict[str, Any], max_bytes: Any) -> None:
    """Arguments of load(), refused with one line each (not a TypeError from onnxruntime)."""
    if io_binding not in ("auto", "always", "never"):
        raise InvalidOptionError(f"io_binding={io_binding!r}: use auto, always or never")
    limit = MAX_THREADS_PER_CORE * (os.cpu_count() or 1)
    if threads is not None and (
        not isinstance(threads, int) or isinstance(threads, bool) or not 1 <= threads <= limit
    ):
        raise InvalidOptionError(
            f"threads={threads!r}: use an int from 1 to {limit} ({MAX_THREADS_PER_CORE} per core), "
            "or None for onnxruntime's default"
        )
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise InvalidOptionError(f"{name}={value!r}: use True or False")
    if not isinstance(max_bytes, int) or isinstance(max_bytes, bool) or max_bytes < 1:
        raise InvalidOptionError(f"max_bytes={max_bytes!r}: use a positive number of bytes")


def _too_large(source: str, size: int, max_bytes: int) -> str:
    if size > MAX_PROTOBUF_BYTES:
        return (
            f"{source}: {size / 2**30:.1f} GiB is larger than an ONNX protobuf file can be (2 GiB); "
            "keep the weights in external data files next to the model"
        )
    return f"{source}: {size / 2**30:.2f} GiB exceeds max_bytes={max_bytes}; raise max_bytes to load it"


def read_file(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """The file's bytes, refused by its size before it is read."""
    try:
        size = path.stat().st_size
        if size > min(max_bytes, MAX_PROTOBUF_BYTES):
            raise ModelLoadError(_too_large(str(path), size, max_bytes))
        return path.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"cannot read model file {str(path)!r}: {exc.strerror}") from None


def _check_header(data: bytes, path: Path | None, source: str) -> ModelHeader:
    if is_ort_format(data):  # no protobuf to read; onnxruntime checks its format version itself
        return ModelHeader(format="ort")
    try:
        header = read_header(data)
    except ProtoError as exc:
        raise ModelLoadError(
            f"{source}: not an ONNX model this runtime can load ({exc}; truncated, corrupt or "
            "another format?)"
        ) from None
    if header.ir_version == 0 or not header.opsets:
        raise ModelLoadError(f"{source}: not an ONNX model (no IR version or opset in the file)")
    too_old = installed_too_old(ort.__version__, header.ir_version, header.opsets)
    if too_old:  # say it before onnxruntime fails with a bare "Unsupported model IR version"
        raise ModelLoadError(f"{source}: {too_old}")
    return header


def _read_external(header: ModelHeader, path: Path | None, source: str, budget: int) -> dict[str, bytes]:
    """Read every external-data file once, now, from the folder onnxruntime would read it from.

    The session is later given these very bytes (``_create_session``), so what onnxruntime
    computes with is what was checked and hashed, however the files change after load.
    """
    external: dict[str, bytes] = {}
    for tensor, location in header.external_data:
        if location in external:
            continue
        if path is None:
            raise ModelLoadError(
                f"{source}: tensor {tensor!r} keeps its data in an external file ({location!r}); "
                "load the model from its path, not from bytes"
            )
        target = _contained(tensor, location, path, source)
        try:
            size = target.stat().st_size
            if size > budget:
                raise ModelLoadError(
                    f"{source}: external data {location!r} ({size} bytes) takes the model past "
                    "max_bytes; raise max_bytes to load it"
                )
            external[location] = target.read_bytes()
        except OSError as exc:
            raise ModelLoadError(
                f"{source}: cannot read external data {location!r} of tensor {tensor!r}: {exc.strerror}"
            ) from None
        budget -= size
    return external


def _contained(tensor: str, location: str, path: Path, source: str) -> Path:
    """External data must be a regular file inside the folder of the path given (the folder
    onnxruntime resolves locations against — not the folder a symlinked model points to): no
    absolute paths, no '..', no symlink or hard link leading elsewhere."""
    folder = path.parent
    target = folder / location
    refused = (
        f"{source}: tensor {tensor!r} points to external data {location!r} outside the model's "
        "folder; refusing to read it (keep external data files next to the model, as plain files)"
    )
    if not location or "\x00" in location or Path(location).is_absolute() or ".." in Path(location).parts:
        raise ModelLoadError(refused)
    try:
        resolved = target.resolve(strict=True)
        info = target.lstat()
    except (OSError, RuntimeError):  # missing, or a symlink loop
        raise ModelLoadError(
            f"{source}: external data {location!r} of tensor {tensor!r} is missing next to the model"
        ) from None
    inside = folder.resolve() in resolved.parents
    if not inside or not stat.S_ISREG(info.st_mode) or info.st_nlink > 1:
        raise ModelLoadError(refused)
    return target


class _NotJSON:
    """What _decode_metadata returns for a document that does not parse (refused after the seal)."""


def _decode_metadata(text: str | None) -> Any:
    """The metadata document as JSON (None: the model has none). Never raises: load reports a bad
    document after the seal has had its say."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return _NotJSON()


def parse_metadata(text: str, source: str) -> dict[str, Any]:
    return check_metadata(_decode_metadata(text), source)


def check_metadata(meta: Any, source: str) -> dict[str, Any]:
    """The exporter's metadata document, checked now (``Metadata.from_dict``: its format first): a
    malformed one is refused at load instead of failing (or answering wrongly) on a later call."""
    if isinstance(meta, _NotJSON):
        raise ModelLoadError(
            f"{source}: the model's {METADATA_KEY!r} metadata is not valid JSON; export it again"
        )
    try:
        Metadata.from_dict(meta)
    except MetadataError as exc:
        if str(exc).startswith("format"):  # a newer exporter's document: the runtime is too old
            raise ModelLoadError(f"{source}: metadata {exc}") from None
        raise ModelLoadError(
            f"{source}: the model's {METADATA_KEY!r} metadata is {exc}; export it again"
        ) from None
    return dict(meta)


@dataclass(frozen=True)
class _SessionFacts:
    """What the hot path needs to know about a session, read once when it is created."""

    output_names: list[str]
    string_outputs: frozenset[str]
    on_gpu: bool


class Model:
    """A loaded model: ``predict``, ``predict_proba``, ``transform``, ``run``.

    Thread-safe: onnxruntime runs are; the session is created once per process under a lock.
    """

    def __init__(
        self,
        data: bytes,
        provider_specs: list[_providers.ProviderSpec],
        header: ModelHeader,
        *,
        path: Path | None = None,
        threads: int | None = None,
        strict: bool = False,
        precision: str = "default",
        spinning: bool = False,
        io_binding: str = "auto",
        device_id: int = 0,
        external: dict[str, bytes] | None = None,
        metadata: dict[str, Any] | None = None,
        seal: integrity.Integrity | None = None,
    ) -> None:
        self._data = data
        self._external = external or {}  # location → the bytes checked at load (see _read_external)
        self.integrity = seal  # what load established: content hash checked, signature checked
        self._path = path
        self.source = str(path) if path else "<bytes>"
        self.header = header
        self._provider_specs = provider_specs
        self._threads = threads
        self._strict = strict
        self.precision_requested = precision
        self._spinning = spinning
        self._io_binding = io_binding
        self._device_id = device_id
        self._lock = threading.Lock()
        self._generation = -1
        self._sess: ort.InferenceSession | None = None
        self._meta: dict[str, Any] | None = metadata
        self._closed = False
        self._schema: Schema | None = None
        self._native: dict[str, np.dtype] | None = None
        self._lookup: np.ndarray | bool | None = None  # see _label_lookup
        self._facts_cache: _SessionFacts | None = None
        self._splitter: _parallel.RowSplitter | None = None  # large batches: rows across threads?
        _LIVE.add(self)
        self._fast: dict[str, Callable[[Any], np.ndarray | None]] = {}

    # -- session --------------------------------------------------------------------------------
    def _session(self) -> ort.InferenceSession:
        sess = self._sess
        if sess is not None and self._generation == _PROCESS[0]:
            return sess
        if self._closed:
            raise ModelClosedError(f"{self.source}: the model was closed; call runtime.load again to use it")
        with self._lock:
            if self._sess is None or self._generation != _PROCESS[0]:
                if self._sess is not None:  # inherited, and the fork hook did not run: see _leak
                    _leak(self._sess)
                self._sess = self._create_session()
                self._generation = _PROCESS[0]
                self._fast = {}
            return self._sess

    @property
    def _facts(self) -> _SessionFacts:
        facts = self._facts_cache
        if facts is None or self._generation != _PROCESS[0]:
            self._session()
            facts = self._facts_cache
        assert facts is not None
        return facts

    def _create_session(self) -> ort.InferenceSession:
        options = ort.SessionOptions()
        if not self._spinning:  # an embedded library must not burn CPU between calls
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        if self._threads:
            options.intra_op_num_threads = self._threads
        options.log_severity_level = 3
        try:
            sess = _open_session(
                self._data, self._external, options, self._provider_specs, self.header.external_outside_main
            )
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise ModelLoadError(_explain_load_failure(self.source, self.header, exc)) from None
        active = sess.get_providers()
        _providers.audit(self._provider_specs, active, strict=self._strict, source=self.source)
        outputs = sess.get_outputs()
        self._facts_cache = _SessionFacts(
            output_names=[o.name for o in outputs],
            string_outputs=frozenset(o.name for o in outputs if o.type == "tensor(string)"),
            on_gpu=active[0] in _providers.CUDA_PROVIDERS,  # device memory we can bind
        )
        if self._splitter is None:  # kept across fork: the measurement still holds in the child
            cpu = not self._facts_cache.on_gpu and self._io_binding != "always"
            parts = (self._threads or os.cpu_count() or 1) if cpu else 1  # threads=1: a cap, kept
            self._splitter = _parallel.RowSplitter(parts)
        return sess

    @property
    def providers(self) -> list[str]:
        """Execution providers active in the session (may differ from what was asked)."""
        return list(self._session().get_providers())

    @property
    def parallel_batches(self) -> str:
        """Whether batches of ``runtime._parallel.MIN_ROWS``+ rows are split across threads over the
        session (measured on this model's first large calls, see runtime/_parallel.py)."""
        self._session()
        assert self._splitter is not None
        return self._splitter.describe()

    @property
    def precision(self) -> str:
        """``"tf32"`` on CUDA unless ``precision="fp32"`` was asked, else ``"fp32"``."""
        return _providers.effective_precision(self.providers, self.precision_requested)

    def close(self) -> None:
        """Release the session. Any later call raises ModelClosedError (load the file again)."""
        self._closed = True
        with self._lock:
            if self._sess is not None and self._generation != _PROCESS[0]:
                _leak(self._sess)  # inherited through fork: see _leak
            self._sess = None
            self._fast = {}

    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> None:
        raise TypeError(
            "runtime.Model cannot be pickled (onnxruntime sessions cannot); "
            "send the model path or bytes to the worker and call runtime.load there"
        )

    # -- description ----------------------------------------------------------------------------
    @property
    def metadata(self) -> dict[str, Any]:
        """The JSON document the exporter embedded (empty for foreign ONNX models)."""
        if self._meta is None:  # ORT-format files: only the session can read their metadata
            custom = self._session().get_modelmeta().custom_metadata_map
            text = custom.get(METADATA_KEY)
            self._meta = {} if text is None else parse_metadata(text, self.source)
        return self._meta

    @property
    def path(self) -> Path | None:
        """The file the model was loaded from (None when loaded from bytes)."""
        return self._path

    @property
    def serialized(self) -> bytes:
        """The model's bytes as loaded (external data, if any, stays in its files)."""
        return self._data

    @property
    def schema(self) -> Schema:
        if self._schema is None:
            meta = self.metadata
            self._schema = Schema.from_metadata(meta) if meta else _schema_from_session(self._session())
        return self._schema

    @property
    def graph_sha256(self) -> str | None:
        """Hash of the graph and weights as loaded (compare with metadata["graph_sha256"]);
        None for ORT-format files, which this package cannot parse."""
        return None if self.header.format == "ort" else graph_sha256(self._data)

    @property
    def graph_unchanged(self) -> bool | None:
        """Whether the graph is the one the exporter checked; None for models without the hash."""
        recorded, actual = self.metadata.get("graph_sha256"), self.graph_sha256
        return None if recorded is None or actual is None else recorded == actual

    @property
    def task(self) -> str | None:
        """``"classifier"``, ``"regressor"``, ``"transformer"``, or None for a foreign model."""
        return self.metadata.get("task")

    @property
    def output_names(self) -> list[str]:
        return list(self._facts.output_names)

    @property
    def classes_(self) -> np.ndarray:
        if self.task != "classifier":
            raise UnsupportedMethodError(f"classes_ exists for classifiers only; this model is a {self.task}")
        classes = np.asarray(self.metadata["classes"], dtype=object)
        return restore_dtype(classes, self.metadata["classes_dtype"])

    # -- inference ------------------------------------------------------------------------------
    def run(self, X: Any, *, batch_size: int | None = None) -> dict[str, np.ndarray]:
        """All outputs of the graph, by name, for input ``X`` (auxiliary ones such as
        ``label_index`` left out)."""
        _check_batch_size(batch_size)
        outputs = self.metadata.get("outputs", {})
        names = [n for n in self.output_names if not outputs.get(n, {}).get("auxiliary")]
        return self._run(X, names, batch_size)

    def predict(self, X: Any, *, batch_size: int | None = None) -> np.ndarray:
        """Same labels / values as the native pipeline's ``predict``."""
        fast = self._fast.get("predict")  # the hot path, once a first call has built it
        if fast is not None and batch_size is None:
            answer = fast(X)
            if answer is not None:
                return answer
        _check_batch_size(batch_size)
        task = self.task
        if task == "transformer":
            raise UnsupportedMethodError("this model ends in a transformer: call transform(X)")
        if task is None:
            return self._run(X, [self.output_names[0]], batch_size)[self.output_names[0]]
        name = "label" if task == "classifier" else "prediction"
        answer = self._output(X, name, batch_size)
        if name in self._fast:
            self._fast["predict"] = self._fast[name]
        return answer

    def predict_proba(self, X: Any, *, batch_size: int | None = None) -> np.ndarray:
        """Same probabilities as the native pipeline's ``predict_proba`` (classifiers only)."""
        if "probabilities" not in self.metadata.get("outputs", {}):
            raise UnsupportedMethodError(
                f"predict_proba is not available: this model is a {self.task or 'foreign model'}"
                + (" whose estimator has no predict_proba" if self.task == "classifier" else "")
            )
        return self._output(X, "probabilities", batch_size)

    def transform(self, X: Any, *, batch_size: int | None = None) -> np.ndarray:
        """Same features as the native pipeline's ``transform`` (pipelines ending in a transformer)."""
        if self.task != "transformer":
            raise UnsupportedMethodError(
                f"transform is for pipelines that end in a transformer; this model is a {self.task}"
            )
        return self._output(X, "features", batch_size)

    def _output(self, X: Any, name: str, batch_size: int | None) -> np.ndarray:
        _check_batch_size(batch_size)
        if batch_size is None:
            fast = self._fast.get(name) or self._make_fast(name)
            if fast is not None:
                answer = fast(X)
                if answer is not None:
                    return answer
        lookup = self._label_lookup if name == "label" else None
        if lookup is not None:  # string classes: the index output, mapped in NumPy (faster)
            return lookup[self._run(X, [LABEL_INDEX], batch_size)[LABEL_INDEX]]
        value = self._run(X, [name], batch_size)[name]
        native = self._native_dtypes.get(name)
        if native is None or value.dtype == native:
            return value
        return value.astype(native)  # e.g. uint8 labels, '<U5' strings, float64 probabilities

    def _make_fast(self, name: str) -> Callable[[Any], np.ndarray | None] | None:
        """A specialised closure for the common call: a float array of the declared width on a CPU
        session. It returns None whenever anything differs (or fails), and the general path, with
        its full checks and precise errors, takes over. Rebuilt after fork or close."""
        sess, facts, fast_spec = self._session(), self._facts, self.schema.fast
        if facts.on_gpu or self._io_binding == "always":
            return None
        if fast_spec is None:
            return self._make_fast_columns(name) if self.schema.layout == "columns" else None
        in_name, dtype, width, allow_nan = fast_spec
        native = self._native_dtypes.get(name)
        lookup = self._label_lookup if name == "label" else None  # string classes: index, mapped
        wanted = [LABEL_INDEX if lookup is not None else name]
        run, ndarray, all_finite = sess.run, np.ndarray, _finite_check(width, dtype)
        process, generation = _PROCESS, _PROCESS[0]
        split, min_rows = self._splitter, _parallel.MIN_ROWS
        assert split is not None

        # Deliberately the same checks as inputs._fast_matrix_feed, inlined: calling it here (with
        # its dict and tuple) doubled the one-row overhead (measured 2-3 µs → 5-8 µs).
        def fast(X: Any) -> np.ndarray | None:
            if type(X) is not ndarray or process[0] != generation:
                return None
            shape = X.shape
            if len(shape) != 2 or not shape[0] or X.dtype != dtype or not X.flags.c_contiguous:
                return None
            if width is not None and shape[1] != width:
                return None
            if not allow_nan and not all_finite(X):  # NaN/inf: the full check names the column
                return None
            try:
                if shape[0] < min_rows:
                    value = run(wanted, {in_name: X})[0]
                else:
                    value = split.run(run, wanted, {in_name: X})[0]
            except Exception:
                return None
            if lookup is not None:
                return lookup[value]
            return value if native is None or value.dtype == native else value.astype(native)

        self._fast[name] = fast
        return fast

    def _make_fast_columns(self, name: str) -> Callable[[Any], np.ndarray | None]:
        """The hot path of a DataFrame-trained model: a DataFrame (pandas, polars, Arrow) or a dict
        of columns whose values pass every check as they are (inputs._fast_column_feeds); anything
        else returns None, for the general path."""
        schema, native = self.schema, self._native_dtypes.get(name)
        lookup = self._label_lookup if name == "label" else None
        wanted = [LABEL_INDEX if lookup is not None else name]
        run, process, generation = self._session().run, _PROCESS, _PROCESS[0]
        split, min_rows = self._splitter, _parallel.MIN_ROWS
        assert split is not None

        def fast(X: Any) -> np.ndarray | None:
            if process[0] != generation:
                return None
            got = _fast_column_feeds(X, schema)
            if got is None:
                return None
            try:
                feeds, n_rows = got
                value = (run if n_rows < min_rows else partial(split.run, run))(wanted, feeds)[0]
            except Exception:
                return None
            if lookup is not None:
                return lookup[value]
            return value if native is None or value.dtype == native else value.astype(native)

        self._fast[name] = fast
        return fast

    @property
    def _label_lookup(self) -> np.ndarray | None:
        """Classes in the native label dtype, indexed by the ``label_index`` output; None when the
        model has no such output (numeric classes, or exported before it existed)."""
        if self._lookup is None:
            meta = self.metadata
            outputs = meta.get("outputs", {})
            if LABEL_INDEX in outputs and "classes" in meta and "label" in outputs:
                classes = restore_dtype(np.asarray(meta["classes"], dtype=object), meta["classes_dtype"])
                self._lookup = restore_dtype(classes, outputs["label"]["native_dtype"])
            else:
                self._lookup = False
        return self._lookup if isinstance(self._lookup, np.ndarray) else None

    @property
    def _native_dtypes(self) -> dict[str, np.dtype]:
        """Output name → dtype the native method returns, read once from the metadata."""
        if self._native is None:
            outputs = self.metadata.get("outputs", {})
            self._native = {name: np.dtype(spec["native_dtype"]) for name, spec in outputs.items()}
        return self._native

    def _run(self, X: Any, names: list[str] | None, batch_size: int | None) -> dict[str, np.ndarray]:
        """With ``batch_size``, the raw input is sliced by rows first and each chunk is checked and
        cast on its own: the extra memory is one chunk's feeds, not a float32 copy of all of X."""
        from runtime.inputs import count_rows, take_rows

        sess = self._session()
        facts = self._facts
        keep_device = facts.on_gpu and self._io_binding != "never"
        wanted = names or facts.output_names
        if batch_size is not None and batch_size < 1:
            raise InvalidInputError(f"batch_size={batch_size}: use a positive number of rows")
        total = count_rows(X, self.schema) if batch_size is not None else None
        if batch_size is not None and total is not None and total > batch_size:
            chunks = []
            for start in range(0, total, batch_size):
                stop = min(start + batch_size, total)
                try:
                    feeds, _ = prepare_feeds(take_rows(X, start, stop), self.schema, keep_device=keep_device)
                except InvalidInputError as exc:
                    where = f" (in rows {start}..{stop - 1}; row numbers above count from {start})"
                    raise InvalidInputError(f"{exc}{where if start else ''}") from None
                chunks.append(self._run_chunk(sess, feeds, wanted))
            return {name: np.concatenate([c[name] for c in chunks]) for name in wanted}
        feeds, n_rows = prepare_feeds(X, self.schema, keep_device=keep_device)
        if n_rows == 0:
            return self._empty_outputs(wanted)
        if batch_size is None or batch_size >= n_rows:
            return self._run_chunk(sess, feeds, wanted)
        pieces = [  # an input count_rows cannot measure (e.g. rows that are not a sequence)
            self._run_chunk(sess, _rows(feeds, i, i + batch_size), wanted)
            for i in range(0, n_rows, batch_size)
        ]
        return {name: np.concatenate([c[name] for c in pieces]) for name in wanted}

    def _run_chunk(
        self, sess: ort.InferenceSession, feeds: dict[str, Feed], names: list[str]
    ) -> dict[str, np.ndarray]:
        try:
            if self._io_binding == "never" or not self._wants_binding(feeds):
                return dict(zip(names, self._host_run(sess, names, feeds), strict=True))
            if self._has_strings(feeds, names):
                # onnxruntime (1.32) crashes when a string tensor is bound: run those on host data.
                host = {k: (_to_host(v) if isinstance(v, DeviceArray) else v) for k, v in feeds.items()}
                return dict(zip(names, sess.run(names, host), strict=True))
            return _run_bound(sess, feeds, names, self._device_id)
        except Exception as exc:  # the data passed the schema checks but the graph still refused it
            raise InvalidInputError(
                f"onnxruntime could not run the model on this input: {_first_line(exc)}"
            ) from None

    def _host_run(self, sess: ort.InferenceSession, names: list[str], feeds: dict[str, Feed]) -> list[Any]:
        """One run, or the rows split across threads where that was measured faster."""
        split, n_rows = self._splitter, len(next(iter(feeds.values())))
        if split is None or n_rows < _parallel.MIN_ROWS or split.decided == 1:
            return sess.run(names, feeds)
        if any(isinstance(f, DeviceArray) for f in feeds.values()):
            return sess.run(names, feeds)
        return split.run(sess.run, names, feeds)

    def _wants_binding(self, feeds: dict[str, Feed]) -> bool:
        if self._io_binding == "always":
            return True
        if not self._facts.on_gpu:  # device tensors only reach the feeds of a GPU session
            return False
        n_rows = len(next(iter(feeds.values())))
        return n_rows >= IO_BINDING_MIN_ROWS or any(isinstance(f, DeviceArray) for f in feeds.values())

    def _has_strings(self, feeds: dict[str, Feed], names: list[str]) -> bool:
        if self._facts.string_outputs.intersection(names):
            return True
        return any(isinstance(v, np.ndarray) and v.dtype == object for v in feeds.values())

    def _empty_outputs(self, names: list[str]) -> dict[str, np.ndarray]:
        outputs = {}
        specs = self.metadata.get("outputs", {})
        for name in names:
            if name not in specs:
                raise InvalidInputError(
                    "empty input: this model carries no output description to shape an empty answer"
                )
            spec = specs[name]
            shape = [0, *(d or 0 for d in spec["shape"][1:])]
            outputs[name] = np.empty(shape, dtype=object if spec["dtype"] == "string" else spec["dtype"])
        return outputs

    def __repr__(self) -> str:
        inputs = [s.name for s in self.schema.inputs]
        return f"Model(source={self.source!r}, task={self.task!r}, inputs={inputs})"


# onnxruntime >= 1.21 resolves external data it does not take from memory against this folder
# instead of the working directory (for a model given as bytes); older releases ignore the key.
_EXTERNAL_FOLDER_KEY = "session.model_external_initializers_file_folder_path"


def _open_session(
    data: bytes,
    external: dict[str, bytes],
    options: ort.SessionOptions,
    providers: Any,
    outside_main: bool = False,
) -> ort.InferenceSession:
    """A session over exactly these bytes. External data goes in from memory, never re-read from
    disk (where it could have been swapped since load).

    onnxruntime takes from memory only the main graph's initializers; any other external tensor
    (``outside_main``: an If branch's, say) it reads from disk — for a model given as bytes,
    relative to the working directory, which load() never checked. Those models get a private
    folder holding the checked bytes, named to onnxruntime with _EXTERNAL_FOLDER_KEY (>= 1.21) or
    as the model's own folder (older releases, and < 1.18, which cannot take files from memory).
    """
    if not external:
        return ort.InferenceSession(data, sess_options=options, providers=providers)
    in_memory = hasattr(options, "add_external_initializers_from_files_in_memory")
    if in_memory:
        names = list(external)
        blobs = [np.frombuffer(external[n], dtype=np.uint8) for n in names]
        options.add_external_initializers_from_files_in_memory(names, blobs, [b.size for b in blobs])
        if not outside_main:
            return ort.InferenceSession(data, sess_options=options, providers=providers)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="hybridonnx-", ignore_cleanup_errors=True) as folder:  # 0700
        for location, blob in external.items():
            target = Path(folder, location)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(blob)
        if in_memory and _version_at_least(ort.__version__, (1, 21)):
            options.add_session_config_entry(_EXTERNAL_FOLDER_KEY, folder)
            return ort.InferenceSession(data, sess_options=options, providers=providers)
        fd, model = tempfile.mkstemp(suffix=".onnx", dir=folder)  # a name no location took
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return ort.InferenceSession(model, sess_options=options, providers=providers)


def _version_at_least(version: str, wanted: tuple[int, int]) -> bool:
    """Whether an onnxruntime version is at least ``wanted`` (unparsable: assume so)."""
    try:
        return parse_version(version) >= wanted
    except ValueError:
        return True


def _check_batch_size(batch_size: Any) -> None:
    if batch_size is not None and (
        not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1
    ):
        raise InvalidOptionError(f"batch_size={batch_size!r}: use a positive int (rows per run), or None")


def _rows(feeds: dict[str, Feed], start: int, stop: int) -> dict[str, Feed]:
    return {
        k: (v.rows(start, stop) if isinstance(v, DeviceArray) else v[start:stop]) for k, v in feeds.items()
    }


def _to_host(feed: DeviceArray) -> np.ndarray:
    return np.asarray(feed.tensor.detach().cpu())


def _run_bound(
    sess: ort.InferenceSession, feeds: dict[str, Feed], names: list[str], device_id: int = 0
) -> dict[str, np.ndarray]:
    """Run through IO binding: device tensors are read in place, host arrays copied once.

    The same code serves CUDA and (in tests, and with io_binding="always") the CPU provider.
    """
    binding = sess.io_binding()
    device = "cuda" if sess.get_providers()[0] != _providers.CPU else "cpu"
    for name, feed in feeds.items():
        if isinstance(feed, DeviceArray):
            binding.bind_input(name, feed.device_type, feed.device_id, feed.dtype, list(feed.shape), feed.ptr)
        elif device == "cpu":
            binding.bind_cpu_input(name, feed)
        else:
            binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(feed, device, device_id))
    for name in names:
        binding.bind_output(name)  # allocated on the host: predict returns numpy arrays
    sess.run_with_iobinding(binding)
    return dict(zip(names, binding.copy_outputs_to_cpu(), strict=True))


def _finite_check(width: int | None, dtype: np.dtype) -> Callable[[np.ndarray], bool]:
    """_all_finite for the hot path: one row is dotted with a zero row built once (0.55 µs
    instead of 1.3 µs: no ravel-size lookup), larger inputs go through _all_finite."""
    if not width:
        return _all_finite
    zeros, isfinite = np.zeros(width, dtype=dtype), math.isfinite

    def finite(X: np.ndarray) -> bool:
        if X.shape[0] == 1:
            return isfinite(X.ravel().dot(zeros))
        return _all_finite(X)

    return finite


def restore_dtype(value: np.ndarray, native_dtype: str) -> np.ndarray:
    """Give outputs the dtype the native method returns (e.g. uint8 labels, '<U5' strings)."""
    if native_dtype == "object":
        return value.astype(object)
    return value.astype(np.dtype(native_dtype), copy=False)


def _schema_from_session(sess: ort.InferenceSession) -> Schema:
    specs = []
    for i in sess.get_inputs():
        if i.type not in ORT_TYPES:
            raise ModelLoadError(f"input {i.name!r} has type {i.type}, which the runtime cannot feed")
        width = i.shape[1] if len(i.shape) == 2 and isinstance(i.shape[1], int) else None
        specs.append(InputSpec(i.name, ORT_TYPES[i.type], width, allow_nan=True))
    layout = "matrix" if len(specs) == 1 else "columns"
    return Schema(layout, tuple(specs), tuple(s.name for s in specs) if layout == "columns" else None)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _explain_load_failure(source: str, header: ModelHeader, exc: BaseException) -> str:
    message = str(exc)
    needs = f"IR {header.ir_version}, opsets " + ", ".join(
        f"{d} {v}" for d, v in sorted(header.opsets.items())
    )
    ir = re.search(r"Unsupported model IR version: (\d+), max supported IR version: (\d+)", message)
    if ir:
        return (
            f"{source}: model IR version {ir.group(1)} is newer than this onnxruntime "
            f"{ort.__version__} supports (max IR {ir.group(2)}); upgrade onnxruntime or re-export "
            "for an older runtime"
        )
    opset = re.search(
        r"Opset (\d+) is under development.*support for domain (\S+) is till opset (\d+)", message, re.S
    )
    if opset:
        return (
            f"{source}: the model needs {opset.group(2)} opset {opset.group(1)} but onnxruntime "
            f"{ort.__version__} supports {opset.group(2)} up to opset {opset.group(3)}; upgrade onnxruntime "
            "or re-export for an older runtime"
        )
    if re.search(r"[Oo]pset|domain_version|is not a registered function/op", message):
        return (
            f"{source}: onnxruntime {ort.__version__} cannot run this model ({needs}): "
            f"{_first_line(exc)}; upgrade onnxruntime or re-export for an older runtime"
        )
    if "Protobuf parsing failed" in message or "INVALID_PROTOBUF" in message:
        return (
            f"{source}: not an ONNX model (the file does not parse as ONNX protobuf; "
            "truncated or another format?)"
        )
    return f"{source}: onnxruntime could not load the model ({needs}): {_first_line(exc)}"
