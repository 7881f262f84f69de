"""ORT format (``.ort``): the flatbuffer format onnxruntime's reduced (minimal) builds load, plus
the ``required_operators.config`` that tells such a build which kernels to include.

Uses onnxruntime's own tools: the session saves the model in ORT format at the portable
optimisation level (basic: no hardware-specific fusions), and ``create_config_from_models``
writes the operator list. An ``.ort`` file is tied to onnxruntime releases ≥ the one that wrote
it for its format version: convert with the onnxruntime version the device runs, or newer.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import onnx


def to_ort(models: dict[str, onnx.ModelProto]) -> tuple[dict[str, bytes], bytes]:
    """``{name: model}`` → ``({name: .ort bytes}, required_operators.config bytes)``."""
    import onnxruntime as ort
    from onnxruntime.tools.ort_format_model import create_config_from_models

    out: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = []
        for name, model in models.items():
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
            options.add_session_config_entry("session.save_model_format", "ORT")
            options.optimized_model_filepath = str(folder / f"{name}.ort")
            ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
            paths.append(folder / f"{name}.ort")
            out[name] = paths[-1].read_bytes()
        config = folder / "required_operators.config"
        create_config_from_models(paths, config, enable_type_reduction=False)
        text = config.read_text().replace(f"{folder}/", "")  # comments name the models, not tmp paths
        return out, text.encode()
