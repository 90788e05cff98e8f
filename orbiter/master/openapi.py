"""The operator API's OpenAPI document, served at /api/v1/openapi.json."""

from __future__ import annotations

from typing import Any

import orbiter


def _get(summary: str, schema: str, params: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "responses": {
            "200": {
                "description": "OK",
                "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}
                },
            },
            "400": {"$ref": "#/components/responses/Error"},
            "404": {"$ref": "#/components/responses/Error"},
        },
    }
    if params:
        op["parameters"] = params
    return {"get": op}


def _query(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "string"},
    }


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


RESOURCES = {
    "type": "object",
    "properties": {
        "text": {"type": "string", "example": "cpus:4;mem:8192;ports:[31000-32000]"},
        "quantities": {"type": "object", "additionalProperties": {"type": "number"}},
    },
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {
        "title": "Orbiter operator API",
        "version": orbiter.__version__,
        "description": "State of the cluster: agents, frameworks, tasks. Errors are JSON "
        'bodies {"error": message} with a 4xx status.',
    },
    "paths": {
        "/health": _get("Liveness of the master", "Health"),
        "/state": _get("Everything the master knows", "State"),
        "/api/v1/agents": _get("Agents", "AgentList"),
        "/api/v1/http_sd": _get(
            "Scrape targets in Prometheus's http_sd format (the master and every agent)",
            "HttpSd",
        ),
        "/api/v1/agents/{agent_id}": _get("One agent", "Agent", [_path("agent_id")]),
        "/api/v1/frameworks": _get("Frameworks", "FrameworkList"),
        "/api/v1/frameworks/{framework_id}": _get(
            "One framework", "Framework", [_path("framework_id")]
        ),
        "/api/v1/tasks": _get(
            "Tasks, newest state; completed tasks included",
            "TaskList",
            [
                _query("framework_id", "only this framework's tasks"),
                _query("agent_id", "only tasks on this agent"),
                _query("state", "only tasks in this state, e.g. TASK_RUNNING"),
            ],
        ),
        "/api/v1/tasks/{task_id}": _get("Tasks with this id", "TaskList", [_path("task_id")]),
        "/api/v1/events": _get(
            "Cluster events: agents registered, unreachable, back, removed", "EventList"
        ),
        "/api/v2/silences": {
            **_get("Silences, in Alertmanager's API v2 shape (amtool works)", "SilenceList"),
            "post": {
                "summary": "Create a silence, or replace one by id (a postableSilence)",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Silence"}}
                    },
                },
                "responses": {
                    "200": {
                        "description": "Kept in the registry",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {"silenceID": {"type": "string"}},
                                }
                            }
                        },
                    },
                    "400": {"$ref": "#/components/responses/Error"},
                },
            },
        },
        "/api/v2/silence/{id}": {
            **_get("One silence", "Silence", [_path("id")]),
            "delete": {
                "summary": "Expire a silence now (it stays listed, expired, for 5 days)",
                "parameters": [_path("id")],
                "responses": {
                    "200": {"description": "Expired"},
                    "404": {"$ref": "#/components/responses/Error"},
                },
            },
        },
        "/api/v1/agents/{agent_id}/remove": {
            "post": {
                "summary": "Remove an agent for good (Mesos: mark agent gone); its tasks end "
                "and its id is never admitted again",
                "parameters": [_path("agent_id")],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["reason"],
                                "properties": {"reason": {"type": "string"}},
                            }
                        }
                    },
                },
                "responses": {
                    "200": {
                        "description": "The removed agent",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Agent"}}
                        },
                    },
                    "400": {"$ref": "#/components/responses/Error"},
                    "404": {"$ref": "#/components/responses/Error"},
                    "409": {"$ref": "#/components/responses/Error"},
                },
            }
        },
    },
    "components": {
        "responses": {
            "Error": {
                "description": "The request was refused; nothing changed",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }
        },
        "schemas": {
            "Silence": {
                "type": "object",
                "required": ["matchers", "endsAt", "createdBy", "comment"],
                "properties": {
                    "id": {"type": "string"},
                    "status": {
                        "type": "object",
                        "properties": {
                            "state": {"type": "string", "enum": ["active", "pending", "expired"]}
                        },
                    },
                    "matchers": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["name", "value"],
                            "properties": {
                                "name": {"type": "string"},
                                "value": {"type": "string"},
                                "isRegex": {"type": "boolean"},
                                "isEqual": {"type": "boolean"},
                            },
                        },
                    },
                    "startsAt": {"type": "string", "format": "date-time"},
                    "endsAt": {"type": "string", "format": "date-time"},
                    "createdBy": {"type": "string"},
                    "comment": {"type": "string"},
                },
            },
            "SilenceList": {"type": "array", "items": {"$ref": "#/components/schemas/Silence"}},
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {"error": {"type": "string"}},
            },
            "Health": {
                "type": "object",
                "properties": {
                    "status": {"type": "string"},
                    "role": {"type": "string", "enum": ["leader", "standby"]},
                    "leader": {"type": "boolean"},
                    "master_id": {"type": "string"},
                    "leading_master": {
                        "type": "object",
                        "properties": {
                            "id": {"type": "string"},
                            "grpc_address": {"type": "string"},
                            "http_address": {"type": "string"},
                        },
                    },
                },
            },
            "EventList": {
                "type": "object",
                "properties": {
                    "events": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "time": {"type": "number"},
                                "kind": {"type": "string"},
                                "agent_id": {"type": "string"},
                                "message": {"type": "string"},
                            },
                        },
                    }
                },
            },
            "Resources": RESOURCES,
            "Agent": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "hostname": {"type": "string"},
                    "http_address": {"type": "string"},
                    "status": {
                        "type": "string",
                        "enum": ["connected", "disconnected", "recovering", "unreachable", "gone"],
                    },
                    "resources": {"$ref": "#/components/schemas/Resources"},
                    "used": {"$ref": "#/components/schemas/Resources"},
                    "offered": {"$ref": "#/components/schemas/Resources"},
                    "attributes": {"type": "object", "additionalProperties": {"type": "string"}},
                    "tasks": {"type": "integer"},
                    "executors": {
                        "type": "array",
                        "description": "Framework executors running there; their resources "
                        "are in `used` until they end.",
                        "items": {
                            "type": "object",
                            "properties": {
                                "framework_id": {"type": "string"},
                                "executor_id": {"type": "string"},
                                "resources": {"$ref": "#/components/schemas/Resources"},
                            },
                        },
                    },
                },
            },
            "HttpSd": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "targets": {"type": "array", "items": {"type": "string"}},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    },
                },
            },
            "AgentList": {
                "type": "object",
                "properties": {
                    "agents": {"type": "array", "items": {"$ref": "#/components/schemas/Agent"}}
                },
            },
            "Framework": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "name": {"type": "string"},
                    "roles": {"type": "array", "items": {"type": "string"}},
                    "status": {
                        "type": "string",
                        "enum": ["connected", "disconnected", "completed"],
                    },
                    "tasks": {"type": "integer"},
                    "offers": {"type": "integer"},
                },
            },
            "FrameworkList": {
                "type": "object",
                "properties": {
                    "frameworks": {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/Framework"},
                    }
                },
            },
            "Task": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "name": {"type": "string"},
                    "framework_id": {"type": "string"},
                    "agent_id": {"type": "string"},
                    "hostname": {"type": "string"},
                    "state": {"type": "string"},
                    "resources": {"$ref": "#/components/schemas/Resources"},
                    "message": {"type": "string"},
                    "reason": {"type": "string"},
                    "exit_code": {"type": "integer", "nullable": True},
                },
            },
            "TaskList": {
                "type": "object",
                "properties": {
                    "tasks": {"type": "array", "items": {"$ref": "#/components/schemas/Task"}}
                },
            },
            "State": {
                "type": "object",
                "properties": {
                    "master": {"type": "object"},
                    "agents": {"type": "array", "items": {"$ref": "#/components/schemas/Agent"}},
                    "frameworks": {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/Framework"},
                    },
                    "tasks": {"type": "array", "items": {"$ref": "#/components/schemas/Task"}},
                },
            },
        },
    },
}
