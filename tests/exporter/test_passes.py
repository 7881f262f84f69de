"""Optimizing passes: each rewrite against onnxruntime's own kernels, folding's rules, reverts."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import exporter
from exporter import passes
from exporter.__main__ import main
from exporter.diagnose import diagnose
from exporter.passes import cpu_only_nodes, infer_shapes
from exporter.passes.cleanup import cleanup
from exporter.passes.fold import fold_affine
from exporter.passes.lower import lower
from tests.models import TorchClassifier

ML = "ai.onnx.ml"
N_ROWS, WIDTH = 64, 6


def _model(
    nodes: list[onnx.NodeProto],
    inputs: list[tuple[str, int, list[Any]]],
    outputs: list[tuple[str, int, list[Any]]],
    initializers: list[onnx.TensorProto] = (),  # type: ignore[assignment]
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "t",
        [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
        [helper.make_tensor_value_info(n, t, s) for n, t, s in outputs],
        list(initializers),
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid(ML, 3)], ir_version=8
    )
    return infer_shapes(model)


def _run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    return copy


def _assert_lowered_equal(model: onnx.ModelProto, feeds: dict[str, np.ndarray], atol: float = 0.0) -> None:
    """The lowered graph has no ml node left and gives onnxruntime's own answers."""
    lowered = lower(_copy(model))
    onnx.checker.check_model(lowered, full_check=True)
    assert not [n for n in lowered.graph.node if n.domain == ML], [n.op_type for n in lowered.graph.node]
    for want, got in zip(_run(model, feeds), _run(lowered, feeds), strict=True):
        assert want.dtype == got.dtype and want.shape == got.shape
        if want.dtype.kind in "fc":
            np.testing.assert_allclose(got, want, atol=atol, rtol=0)
        else:
            np.testing.assert_array_equal(got, want)


def _rows(rng: np.random.Generator, dtype: Any = np.float32) -> np.ndarray:
    x = rng.normal(scale=3.0, size=(N_ROWS, WIDTH))
    x[0] = 0.0  # an all-zero row: the zero-norm rule of Normalizer
    x[1, :3] = -np.abs(x[1, :3]) - 1  # negatives; a row whose max is negative
    x[1, 3:] = -1.0
    return x.astype(dtype)


ELEM = {np.float32: TensorProto.FLOAT, np.float64: TensorProto.DOUBLE, np.int64: TensorProto.INT64}


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_scaler(dtype: Any) -> None:
    rng = np.random.default_rng(0)
    node = helper.make_node(
        "Scaler", ["X"], ["Y"], domain=ML, offset=list(rng.normal(size=WIDTH)), scale=list(rng.random(WIDTH))
    )
    model = _model([node], [("X", ELEM[dtype], ["N", WIDTH])], [("Y", TensorProto.FLOAT, ["N", WIDTH])])
    _assert_lowered_equal(model, {"X": _rows(rng, dtype)})


@pytest.mark.parametrize("norm", ["MAX", "L1", "L2"])
def test_normalizer(norm: str) -> None:
    rng = np.random.default_rng(1)
    node = helper.make_node("Normalizer", ["X"], ["Y"], domain=ML, norm=norm)
    model = _model([node], [("X", TensorProto.FLOAT, ["N", WIDTH])], [("Y", TensorProto.FLOAT, ["N", WIDTH])])
    _assert_lowered_equal(model, {"X": _rows(rng)}, atol=1e-7)


def test_binarizer() -> None:
    """(onnxruntime's Binarizer refuses NaN; the runtime refuses NaN inputs unless a step imputes.)"""
    rng = np.random.default_rng(2)
    x = _rows(rng)
    x[2, 1] = 0.5  # exactly the threshold: not above it
    node = helper.make_node("Binarizer", ["X"], ["B"], domain=ML, threshold=0.5)
    model = _model([node], [("X", TensorProto.FLOAT, ["N", WIDTH])], [("B", TensorProto.FLOAT, ["N", WIDTH])])
    _assert_lowered_equal(model, {"X": x})


def test_imputer() -> None:
    rng = np.random.default_rng(2)
    x = _rows(rng)
    x[3, :2] = np.nan
    x[4, 2] = -999.0
    fill = [float(v) for v in range(WIDTH)]
    nodes = [
        helper.make_node("Imputer", ["X"], ["I"], domain=ML, imputed_value_floats=fill,
                         replaced_value_float=float("nan")),
        helper.make_node("Imputer", ["X"], ["J"], domain=ML, imputed_value_floats=[7.0],
                         replaced_value_float=-999.0),
    ]  # fmt: skip
    outputs = [(n, TensorProto.FLOAT, ["N", WIDTH]) for n in "IJ"]
    _assert_lowered_equal(_model(nodes, [("X", TensorProto.FLOAT, ["N", WIDTH])], outputs), {"X": x})


@pytest.mark.parametrize("targets", [1, 3])
def test_linear_regressor(targets: int) -> None:
    rng = np.random.default_rng(3)
    node = helper.make_node(
        "LinearRegressor", ["X"], ["Y"], domain=ML, targets=targets,
        coefficients=list(rng.normal(size=targets * WIDTH)), intercepts=list(rng.normal(size=targets)),
    )  # fmt: skip
    model = _model(
        [node], [("X", TensorProto.FLOAT, ["N", WIDTH])], [("Y", TensorProto.FLOAT, ["N", targets])]
    )
    _assert_lowered_equal(model, {"X": _rows(rng)}, atol=1e-5)


@pytest.mark.parametrize(
    ("post", "labels"),
    [
        ("NONE", [3, 5, 9]),
        ("SOFTMAX", [0, 1, 2, 3]),
        ("LOGISTIC", [b"neg", b"pos"]),
        ("SOFTMAX", [b"a", b"b"]),
    ],
)
def test_linear_classifier(post: str, labels: list[Any]) -> None:
    rng = np.random.default_rng(4)
    rows = len(labels)
    coefficients = rng.normal(size=rows * WIDTH)
    coefficients[:WIDTH] = coefficients[WIDTH : 2 * WIDTH]  # classes 0 and 1 tie everywhere: first wins
    strings = isinstance(labels[0], bytes)
    node = helper.make_node(
        "LinearClassifier", ["X"], ["label", "scores"], domain=ML, post_transform=post,
        coefficients=list(coefficients), intercepts=[0.0] * rows,
        **({"classlabels_strings": labels} if strings else {"classlabels_ints": labels}),
    )  # fmt: skip
    label_type = TensorProto.STRING if strings else TensorProto.INT64
    model = _model(
        [node],
        [("X", TensorProto.FLOAT, ["N", WIDTH])],
        [("label", label_type, ["N"]), ("scores", TensorProto.FLOAT, ["N", rows])],
    )
    _assert_lowered_equal(model, {"X": _rows(rng)}, atol=1e-6)


def test_single_row_linear_classifier_is_left_for_the_cpu() -> None:
    """One coefficient row: onnxruntime's binary rules (sign of the score) are not copied."""
    node = helper.make_node(
        "LinearClassifier", ["X"], ["label", "scores"], domain=ML, post_transform="LOGISTIC",
        coefficients=[1.0] * WIDTH, intercepts=[0.5], classlabels_ints=[0, 1],
    )  # fmt: skip
    model = _model(
        [node],
        [("X", TensorProto.FLOAT, ["N", WIDTH])],
        [("label", TensorProto.INT64, ["N"]), ("scores", TensorProto.FLOAT, ["N", 2])],
    )
    lowered = lower(_copy(model))
    assert [n.op_type for n in lowered.graph.node] == ["LinearClassifier"]
    assert cpu_only_nodes(lowered) == {"ai.onnx.ml.LinearClassifier": 1}


def test_array_feature_extractor() -> None:
    rng = np.random.default_rng(5)
    indices = numpy_helper.from_array(np.array([4, 0, 4, 2], dtype=np.int64), "idx")
    node = helper.make_node("ArrayFeatureExtractor", ["X", "idx"], ["Y"], domain=ML)
    model = _model(
        [node], [("X", TensorProto.FLOAT, ["N", WIDTH])], [("Y", TensorProto.FLOAT, ["N", 4])], [indices]
    )
    _assert_lowered_equal(model, {"X": _rows(rng)})


# -- affine folding ------------------------------------------------------------------------------


def _affine_chain(offset: float = 0.0) -> tuple[onnx.ModelProto, np.ndarray]:
    """Sub → Mul → Sub → MatMul → Gemm → Relu → Gemm: a scaler, a PCA and an MLP, as merged."""
    rng = np.random.default_rng(6)
    d, k, h = 12, 8, 16
    init = {
        "mean": rng.normal(size=d) * 3 + offset,
        "inv_std": 1.0 / (rng.random(d) + 0.5),
        "pca_mean": rng.normal(size=d) * 0.1,
        "components": rng.normal(size=(d, k)),
        "w1": rng.normal(size=(h, k)),
        "b1": rng.normal(size=h),
        "w2": rng.normal(size=(3, h)),
        "b2": rng.normal(size=3),
    }
    nodes = [
        helper.make_node("Sub", ["X", "mean"], ["centred"]),
        helper.make_node("Mul", ["centred", "inv_std"], ["scaled"]),
        helper.make_node("Sub", ["scaled", "pca_mean"], ["pca_centred"]),
        helper.make_node("MatMul", ["pca_centred", "components"], ["reduced"]),
        helper.make_node("Gemm", ["reduced", "w1", "b1"], ["hidden"], transB=1),
        helper.make_node("Relu", ["hidden"], ["active"]),
        helper.make_node("Gemm", ["active", "w2", "b2"], ["logits"], transB=1),
    ]
    inits = [numpy_helper.from_array(v.astype(np.float32), n) for n, v in init.items()]
    model = _model(
        nodes, [("X", TensorProto.FLOAT, ["N", d])], [("logits", TensorProto.FLOAT, ["N", 3])], inits
    )
    x = (rng.normal(size=(256, d)) * 3 + offset + init["mean"] - offset).astype(np.float32)
    return model, x


def test_fold_collapses_the_chain_and_keeps_the_leading_offset() -> None:
    model, x = _affine_chain()
    folded = cleanup(infer_shapes(fold_affine(_copy(model))))
    assert [n.op_type for n in folded.graph.node] == ["Sub", "Gemm", "Relu", "Gemm"]
    assert {i.name for i in folded.graph.initializer}.isdisjoint({"inv_std", "components", "w1"})  # unused
    (want,), (got,) = _run(model, {"X": x}), _run(folded, {"X": x})
    np.testing.assert_allclose(got, want, atol=2e-5, rtol=1e-5)  # float32 rounding of the product


def test_fold_keeps_large_offsets_exact() -> None:
    """Features around 2,000: centring first (kept) vs folding the mean into the bias (not done)."""
    model, x = _affine_chain(offset=2000.0)
    folded = fold_affine(_copy(model))
    (want,), (got,) = _run(model, {"X": x}), _run(folded, {"X": x})
    np.testing.assert_allclose(got, want, atol=5e-5, rtol=1e-5)


def test_fold_never_crosses_a_nonlinearity_or_a_shared_value() -> None:
    model, _ = _affine_chain()
    # "scaled" read twice: the Mul cannot be folded away.
    model.graph.output.append(helper.make_tensor_value_info("scaled", TensorProto.FLOAT, ["N", 12]))
    folded = fold_affine(_copy(model))
    ops = [n.op_type for n in folded.graph.node]
    assert ops[:2] == ["Sub", "Mul"] and ops.count("Relu") == 1 and ops[-1] == "Gemm"
    assert "scaled" in {o for n in folded.graph.node for o in n.output}


def test_fold_does_not_grow_a_bottleneck() -> None:
    """64 → 2 → 64: the product (64 x 64) costs 16 times the pair; the two matmuls stay."""
    rng = np.random.default_rng(7)
    inits = [
        numpy_helper.from_array(rng.normal(size=(64, 2)).astype(np.float32), "a"),
        numpy_helper.from_array(rng.normal(size=(2, 64)).astype(np.float32), "b"),
    ]
    nodes = [helper.make_node("MatMul", ["X", "a"], ["t"]), helper.make_node("MatMul", ["t", "b"], ["Y"])]
    model = _model(nodes, [("X", TensorProto.FLOAT, ["N", 64])], [("Y", TensorProto.FLOAT, ["N", 64])], inits)
    assert [n.op_type for n in fold_affine(_copy(model)).graph.node] == ["MatMul", "MatMul"]


def test_cleanup_removes_identities_copies_and_round_trip_casts() -> None:
    nodes = [
        helper.make_node("Identity", ["X"], ["a"]),
        helper.make_node("Cast", ["a"], ["b"], to=TensorProto.DOUBLE),
        helper.make_node("Cast", ["b"], ["c"], to=TensorProto.FLOAT),
        helper.make_node("Concat", ["c"], ["c1"], axis=1),
        helper.make_node("Relu", ["c1"], ["d"]),
        helper.make_node("Identity", ["d"], ["Y"]),
    ]
    model = _model(nodes, [("X", TensorProto.FLOAT, ["N", 3])], [("Y", TensorProto.FLOAT, ["N", 3])])
    cleaned = cleanup(_copy(model))
    assert [(n.op_type, list(n.input), list(n.output)) for n in cleaned.graph.node] == [
        ("Relu", ["X"], ["Y"])
    ]
    assert [o.domain for o in cleaned.opset_import] == [""]  # no ml node left: no ml import
    x = np.array([[-1, 0, 2]], dtype=np.float32)
    np.testing.assert_array_equal(_run(cleaned, {"X": x})[0], _run(model, {"X": x})[0])


# -- the passes inside export --------------------------------------------------------------------


@pytest.fixture(scope="module")
def scaler_pca_net() -> tuple[Any, np.ndarray]:
    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float32)
    pipe = make_pipeline(StandardScaler(), PCA(32, random_state=0), TorchClassifier(hidden=32, epochs=5))
    return pipe.fit(X[:600], y[:600]), X


def test_export_optimizes_by_default(scaler_pca_net: tuple[Any, np.ndarray]) -> None:
    pipe, X = scaler_pca_net
    result = exporter.export(pipe, sample=X[:200])
    ops = [n.op_type for n in result.model.graph.node]
    assert ops[:3] == ["Sub", "Gemm", "Relu"], ops  # scaler, PCA and first Linear are one Gemm
    assert cpu_only_nodes(result.model) == {} and result.metadata["cpu_only_nodes"] == {}
    by_name = {p["name"]: p for p in result.metadata["passes"]}
    assert by_name["fold_affine"]["nodes_after"] < by_name["fold_affine"]["nodes_before"]
    assert by_name["fold_affine"]["max_abs_change"] < 1e-5
    assert "lowered 1 Scaler; CPU-only left: none" in result.summary()
    # The fold removed the sklearn/torch seam: diagnosis judges those two stages as one piece.
    seams = [s["output"] for s in result.metadata["stages"]]
    assert seams[0] is None and seams[1] is not None
    pieces = diagnose(result.model, result.plan, result.plan.expected, result.metadata["stages"])
    assert [p.stage for p in pieces] == [
        "sklearn stage [standardscaler, pca] + torch stage [torchclassifier]",
        "head of 'torchclassifier'",
    ]
    assert all(p.passed for p in pieces)
    plain = exporter.export(pipe, sample=X[:200], optimize=False)
    assert "Scaler" in [n.op_type for n in plain.model.graph.node]
    import runtime

    fast, slow = runtime.load(result.model.SerializeToString()), runtime.load(plain.model.SerializeToString())
    np.testing.assert_allclose(fast.predict_proba(X), slow.predict_proba(X), atol=1e-5)
    np.testing.assert_allclose(fast.predict_proba(X), pipe.predict_proba(X), atol=1e-4)


def test_a_pass_that_breaks_parity_is_reverted(
    scaler_pca_net: tuple[Any, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    def corrupt(model: onnx.ModelProto) -> onnx.ModelProto:
        model = fold_affine(model)
        for init in model.graph.initializer:
            if init.name.startswith("folded_weight"):
                init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * 1.5, init.name))
        return model

    monkeypatch.setitem(passes.PASSES, "fold_affine", corrupt)
    pipe, X = scaler_pca_net
    result = exporter.export(pipe, sample=X[:200])
    assert result.report.passed
    (fold,) = [p for p in result.passes if p.name == "fold_affine"]
    assert fold.reverted and "parity failed" in fold.detail
    assert "fold_affine: reverted" in result.summary()


def test_cli_no_optimize(tmp_path: Any, scaler_pca_net: tuple[Any, np.ndarray], capsys: Any) -> None:
    import pickle

    pipe, X = scaler_pca_net
    (tmp_path / "p.pkl").write_bytes(pickle.dumps(pipe))
    np.save(tmp_path / "rows.npy", X[:100])
    args = [str(tmp_path / "p.pkl"), "--sample", str(tmp_path / "rows.npy"), "-o"]
    assert main([*args, str(tmp_path / "plain.onnx"), "--no-optimize"]) == 0
    assert "fold_affine" not in capsys.readouterr().out
    assert main([*args, str(tmp_path / "fast.onnx")]) == 0
    assert "fold_affine:" in capsys.readouterr().out
    plain = onnx.load(str(tmp_path / "plain.onnx"))
    fast = onnx.load(str(tmp_path / "fast.onnx"))
    assert len(fast.graph.node) < len(plain.graph.node)


# -- regressions found in review -----------------------------------------------------------------


def test_linear_regressor_ignores_intercepts_that_do_not_match_the_targets() -> None:
    node = helper.make_node(
        "LinearRegressor",
        ["X"],
        ["Y"],
        domain=ML,
        targets=2,
        coefficients=[1.0] * 2 * WIDTH,
        intercepts=[5.0],
    )
    model = _model([node], [("X", TensorProto.FLOAT, ["N", WIDTH])], [("Y", TensorProto.FLOAT, ["N", 2])])
    _assert_lowered_equal(model, {"X": _rows(np.random.default_rng(8))}, atol=1e-5)


def test_imputer_with_fewer_values_than_columns_uses_the_first() -> None:
    node = helper.make_node(
        "Imputer", ["X"], ["Y"], domain=ML, imputed_value_floats=[7.0, 8.0, 9.0], replaced_value_float=0.0
    )
    model = _model([node], [("X", TensorProto.FLOAT, ["N", "F"])], [("Y", TensorProto.FLOAT, ["N", "F"])])
    x = np.array([[0, 1, 0, 2, 0], [3, 0, 0, 0, 4]], dtype=np.float32)
    lowered = lower(_copy(model))
    np.testing.assert_array_equal(_run(lowered, {"X": x})[0], _run(model, {"X": x})[0])


def test_fold_leaves_a_row_broadcast_bias_alone() -> None:
    """Gemm's C of shape (k, 1) broadcasts along rows, not columns: not a per-column bias."""
    rng = np.random.default_rng(9)
    inits = [
        numpy_helper.from_array(rng.random(4).astype(np.float32) + 0.5, "s"),
        numpy_helper.from_array(rng.normal(size=(4, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(np.array([[10.0], [20.0], [30.0]], dtype=np.float32), "c"),
    ]
    nodes = [helper.make_node("Mul", ["X", "s"], ["t"]), helper.make_node("Gemm", ["t", "w", "c"], ["Y"])]
    model = _model(nodes, [("X", TensorProto.FLOAT, [3, 4])], [("Y", TensorProto.FLOAT, [3, 3])], inits)
    x = rng.normal(size=(3, 4)).astype(np.float32)
    np.testing.assert_allclose(
        _run(fold_affine(_copy(model)), {"X": x})[0], _run(model, {"X": x})[0], atol=1e-5
    )


def test_fold_keeps_a_leading_reversed_centring() -> None:
    """c - x with x around 2,000 stays a Sub of its own, like x - c."""
    rng = np.random.default_rng(10)
    inits = [
        numpy_helper.from_array(np.full(4, 2000.0, dtype=np.float32), "m"),
        numpy_helper.from_array(np.ones(4, dtype=np.float32), "s"),
        numpy_helper.from_array(rng.normal(size=(4, 2)).astype(np.float32), "w"),
    ]
    nodes = [
        helper.make_node("Sub", ["m", "X"], ["a"]),
        helper.make_node("Mul", ["a", "s"], ["b"]),
        helper.make_node("MatMul", ["b", "w"], ["Y"]),
    ]
    model = _model(nodes, [("X", TensorProto.FLOAT, ["N", 4])], [("Y", TensorProto.FLOAT, ["N", 2])], inits)
    folded = fold_affine(_copy(model))
    assert [n.op_type for n in folded.graph.node] == ["Sub", "MatMul"]
    assert list(folded.graph.node[0].input) == ["m", "X"]


def test_new_nodes_get_unique_names() -> None:
    """Two unnamed Scalers: onnxruntime refuses duplicate node names, the checker does not."""
    nodes = [
        helper.make_node("Scaler", ["X"], ["a"], domain=ML, offset=[1.0], scale=[2.0]),
        helper.make_node("Scaler", ["a"], ["Y"], domain=ML, offset=[3.0], scale=[4.0]),
    ]
    model = _model(nodes, [("X", TensorProto.FLOAT, ["N", 2])], [("Y", TensorProto.FLOAT, ["N", 2])])
    lowered = lower(_copy(model))
    names = [n.name for n in lowered.graph.node]
    assert len(names) == len(set(names)) == 4
    x = np.ones((2, 2), dtype=np.float32)
    np.testing.assert_array_equal(_run(lowered, {"X": x})[0], _run(model, {"X": x})[0])


def test_a_pass_whose_graph_does_not_run_is_reverted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Valid for onnx.checker, refused by onnxruntime: reverted, the export goes on."""

    def duplicate_names(model: onnx.ModelProto) -> onnx.ModelProto:
        for node in model.graph.node:
            node.name = "same"
        return model

    monkeypatch.setitem(passes.PASSES, "cleanup", duplicate_names)
    nodes = [helper.make_node("Relu", ["X"], ["a"]), helper.make_node("Neg", ["a"], ["Y"])]
    model = _model(nodes, [("X", TensorProto.FLOAT, ["N", 2])], [("Y", TensorProto.FLOAT, ["N", 2])])

    def verify(m: onnx.ModelProto) -> tuple[bool, float | None, dict[str, Any]]:
        return True, 0.0, {"Y": _run(m, {"X": np.ones((1, 2), dtype=np.float32)})[0]}

    _, results = passes.run_passes(model, ["cleanup"], verify=verify)
    assert results[-1].reverted and "does not run" in results[-1].detail
