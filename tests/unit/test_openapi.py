"""The OpenAPI documents cover exactly the routes the servers register: a route added
without documentation (or documented without a route) fails here."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import schemathesis

from orbiter.agent import openapi as agent_openapi
from orbiter.agent.http_api import AgentHttp
from orbiter.master import openapi
from orbiter.master.http_api import HttpServer
from orbiter.satellite import http_api as satellite_http

METHODS = {"GET", "POST", "DELETE", "PUT", "PATCH"}


def _routes(app: Any) -> set[tuple[str, str]]:
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.method in METHODS
    }


def _documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
        if method.upper() in METHODS
    }


def _master(satellite: str) -> Any:
    """A stand-in for MasterServer with what HttpServer's constructor reads."""
    return SimpleNamespace(
        satellite=SimpleNamespace(tsdb=None) if satellite == "in-master" else None,
        satellite_process=object() if satellite == "process" else None,
    )


@pytest.mark.parametrize("satellite", ["in-master", "process"])
def test_the_master_document_lists_every_route_the_master_registers(satellite: str) -> None:
    app = HttpServer(_master(satellite)).app  # type: ignore[arg-type]
    assert _documented(openapi.DOCUMENT) == _routes(app)


def test_without_satellite_the_master_registers_all_but_satellites_routes() -> None:
    app = HttpServer(_master("none")).app  # type: ignore[arg-type]
    satellite_routes = {(m, p) for m, p in satellite_http.ROUTES}
    assert _routes(app) == _documented(openapi.DOCUMENT) - satellite_routes
    assert all(p in openapi.SATELLITE_PATHS for _, p in satellite_routes)


def test_the_agent_document_lists_every_route_the_agent_registers() -> None:
    app = AgentHttp(SimpleNamespace()).app  # type: ignore[arg-type]
    assert _documented(agent_openapi.DOCUMENT) == _routes(app)


@pytest.mark.parametrize("document", [openapi.DOCUMENT, agent_openapi.DOCUMENT])
def test_the_documents_load_as_openapi(document: dict[str, Any]) -> None:
    schema = schemathesis.openapi.from_dict(document)
    operations = [op.ok() for op in schema.get_all_operations()]
    assert len(operations) == len(_documented(document))


def test_every_path_parameter_is_declared() -> None:
    for path, operations in openapi.DOCUMENT["paths"].items():
        names = {part[1:-1] for part in path.split("/") if part.startswith("{")}
        for method, op in operations.items():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == names, (method, path)


def test_bodies_that_handlers_check_field_by_field_are_closed() -> None:
    """Maintenance and silence bodies refuse unknown fields, and say so here."""
    paths = openapi.DOCUMENT["paths"]
    for path, ops in paths.items():
        if "/api/v1/agents/" in path and "post" in ops:
            schema = ops["post"]["requestBody"]["content"]["application/json"]["schema"]
            assert schema["additionalProperties"] is False, path
    assert openapi.SCHEMAS["PostableSilence"]["additionalProperties"] is False


@pytest.mark.parametrize("document", [openapi.DOCUMENT, agent_openapi.DOCUMENT])
def test_every_error_response_is_json(document: dict[str, Any]) -> None:
    responses = document["components"]["responses"]
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            for status, response in op["responses"].items():
                if int(status) >= 400:
                    name = response["$ref"].removeprefix("#/components/responses/")
                    schema = responses[name]["content"]["application/json"]["schema"]
                    assert schema["$ref"] in (
                        "#/components/schemas/Error",
                        "#/components/schemas/PrometheusError",
                    ), (method, path, status)


@pytest.mark.parametrize("document", [openapi.DOCUMENT, agent_openapi.DOCUMENT])
def test_every_operation_but_health_and_metrics_may_answer_401(document: dict[str, Any]) -> None:
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            guarded = path not in ("/health", "/metrics")
            assert ("401" in op["responses"]) is guarded, (method, path)


def test_every_master_operation_but_health_and_metrics_may_answer_403_and_429() -> None:
    for path, operations in openapi.DOCUMENT["paths"].items():
        for method, op in operations.items():
            guarded = path not in ("/health", "/metrics")
            assert ("403" in op["responses"]) is guarded, (method, path)
            assert ("429" in op["responses"]) is guarded, (method, path)
    limited = openapi.DOCUMENT["components"]["responses"]["RateLimited"]
    assert "Retry-After" in limited["headers"]


def test_the_agent_schema_names_every_maintenance_mode() -> None:
    """Found by the fuzzer: a drained agent's mode was missing from the enum."""
    from orbiter.proto import master_pb2

    mode = openapi.SCHEMAS["Agent"]["properties"]["maintenance"]["properties"]["mode"]
    names = {name.lower() for name, _ in master_pb2.MaintenanceMode.items()}
    assert set(mode["enum"]) == names
    assert "drained" in names
