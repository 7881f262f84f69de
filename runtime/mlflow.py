"""An MLflow model flavor for hybridonnx models (optional extra ``hybridonnx[mlflow]``).

    import runtime.mlflow

    with mlflow.start_run():
        info = runtime.mlflow.log_model("model.onnx", "model")
    mlflow.pyfunc.load_model(info.model_uri).predict(frame)  # == runtime.load("model.onnx").predict(frame)

Why not MLflow's own ``onnx`` flavor: its pyfunc feeds the DataFrame's columns to onnxruntime as
they are and returns the raw graph outputs, so it skips everything ``runtime.load`` adds — the
seal check, the input checks (NaN only where the pipeline imputes, known categories, text
lower-casing, float32 range), the label mapping and the native dtypes. Here the pyfunc *is*
``runtime.load(...)``: ``predict`` answers exactly like ``Model.predict`` (``params={"method":
"predict_proba"}`` for probabilities, ``"transform"`` for features).

What is logged: the ``.onnx`` file, the variants written beside it (``.int8.onnx``,
``.fp16.onnx``, ``.ort`` copies, ``required_operators.config``) and its external data; a
signature derived from the model's own schema (column names and order; numbers typed as the
DataFrame held them at export, which the runtime casts with its range checks; string columns as
Any, since MLflow's "string" refuses category columns; array models as unnamed columns by
position) with the outputs measured on the golden rows, which are also the input example; pip
requirements naming hybridonnx.

Only this module imports MLflow (and pandas, which MLflow's pyfunc uses): ``import runtime`` stays
numpy + onnxruntime.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

FLAVOR_NAME = "hybridonnx"
DATA = "hybridonnx_model"  # the folder, inside the MLflow model, holding the model files
CONF = "hybridonnx_mlflow.json"  # in that folder: which file the pyfunc serves, with which providers
METHODS = ("predict", "predict_proba", "transform", "run")
EXAMPLE_ROWS = 5
INSTALL = 'pip install "hybridonnx[mlflow]"'


def _mlflow() -> Any:
    try:
        import mlflow
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(f"runtime.mlflow needs MLflow: {INSTALL} ({exc})", name=exc.name) from None
    return mlflow


def log_model(
    model: str | os.PathLike[str] | bytes,
    artifact_path: str | None = None,
    *,
    name: str | None = None,
    registered_model_name: str | None = None,
    variant: str | None = None,
    providers: str | list[str] = "auto",
    signature: Any = "auto",
    input_example: Any = "auto",
    pip_requirements: list[str] | None = None,
    extra_pip_requirements: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Any:
    """Log a hybridonnx model (a path to the ``.onnx``, or its bytes) to the active MLflow run;
    returns MLflow's ``ModelInfo`` (``info.model_uri`` loads it back).

    ``artifact_path`` / ``name``: the model's name in the run (MLflow 3 calls it ``name``).
    ``variant``: the file the pyfunc serves, e.g. ``"int8"`` for ``model.int8.onnx`` (default:
    the model itself); every variant is logged either way. ``providers``: as ``runtime.load``.
    ``signature`` / ``input_example``: ``"auto"`` derives them from the model (schema, golden
    rows); None leaves them out. Other keyword arguments go to ``mlflow.models.Model.log``.
    """
    _mlflow()
    from mlflow.models import Model

    import runtime.mlflow as flavor

    return Model.log(
        artifact_path=None,
        name=name or artifact_path or "model",
        flavor=flavor,
        model=model,
        registered_model_name=registered_model_name,
        variant=variant,
        providers=providers,
        signature=signature,
        input_example=input_example,
        pip_requirements=pip_requirements,
        extra_pip_requirements=extra_pip_requirements,
        metadata=metadata,
        **kwargs,
    )


def save_model(
    model: str | os.PathLike[str] | bytes,
    path: str | os.PathLike[str],
    *,
    mlflow_model: Any = None,
    variant: str | None = None,
    providers: str | list[str] = "auto",
    signature: Any = "auto",
    input_example: Any = "auto",
    pip_requirements: list[str] | None = None,
    extra_pip_requirements: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
    **kwargs: Any,
) -> None:
    """Write the model as an MLflow model folder at ``path`` (what ``log_model`` uploads)."""
    mlflow = _mlflow()
    from mlflow.models import Model

    import runtime

    with tempfile.TemporaryDirectory() as staging:
        folder = Path(staging) / DATA
        folder.mkdir()
        main, variants = _stage_files(model, folder)
        served = main if variant is None else variants.get(variant)
        if served is None:
            raise runtime.InvalidOptionError(
                f"variant={variant!r}: the model has no such variant beside it "
                f"(found: {', '.join(sorted(variants)) or 'none'})"
            )
        loaded = runtime.load(folder / served, providers=["CPUExecutionProvider"])
        try:
            example = _example(loaded) if input_example == "auto" else input_example
            if signature == "auto":
                signature = _signature(loaded, example)
        finally:
            loaded.close()
        # what the pyfunc loader reads (beside the files: MLflow decides where the folder goes)
        conf = {"serve": served, "model": main, "variants": variants, "providers": providers}
        (folder / CONF).write_text(json.dumps(conf))
        mlflow_model = mlflow_model if mlflow_model is not None else Model()
        mlflow_model.add_flavor(
            FLAVOR_NAME,
            **conf,
            format=loaded.metadata.get("format"),
            task=loaded.task,
            hybridonnx_version=_version(),
        )
        mlflow.pyfunc.save_model(
            path=str(path),
            loader_module="runtime.mlflow",
            data_path=str(folder),
            mlflow_model=mlflow_model,
            signature=signature,
            input_example=example,
            pip_requirements=pip_requirements if pip_requirements is not None else _requirements(),
            extra_pip_requirements=extra_pip_requirements,
            metadata=metadata,
            **kwargs,
        )


def load_model(model_uri: str, dst_path: str | None = None, **load_options: Any) -> Any:
    """The logged model as a ``runtime.Model`` (options as ``runtime.load``)."""
    mlflow = _mlflow()
    from mlflow.models import Model

    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=dst_path))
    data = Model.load(str(local)).flavors["python_function"]["data"]
    return _load(local / data, load_options)


def _load_pyfunc(data_path: str) -> _PyfuncModel:
    """MLflow's pyfunc loader (``loader_module="runtime.mlflow"``): ``data_path`` is the folder
    of model files inside the MLflow model."""
    return _PyfuncModel(_load(Path(data_path), {}))


def _load(folder: Path, options: dict[str, Any]) -> Any:
    import runtime

    conf = json.loads((folder / CONF).read_text())
    return runtime.load(folder / conf["serve"], **{"providers": conf.get("providers", "auto"), **options})


class _PyfuncModel:
    """What ``mlflow.pyfunc.load_model(uri)`` wraps: ``predict`` is ``Model.predict`` (or the
    method named by ``params={"method": ...}``) on the rows MLflow hands over."""

    def __init__(self, model: Any) -> None:
        self._model = model

    def get_raw_model(self) -> Any:
        return self._model

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        import runtime

        method = (params or {}).get("method") or _default_method(self._model)
        if method not in METHODS:
            raise runtime.InvalidOptionError(f"params method={method!r}: use one of {', '.join(METHODS)}")
        return getattr(self._model, method)(_rows(model_input, self._model.schema))


def _default_method(model: Any) -> str:
    return "transform" if model.task == "transformer" else "predict"


def _rows(model_input: Any, schema: Any) -> Any:
    """MLflow passes a DataFrame (column signatures) or arrays (tensor signatures); a text model
    takes its documents from the frame's one column."""
    if schema.layout == "text" and hasattr(model_input, "iloc"):
        return model_input.iloc[:, 0].to_numpy(dtype=object)
    return model_input


# -- what is logged ---------------------------------------------------------------------------------


def _stage_files(model: str | os.PathLike[str] | bytes, folder: Path) -> tuple[str, dict[str, str]]:
    """Copy the model, its variants and external data into ``folder``: (main file, {variant: file})."""
    import runtime
    from runtime._proto import read_header

    if isinstance(model, (bytes, bytearray, memoryview)):
        (folder / "model.onnx").write_bytes(bytes(model))
        return "model.onnx", {}
    source = Path(model)
    if not source.is_file():
        raise runtime.ModelLoadError(f"model file not found: {str(source)!r}")
    files = {source.name: source}
    variants: dict[str, str] = {}
    for sibling in sorted(source.parent.iterdir()):
        kind = _variant_of(source, sibling)
        if kind is not None:
            files[sibling.name] = sibling
            if kind != "config":
                variants[kind] = sibling.name
    for path in list(files.values()):
        if path.suffix == ".onnx":
            header = read_header(path.read_bytes())
            for _, location in header.external_data:  # runtime.load checks they stay in the folder
                files.setdefault(location, source.parent / location)
    for name, path in files.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    return source.name, variants


def _variant_of(source: Path, sibling: Path) -> str | None:
    """``model.int8.onnx`` → "int8", ``model.ort`` → "ort", ``model.fp16.ort`` → "fp16.ort",
    ``required_operators.config`` → "config"; None for anything else."""
    if sibling == source or not sibling.is_file():
        return None
    if sibling.name == "required_operators.config":
        return "config"
    stem = source.stem
    if sibling.name == f"{stem}.ort":
        return "ort"
    for extension in (".onnx", ".ort"):
        if sibling.name.startswith(f"{stem}.") and sibling.name.endswith(extension):
            middle = sibling.name[len(stem) + 1 : -len(extension)]
            if middle and "." not in middle:
                return middle if extension == ".onnx" else f"{middle}.ort"
    return None


def _example(model: Any) -> Any:
    """The first golden rows, as the pyfunc takes them (None when the model has none)."""
    from runtime.verify import golden_inputs

    try:
        inputs = golden_inputs(model)
    except Exception:  # not written by the exporter, or no golden rows
        return None
    schema = model.schema
    if schema.layout in ("matrix", "text"):
        rows = np.asarray(next(iter(inputs.values())) if isinstance(inputs, dict) else inputs)
        if schema.layout == "matrix":
            return rows[:EXAMPLE_ROWS].astype(np.float64)
        import pandas as pd

        return pd.DataFrame({schema.inputs[0].name: rows.reshape(-1)[:EXAMPLE_ROWS]})
    if schema.layout == "columns":
        import pandas as pd

        return pd.DataFrame({n: np.asarray(v).reshape(-1)[:EXAMPLE_ROWS] for n, v in inputs.items()})
    return {n: np.asarray(v)[:EXAMPLE_ROWS] for n, v in inputs.items()}


# MLflow's column type for a DataFrame column, from the golden rows (the native dtypes of the
# rows seen at export). MLflow converts neither int64 to double nor float64 to float32 itself, so
# a float32 model input is declared as what DataFrames hold (the runtime casts, and refuses values
# beyond float32's range, naming the column). String inputs are declared Any: MLflow's "string"
# refuses pandas category columns, which the pipeline and the runtime take (the runtime checks
# the values: known categories, lower-casing).
def _column_type(spec: Any, example: Any) -> Any:
    from mlflow.types.schema import AnyType

    if spec.dtype == "string":
        return AnyType()
    kind = example[spec.name].dtype.kind if example is not None and spec.name in example else "f"
    return {"i": "long", "u": "long", "b": "boolean"}.get(kind, "double")


def _signature(model: Any, example: Any) -> Any:
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types.schema import ColSpec, ParamSchema, ParamSpec, Schema, TensorSpec

    schema = model.schema
    if schema.layout == "matrix" and schema.inputs[0].width is not None:
        # one unnamed double column per feature, by position: MLflow then takes arrays and
        # DataFrames of any numeric dtype (a tensor spec would refuse all but its own dtype)
        inputs = Schema([ColSpec("double") for _ in range(schema.inputs[0].width)])
    elif schema.layout == "matrix":
        inputs = Schema([TensorSpec(np.dtype("float64"), (-1, -1))])
    elif schema.layout == "text":
        inputs = Schema([ColSpec("string")])
    elif schema.layout == "columns":
        inputs = Schema([ColSpec(_column_type(s, example), s.name) for s in schema.inputs])
    else:  # tensors (images, token ids): as declared, batch first
        inputs = Schema([TensorSpec(np.dtype(s.dtype), (-1, *_dims(s)), s.name) for s in schema.inputs])
    params = ParamSchema([ParamSpec("method", "string", _default_method(model))])
    outputs = None
    if example is not None:
        answer = _PyfuncModel(model).predict(example)
        outputs = infer_signature(model_output=answer).outputs
    return ModelSignature(inputs=inputs, outputs=outputs, params=params)


def _dims(spec: Any) -> list[int]:
    """A tensor input's dims after the batch axis, -1 where any length goes."""
    dims = spec.shape if spec.shape is not None else (spec.width,)
    return [d if d is not None else -1 for d in dims]


def _requirements() -> list[str]:
    """What the serving environment needs: this package (numpy + onnxruntime come with it),
    pandas (MLflow's pyfunc reads DataFrames) and MLflow itself."""
    from importlib import metadata

    found = []
    for name in ("hybridonnx", "onnxruntime", "numpy", "pandas"):
        try:
            found.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(name)
    return found


def _version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("hybridonnx")
    except metadata.PackageNotFoundError:
        return None
