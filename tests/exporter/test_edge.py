"""Edge variants: --min-runtime, int8, fp16, ORT format — parity-gated, loadable, verifiable."""

from __future__ import annotations

import json
import pickle
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from sklearn.datasets import load_digits, load_iris
from sklearn.ensemble import RandomForestRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import exporter
import runtime
from exporter.__main__ import main
from exporter.edge import VARIANT_RULES, Rules
from exporter.edge.quantize import QuantizationError
from exporter.edge.target import CompatibilityError
from runtime.errors import ModelLoadError
from runtime.verify import verify
from tests.envs import pip_env, runtime_only_env
from tests.models import TorchClassifier

FILES = ["model.onnx", "model.int8.onnx", "model.fp16.onnx", "model.ort", "model.int8.ort", "model.fp16.ort"]


@pytest.fixture(scope="module")
def digits_net() -> tuple[Any, np.ndarray, np.ndarray]:
    """An MLP-dominated pipeline: StandardScaler → MLP(64 → 512 → 10) on digits."""
    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float32)
    pipe = make_pipeline(StandardScaler(), TorchClassifier(hidden=512, epochs=25)).fit(X[:1200], y[:1200])
    return pipe, X, y


@pytest.fixture(scope="module")
def all_variants(
    tmp_path_factory: pytest.TempPathFactory, digits_net: tuple[Any, Any, Any]
) -> tuple[Path, Any]:
    pipe, X, _ = digits_net
    folder = tmp_path_factory.mktemp("edge")
    result = exporter.export(pipe, sample=X[1200:1500], quantize="dynamic", fp16=True, ort_format=True)
    result.save(folder / "model.onnx")
    return folder, result


def test_every_variant_is_written_parity_checked_and_verifiable(
    all_variants: tuple[Path, Any], digits_net: tuple[Any, Any, Any]
) -> None:
    folder, result = all_variants
    pipe, X, _ = digits_net
    assert {p.name for p in folder.iterdir()} == {*FILES, "required_operators.config"}
    native = pipe.predict(X)
    for name in FILES:
        model = runtime.load(folder / name)
        agreement = float(np.mean(model.predict(X) == native))  # the whole dataset, not the sample
        assert agreement >= (1.0 if name in ("model.onnx", "model.ort") else 0.99), (name, agreement)
        report = verify(model)  # the golden rows, with the variant's own rules
        assert report.passed, (name, report.format())
    for name in ("model.int8.onnx", "model.fp16.onnx"):  # the size recorded is the file's
        assert runtime.load(folder / name).metadata["variant"]["bytes"] == (folder / name).stat().st_size
    int8 = next(v for v in result.variants if v.name == "int8-dynamic")
    fp16 = next(v for v in result.variants if v.name == "fp16")
    assert int8.report.passed and fp16.report.passed
    # Sizes as written, metadata included (float32 ~ 280 KiB here).
    assert int8.info["bytes"] <= 0.35 * int8.info["base_bytes"], int8.info
    assert fp16.info["bytes"] <= 0.6 * fp16.info["base_bytes"], fp16.info
    meta = runtime.load(folder / "model.int8.onnx").metadata
    assert (
        meta["variant"]["name"] == "int8-dynamic" and meta["variant"]["accuracy"]["label_agreement"] >= 0.99
    )
    assert meta["variant"]["base_graph_sha256"] == result.metadata["graph_sha256"]
    assert "MatMulInteger" in {n.op_type for n in onnx.load(str(folder / "model.int8.onnx")).graph.node}
    fp16_model = onnx.load(str(folder / "model.fp16.onnx"))
    assert fp16_model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # io stays float32
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in fp16_model.graph.initializer)
    config = (folder / "required_operators.config").read_text()
    assert "MatMulInteger" in config and "/tmp" not in config
    assert "int8-dynamic:" in result.summary() and "fp16:" in result.summary()


def test_ort_format_files_have_no_graph_hash_and_say_so(all_variants: tuple[Path, Any]) -> None:
    from runtime.describe import describe, format_info

    folder, _ = all_variants
    model = runtime.load(folder / "model.ort")
    assert model.header.format == "ort" and model.graph_sha256 is None and model.graph_unchanged is None
    assert "ORT format: no graph hash" in format_info(describe(model))


def test_static_quantization_calibrates_on_the_sample(digits_net: tuple[Any, Any, Any]) -> None:
    pipe, X, _ = digits_net
    result = exporter.export(pipe, sample=X[1200:1500], quantize="static")
    (int8,) = result.variants
    ops = {n.op_type for n in int8.model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops and int8.report.passed
    assert int8.info["accuracy"]["label_agreement"] >= 0.99


def test_quantizing_a_pipeline_without_a_network_is_refused() -> None:
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    with pytest.raises(QuantizationError, match="nothing to quantize"):
        exporter.export(pipe, sample=X, quantize="dynamic")


def test_a_variant_outside_its_rules_is_not_written(
    digits_net: tuple[Any, Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    pipe, X, _ = digits_net
    monkeypatch.setitem(VARIANT_RULES, "int8", Rules(atol_share=1e-9, rtol=0.0, min_label_agreement=1.0))
    with pytest.raises(exporter.ParityError, match="int8-dynamic variant does not match"):
        exporter.export(pipe, sample=X[1200:1500], quantize="dynamic")
    forced = exporter.export(pipe, sample=X[1200:1500], quantize="dynamic", force=True)
    assert not forced.variants[0].report.passed


@pytest.mark.parametrize(("release", "opset", "ir"), [("1.16", 18, 9), ("1.10", 15, 8)])
def test_min_runtime_rewrites_for_an_older_onnxruntime(release: str, opset: int, ir: int) -> None:
    """Unoptimised, the sklearn stage keeps its ai.onnx.ml nodes (Scaler, LinearClassifier,
    Normalizer): both domains are brought down (ml 2 for 1.10), parity holds."""
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    result = exporter.export(pipe, sample=X, min_runtime=release, optimize=False)
    opsets = {o.domain: o.version for o in result.model.opset_import}
    assert opsets[""] == min(opset, 18) and result.model.ir_version <= ir
    assert opsets["ai.onnx.ml"] <= (2 if release == "1.10" else 3)
    assert {n.domain for n in result.model.graph.node} == {"ai.onnx.ml"}
    assert result.metadata["runtime_target"]["onnxruntime"] == release and result.report.passed


def _tree_model(**extra: Any) -> onnx.ModelProto:
    """One-split TreeEnsembleRegressor stamped ai.onnx.ml 3, IR 10."""
    from onnx import TensorProto, helper

    tree = helper.make_node(
        "TreeEnsembleRegressor", ["X"], ["Y"], domain="ai.onnx.ml", n_targets=1,
        nodes_treeids=[0, 0, 0], nodes_nodeids=[0, 1, 2], nodes_featureids=[0, 0, 0],
        nodes_modes=["BRANCH_LEQ", "LEAF", "LEAF"], nodes_truenodeids=[1, 0, 0], nodes_falsenodeids=[2, 0, 0],
        target_treeids=[0, 0], target_nodeids=[1, 2], target_ids=[0, 0], target_weights=[-1.0, 1.0],
        **(extra or {"nodes_values": [0.5, 0.0, 0.0]}),
    )  # fmt: skip
    graph = helper.make_graph(
        [tree],
        "t",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 1])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["N", 1])],
    )
    opsets = [helper.make_opsetid("", 18), helper.make_opsetid("ai.onnx.ml", 3)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=10)


def test_ml_domain_is_restamped_when_the_older_schema_has_the_node() -> None:
    import onnxruntime as ort

    from exporter.edge.target import downgrade
    from runtime.compat import target_for

    model = downgrade(_tree_model(), target_for("1.10"))
    assert {o.domain: o.version for o in model.opset_import} == {"": 15, "ai.onnx.ml": 2}
    assert model.ir_version == 8
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    out = sess.run(None, {"X": np.array([[0.0], [1.0]], dtype=np.float32)})[0]
    np.testing.assert_array_equal(out.ravel(), [-1.0, 1.0])


def test_min_runtime_refuses_what_an_older_runtime_cannot_run() -> None:
    from onnx import helper

    from exporter.edge.target import downgrade
    from runtime.compat import target_for

    # Thresholds as a double tensor: an attribute ai.onnx.ml 2 does not have.
    as_tensor = helper.make_tensor("t", onnx.TensorProto.DOUBLE, [3], [0.5, 0.0, 0.0])
    with pytest.raises(CompatibilityError, match=r"TreeEnsembleRegressor uses \['nodes_values_as_tensor'\]"):
        downgrade(_tree_model(nodes_values_as_tensor=as_tensor), target_for("1.10"))
    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), RandomForestRegressor(n_estimators=3, random_state=0)).fit(X, y)
    with pytest.raises(CompatibilityError, match=r"older than the oldest supported target 1\.10"):
        exporter.export(pipe, sample=X, min_runtime="1.8")


def test_runtime_refuses_a_model_for_a_newer_onnxruntime(
    all_variants: tuple[Path, Any], digits_net: tuple[Any, Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, _ = all_variants
    pipe, X, _ = digits_net
    old = exporter.export(pipe, sample=X[1200:1300], min_runtime="1.16")
    monkeypatch.setattr("runtime.model.ort.__version__", "1.16.3")
    with pytest.raises(ModelLoadError, match=r"needs onnxruntime >= 1\.18.*--min-runtime 1\.16"):
        runtime.load(folder / "model.onnx")  # IR 10
    assert runtime.load(old.model.SerializeToString()).predict(X[:5]).shape == (5,)


def test_cli_edge_options(
    tmp_path: Path, digits_net: tuple[Any, Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    pipe, X, _ = digits_net
    (tmp_path / "p.pkl").write_bytes(pickle.dumps(pipe))
    np.save(tmp_path / "rows.npy", X[1200:1500])
    args = [str(tmp_path / "p.pkl"), "--sample", str(tmp_path / "rows.npy"), "-o", str(tmp_path / "m.onnx")]
    edge = ["--quantize", "dynamic", "--format", "ort", "--min-runtime", "1.16", "--json"]
    assert main([*args, *edge]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["runtime_target"]["onnxruntime"] == "1.16" and doc["variants"][0]["name"] == "int8-dynamic"
    assert sorted(Path(f).name for f in doc["files"]) == [
        "m.int8.onnx",
        "m.int8.ort",
        "m.ort",
        "required_operators.config",
    ]
    assert main([*args, "--min-runtime", "0.9"]) == 2
    assert "--min-runtime" in capsys.readouterr().err
    from runtime.__main__ import main as runtime_main

    assert runtime_main(["verify", str(tmp_path / "m.int8.onnx")]) == 0
    capsys.readouterr()
    assert runtime_main(["info", str(tmp_path / "m.int8.onnx")]) == 0
    info = capsys.readouterr().out
    assert "target:     onnxruntime >= 1.16" in info and "variant:    int8-dynamic:" in info
    # exporter check applies the variant's own rules (labels >= 99%) to it
    assert (
        main(
            [
                "check",
                str(tmp_path / "p.pkl"),
                str(tmp_path / "m.int8.onnx"),
                "--data",
                str(tmp_path / "rows.npy"),
            ]
        )
        == 0
    )


RUN_EVERY_FILE = textwrap.dedent("""
    import json, sys
    import numpy as np
    import runtime
    from runtime.verify import verify
    out = {"imports": {}}
    for name in ("torch", "sklearn", "onnx", "pandas"):
        try:
            __import__(name)
            out["imports"][name] = True
        except ImportError:
            out["imports"][name] = False
    import exporter  # shipped by the base install too, but without what it needs to export
    out["imports"]["exporter usable"] = exporter.MISSING_DEPENDENCY is None
    X = np.load(sys.argv[1])
    for path in sys.argv[2:]:
        try:
            model = runtime.load(path)
            out[path] = {"labels": model.predict(X).tolist(), "verified": verify(model).passed}
        except Exception as exc:
            out[path] = {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(out))
""")


def _run_in(python: Path, rows: Path, files: list[Path]) -> dict[str, Any]:
    done = subprocess.run(
        [str(python), "-c", RUN_EVERY_FILE, str(rows), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_runtime_only_environment_runs_every_variant(
    tmp_path: Path, all_variants: tuple[Path, Any], digits_net: tuple[Any, Any, Any]
) -> None:
    """A fresh venv with the base install only (numpy + onnxruntime + runtime) loads, predicts and
    verifies every variant; torch, sklearn and onnx are absent there (the exporter package is
    shipped, and knows it cannot export)."""
    folder, _ = all_variants
    pipe, X, _ = digits_net
    python = runtime_only_env(tmp_path / "env")
    np.save(tmp_path / "rows.npy", X[:200])
    out = _run_in(python, tmp_path / "rows.npy", [folder / f for f in FILES])
    assert not any(out["imports"].values()), out["imports"]
    native = pipe.predict(X[:200])
    for name in FILES:
        got = out[str(folder / name)]
        assert "error" not in got, got
        assert got["verified"] and np.mean(np.asarray(got["labels"]) == native) >= 0.99, name


@pytest.mark.slow
def test_min_runtime_model_runs_on_that_onnxruntime(tmp_path: Path, digits_net: tuple[Any, Any, Any]) -> None:
    """The real thing: onnxruntime 1.16.3 (installed from the package index into a fresh venv)
    runs the --min-runtime 1.16 model and its variants, and refuses the default export with the
    version it needs."""
    pipe, X, _ = digits_net
    exporter.export(pipe, sample=X[1200:1500], min_runtime="1.16", quantize="static", ort_format=True).save(
        tmp_path / "old.onnx"
    )
    exporter.export(pipe, sample=X[1200:1500]).save(tmp_path / "new.onnx")
    python = pip_env(tmp_path / "env", ["onnxruntime==1.16.3", "numpy<2"])
    (tmp_path / "env" / "lib").mkdir(exist_ok=True)
    site = next((tmp_path / "env" / "lib").glob("python*/site-packages"))
    (site / "runtime").symlink_to(Path(runtime.__file__).parent)
    np.save(tmp_path / "rows.npy", X[:200])
    files = [tmp_path / n for n in ("old.onnx", "old.int8.onnx", "old.ort", "old.int8.ort", "new.onnx")]
    out = _run_in(python, tmp_path / "rows.npy", files)
    native = pipe.predict(X[:200])
    for path in files[:-1]:
        got = out[str(path)]
        assert "error" not in got, got
        assert got["verified"] and np.mean(np.asarray(got["labels"]) == native) >= 0.99, path
    refused = out[str(files[-1])]["error"]
    assert "needs onnxruntime >= 1.18" in refused and "installed 1.16.3" in refused


def test_fp16_with_a_runtime_target_is_valid_onnx(tmp_path: Path) -> None:
    """The float16 converter appends casts out of order: the variant is sorted and checked."""
    X, y = load_iris(return_X_y=True)
    X = X.astype(np.float32)
    pipe = make_pipeline(StandardScaler(), TorchClassifier(hidden=8, epochs=30)).fit(X, y)
    exporter.export(pipe, sample=X, fp16=True, min_runtime="1.16").save(tmp_path / "m.onnx")
    fp16 = onnx.load(str(tmp_path / "m.fp16.onnx"))
    onnx.checker.check_model(fp16, full_check=True)
    assert fp16.ir_version <= 9
    meta = runtime.load(tmp_path / "m.fp16.onnx").metadata
    assert meta["variant"]["bytes"] == (tmp_path / "m.fp16.onnx").stat().st_size  # as written


def test_variant_label_gate_does_not_forgive_real_flips() -> None:
    """With a loose probability atol, a flip between classes 0.2 apart is not a 'tie'."""
    from runtime.parity import compare

    proba = np.tile([[0.6, 0.4]], (100, 1))
    want = np.zeros(100, dtype=np.int64)
    got = want.copy()
    got[:5] = 1  # 95 % agreement
    expected = {"label": want, "probabilities": proba}
    actual = {"label": got, "probabilities": proba}
    loose = {"probabilities": (0.3, 0.0)}
    assert compare(expected, actual, loose, min_label_agreement=0.99).passed  # old rule: forgiven
    report = compare(expected, actual, loose, min_label_agreement=0.99, tie_atol=1e-4)
    assert not report.passed and report.outputs[0].label_ties == 0


def test_min_runtime_keeps_text_pipelines() -> None:
    """The Tokenizer lives in onnxruntime's com.microsoft domain, present in every release."""
    from tests.cases import CASES, fit_case

    case = next(c for c in CASES if c.id == "count-logistic")
    estimator, docs, _ = fit_case(case)
    result = exporter.export(estimator, sample=docs[:60], min_runtime="1.16")
    assert result.report.passed and result.model.ir_version <= 9
    assert {o.domain for o in result.model.opset_import} >= {"com.microsoft"}
