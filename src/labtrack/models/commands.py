"""``labtrack models serve`` and ``labtrack models predict``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def _serve(args: argparse.Namespace) -> int:
    from labtrack.models.scoring import build_server

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    metrics_interval = args.metrics_interval
    if metrics_interval is None and args.variant and not args.no_metrics:
        metrics_interval = 10.0
    if args.no_metrics:
        metrics_interval = None
    server = build_server(
        models=[args.model_uri] if args.model_uri else None, variants=args.variant,
        host=args.host, port=args.port, threads=args.threads,
        key_header=args.request_key_header,
        poll_interval=args.poll_interval if args.poll_interval > 0 else None,
        metrics_interval=metrics_interval, experiment=args.experiment,
        tracking_uri=args.tracking_uri, access_log=args.access_log,
    )
    if server.reporter is not None:
        logging.getLogger("labtrack.models.serving").info(
            "per-variant metrics every %gs in run %s (experiment '%s')", metrics_interval,
            server.reporter.run_id, args.experiment)

    def listening() -> None:
        print(f"Listening on {server.url}", flush=True)

    server.serve(listening)
    return 0


def _predict(args: argparse.Namespace) -> int:
    from labtrack.models.pyfunc import load_model
    from labtrack.models.scoring import (
        CONTENT_TYPE_CSV,
        CONTENT_TYPE_JSON,
        CONTENT_TYPE_PARQUET,
        score,
    )

    kind = args.content_type
    if kind is None:
        suffix = Path(args.input_path).suffix.lower() if args.input_path else ""
        kind = {".csv": "csv", ".parquet": "parquet"}.get(suffix, "json")
    if args.input_path:
        path = Path(args.input_path)
        if not path.is_file():
            print(f"labtrack: input file '{path}' does not exist.", file=sys.stderr)
            return 2
        body = path.read_bytes()
    else:
        body = sys.stdin.buffer.read()
    model = load_model(args.model_uri, client=None if not args.tracking_uri else _client(args))
    media = {"csv": CONTENT_TYPE_CSV, "parquet": CONTENT_TYPE_PARQUET}.get(kind, CONTENT_TYPE_JSON)
    result = score(model, body, media)
    if result.status != 200:
        print(f"labtrack: {result.body}", file=sys.stderr)
        return 2
    if args.output_path:
        Path(args.output_path).write_text(result.body + "\n", encoding="utf-8")
    else:
        sys.stdout.write(result.body + "\n")
    return 0


def _client(args: argparse.Namespace):
    from labtrack.client import TrackingClient

    return TrackingClient(args.tracking_uri)


def add_commands(commands) -> None:
    """Add ``labtrack models serve|predict``."""
    models = commands.add_parser(
        "models", help="serve models over REST (MLflow's scoring protocol) or score files",
        description="Models in MLflow's MLmodel format: serve them over REST, A/B test "
        "registry versions, score files.")
    sub = models.add_subparsers(dest="models_command", required=True, metavar="COMMAND")

    serve = sub.add_parser(
        "serve", help="serve a model (or A/B variants) over REST",
        description="Serve a model with MLflow's scoring protocol (/invocations, /ping, "
        "/health, /version). With --variant, split traffic between models by weight, sticky "
        "per request key; variants on aliases, stages or 'latest' reload when the registry "
        "moves them.",
        epilog="Examples:\n  labtrack models serve -m models:/recommender@champion --port 5001\n"
        "  labtrack models serve --variant a=models:/rec@champion:90 "
        "--variant b=models:/rec@challenger:10",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    target = serve.add_mutually_exclusive_group(required=True)
    target.add_argument("-m", "--model-uri", help="the model: runs:/<run>/<name>, "
                        "models:/<name>/<version|stage|latest>, models:/<name>@<alias>, "
                        "models:/<model_id> or a folder")
    target.add_argument("--variant", action="append", metavar="NAME=URI:WEIGHT",
                        help="an A/B variant (repeatable), e.g. a=models:/rec@champion:90")
    serve.add_argument("--host", default="127.0.0.1",
                       help="interface to listen on (default: 127.0.0.1)")
    serve.add_argument("-p", "--port", type=int, default=5001,
                       help="port (default: 5001; 0 picks a free one, printed at start)")
    serve.add_argument("--threads", type=int, default=4,
                       help="threads running predictions (default: 4; 0: on the event loop)")
    serve.add_argument("--request-key-header", default=None, metavar="HEADER",
                       help="request header whose value keeps a caller on one variant "
                       "(default: X-Request-Key)")
    serve.add_argument("--poll-interval", type=float, default=10.0, metavar="SECONDS",
                       help="how often the registry is asked where aliases/stages point "
                       "(default: 10; 0: never)")
    serve.add_argument("--metrics-interval", type=float, default=None, metavar="SECONDS",
                       help="log per-variant metrics to a tracking run this often (default: "
                       "10 with --variant, off for a single model)")
    serve.add_argument("--no-metrics", action="store_true",
                       help="do not log per-variant metrics")
    serve.add_argument("--experiment", default="serving",
                       help="experiment of the metrics run (default: serving)")
    serve.add_argument("--tracking-uri", default=None,
                       help="the store or server holding the registry and runs (default: "
                       "$LABTRACK_TRACKING_URI or the embedded store)")
    serve.add_argument("--access-log", action="store_true",
                       help="log every request (default: only failed ones)")
    serve.set_defaults(handler=_serve)

    predict = sub.add_parser(
        "predict", help="score a CSV, Parquet or JSON file with a model (batch)",
        description="Score a file with a model; the input is CSV (with a header row), Parquet "
        "(needs pyarrow) or JSON in the scoring protocol's format (dataframe_split, "
        "dataframe_records, instances or inputs). Writes {\"predictions\": …}.")
    predict.add_argument("-m", "--model-uri", required=True, help="the model (as for serve)")
    predict.add_argument("-i", "--input-path", default=None,
                         help="input file, .csv, .parquet or .json (default: stdin)")
    predict.add_argument("-o", "--output-path", default=None,
                         help="output file (default: stdout)")
    predict.add_argument("-t", "--content-type", choices=("json", "csv", "parquet"),
                         default=None,
                         help="input format (default: from the file extension, else json)")
    predict.add_argument("--tracking-uri", default=None,
                         help="the store or server for runs:/ and models:/ URIs")
    predict.set_defaults(handler=_predict)
