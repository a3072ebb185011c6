"""A/B routing for the scoring server: variants, weighted sticky routing, registry polling and
per-variant metrics.

A variant is ``name=URI:weight`` (``a=models:/rec@champion:90``). Requests that carry a request
key (the ``X-Request-Key`` header by default — a user or session id) are routed by a hash of
the key, so one key always reaches the same variant; requests without a key are spread by
smooth weighted round-robin, so the split matches the weights exactly.

A variant whose URI *moves* — an alias (``@champion``), a stage (``/Production``) or
``/latest`` — is polled in the registry (``RegistryPoller``); when it points to another version,
that version is loaded in the background and swapped in atomically: requests already running
finish on the model they started with, new ones get the new model, none fails.

``MetricsReporter`` logs, per variant, the request and error counts (cumulative), the latency
percentiles of the last interval (``<variant>.latency_p50_ms``, ``_p95_ms``, ``_p99_ms``) and the
served version to a tracking run (experiment ``serving`` by default) every interval.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from labtrack.errors import InvalidParameterValue, LabtrackError
from labtrack.models.pyfunc import PyFuncModel, load_model
from labtrack.models.uri import ModelUri, model_location, parse_model_uri, resolve_version

log = logging.getLogger("labtrack.models.serving")

DEFAULT_KEY_HEADER = "X-Request-Key"
_BUCKETS = 10_000
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_WEIGHT = re.compile(r"^\d+(\.\d+)?$")


@dataclass(frozen=True)
class VariantSpec:
    """One variant as given on the command line."""

    name: str
    uri: str
    weight: float = 1.0

    @classmethod
    def parse(cls, text: str) -> VariantSpec:
        """``name=URI[:weight]`` — the weight is the number after the last ``:``."""
        name, separator, rest = text.partition("=")
        if not separator or not rest:
            raise InvalidParameterValue(
                f"Invalid variant '{text}': expected name=URI:weight, e.g. "
                "a=models:/recommender@champion:90.")
        if not _NAME.match(name):
            raise InvalidParameterValue(
                f"Invalid variant name '{name}': use letters, digits, '_' and '-'.")
        uri, colon, weight = rest.rpartition(":")
        if colon and uri and _WEIGHT.match(weight):
            value = float(weight)
        else:
            uri, value = rest, 1.0
        if value <= 0:
            raise InvalidParameterValue(f"Variant '{name}': the weight must be positive.")
        parse_model_uri(uri)  # a clear error now rather than at load time
        return cls(name, uri, value)


@dataclass
class LoadedModel:
    """A model as served: which registry version (when the URI is a registry one)."""

    model: PyFuncModel
    uri: str
    version: str | None = None
    model_id: str | None = None
    loaded_at: float = field(default_factory=time.time)


def _percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of a sorted list."""
    index = max(0, math.ceil(fraction * len(ordered)) - 1)
    return ordered[index]


class VariantStats:
    """Request count, error count and latencies of one variant (thread-safe)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.requests = 0
        self.errors = 0
        self._window: list[float] = []

    def record(self, seconds: float, status: int) -> None:
        """Count one answered request and its latency."""
        with self._lock:
            self.requests += 1
            if status >= 400:
                self.errors += 1
            self._window.append(seconds)

    def snapshot(self) -> dict[str, Any]:
        """Cumulative counts, and the latency percentiles (ms) of the requests since the last
        snapshot (absent when there were none)."""
        with self._lock:
            window, self._window = self._window, []
            out: dict[str, Any] = {"requests": self.requests, "errors": self.errors,
                                   "window_requests": len(window)}
        if window:
            window.sort()
            for label, fraction in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
                out[f"latency_{label}_ms"] = _percentile(window, fraction) * 1000
        return out


class Variant:
    """A named model behind the router; ``current`` is swapped atomically on reload."""

    def __init__(self, spec: VariantSpec, loaded: LoadedModel):
        self.spec = spec
        self.reference: ModelUri = parse_model_uri(spec.uri)
        self.current = loaded
        self.stats = VariantStats()
        self.reloads = 0

    @property
    def name(self) -> str:
        """The variant's name (``a``, ``b``, …)."""
        return self.spec.name

    def swap(self, loaded: LoadedModel) -> None:
        """Serve ``loaded`` from now on (requests in flight keep the old model)."""
        self.current = loaded  # one reference assignment: atomic for concurrent readers
        self.reloads += 1

    def describe(self) -> dict[str, Any]:
        """What ``GET /variants`` shows of this variant."""
        current = self.current
        return {"name": self.name, "uri": self.spec.uri, "weight": self.spec.weight,
                "model_version": current.version, "model_id": current.model_id,
                "loaded_at": current.loaded_at, "reloads": self.reloads,
                "requests": self.stats.requests, "errors": self.stats.errors}


def load_variant_model(uri: str, client: Any) -> LoadedModel:
    """Load a variant's model, pinning a moving registry URI to the version it points to now
    (so the loaded files and the recorded version agree)."""
    reference = parse_model_uri(uri)
    if reference.kind == "registered":
        version = resolve_version(reference, client)
        pinned = f"models:/{reference.name}/{version.version}"
        location = model_location(pinned, client)
        return LoadedModel(load_model(pinned, client=client), uri, version.version,
                           location.model_id)
    location = model_location(reference, client) if reference.kind != "path" else None
    return LoadedModel(load_model(reference.uri, client=client), uri, None,
                       location.model_id if location else None)


class Router:
    """Chooses a variant per request: by a hash of the request key when there is one, else by
    smooth weighted round-robin."""

    def __init__(self, variants: Sequence[Variant], key_header: str = DEFAULT_KEY_HEADER):
        if not variants:
            raise InvalidParameterValue("Serving needs at least one model.")
        names = [v.name for v in variants]
        if len(set(names)) != len(names):
            raise InvalidParameterValue(f"Variant names must differ: {names}.")
        self.variants = list(variants)
        self.key_header = key_header
        total = sum(v.spec.weight for v in self.variants)
        self._bounds = []
        running = 0.0
        for variant in self.variants:
            running += variant.spec.weight
            self._bounds.append(round(running / total * _BUCKETS))
        self._bounds[-1] = _BUCKETS
        self._total = total
        self._credits = [0.0] * len(self.variants)
        self._lock = threading.Lock()

    @property
    def is_ab(self) -> bool:
        """True when more than one variant is served."""
        return len(self.variants) > 1

    def by_name(self, name: str) -> Variant:
        """The variant called ``name``."""
        for variant in self.variants:
            if variant.name == name:
                return variant
        raise KeyError(name)

    def bucket(self, key: str) -> int:
        """The routing bucket (0–9,999) of a request key: a stable hash."""
        digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
        return int.from_bytes(digest, "big") % _BUCKETS

    def choose(self, key: str | None = None) -> Variant:
        """The variant for a request with this key (None: no key)."""
        if len(self.variants) == 1:
            return self.variants[0]
        if key:
            bucket = self.bucket(key)
            for variant, bound in zip(self.variants, self._bounds):
                if bucket < bound:
                    return variant
        with self._lock:  # smooth weighted round-robin (nginx)
            best = 0
            for index, variant in enumerate(self.variants):
                self._credits[index] += variant.spec.weight
                if self._credits[index] > self._credits[best]:
                    best = index
            self._credits[best] -= self._total
            return self.variants[best]


class _Periodic(threading.Thread):
    """A daemon thread calling ``tick`` every ``interval`` seconds until stopped."""

    def __init__(self, name: str, interval: float):
        super().__init__(name=name, daemon=True)
        if interval <= 0:
            raise InvalidParameterValue(f"{name}: the interval must be positive.")
        self.interval = interval
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            self.tick()

    def tick(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def stop(self, timeout: float | None = 30) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout)


class RegistryPoller(_Periodic):
    """Reloads a variant when the registry moves its alias, stage or latest version."""

    def __init__(self, router: Router, client: Any, interval: float = 10.0):
        super().__init__("labtrack-registry-poller", interval)
        self.router = router
        self.client = client

    def tick(self) -> None:
        """Check every variant with a moving registry URI."""
        for variant in self.router.variants:
            if variant.reference.moves:
                self.check(variant)

    def check(self, variant: Variant) -> bool:
        """Reload ``variant`` if its reference points to another version; True if it did."""
        try:
            version = resolve_version(variant.reference, self.client).version
            if version == variant.current.version:
                return False
            log.info("variant %s: %s now points to version %s (serving %s); loading it",
                     variant.name, variant.spec.uri, version, variant.current.version)
            loaded = load_variant_model(
                f"models:/{variant.reference.name}/{version}", self.client)
            loaded.uri = variant.spec.uri
            variant.swap(loaded)
            log.info("variant %s: now serving version %s", variant.name, version)
            return True
        except Exception as error:  # a broken version must not stop serving or polling
            log.warning("variant %s: could not reload %s (still serving version %s): %s: %s",
                        variant.name, variant.spec.uri, variant.current.version,
                        type(error).__name__, error)
            return False


class MetricsReporter(_Periodic):
    """Logs per-variant metrics to a tracking run every ``interval`` seconds."""

    def __init__(self, router: Router, client: Any, experiment: str = "serving",
                 interval: float = 10.0, run_name: str | None = None,
                 tags: dict[str, str] | None = None):
        super().__init__("labtrack-serving-metrics", interval)
        from labtrack.client.fluent import _get_or_create_experiment
        from labtrack.client.run_context import default_run_tags
        from labtrack.entities import Param

        self.router = router
        self.client = client
        self.step = 0
        self._lock = threading.Lock()
        experiment_id = _get_or_create_experiment(client, experiment).experiment_id
        run_tags = {**default_run_tags(), "labtrack.serving": "true", **(tags or {})}
        self.serving_run = client.create_run(experiment_id, tags=run_tags, run_name=run_name or (
            "serve " + " ".join(f"{v.name}={v.spec.uri}" for v in router.variants))[:250])
        params = []
        for variant in router.variants:
            params += [Param(f"{variant.name}.uri", variant.spec.uri),
                       Param(f"{variant.name}.weight", f"{variant.spec.weight:g}")]
        client.log_batch(self.run_id, params=params)

    @property
    def run_id(self) -> str:
        """The id of the run the metrics go to."""
        return self.serving_run.info.run_id

    def tick(self) -> None:
        """Log one interval's metrics of every variant."""
        from labtrack.entities import Metric

        with self._lock:
            timestamp = int(time.time() * 1000)
            metrics = []
            for variant in self.router.variants:
                snapshot = variant.stats.snapshot()
                for key in ("requests", "errors", "latency_p50_ms", "latency_p95_ms",
                            "latency_p99_ms"):
                    if key in snapshot:
                        metrics.append(Metric(f"{variant.name}.{key}", float(snapshot[key]),
                                              timestamp, self.step))
                version = variant.current.version
                if version is not None:
                    metrics.append(Metric(f"{variant.name}.model_version", float(version),
                                          timestamp, self.step))
            self.step += 1
            try:
                self.client.log_batch(self.run_id, metrics=metrics)
            except Exception as error:  # the tracking server may be away; keep serving
                log.warning("could not log serving metrics: %s: %s", type(error).__name__,
                            error)

    def stop(self, timeout: float | None = 30) -> None:
        """Stop, log the last interval and end the run."""
        super().stop(timeout)
        self.tick()
        try:
            self.client.set_terminated(self.run_id)
        except LabtrackError as error:
            log.warning("could not end the serving run %s: %s", self.run_id, error)
