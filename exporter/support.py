"""The support matrix, generated from the registry: ``python -m exporter.support [--write README.md]``.

The README's matrix is this output between two markers; a test fails when they differ, so the
documentation cannot drift from what the registry (and its case table) really covers.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from exporter.registration import load_builtin
from exporter.registry import SKLEARN, public_name

START, END = "<!-- support-matrix:start -->", "<!-- support-matrix:end -->"

# What a user must know about a step beyond "it converts".
NOTES = {
    "TfidfVectorizer": "analyzer word / char / char_wb, stop words with n-grams, sublinear_tf: exact (our "
    "converter); token_pattern translated to RE2 with Python's Unicode classes, refused where RE2 cannot "
    "match it (capturing groups, lookarounds, inner \\b); custom tokenizer / preprocessor / analyzer, "
    "strip_accents refused",
    "CountVectorizer": "as TfidfVectorizer",
    "RandomForestClassifier": "float32 thresholds: labels may flip near a split (agreement reported)",
    "RandomForestRegressor": "float32 thresholds (see RandomForestClassifier)",
    "GradientBoostingClassifier": "float32 thresholds; no float64 mode (skl2onnx 1.20 double trees fail)",
    "HistGradientBoostingClassifier": "float32 thresholds; NaN routed as learned",
    "OneHotEncoder": "string / object / category columns; handle_unknown='ignore' → all zeros; infrequent "
    "categories (min_frequency, max_categories) grouped as sklearn does",
    "OrdinalEncoder": "unknown categories → unknown_value",
    "SimpleImputer": "the runtime accepts NaN only in the columns an imputer reads; add_indicator=True "
    "appends the indicator columns (skl2onnx drops them)",
    "FunctionTransformer": "func=None, np.log1p/expm1/log/exp/sqrt/abs, or exporter.register_function",
    "SVC": "probability=True for predict_proba",
    "LinearSVC": "labels only (no predict_proba); also inside a Pipeline (skl2onnx refused its zipmap "
    "option)",
    "SGDClassifier": "predict_proba with loss='log_loss' / 'modified_huber'",
    "KNeighborsClassifier": "weights='distance' as sklearn (skl2onnx's weights were uniform); distance ties "
    "may pick another neighbour",
    "KNeighborsRegressor": "as KNeighborsClassifier",
    "ExtraTreesClassifier": "float32 thresholds (see RandomForestClassifier)",
    "ExtraTreesRegressor": "float32 thresholds (see RandomForestClassifier)",
    "DecisionTreeClassifier": "float32 thresholds (see RandomForestClassifier)",
    "DecisionTreeRegressor": "float32 thresholds (see RandomForestClassifier)",
    "GradientBoostingRegressor": "float32 thresholds",
    "HistGradientBoostingRegressor": "float32 thresholds; NaN routed as learned",
    "IsolationForest": "predict (-1 / 1) only, exported as the task 'regressor'; decision_function / "
    "score_samples are not outputs",
    "KMeans": "predict (cluster ids) only, exported as the task 'regressor'; transform (distances) is not "
    "an output",
    "MultinomialNB": "float32 log-likelihoods: probabilities within 1e-4",
    "ComplementNB": "as MultinomialNB",
    "QuantileTransformer": "skl2onnx's converter is slow to build on many features (seconds per feature)",
    "SplineTransformer": "our converter: every extrapolation, handle_missing='zeros', include_bias; "
    "extrapolation='linear' with degree <= 1 on several features refused (sklearn's own transform shifts "
    "their boundaries)",
    "MissingIndicator": "our converter: numeric missing_values (NaN or a number); 0/1 floats for "
    "sklearn's bools",
    "TargetEncoder": "unseen categories → the target mean, as sklearn",
    "OneVsOneClassifier": "labels only (no predict_proba); classes_[argmax] as sklearn (skl2onnx gave "
    "the index)",
    "BaggingClassifier": "estimators without predict_proba vote, as sklearn (skl2onnx summed over the "
    "wrong axis)",
    "NeuralNetClassifier": "predict returns indices, like skorch; predict_nonlinearity from the criterion",
    "NeuralNetBinaryClassifier": "sigmoid + threshold; uint8 labels like skorch",
    "NeuralNetRegressor": "predict_nonlinearity must be the identity",
    "VotingClassifier": "soft and hard; torch leaves inside (also in every container below)",
    "StackingClassifier": "with or without passthrough",
    "CalibratedClassifierCV": "sigmoid and isotonic (interpolated as sklearn does; skl2onnx 1.20 takes the "
    "nearest point)",
    "TransformedTargetRegressor": "transformer: Standard/MinMax/MaxAbs/Robust scaler, or func/inverse_func "
    "with a registered expression (np.log1p/np.expm1, ...)",
}


def support_matrix() -> str:
    rows = ["| step | converted by | notes |", "|---|---|---|"]
    for cls, entry in load_builtin(everything=True).items():
        kind = "skl2onnx" if entry is SKLEARN else "torch.onnx (dynamo) + head"
        rows.append(f"| `{public_name(cls)}` | {kind} | {NOTES.get(cls.__name__, '')} |")
    rows.append(
        "| any object with `fit` + `predict`/`transform` holding one fitted `torch.nn.Module` "
        "| torch.onnx (dynamo) + head | see 'Torch-backed steps' |"
    )
    return "\n".join(rows)


def readme_block(text: str) -> str | None:
    match = re.search(re.escape(START) + r"\n?(.*?)\n?" + re.escape(END), text, re.S)
    return match.group(1) if match else None


def write(readme: Path) -> None:
    text = readme.read_text()
    if readme_block(text) is None:
        raise SystemExit(f"{readme}: markers {START} / {END} not found")
    block = f"{START}\n{support_matrix()}\n{END}"
    readme.write_text(re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _: block, text, flags=re.S))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m exporter.support", description=__doc__)
    parser.add_argument("--write", type=Path, metavar="README", help="rewrite the matrix between the markers")
    args = parser.parse_args(argv)
    if args.write:
        write(args.write)
    else:
        print(support_matrix())
    return 0


if __name__ == "__main__":
    sys.exit(main())
