"""``runtime.load`` and ``Model``: one composable class for every model the exporter writes.

The session is created at load (so a bad file fails at once) and again in a forked child on
first use: onnxruntime sessions must not cross a fork and cannot be pickled.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from runtime.errors import InvalidInputError, ModelLoadError, UnsupportedMethodError
from runtime.inputs import InputSpec, Schema, prepare_feeds

METADATA_KEY = "hybridonnx"

# ONNX element type names as onnxruntime reports them → the names the schema uses.
_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(string)": "string",
}


def load(
    model: str | os.PathLike[str] | bytes,
    providers: str | Sequence[str] = "auto",
    *,
    threads: int | None = None,
) -> Model:
    """Load an ONNX model written by ``exporter`` (or any ONNX model) for inference.

    ``providers``: ``"auto"`` picks CUDA when this onnxruntime build has it, else CPU; or an
    explicit list such as ``["CPUExecutionProvider"]``.
    """
    if isinstance(model, (bytes, bytearray)):
        data, source = bytes(model), "<bytes>"
    else:
        path = Path(model)
        if not path.is_file():
            raise ModelLoadError(f"model file not found: {str(path)!r}")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ModelLoadError(f"cannot read model file {str(path)!r}: {exc.strerror}") from None
        source = str(path)
    if not data:
        raise ModelLoadError(f"model file {source!r} is empty")
    return Model(data, _resolve_providers(providers), threads=threads, source=source)


def _resolve_providers(providers: str | Sequence[str]) -> list[str]:
    available = ort.get_available_providers()
    if providers == "auto":
        chosen = [p for p in ("CUDAExecutionProvider",) if p in available]
        return [*chosen, "CPUExecutionProvider"]
    if isinstance(providers, str):
        providers = [providers]
    unknown = [p for p in providers if p not in available]
    if unknown:
        raise ModelLoadError(
            f"execution provider(s) {unknown} are not in this onnxruntime build; available: {available}"
        )
    return list(providers)


class Model:
    """A loaded model: ``predict``, ``predict_proba``, ``transform``, ``run``."""

    def __init__(
        self, data: bytes, providers: list[str], *, threads: int | None = None, source: str = ""
    ) -> None:
        self._data = data
        self._requested_providers = providers
        self._threads = threads
        self.source = source
        self._pid = -1
        self._sess: ort.InferenceSession | None = None
        sess = self._session()
        custom = sess.get_modelmeta().custom_metadata_map
        self.metadata: dict[str, Any] = json.loads(custom[METADATA_KEY]) if METADATA_KEY in custom else {}
        self.schema = Schema.from_metadata(self.metadata) if self.metadata else _schema_from_session(sess)
        self._output_names = [o.name for o in sess.get_outputs()]

    # -- session --------------------------------------------------------------------------------
    def _session(self) -> ort.InferenceSession:
        if self._sess is None or self._pid != os.getpid():
            options = ort.SessionOptions()
            # An embedded library must not keep idle worker threads spinning after each call.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            if self._threads:
                options.intra_op_num_threads = self._threads
            options.log_severity_level = 3
            try:
                self._sess = ort.InferenceSession(
                    self._data, sess_options=options, providers=self._requested_providers
                )
            except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf types
                raise ModelLoadError(_explain_load_failure(self.source, exc)) from None
            self._pid = os.getpid()
        return self._sess

    @property
    def providers(self) -> list[str]:
        """Execution providers active in the session (may differ from what was asked)."""
        return list(self._session().get_providers())

    def close(self) -> None:
        self._sess = None

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
    def task(self) -> str | None:
        """``"classifier"``, ``"regressor"``, ``"transformer"``, or None for a foreign model."""
        return self.metadata.get("task")

    @property
    def classes_(self) -> np.ndarray:
        if self.task != "classifier":
            raise UnsupportedMethodError(f"classes_ exists for classifiers only; this model is a {self.task}")
        return _restore_dtype(
            np.asarray(self.metadata["classes"], dtype=object), self.metadata["classes_dtype"]
        )

    # -- inference ------------------------------------------------------------------------------
    def run(self, X: Any) -> dict[str, np.ndarray]:
        """All outputs of the graph, by name, for input ``X``."""
        feeds, n_rows = prepare_feeds(X, self.schema)
        if n_rows == 0:
            return self._empty_outputs()
        try:
            values = self._session().run(None, feeds)
        except Exception as exc:  # data passed the schema checks but the graph still refused it
            raise InvalidInputError(
                f"onnxruntime could not run the model on this input: {_first_line(exc)}"
            ) from None
        return dict(zip(self._output_names, values, strict=True))

    def predict(self, X: Any) -> np.ndarray:
        """Same labels / values as the native pipeline's ``predict``."""
        if self.task == "classifier":
            return self._output(X, "label")
        if self.task == "regressor":
            return self._output(X, "prediction")
        if self.task == "transformer":
            raise UnsupportedMethodError("this model ends in a transformer: call transform(X)")
        return self.run(X)[self._output_names[0]]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Same probabilities as the native pipeline's ``predict_proba`` (classifiers only)."""
        if "probabilities" not in self.metadata.get("outputs", {}):
            raise UnsupportedMethodError(
                f"predict_proba is not available: this model is a {self.task or 'foreign model'}"
                + (" whose estimator has no predict_proba" if self.task == "classifier" else "")
            )
        return self._output(X, "probabilities")

    def transform(self, X: Any) -> np.ndarray:
        """Same features as the native pipeline's ``transform`` (pipelines ending in a transformer)."""
        if self.task != "transformer":
            raise UnsupportedMethodError(
                f"transform is for pipelines that end in a transformer; this model is a {self.task}"
            )
        return self._output(X, "features")

    def _output(self, X: Any, name: str) -> np.ndarray:
        value = self.run(X)[name]
        return _restore_dtype(value, self.metadata["outputs"][name]["native_dtype"])

    def _empty_outputs(self) -> dict[str, np.ndarray]:
        outputs = {}
        for name, spec in self.metadata.get("outputs", {}).items():
            shape = [0, *spec["shape"][1:]]
            outputs[name] = np.empty(shape, dtype=object if spec["dtype"] == "string" else spec["dtype"])
        if not outputs:
            raise InvalidInputError(
                "empty input: this model carries no output description to shape an empty answer"
            )
        return outputs

    def __repr__(self) -> str:
        inputs = [s.name for s in self.schema.inputs]
        return f"Model(source={self.source!r}, task={self.task!r}, inputs={inputs})"


def _restore_dtype(value: np.ndarray, native_dtype: str) -> np.ndarray:
    """Give outputs the dtype the native method returns (e.g. uint8 labels, '<U5' strings)."""
    if native_dtype == "object":
        return value.astype(object)
    return value.astype(np.dtype(native_dtype), copy=False)


def _schema_from_session(sess: ort.InferenceSession) -> Schema:
    specs = []
    for i in sess.get_inputs():
        if i.type not in _ORT_TYPES:
            raise ModelLoadError(f"input {i.name!r} has type {i.type}, which the runtime cannot feed")
        width = i.shape[1] if len(i.shape) == 2 and isinstance(i.shape[1], int) else None
        specs.append(InputSpec(i.name, _ORT_TYPES[i.type], width, allow_nan=True))
    layout = "matrix" if len(specs) == 1 else "columns"
    return Schema(layout, tuple(specs), tuple(s.name for s in specs) if layout == "columns" else None)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _explain_load_failure(source: str, exc: BaseException) -> str:
    message = str(exc)
    ir = re.search(r"Unsupported model IR version: (\d+), max supported IR version: (\d+)", message)
    if ir:
        return (
            f"{source}: model IR version {ir.group(1)} is newer than this onnxruntime "
            f"{ort.__version__} supports (max IR {ir.group(2)}); upgrade onnxruntime or re-export "
            "for an older runtime"
        )
    opset = re.search(r"(Opset \d+ .*?)(?:\.|$)", message)
    if opset and "is under development" not in message:
        return (
            f"{source}: this onnxruntime {ort.__version__} cannot run the model's opset "
            f"({opset.group(1)}); upgrade onnxruntime"
        )
    if "Protobuf parsing failed" in message or "INVALID_PROTOBUF" in message:
        return (
            f"{source}: not an ONNX model (the file does not parse as ONNX protobuf; "
            "truncated or another format?)"
        )
    return f"{source}: onnxruntime could not load the model: {_first_line(exc)}"
