"""The route table: every endpoint of every resource module, for any host."""

from __future__ import annotations

from collections import defaultdict

from labtrack.server import (
    artifacts,
    experiments,
    logged_models,
    meta,
    metrics,
    panel,
    registry,
    runs,
)
from labtrack.server.router import Endpoint

ENDPOINTS: list[Endpoint] = [
    *meta.router.endpoints,
    *experiments.router.endpoints,
    *runs.router.endpoints,
    *metrics.router.endpoints,
    *artifacts.router.endpoints,
    *logged_models.router.endpoints,
    *registry.router.endpoints,
    *panel.router.endpoints,
]
# Streamed file routes, served by ArtifactFileMixin rather than JSON endpoints.
ARTIFACT_FILE_PATH = artifacts.PROXY_PATH + "/{path}"
ARTIFACT_FILE_PATTERN = r"/api/2\.0/mlflow-artifacts/artifacts/(?P<path>.+)"
ARTIFACT_FILE_METHODS = ("GET", "PUT", "DELETE")


def documented_routes() -> set[tuple[str, str]]:
    """(method, path) of every route, as ``openapi.yaml`` must list them."""
    routes = {(e.method, e.path) for e in ENDPOINTS}
    routes.update((method, ARTIFACT_FILE_PATH) for method in ARTIFACT_FILE_METHODS)
    return routes


def route_table(prefix: str, context, classes: dict[str, type]) -> list[tuple]:
    """Tornado routes under ``prefix`` ("" or "/labtrack"): one handler per path serving its
    methods; literal paths before parametrised ones so ``…/search`` never reads as an id."""
    by_pattern: dict[str, dict[str, Endpoint]] = defaultdict(dict)
    for endpoint in ENDPOINTS:
        methods = by_pattern[endpoint.pattern]
        if endpoint.method in methods:
            raise ValueError(f"Two endpoints for {endpoint.method} {endpoint.path}")
        methods[endpoint.method] = endpoint
    ordered = sorted(by_pattern, key=lambda pattern: "(?P<" in pattern)
    table = [
        (prefix + pattern, classes["endpoint"], {"context": context,
                                                 "endpoints": by_pattern[pattern]})
        for pattern in ordered
    ]
    table.append((prefix + ARTIFACT_FILE_PATTERN, classes["artifact_file"], {"context": context}))
    table.append((prefix + "/.*", classes["not_found"], {}))
    return table
