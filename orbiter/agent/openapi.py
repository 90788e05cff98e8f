"""The agent's OpenAPI 3 document, served at the agent's /api/v1/openapi.json: its own
small HTTP server (health, metrics, state, sandbox files). Errors are JSON bodies
{"error": message} with a 4xx status."""

from __future__ import annotations

from typing import Any

import orbiter

MAX_READ = 1 << 20
"""The most /files/read returns in one call."""
MAX_OFFSET = (1 << 63) - 1
"""The largest offset a file can have (seek refuses more with an OverflowError)."""

_ERROR = {"$ref": "#/components/responses/Error"}


def _query(name: str, description: str, schema: dict[str, Any], required: bool = False) -> dict:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema,
    }


_SANDBOX = [
    _query("task_id", "The task whose sandbox to read", {"type": "string"}, required=True),
    _query(
        "framework_id",
        "Its framework; needed for a task that has ended",
        {"type": "string"},
    ),
]


def _ok(schema: dict[str, Any], media: str = "application/json") -> dict[str, Any]:
    return {"description": "OK", "content": {media: {"schema": schema}}}


DOCUMENT: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {
        "title": "Orbiter agent API",
        "version": orbiter.__version__,
        "description": "One agent: its health, metrics, state and task sandboxes. Errors "
        'are JSON bodies {"error": message} with a 4xx status.',
    },
    "paths": {
        "/health": {
            "get": {
                "summary": "Liveness, and whether the agent is registered with a master",
                "responses": {
                    "200": _ok(
                        {
                            "type": "object",
                            "required": ["status", "registered"],
                            "properties": {
                                "status": {"type": "string"},
                                "registered": {"type": "boolean"},
                            },
                        }
                    )
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics of the agent",
                "responses": {"200": _ok({"type": "string"}, "text/plain")},
            }
        },
        "/state": {
            "get": {
                "summary": "The agent's id, resources and tasks",
                "responses": {
                    "200": _ok(
                        {
                            "type": "object",
                            "required": ["id", "registered", "resources", "tasks"],
                            "properties": {
                                "id": {"type": "string"},
                                "http_address": {"type": "string"},
                                "master": {"type": "string"},
                                "registered": {"type": "boolean"},
                                "containerizer": {"type": "string"},
                                "resources": {"type": "object"},
                                "used": {
                                    "type": "object",
                                    "additionalProperties": {"type": "number"},
                                },
                                "attributes": {"type": "object"},
                                "work_dir": {"type": "string"},
                                "start_time": {"type": "number"},
                                "tasks": {"type": "array", "items": {"type": "object"}},
                                "status_updates_pending": {"type": "integer"},
                                "checks": {"type": "array"},
                            },
                        }
                    )
                },
            }
        },
        "/api/v1/openapi.json": {
            "get": {"summary": "This document", "responses": {"200": _ok({"type": "object"})}}
        },
        "/api/v1/executor": {
            "post": {
                "summary": "Mesos's v1 executor API, for the framework executors this agent runs",
                "description": "SUBSCRIBE (answered with a RecordIO stream of JSON events: "
                "SUBSCRIBED, LAUNCH, KILL, ACKNOWLEDGED, MESSAGE, SHUTDOWN, ERROR, HEARTBEAT), "
                "UPDATE and MESSAGE (answered 202), as in Mesos. Authenticated with the "
                "executor's own token (MESOS_EXECUTOR_AUTHENTICATION_TOKEN) as a bearer token; "
                "without one only while the agent's authentication is off.",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["type", "framework_id", "executor_id"],
                                "properties": {
                                    "type": {
                                        "type": "string",
                                        "enum": ["SUBSCRIBE", "UPDATE", "MESSAGE"],
                                    },
                                    "framework_id": {"$ref": "#/components/schemas/MesosId"},
                                    "executor_id": {"$ref": "#/components/schemas/MesosId"},
                                    "subscribe": {"type": "object"},
                                    "update": {"type": "object"},
                                    "message": {"type": "object"},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": _ok({"type": "string"}, "application/json"),
                    "202": {"description": "Accepted"},
                    "400": _ERROR,
                    "403": _ERROR,
                    "404": _ERROR,
                    "406": _ERROR,
                    "409": _ERROR,
                    "415": _ERROR,
                },
            }
        },
        "/files/browse": {
            "get": {
                "summary": "The files of a task's sandbox",
                "parameters": _SANDBOX,
                "responses": {
                    "200": _ok(
                        {
                            "type": "object",
                            "properties": {
                                "sandbox": {"type": "string"},
                                "files": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "path": {"type": "string"},
                                            "size": {"type": "integer"},
                                        },
                                    },
                                },
                            },
                        }
                    ),
                    "400": _ERROR,
                    "404": _ERROR,
                },
            }
        },
        "/files/read": {
            "get": {
                "summary": "Bytes of one file of a task's sandbox",
                "parameters": [
                    *_SANDBOX,
                    _query(
                        "path",
                        "A file directly in the sandbox",
                        {"type": "string", "default": "stdout"},
                    ),
                    _query(
                        "offset",
                        "Where to start",
                        {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET},
                    ),
                    _query(
                        "length",
                        "How many bytes at most",
                        {"type": "integer", "minimum": 0, "maximum": MAX_READ},
                    ),
                ],
                "responses": {
                    "200": _ok({"type": "string"}, "text/plain"),
                    "400": _ERROR,
                    "404": _ERROR,
                },
            }
        },
    },
    "components": {
        "responses": {
            "Unauthenticated": {
                "description": "Authentication is on and the request has no principal: "
                "send a bearer token or a client certificate",
                "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                },
            },
            "Forbidden": {
                "description": "The principal may not read this sandbox",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                },
            },
            "Error": {
                "description": "Refused",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                },
            },
        },
        "schemas": {
            "MesosId": {
                "type": "object",
                "required": ["value"],
                "properties": {"value": {"type": "string"}},
            },
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {"error": {"type": "string"}},
            }
        },
    },
}


def _guard(document: dict[str, Any]) -> None:
    """401 on every operation but /health and /metrics (open to load balancers and
    Prometheus); 403 on sandbox reads, which ACLs decide (acl.READ_SANDBOX)."""
    for path, operations in document["paths"].items():
        if path in ("/health", "/metrics"):
            continue
        for op in operations.values():
            op["responses"]["401"] = {"$ref": "#/components/responses/Unauthenticated"}
            if path.startswith("/files/"):
                op["responses"]["403"] = {"$ref": "#/components/responses/Forbidden"}


_guard(DOCUMENT)
