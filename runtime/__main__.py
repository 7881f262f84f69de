"""``python -m runtime info|predict|bench|verify MODEL ...``: parse arguments, call the runtime.

Exit codes: 0 success; 1 ``verify`` found a mismatch; 2 bad model, data or option. Every failure
is one line on stderr (``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from runtime.errors import InvalidInputError, ModelRuntimeError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m runtime", description="Run models written by exporter.")
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("model", help="the .onnx file")
        sub.add_argument("--providers", default="auto", help="auto, or a comma-separated provider list")
        sub.add_argument(
            "--precision", default="default", choices=["default", "fp32"], help="fp32: no TF32 on CUDA"
        )
        sub.add_argument(
            "--strict", action="store_true", help="fail when a requested GPU provider is not active"
        )
        sub.add_argument("--debug", action="store_true", help="show the full traceback on errors")
        return sub

    info = command("info", "schema, classes, outputs, providers, size and export parity of a model")
    info.add_argument("--json", action="store_true", help="print one JSON document")

    predict = command("predict", "predict on the rows of a CSV / NPY / Parquet file")
    predict.add_argument("data", help="input rows (.csv, .npy, .parquet)")
    predict.add_argument("-o", "--output", help="write to this .csv or .json file (default: CSV on stdout)")
    predict.add_argument(
        "--method",
        default="auto",
        choices=["auto", "predict", "predict_proba", "transform", "run"],
        help="auto: label + probabilities (classifiers), predictions (regressors), features (transformers)",
    )
    predict.add_argument("--batch-size", type=int, help="stream the rows in chunks of this size")

    bench = command("bench", "p50/p99 latency and rows/s per batch size and provider")
    bench.add_argument("--batch", default="1,64,4096", help="comma-separated batch sizes (default 1,64,4096)")
    bench.add_argument("--min-time", type=float, default=0.5, help="seconds to measure each batch size")
    bench.add_argument("--json", action="store_true", help="print one JSON document")

    verify = command("verify", "replay the golden rows embedded at export; exit 1 on mismatch")
    verify.add_argument("--atol", type=float, help="absolute tolerance for numeric outputs")
    verify.add_argument("--rtol", type=float, help="relative tolerance for numeric outputs")
    verify.add_argument("--json", action="store_true", help="print one JSON document")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (ModelRuntimeError, OSError) as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _load(args: argparse.Namespace) -> Any:
    import runtime

    providers: Any = args.providers if args.providers == "auto" else args.providers.split(",")
    return runtime.load(args.model, providers=providers, precision=args.precision, strict=args.strict)


def _info(args: argparse.Namespace) -> int:
    from runtime.describe import describe, format_info

    info = describe(_load(args))
    print(json.dumps(info) if args.json else format_info(info))
    return 0


def _predict(args: argparse.Namespace) -> int:
    from runtime.datafiles import predict_file, write_columns

    columns = predict_file(_load(args), args.data, args.method, args.batch_size)
    text = write_columns(columns, args.output)
    if not args.output:
        sys.stdout.write(text)
    return 0


def _bench(args: argparse.Namespace) -> int:
    from runtime.bench import bench, format_bench

    try:
        batches = [int(b) for b in args.batch.split(",")]
    except ValueError:
        raise InvalidInputError(f"--batch {args.batch!r}: use comma-separated row counts") from None
    rows = bench(_load(args), batches, min_time=args.min_time)
    print(json.dumps(rows) if args.json else format_bench(rows))
    return 0


def _verify(args: argparse.Namespace) -> int:
    from runtime.verify import verify

    model = _load(args)
    tolerances = None
    if args.atol is not None or args.rtol is not None:
        from runtime.parity import DEFAULT_TOLERANCES

        tolerances = {
            name: (args.atol if args.atol is not None else a, args.rtol if args.rtol is not None else r)
            for name, (a, r) in DEFAULT_TOLERANCES.items()
        }
    report = verify(model, tolerances)
    where = f"providers {', '.join(model.providers)}, precision {model.precision}"
    if args.json:
        print(json.dumps({**report.to_dict(), "providers": model.providers, "precision": model.precision}))
    else:
        print(report.format().replace("parity on", "verify on", 1) + f"\n  ({where})")
    return 0 if report.passed else 1


COMMANDS = {"info": _info, "predict": _predict, "bench": _bench, "verify": _verify}

if __name__ == "__main__":
    sys.exit(main())
