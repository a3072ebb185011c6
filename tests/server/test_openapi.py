"""``openapi.yaml`` describes exactly the routes the server serves: adding a route without
documenting it (or documenting one that does not exist) fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from labtrack.server.routes import documented_routes

SPEC_PATH = Path(__file__).resolve().parents[2] / "openapi.yaml"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
SHARED_SCHEMAS = {"Error", "Experiment", "Run", "RunInfo", "RunData", "Metric", "LoggedModel",
                  "FileInfo", "MetricSeries"}


@pytest.fixture(scope="module")
def spec() -> dict:
    return yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))


def operations(spec):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method.upper(), path, item, operation


def lookup(spec, ref: str):
    assert ref.startswith("#/"), ref
    node = spec
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def deref(spec, node):
    while isinstance(node, dict) and "$ref" in node:
        node = lookup(spec, node["$ref"])
    return node


def all_refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from all_refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from all_refs(value)


def test_it_is_openapi_3_0_3(spec):
    assert spec["openapi"] == "3.0.3"


def test_it_lists_exactly_the_served_routes(spec):
    listed = {(method, path) for method, path, _, _ in operations(spec)}
    assert listed == documented_routes()


def test_every_operation_has_a_summary(spec):
    missing = [(m, p) for m, p, _, op in operations(spec) if not op.get("summary", "").strip()]
    assert missing == []


def test_operation_ids_are_unique(spec):
    ids = [op["operationId"] for _, _, _, op in operations(spec)]
    assert len(ids) == len(set(ids))


def test_every_operation_describes_its_success_response(spec):
    missing = [(m, p) for m, p, _, op in operations(spec) if "200" not in op["responses"]]
    assert missing == []


def test_every_operation_describes_the_authentication_errors(spec):
    missing = [(m, p) for m, p, _, op in operations(spec)
               if not {"401", "403"} <= set(op["responses"])]
    assert missing == []


def test_error_responses_use_the_shared_error_schema(spec):
    wrong = []
    for method, path, _, operation in operations(spec):
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")):
                schema = deref(spec, response)["content"]["application/json"]["schema"]
                if schema != {"$ref": "#/components/schemas/Error"}:
                    wrong.append((method, path, status))
    assert wrong == []


def test_the_error_schema_is_mlflows(spec):
    error = spec["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"error_code", "message"}


def test_every_path_parameter_is_declared(spec):
    undeclared = []
    for method, path, item, operation in operations(spec):
        declared = {
            parameter["name"]
            for parameter in (deref(spec, p) for p in
                              item.get("parameters", []) + operation.get("parameters", []))
            if parameter["in"] == "path"
        }
        if set(re.findall(r"\{(\w+)\}", path)) != declared:
            undeclared.append((method, path))
    assert undeclared == []


def test_every_request_with_a_body_declares_it(spec):
    missing = [(m, p) for m, p, _, op in operations(spec)
               if m in ("POST", "PUT", "PATCH") and "requestBody" not in op]
    assert missing == []


def test_every_reference_resolves(spec):
    for ref in set(all_refs(spec)):
        assert lookup(spec, ref) is not None, ref


def test_the_shared_schemas_are_defined(spec):
    assert SHARED_SCHEMAS <= set(spec["components"]["schemas"])


def test_token_security_applies_globally(spec):
    schemes = spec["components"]["securitySchemes"]
    assert spec["security"], "no global security requirement"
    for requirement in spec["security"]:
        assert set(requirement) <= set(schemes)
    assert any(s.get("scheme") == "bearer" for s in schemes.values())
    assert not [op for _, _, _, op in operations(spec) if op.get("security") == []]
