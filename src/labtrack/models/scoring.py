"""The scoring server: MLflow's scoring protocol on tornado, with A/B routing.

Endpoints (as ``mlflow models serve``):

* ``GET /ping``, ``GET /health`` — 200 with body ``\\n`` once the models are loaded;
* ``GET /version`` — the labtrack version;
* ``POST /invocations`` — ``application/json`` with exactly one of ``dataframe_split``
  (``{"columns": […], "data": [[…]]}``), ``dataframe_records`` (``[{col: value}, …]``),
  ``instances`` (rows) or ``inputs`` (columns or a tensor), plus optional ``params``; or
  ``text/csv`` with a header row, or ``application/vnd.apache.parquet`` (a DataFrame written by
  ``DataFrame.to_parquet()``; needs pyarrow). The answer is ``{"predictions": …}`` (DataFrames
  and Series as records, arrays as lists). MLflow's unified LLM payloads — a JSON object with
  ``messages``, ``prompt`` or ``input`` — go to the model as that object (keys the params schema
  names become params) and are answered without the ``predictions`` wrapper. Malformed input →
  400 ``{"error_code", "message"}``; other content types, charsets other than UTF-8 → 415.

labtrack adds ``GET /variants`` (the variants, their weights, served versions and counters) and,
when several variants are served, the ``X-Labtrack-Variant`` response header; every answer to
``/invocations`` names the served registry version in ``X-Labtrack-Model-Version`` when there is
one. Parsing, prediction and JSON encoding run in a thread pool, off the event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import json
import logging
import signal
import socket
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import tornado.httpserver
import tornado.ioloop
import tornado.netutil
import tornado.web

import labtrack
from labtrack.errors import InvalidParameterValue, LabtrackError
from labtrack.models.mlmodel import to_json
from labtrack.models.pyfunc import PyFuncModel
from labtrack.models.signature import Schema, TensorSpec

log = logging.getLogger("labtrack.models.serving")

CONTENT_TYPE_JSON = "application/json"
CONTENT_TYPE_CSV = "text/csv"
CONTENT_TYPE_PARQUET = "application/vnd.apache.parquet"
CONTENT_TYPES = (CONTENT_TYPE_JSON, CONTENT_TYPE_CSV, CONTENT_TYPE_PARQUET)
DF_SPLIT = "dataframe_split"
DF_RECORDS = "dataframe_records"
INSTANCES = "instances"
INPUTS = "inputs"
SUPPORTED_FORMATS = (DF_SPLIT, DF_RECORDS, INSTANCES, INPUTS)
# Chat, completions and embeddings requests, sent unwrapped (mlflow/pyfunc/utils/
# serving_data_parser.py).
LLM_FORMATS = ("messages", "prompt", "input")
REQUIRED_INPUT_FORMAT = (
    "The input must be a JSON dictionary with exactly one of the input fields "
    f"{{{', '.join(repr(f) for f in SUPPORTED_FORMATS)}}}")
PROTOCOL_NOTE = (
    "Note: MLflow's scoring protocol changed in MLflow 2.0; a bare {\"columns\", \"data\"} "
    "payload must now be wrapped as {\"dataframe_split\": {\"columns\": …, \"data\": …}}.")
VARIANT_HEADER = "X-Labtrack-Variant"
VERSION_HEADER = "X-Labtrack-Model-Version"


class PayloadError(LabtrackError):
    """A request body that is not a valid scoring payload (HTTP 400)."""

    error_code = "BAD_REQUEST"


class UnsupportedMediaType(LabtrackError):
    """A content type the server does not read (HTTP 415)."""

    error_code = "UNSUPPORTED_MEDIA_TYPE"


# -- parsing ---------------------------------------------------------------------------------


def parse_content_type(header: str | None) -> str:
    """The media type of a request (``application/json`` or ``text/csv``); raises
    ``UnsupportedMediaType`` for anything else, for a charset other than UTF-8 and for
    unknown parameters."""
    if not header:
        raise UnsupportedMediaType(
            f"A Content-Type header is required: one of {list(CONTENT_TYPES)}.")
    media, *parameters = [part.strip() for part in header.split(";")]
    media = media.lower()
    for parameter in parameters:
        key, _, value = parameter.partition("=")
        key = key.strip().lower()
        if key == "charset":
            if value.strip().strip('"').lower() not in ("utf-8", "utf8"):
                raise UnsupportedMediaType(
                    f"The scoring server only supports UTF-8; got charset={value.strip()}.")
        elif key:
            raise UnsupportedMediaType(
                f"Unrecognized content type parameter '{key}' in '{header}'.")
    if media not in CONTENT_TYPES:
        raise UnsupportedMediaType(
            f"This predictor only supports the following content types: "
            f"{list(CONTENT_TYPES)}. Got '{header}'.")
    return media


def _spec_dtype(schema: Schema | None, name: str | None = None) -> Any:
    """The numpy dtype JSON values of an input should be read as, when the signature says."""
    if schema is None:
        return None
    for spec in schema.inputs:
        if name is None or spec.name == name:
            if isinstance(spec, TensorSpec):
                return spec.dtype
            kind = getattr(spec.type, "name", None)
            if kind in ("double", "float", "long", "integer", "boolean"):
                return spec.type.to_numpy()
            return None
    return None


def _array(values: Any, dtype: Any, label: str) -> np.ndarray:
    try:
        return np.asarray(values, dtype=dtype) if dtype is not None and dtype.kind in "biuf" \
            else np.asarray(values)
    except (ValueError, TypeError) as error:
        raise PayloadError(
            f"Invalid input. {label} could not be read as an array"
            f"{f' of {dtype}' if dtype is not None else ''}: {error}") from None


def _tf_serving(key: str, value: Any, schema: Schema | None) -> Any:
    """``instances`` (row format) and ``inputs`` (columnar or tensor format)."""
    if key == INSTANCES and isinstance(value, list) and value and all(
            isinstance(item, Mapping) for item in value):
        columns: dict[str, list] = {}
        for item in value:
            for name, cell in item.items():
                columns.setdefault(name, []).append(cell)
        lengths = {len(cells) for cells in columns.values()}
        if len(lengths) > 1:
            raise PayloadError(
                "Invalid input. The length of values for each input/column name are not the "
                "same.")
        return {name: _array(cells, _spec_dtype(schema, name), f"Input '{name}'")
                for name, cells in columns.items()}
    if isinstance(value, Mapping):
        return {name: _array(cells, _spec_dtype(schema, name), f"Input '{name}'")
                for name, cells in value.items()}
    if isinstance(value, list) and value and all(isinstance(item, Mapping) for item in value):
        return pd.DataFrame(value)  # inputs as records
    dtype = _spec_dtype(schema) if schema is not None and (
        not schema.has_input_names() or len(schema) == 1) else None
    if np.isscalar(value) and schema is None:
        return value
    return _array(value, dtype, f"'{key}'")


def _frame(key: str, value: Any) -> pd.DataFrame:
    if key == DF_SPLIT:
        if not isinstance(value, Mapping):
            raise PayloadError(
                "Invalid input. Dataframe split format must be a dictionary with 'data' and "
                f"optionally 'columns' and 'index'. Got {type(value).__name__}.")
        extra = set(value) - {"columns", "data", "index"}
        if "data" not in value or extra:
            raise PayloadError(
                "Invalid input. Dataframe split format must have a 'data' field and optionally "
                f"'columns' and 'index' fields. Got {sorted(value)}.")
        try:
            return pd.DataFrame(data=value["data"], columns=value.get("columns"),
                                index=value.get("index"))
        except (ValueError, TypeError, AssertionError) as error:
            raise PayloadError(
                "Invalid input. Provided dataframe_split field is not a valid dataframe "
                f"representation in 'split' format. Error: {error}") from None
    if not isinstance(value, list):
        raise PayloadError(
            "Invalid input. Dataframe records format must be a list of records. Got "
            f"{type(value).__name__}.")
    if not all(isinstance(item, Mapping) for item in value):
        raise PayloadError(
            "Invalid input. Dataframe records format must be a list of records "
            "({column: value} objects).")
    try:
        return pd.DataFrame(data=value)
    except (ValueError, TypeError) as error:
        raise PayloadError(
            "Invalid input. Provided dataframe_records field is not a valid dataframe "
            f"representation in 'records' format. Error: {error}") from None


def _split_as_tensor(value: Any, spec: TensorSpec) -> np.ndarray:
    """``dataframe_split`` for a model taking one unnamed tensor: the rows as an array (what
    the DataFrame would become), without building the DataFrame."""
    if not isinstance(value, Mapping) or "data" not in value or set(value) - {
            "columns", "data", "index"}:
        return _frame(DF_SPLIT, value).to_numpy()  # the DataFrame path's errors
    array = _array(value["data"], spec.dtype, "'dataframe_split' data")
    columns = value.get("columns")
    if columns is not None and (array.ndim != 2 or len(columns) != array.shape[1]):
        raise PayloadError(
            "Invalid input. Provided dataframe_split field is not a valid dataframe "
            f"representation in 'split' format: {len(columns)} columns passed, the data has "
            f"shape {array.shape}.")
    return array


@dataclass(frozen=True)
class ParsedPayload:
    """What a request asks the model: its input, its params, and whether the answer goes
    out unwrapped (unified LLM payloads) rather than as ``{"predictions": …}``."""

    data: Any
    params: dict[str, Any] | None = None
    unwrapped: bool = False


def parse_json_payload(body: bytes | str, schema: Schema | None = None,
                       param_names: frozenset[str] = frozenset()) -> ParsedPayload:
    """The model input and params of a JSON scoring payload; raises ``PayloadError``.
    ``param_names`` are the params the model's signature declares: in an LLM payload those
    keys are params, every other key is input (as MLflow splits them)."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise PayloadError(
            f"Invalid input. Ensure that input is a valid JSON formatted string. Error: "
            f"{error}") from None
    if not isinstance(payload, dict):
        kind = "a list" if isinstance(payload, list) else f"a {type(payload).__name__}"
        raise PayloadError(f"{REQUIRED_INPUT_FORMAT}. Received {kind}.")
    if any(key in payload for key in LLM_FORMATS):
        data = {key: value for key, value in payload.items() if key not in param_names}
        params = {key: value for key, value in payload.items() if key in param_names}
        return ParsedPayload(data, params, unwrapped=True)
    formats = [key for key in payload if key in SUPPORTED_FORMATS]
    if len(formats) != 1:
        raise PayloadError(
            f"{REQUIRED_INPUT_FORMAT}. Received dictionary with input fields: "
            f"{list(payload)}. {PROTOCOL_NOTE}")
    params = payload.get("params")
    if params is not None and not isinstance(params, dict):
        raise PayloadError(
            f"Invalid input. 'params' must be a JSON object; got {type(params).__name__}.")
    key = formats[0]
    if key == DF_SPLIT and schema is not None and schema.is_tensor_spec() and len(
            schema) == 1 and not schema.has_input_names():
        return ParsedPayload(_split_as_tensor(payload[key], schema.inputs[0]), params)
    if key in (DF_SPLIT, DF_RECORDS):
        return ParsedPayload(_frame(key, payload[key]), params)
    return ParsedPayload(_tf_serving(key, payload[key], schema), params)


def parse_csv_payload(body: bytes | str) -> pd.DataFrame:
    """A DataFrame from CSV with a header row; raises ``PayloadError``."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    try:
        return pd.read_csv(io.BytesIO(raw), encoding="utf-8")
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError,
            pd.errors.EmptyDataError) as error:
        raise PayloadError(
            "Failed to parse input as a Pandas DataFrame. Ensure that the input is a valid "
            f"CSV-formatted DataFrame produced using pandas.DataFrame.to_csv(). Error: "
            f"{error}") from None


def parse_parquet_payload(body: bytes | str) -> pd.DataFrame:
    """A DataFrame from a Parquet file's bytes; raises ``PayloadError`` for bad bytes and
    ``UnsupportedMediaType`` when pyarrow (pandas' Parquet engine) is not installed."""
    try:
        import pyarrow  # noqa: F401 - pandas reads Parquet through it
    except ImportError:
        raise UnsupportedMediaType(
            "Parquet input needs pyarrow on the scoring server: "
            "pip install 'labtrack[parquet]'.") from None
    raw = body.encode("utf-8") if isinstance(body, str) else body
    try:
        return pd.read_parquet(io.BytesIO(raw))
    except Exception as error:  # pyarrow raises its own error types for corrupt files
        raise PayloadError(
            "Failed to parse input as a Pandas DataFrame. Ensure that the input is a valid "
            "Parquet Pandas DataFrame produced using the `pandas.DataFrame.to_parquet()` "
            f"method. Error: '{error}'") from None


def jsonable(predictions: Any) -> Any:
    """Predictions as JSON values: DataFrames (and Series, as one-column frames) as records,
    arrays as lists — what MLflow answers."""
    if isinstance(predictions, pd.DataFrame):
        return predictions.to_dict(orient="records")
    if isinstance(predictions, pd.Series):
        return predictions.to_frame().to_dict(orient="records")
    if isinstance(predictions, np.ndarray):
        return predictions.tolist()
    return predictions


def predictions_to_json(predictions: Any, unwrapped: bool = False) -> str:
    """The ``{"predictions": …}`` answer, or the predictions alone for an LLM payload."""
    if unwrapped:
        return to_json(jsonable(predictions))
    return to_json({"predictions": jsonable(predictions)})


@dataclass(frozen=True)
class ScoreResult:
    """One answer of ``/invocations``: status, body text and its content type."""

    status: int
    body: str
    content_type: str = CONTENT_TYPE_JSON


def _error(status: int, code: str, message: str) -> ScoreResult:
    return ScoreResult(status, json.dumps({"error_code": code, "message": message}))


def score(model: PyFuncModel, body: bytes | str, content_type: str | None) -> ScoreResult:
    """Parse a request, predict, encode — the whole of ``POST /invocations``, never raising
    for bad input or model errors."""
    try:
        media = parse_content_type(content_type)
    except UnsupportedMediaType as error:
        return ScoreResult(415, error.message, "text/plain")
    metadata = model.metadata
    try:
        if media == CONTENT_TYPE_CSV:
            request = ParsedPayload(parse_csv_payload(body))
        elif media == CONTENT_TYPE_PARQUET:
            request = ParsedPayload(parse_parquet_payload(body))
        else:
            params_schema = metadata.get_params_schema()
            request = parse_json_payload(
                body, metadata.get_input_schema(),
                frozenset(spec.name for spec in params_schema or ()))
    except UnsupportedMediaType as error:
        return ScoreResult(415, error.message, "text/plain")
    except PayloadError as error:
        return _error(400, error.error_code, error.message)
    try:
        predictions = model.predict(request.data, params=request.params or None)
    except LabtrackError as error:
        return _error(400, error.error_code, f"Failed to predict: {error.message}")
    except Exception as error:  # the model's own code failed on this input
        log.warning("the model raised on a request: %s: %s", type(error).__name__, error)
        return _error(400, "BAD_REQUEST",
                      "Encountered an unexpected error while evaluating the model. Verify that "
                      "the input is compatible with the model for inference. Error: "
                      f"{type(error).__name__}: {error}")
    try:
        return ScoreResult(200, predictions_to_json(predictions, request.unwrapped))
    except (TypeError, ValueError) as error:
        return _error(400, "BAD_REQUEST",
                      f"The model's predictions could not be encoded as JSON: {error}")


# -- the tornado app -------------------------------------------------------------------------


class _Handler(tornado.web.RequestHandler):
    def initialize(self, server: ScoringServer) -> None:
        self.server = server

    def set_default_headers(self) -> None:
        self.set_header("Server", f"labtrack/{labtrack.__version__}")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", CONTENT_TYPE_JSON)
        code = {404: "ENDPOINT_NOT_FOUND", 405: "BAD_REQUEST"}.get(status_code, "BAD_REQUEST")
        self.finish(json.dumps({"error_code": code, "message": self._reason}))


class _NotFound(_Handler):
    def prepare(self) -> None:
        raise tornado.web.HTTPError(
            404, reason=f"No endpoint {self.request.path}: use /invocations, /ping, /health, "
            "/version or /variants.")


class _Ping(_Handler):
    def get(self) -> None:
        self.set_header("Content-Type", CONTENT_TYPE_JSON)
        self.set_status(200 if self.server.ready else 404)
        self.finish("\n")


class _Version(_Handler):
    def get(self) -> None:
        self.set_header("Content-Type", CONTENT_TYPE_JSON)
        self.finish(labtrack.__version__)


class _Variants(_Handler):
    def get(self) -> None:
        router = self.server.router
        self.set_header("Content-Type", CONTENT_TYPE_JSON)
        self.finish(json.dumps({"key_header": router.key_header,
                                "variants": [v.describe() for v in router.variants]}))


class _Invocations(_Handler):
    variant = None

    async def post(self) -> None:
        router = self.server.router
        self.variant = variant = router.choose(self.request.headers.get(router.key_header))
        loaded = variant.current  # in-flight requests keep this model through a reload
        content_type = self.request.headers.get("Content-Type")
        pool = self.server.executor
        if pool is None:
            result = score(loaded.model, self.request.body, content_type)
        else:
            result = await asyncio.wrap_future(
                pool.submit(score, loaded.model, self.request.body, content_type))
        if router.is_ab:
            self.set_header(VARIANT_HEADER, variant.name)
        if loaded.version is not None:
            self.set_header(VERSION_HEADER, loaded.version)
        self.set_status(result.status)
        self.set_header("Content-Type", result.content_type)
        self.finish(result.body)

    def on_finish(self) -> None:
        if self.variant is not None:
            self.variant.stats.record(self.request.request_time(), self.get_status())


def make_app(server: ScoringServer) -> tornado.web.Application:
    """The scoring endpoints of ``server``."""
    args = {"server": server}
    return tornado.web.Application(
        [(r"/ping", _Ping, args), (r"/health", _Ping, args), (r"/version", _Version, args),
         (r"/invocations", _Invocations, args), (r"/variants", _Variants, args)],
        default_handler_class=_NotFound, default_handler_args=args,
    )


class ScoringServer:
    """A scoring server for one model or several A/B variants.

    ``start()`` runs it on a background thread (notebooks, tests) and returns once it listens;
    ``serve()`` runs it in the calling thread until SIGINT/SIGTERM (``labtrack models serve``).
    ``threads=0`` predicts on the event loop itself.
    """

    def __init__(self, router: Any, host: str = "127.0.0.1", port: int = 5001,
                 threads: int = 4, poller: Any = None, reporter: Any = None,
                 access_log: bool = False):
        self.router = router
        self.access_log = access_log
        self.host = host
        self.port = port
        self.poller = poller
        self.reporter = reporter
        self.executor = concurrent.futures.ThreadPoolExecutor(
            threads, thread_name_prefix="labtrack-scoring") if threads > 0 else None
        self.ready = False
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._shut_down = False

    @property
    def url(self) -> str:
        """``http://host:port`` (the bound port once started)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def _run(self, on_listening=None) -> None:
        try:
            sockets = tornado.netutil.bind_sockets(
                self.port, self.host,
                family=socket.AF_INET if ":" not in self.host else socket.AF_UNSPEC)
        except OSError as error:
            raise LabtrackError(f"Cannot listen on {self.url}: {error.strerror or error}.",
                                "INVALID_STATE") from None
        self.port = sockets[0].getsockname()[1]
        if not self.access_log:  # 4xx/5xx are still logged (as warnings and errors)
            logging.getLogger("tornado.access").setLevel(logging.WARNING)
        http = tornado.httpserver.HTTPServer(make_app(self), max_body_size=512 * 1024 * 1024)
        http.add_sockets(sockets)
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        self.ready = True
        for background in (self.poller, self.reporter):
            if background is not None:
                background.start()
        if on_listening is not None:
            on_listening()
        try:
            await self._stopped.wait()
        finally:
            self.ready = False
            http.stop()
            await http.close_all_connections()

    def start(self) -> ScoringServer:
        """Serve on a background thread; returns once listening (raises if it could not)."""

        def main() -> None:
            try:
                asyncio.run(self._run(self._started.set))
            except BaseException as error:  # reported to the caller of start()
                self._error = error
                self._started.set()

        self._thread = threading.Thread(target=main, name="labtrack-scoring-server",
                                        daemon=True)
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            raise self._error
        return self

    def serve(self, on_listening: Any = None) -> None:
        """Serve in this thread until SIGINT or SIGTERM; ``on_listening()`` is called once the
        port is bound (``url`` is then final)."""

        async def main() -> None:
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, self._request_stop)
            await self._run(on_listening or (lambda: log.info("Listening on %s", self.url)))

        try:
            asyncio.run(main())
        finally:
            self._shutdown_background()

    def _request_stop(self) -> None:
        if self._stopped is not None:
            self._stopped.set()

    def stop(self) -> None:
        """Stop serving (finishing the requests in flight), the poller and the metrics
        reporter (which logs a last interval and ends its run)."""
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread is not None:
            self._thread.join(60)
        self._shutdown_background()

    def _shutdown_background(self) -> None:
        if self._shut_down:
            return
        self._shut_down = True
        for background in (self.poller, self.reporter):
            if background is not None:
                background.stop()
        if self.executor is not None:
            self.executor.shutdown(wait=True)

    def __enter__(self) -> ScoringServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def build_server(models: Sequence[str] | None = None, variants: Sequence[str] | None = None,
                 host: str = "127.0.0.1", port: int = 5001, threads: int = 4,
                 key_header: str | None = None, poll_interval: float | None = 10.0,
                 metrics_interval: float | None = None, experiment: str = "serving",
                 tracking_uri: str | None = None, access_log: bool = False) -> ScoringServer:
    """Load the models and assemble a ``ScoringServer``.

    ``models``: one model URI (served alone) — or ``variants``: ``name=URI:weight`` strings.
    Moving registry URIs are polled every ``poll_interval`` seconds (None: never).
    ``metrics_interval`` (seconds) turns on per-variant metrics in a run of ``experiment``.
    """
    from labtrack.client import TrackingClient
    from labtrack.models.routing import (
        DEFAULT_KEY_HEADER,
        MetricsReporter,
        RegistryPoller,
        Router,
        Variant,
        VariantSpec,
        load_variant_model,
    )
    from labtrack.models.uri import parse_model_uri

    if bool(models) == bool(variants):
        raise InvalidParameterValue("Serve either one model (-m URI) or variants (--variant "
                                    "name=URI:weight), not both.")
    specs = ([VariantSpec.parse(v) for v in variants] if variants
             else [VariantSpec("default", str(models[0]))])
    if models and len(models) > 1:
        raise InvalidParameterValue("Serve one model with -m, or several with --variant.")
    needs_store = metrics_interval or any(
        parse_model_uri(spec.uri).kind != "path" for spec in specs)
    # Serving model folders without metrics touches no store.
    client = (TrackingClient(tracking_uri) if tracking_uri else TrackingClient()) \
        if needs_store else None
    loaded = []
    for spec in specs:
        log.info("loading variant %s: %s", spec.name, spec.uri)
        loaded.append(Variant(spec, load_variant_model(spec.uri, client)))
    router = Router(loaded, key_header or DEFAULT_KEY_HEADER)
    poller = None
    if poll_interval and any(v.reference.moves for v in loaded):
        poller = RegistryPoller(router, client, poll_interval)
    reporter = MetricsReporter(router, client, experiment, metrics_interval) \
        if metrics_interval else None
    return ScoringServer(router, host, port, threads, poller, reporter, access_log)
