"""The REST surface as data: each endpoint is a method, a path and an action.

Resource modules (``experiments``, ``runs``, …) declare their endpoints with a ``Router``;
``routes`` gathers them into the tornado route table, the OpenAPI check and the auth test.
An action only parses the request, calls a service and returns the JSON-ready result.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from labtrack.server.context import ServerContext
from labtrack.server.request import ApiRequest

Action = Callable[[ApiRequest, ServerContext], dict[str, Any]]

_PATH_PARAMETER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # as documented: "/api/2.0/mlflow/logged-models/{model_id}"
    action: Action
    summary: str

    @property
    def pattern(self) -> str:
        """The tornado regex, path parameters as named groups."""
        parts = _PATH_PARAMETER.split(self.path)
        regex = []
        for index, part in enumerate(parts):
            regex.append(re.escape(part) if index % 2 == 0 else f"(?P<{part}>[^/]+)")
        return "".join(regex)


class Router:
    def __init__(self) -> None:
        self.endpoints: list[Endpoint] = []

    def route(self, method: str, path: str) -> Callable[[Action], Action]:
        def register(action: Action) -> Action:
            summary = (action.__doc__ or action.__name__).strip().splitlines()[0]
            self.endpoints.append(Endpoint(method, path, action, summary))
            return action

        return register

    def get(self, path: str):
        return self.route("GET", path)

    def post(self, path: str):
        return self.route("POST", path)

    def patch(self, path: str):
        return self.route("PATCH", path)

    def delete(self, path: str):
        return self.route("DELETE", path)
