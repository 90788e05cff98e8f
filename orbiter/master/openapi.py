"""The master's OpenAPI 3 document, served at /api/v1/openapi.json: every route of its
HTTP server, Satellite's included (present when the master runs Satellite, in its loop
or its own process: the master forwards them).

Request schemas say what the handlers refuse: required fields, types, ranges, and
`additionalProperties: false` where a handler refuses unknown fields. Errors are
`{"error": message}` with a 4xx status (5xx only for a master that cannot act: 503),
except on Prometheus's query API routes, which answer Prometheus's own error envelope.
tests/unit/test_openapi.py holds the document to the routes the app registers, and
tests/integration/test_api_fuzz.py fuzzes every operation from it.
"""

from __future__ import annotations

from typing import Any

import orbiter
from orbiter.master.state import AgentStatus, FrameworkStatus
from orbiter.proto import master_pb2

MAX_DRAIN_GRACE = 86400.0
"""The longest grace a drain gives tasks (the state machine's own limit)."""
MIN_PIN_SECONDS = 1.0
MAX_PIN_SECONDS = 10 * 366 * 86400.0
"""The longest pin: ten years (JSON may spell 1e400, which Python reads as infinity)."""

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _ok(schema: dict[str, Any], description: str = "OK", media: str = JSON) -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": schema}}}


ERROR = {"$ref": "#/components/responses/Error"}
PROM_ERROR = {"$ref": "#/components/responses/PrometheusError"}
GUARDED = {
    "401": {"$ref": "#/components/responses/Unauthenticated"},
    "403": {"$ref": "#/components/responses/Forbidden"},
    "429": {"$ref": "#/components/responses/RateLimited"},
}
"""What every operation but /health and /metrics may answer: authentication is on and
the request has no principal; an ACL or identity binding refuses it; the client is over
master.api_rate (all made by the master's middleware, as `{"error": ...}`)."""


def _op(
    summary: str,
    ok: dict[str, Any],
    errors: tuple[int, ...] = (),
    params: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
    tag: str = "cluster",
    prometheus: bool = False,
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": {"200": ok}}
    for status in errors:
        op["responses"][str(status)] = PROM_ERROR if prometheus else ERROR
    if not prometheus:
        op["responses"]["503"] = ERROR  # a standby, or a leader cut off from ZooKeeper
    op["responses"].update(GUARDED)
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = body
        op["responses"]["413"] = PROM_ERROR if prometheus else ERROR  # over the size limit
    return op


def _query(
    name: str, description: str, schema: dict[str, Any] | None = None, required: bool = False
) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def _path(name: str, description: str = "") -> dict[str, Any]:
    p = {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
    if description:
        p["description"] = description
    return p


def _json_body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {JSON: {"schema": schema}}}


def _object(
    properties: dict[str, Any], required: list[str] | None = None, closed: bool = True
) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        out["required"] = required
    if closed:
        out["additionalProperties"] = False
    return out


TEXT = {"type": "string"}
UI_MEDIA = ("text/javascript", "text/css", "text/html")
NUMBER = {"type": "number"}
STRINGS = {"type": "object", "additionalProperties": TEXT}

# --------------------------------------------------------------------- maintenance

_REASON = {
    "type": "string",
    "pattern": "\\S",
    "description": "Why (not blank); kept in the agent's maintenance record",
}
_WHO = {
    "reason": _REASON,
    "by": {
        "type": "string",
        "enum": ["operator", "satellite"],
        "description": "Who asks (default: operator)",
    },
}


def _maintenance(summary: str, body: dict[str, Any], required_body: bool = False) -> dict:
    return {
        "post": _op(
            summary,
            _ok(_ref("AgentChange"), "The agent after the change, and what was done"),
            (400, 404, 409),
            [_path("agent_id")],
            _json_body(body, required_body),
            tag="maintenance",
        )
    }


def _reservation(summary: str, resources: str, **more: Any) -> dict:
    """POST changing an agent's dynamic reservations; the body names the resources."""
    body = {
        "resources": {"type": "string", "description": resources},
        "role": {"type": "string", "description": "Role for entries without one"},
        **more,
    }
    return {
        "post": _op(
            summary,
            _ok(_ref("Agent"), "The agent with its reservations"),
            (400, 403, 404, 409),
            [_path("agent_id")],
            _json_body(_object(body, ["resources"]), True),
            tag="maintenance",
        )
    }


MAINTENANCE_PATHS: dict[str, Any] = {
    "/api/v1/agents/{agent_id}/deactivate": _maintenance(
        "Stop offering the agent's resources; its tasks keep running",
        _object(_WHO, ["reason"]),
        required_body=True,
    ),
    "/api/v1/agents/{agent_id}/drain": _maintenance(
        "Deactivate the agent and kill its tasks after a grace period",
        _object(
            {
                **_WHO,
                "grace": {
                    "type": "number",
                    "minimum": 0,
                    "maximum": MAX_DRAIN_GRACE,
                    "description": "Seconds tasks get to end before they are killed (default 30)",
                },
            }
        ),
    ),
    "/api/v1/agents/{agent_id}/reactivate": _maintenance(
        "Offer the agent's resources again",
        _object({"reason": {"type": "string", "default": "reactivated"}, "by": _WHO["by"]}),
    ),
    "/api/v1/agents/{agent_id}/pin": {
        **_maintenance(
            "Pin the agent active or inactive: Satellite's automation must leave it so "
            "until the pin expires",
            _object(
                {
                    "state": {"type": "string", "enum": ["active", "inactive"]},
                    "for_seconds": {
                        "type": "number",
                        "minimum": MIN_PIN_SECONDS,
                        "maximum": MAX_PIN_SECONDS,
                    },
                    "reason": _REASON,
                },
                ["state", "for_seconds", "reason"],
            ),
            required_body=True,
        ),
        "delete": _op(
            "Remove the agent's pin (nothing happens if it has none)",
            _ok(_ref("AgentChange"), "The agent, unpinned, and what was done"),
            (404, 409),
            [_path("agent_id")],
            tag="maintenance",
        ),
    },
    "/api/v1/agents/{agent_id}/remove": _maintenance(
        "Remove an agent for good (Mesos: mark agent gone); its tasks end and its id is "
        "never admitted again",
        _object({"reason": _REASON}, ["reason"]),
        required_body=True,
    ),
    "/api/v1/agents/{agent_id}/reserve": _reservation(
        "Reserve unreserved resources of the agent for a role (Mesos's RESERVE_RESOURCES; "
        "a dynamic reservation, kept in the registry, recording the caller's principal and "
        "the labels). Offers holding them are rescinded. Where ACLs are on, "
        "security.acls.reserve_resources must allow the role",
        "Like cpus:1;mem:256 (with role) or cpus(db):1",
        labels=STRINGS,
    ),
    "/api/v1/agents/{agent_id}/unreserve": _reservation(
        "Give dynamically reserved resources back to the unreserved pool (Mesos's "
        "UNRESERVE_RESOURCES); refused for resources tasks use or volumes hold. Where ACLs "
        "are on, security.acls.unreserve_resources must allow the reservers' principals "
        "(one's own: always)",
        "Like cpus(db):1",
    ),
    "/api/v1/frameworks/{framework_id}/teardown": {
        "post": _op(
            "End a framework (Mesos's TEARDOWN): its tasks are killed, its id is never "
            "admitted again. Its own principal may; another only where "
            "security.acls.teardown_frameworks allows",
            _ok(_ref("Framework"), "The framework, completed"),
            (400, 403, 404, 409),
            [_path("framework_id")],
            _json_body(_object({"reason": _REASON})),
            tag="maintenance",
        )
    },
}

# --------------------------------------------------------------------- roles

_AMOUNTS = {
    "type": "object",
    "additionalProperties": {"type": "number", "minimum": 0},
    "description": "Amount per scalar resource name (cpus, mem, disk, gpus, custom scalars)",
}
_ROLE = {
    "type": "string",
    "description": "A role name; '/' separates levels (eng/web is a child of eng)",
}
_QUOTA = _object(
    {
        "role": _ROLE,
        "guarantees": {**_AMOUNTS, "description": "Kept aside for the role's subtree (headroom)"},
        "limits": {**_AMOUNTS, "description": "The most the subtree is offered and uses at once"},
    },
    ["role"],
)
_WEIGHT = _object(
    {"role": _ROLE, "weight": {"type": "number", "exclusiveMinimum": True, "minimum": 0,
                               "maximum": 1e6}},
    ["role", "weight"],
)  # fmt: skip
_WEIGHTS = _object({"weight_infos": {"type": "array", "items": _WEIGHT}}, ["weight_infos"])
_WEIGHTS_BODY = _object(
    {"weight_infos": {"type": "array", "items": _WEIGHT, "minItems": 1}}, ["weight_infos"]
)
_QUOTAS = _object({"quota_configs": {"type": "array", "items": _QUOTA}}, ["quota_configs"])

ROLE_PATHS: dict[str, Any] = {
    "/api/v1/roles": {
        "get": _op(
            "Every role with a framework, a weight, a quota or an allocation, and their "
            "parents: weight, guarantees, limits, frameworks and what the subtree holds",
            _ok(_object({"roles": {"type": "array", "items": _ref("Role")}}, ["roles"])),
            tag="roles",
        )
    },
    "/api/v1/weights": {
        "get": _op("Role weights set by operators (others weigh 1)", _ok(_WEIGHTS), tag="roles"),
        "put": _op(
            "Set role weights (Mesos's UPDATE_WEIGHTS; weight 1 is the default). ACL: "
            "update_weights",
            _ok(_WEIGHTS, "Every weight set, once kept in the registry"),
            (400,),
            body=_json_body(_WEIGHTS_BODY),
            tag="roles",
        ),
    },
    "/api/v1/quota": {
        "get": _op("Role quotas: guarantees and limits", _ok(_QUOTAS), tag="roles"),
        "post": _op(
            "Set role quotas (Mesos 1.9's UPDATE_QUOTA); a config with neither guarantees nor "
            "limits removes the role's. Checked together with those kept: guarantee <= limit, "
            "a child's guarantees within its parent's, a child's limit within its parent's, "
            "the guarantees within the cluster unless force. ACL: update_quotas",
            _ok(_QUOTAS, "Every quota, once kept in the registry"),
            (400,),
            body=_json_body(
                _object(
                    {
                        "quota_configs": {"type": "array", "items": _QUOTA, "minItems": 1},
                        "force": {
                            "type": "boolean",
                            "description": "Hold guarantees larger than the cluster anyway",
                        },
                    },
                    ["quota_configs"],
                )
            ),
            tag="roles",
        ),
    },
    "/api/v1/quota/{role}": {
        "delete": _op(
            "Remove a role's quota (the role may hold '/'). ACL: update_quotas",
            _ok(_QUOTAS, "The quotas left, once kept in the registry"),
            (400, 404),
            [_path("role", "The role, e.g. eng/web")],
            tag="roles",
        )
    },
}

# --------------------------------------------------------------------- silences

SILENCE_PATHS: dict[str, Any] = {
    "/api/v2/silences": {
        "get": _op(
            "Silences, in Alertmanager's API v2 shape (amtool works)",
            _ok({"type": "array", "items": _ref("Silence")}),
            tag="silences",
        ),
        "post": _op(
            "Create a silence, or replace one by id (a postableSilence)",
            _ok(_object({"silenceID": TEXT}, ["silenceID"]), "Kept in the registry"),
            (400, 404, 413),
            body=_json_body(_ref("PostableSilence")),
            tag="silences",
        ),
    },
    "/api/v2/silence/{id}": {
        "get": _op("One silence", _ok(_ref("Silence")), (404,), [_path("id")], tag="silences"),
        "delete": _op(
            "Expire a silence now (it stays listed, expired, for 5 days)",
            {"description": "Expired"},
            (404,),
            [_path("id")],
            tag="silences",
        ),
    },
}

# --------------------------------------------------------------------- satellite

_MATCH = _query(
    "match[]",
    "A series selector; repeat for several",
    {"type": "array", "items": {"type": "string"}},
)
_MATCH["style"], _MATCH["explode"] = "form", True
_TIME = {"type": "string", "description": "RFC 3339 or Unix seconds"}


def _prometheus(
    summary: str,
    data: dict[str, Any],
    fields: dict[str, dict[str, Any]],
    required: list[str],
    post: bool = True,
    params: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """GET with query parameters and POST with the same as a form, Prometheus's way."""
    ok = _ok(_object({"status": {"type": "string", "enum": ["success"]}, "data": data}))
    query = [
        _query(name, schema.get("description", ""), schema, name in required)
        for name, schema in fields.items()
    ]
    if "match[]" in fields:
        query = [
            q if q["name"] != "match[]" else _MATCH | {"required": "match[]" in required}
            for q in query
        ]
    out = {
        "get": _op(summary, ok, (400, 422), (params or []) + query, tag="query", prometheus=True),
    }
    if post:
        form = {n: s if n != "match[]" else _MATCH["schema"] for n, s in fields.items()}
        out["post"] = _op(
            summary + " (a form, as Grafana sends)",
            ok,
            (400, 422),
            params,
            {"required": True, "content": {FORM: {"schema": _object(form, required, False)}}},
            tag="query",
            prometheus=True,
        )
    return out


SATELLITE_PATHS: dict[str, Any] = {
    "/api/v1/query": _prometheus(
        "Evaluate a PromQL expression at one time",
        _ref("QueryData"),
        {"query": {"type": "string", "description": "A PromQL expression"}, "time": _TIME},
        ["query"],
    ),
    "/api/v1/query_range": _prometheus(
        "Evaluate a PromQL expression at each step from start to end",
        _ref("QueryData"),
        {
            "query": {"type": "string", "description": "A PromQL expression"},
            "start": _TIME,
            "end": _TIME,
            "step": {"type": "string", "description": "Seconds or a duration (15s, 1m)"},
        },
        ["query", "start", "end", "step"],
    ),
    "/api/v1/series": _prometheus(
        "Series matching selectors",
        {"type": "array", "items": STRINGS},
        {"match[]": {}, "start": _TIME, "end": _TIME},
        ["match[]"],
    ),
    "/api/v1/labels": _prometheus(
        "Label names (of the series matching selectors, if given)",
        {"type": "array", "items": TEXT},
        {"match[]": {}},
        [],
    ),
    "/api/v1/label/{name}/values": _prometheus(
        "Values of one label",
        {"type": "array", "items": TEXT},
        {},
        [],
        post=False,
        params=[_path("name")],
    ),
    "/api/v1/alerts": {
        "get": _op(
            "Satellite's active alerts, in Prometheus's shape",
            _ok(_object({"status": TEXT, "data": _object({"alerts": {"type": "array"}})})),
            tag="satellite",
            prometheus=True,
        )
    },
    "/api/v1/rules": {
        "get": _op(
            "Satellite's rule groups and their last evaluation",
            _ok(_object({"status": TEXT, "data": _object({"groups": {"type": "array"}})})),
            (400,),
            [_query("type", "alert or record", {"type": "string", "enum": ["alert", "record"]})],
            tag="satellite",
            prometheus=True,
        )
    },
    "/api/v1/rules/reload": {
        "post": _op(
            "Read the rule files and the notifier config again; a refused file keeps the old rules",
            _ok(
                _object(
                    {
                        "groups": {"type": "integer"},
                        "rules": {"type": "integer"},
                        "notifier_reloaded": {"type": "boolean"},
                    }
                )
            ),
            (400,),
            tag="satellite",
        )
    },
    "/api/v1/satellite/events": {
        "get": _op(
            "Satellite's recent decisions (what its policy did and why) and operators' "
            "actions beside them (actor, principal), oldest first",
            _ok(_object({"events": {"type": "array", "items": {"type": "object"}}})),
            (400,),
            [
                _query(
                    "limit", "at most this many", {"type": "integer", "minimum": 1, "maximum": 1000}
                )
            ],
            tag="satellite",
        )
    },
    "/api/v1/satellite/policy": {
        "get": _op(
            "The safety policy's budget now: how many agents may be out of service, which "
            "are, and the take-outs in the rate window",
            _ok(_ref("PolicyBudget")),
            tag="satellite",
        )
    },
    "/api/v1/satellite/targets": {
        "get": _op(
            "What Satellite scrapes and how the last scrape went",
            _ok(_object({"targets": {"type": "array", "items": _ref("ScrapeTarget")}})),
            tag="satellite",
        )
    },
    "/api/v1/satellite/alertmanager": {
        "post": _op(
            "An Alertmanager webhook receiver: firing alerts are kept, resolved ones dropped",
            _ok(_object({"received": {"type": "integer"}, "active": {"type": "integer"}})),
            (400, 413),
            body=_json_body(_ref("AlertmanagerWebhook")),
            tag="satellite",
        )
    },
    "/graph": {
        "get": _op(
            "A page with an expression's current value per series (alerts' generatorURL)",
            _ok(TEXT, media="text/html"),
            params=[
                _query("g0.expr", "A PromQL expression"),
                _query("g0.tab", "Ignored (Prometheus's table tab)"),
            ],
            tag="satellite",
        )
    },
}

# --------------------------------------------------------------------- the document


def _get(summary: str, schema: dict[str, Any], errors: tuple[int, ...] = (), **kw: Any) -> dict:
    return {"get": _op(summary, _ok(schema), errors, **kw)}


def _mesos_call(summary: str, types: str, ok: dict[str, Any], media: tuple[str, ...]) -> dict:
    """A Mesos API call: a body {"type": ..., ...} in Mesos's JSON (or protobuf)."""
    body = {"type": "object", "properties": {"type": {"type": "string", "description": types}},
            "required": ["type"]}  # fmt: skip
    op = _op(summary, ok, (400, 404, 409, 415), body={
        "required": True, "content": {m: {"schema": body} for m in media}})  # fmt: skip
    return {"post": op}


MESOS_PATHS: dict[str, Any] = {
    "/api/v1/scheduler": _mesos_call(
        "Mesos's v1 scheduler API (orbiter/mesos): SUBSCRIBE answers 200 with a RecordIO "
        "event stream and a Mesos-Stream-Id header; every other call must carry that header "
        "and answers 202",
        "SUBSCRIBE, TEARDOWN, ACCEPT, DECLINE, REVIVE, SUPPRESS, KILL, SHUTDOWN (refused), "
        "ACKNOWLEDGE, RECONCILE, MESSAGE, REQUEST, ACCEPT_INVERSE_OFFERS, "
        "DECLINE_INVERSE_OFFERS",
        {
            "description": "The event stream (SUBSCRIBE)",
            "content": {m: {"schema": TEXT} for m in (JSON, "application/x-protobuf")},
        },
        (JSON, "application/x-protobuf"),
    ),
    "/api/v1": _mesos_call(
        "Mesos's v1 operator API (JSON): {\"type\": ...}; SUBSCRIBE answers a RecordIO "
        "event stream",
        "GET_HEALTH, GET_VERSION, GET_STATE, GET_AGENTS, GET_FRAMEWORKS, GET_TASKS, "
        "GET_MAINTENANCE_STATUS, DRAIN_AGENT, DEACTIVATE_AGENT, REACTIVATE_AGENT, "
        "MARK_AGENT_GONE, SUBSCRIBE",
        _ok({"type": "object"}),
        (JSON,),
    ),
    "/master/state": _get("Mesos's v0 state (frameworks, slaves, tasks)", {"type": "object"}),
    "/master/state.json": _get("The same as /master/state", {"type": "object"}),
    "/version": _get("The Mesos API version this master follows", {"type": "object"}),
}
MESOS_PATHS["/api/v1/scheduler"]["post"]["responses"]["202"] = {
    "description": "The call was accepted"
}
MESOS_PATHS["/api/v1/scheduler"]["post"]["responses"]["406"] = ERROR


PATHS: dict[str, Any] = {
    "/": {
        "get": _op(
            "The web UI (HTML; served without credentials, its API calls need them)",
            _ok(TEXT, media="text/html"),
            tag="ui",
        )
    },
    "/ui/{name}": {
        "get": _op(
            "One of the web UI's files (HTML, CSS, JavaScript modules)",
            {
                "description": "The file",
                "content": {m: {"schema": TEXT} for m in UI_MEDIA},
            },
            (404,),
            [_path("name", "A file name, e.g. app.js")],
            tag="ui",
        )
    },
    "/api/v1/summary": _get(
        "The overview's numbers: resources offered, used and idle by kind; agents, tasks "
        "and frameworks by state; the leading master",
        _ref("Summary"),
    ),
    "/health": {
        "get": {
            "summary": "Liveness, and whether this master leads and acts (a standby "
            "answers this itself)",
            "tags": ["cluster"],
            "responses": {"200": _ok(_ref("Health"))},
        }
    },
    "/metrics": {
        "get": {
            "summary": "Prometheus metrics of the master (and of its Satellite)",
            "tags": ["cluster"],
            "responses": {"200": _ok(TEXT, media="text/plain")},
        }
    },
    "/state": _get("Everything the master knows", _ref("State")),
    "/api/v1/openapi.json": _get("This document", {"type": "object"}),
    "/api/v1/agents": _get(
        "Agents", _object({"agents": {"type": "array", "items": _ref("Agent")}})
    ),
    "/api/v1/http_sd": _get(
        "Scrape targets in Prometheus's http_sd format (the master and every agent)",
        _ref("HttpSd"),
    ),
    "/api/v1/agents/{agent_id}": _get(
        "One agent", _ref("Agent"), (404,), params=[_path("agent_id")]
    ),
    "/api/v1/frameworks": _get(
        "Frameworks",
        _object({"frameworks": {"type": "array", "items": _ref("Framework")}}),
    ),
    "/api/v1/frameworks/{framework_id}": _get(
        "One framework", _ref("Framework"), (404,), params=[_path("framework_id")]
    ),
    "/api/v1/tasks": _get(
        "Tasks, newest state; completed tasks included",
        _ref("TaskList"),
        (400,),
        params=[
            _query("framework_id", "only this framework's tasks"),
            _query("agent_id", "only tasks on this agent"),
            _query("state", "only tasks in this state, e.g. TASK_RUNNING"),
        ],
    ),
    "/api/v1/tasks/{task_id}": _get(
        "Tasks with this id, each with its state history",
        _ref("TaskList"),
        (404,),
        params=[_path("task_id")],
    ),
    "/api/v1/tasks/{task_id}/kill": {
        "post": _op(
            "Kill a live task (its framework sees TASK_KILLED); the task as it is now",
            _ok(_ref("Task"), "The task; TASK_KILLED follows when its agent reports it"),
            (400, 404, 409),
            [_path("task_id")],
            _json_body(
                _object(
                    {
                        "framework_id": {
                            "type": "string",
                            "description": "Which framework's task, when several live tasks "
                            "share the id",
                        },
                        "grace": {
                            "type": "number",
                            "minimum": 0,
                            "maximum": MAX_DRAIN_GRACE,
                            "description": "Seconds between SIGTERM and SIGKILL (default: "
                            "the task's own kill_grace_period)",
                        },
                    }
                ),
                required=False,
            ),
            tag="tasks",
        )
    },
    "/api/v1/tasks/{task_id}/files": _get(
        "The files in the task's sandbox, read from its agent with the caller's credentials "
        "(the newest task of that id unless framework_id says which)",
        _object({"sandbox": TEXT, "files": {"type": "array", "items": _ref("SandboxFile")}}),
        (400, 404, 502),
        params=[_path("task_id"), _query("framework_id", "the task's framework")],
    ),
    "/api/v1/tasks/{task_id}/files/read": {
        "get": _op(
            "Bytes of a file in the task's sandbox from offset (at most length, 1 MiB), read "
            "from its agent with the caller's credentials; the web UI follows stdout this way",
            _ok(TEXT, media="text/plain"),
            (400, 404, 502),
            [
                _path("task_id"),
                _query("framework_id", "the task's framework"),
                _query("path", "a file in the sandbox (default stdout)"),
                _query("offset", "where to start", {"type": "integer", "minimum": 0}),
                _query(
                    "length",
                    "at most this many bytes",
                    {"type": "integer", "minimum": 0, "maximum": 1 << 20},
                ),
            ],
        )
    },
    "/api/v1/events": _get(
        "Cluster events: agents registered, unreachable, back, removed",
        _object({"events": {"type": "array", "items": _ref("Event")}}),
    ),
    **MAINTENANCE_PATHS,
    **MESOS_PATHS,
    **SILENCE_PATHS,
    **ROLE_PATHS,
    **SATELLITE_PATHS,
}

_RESOURCES = _object(
    {"text": TEXT, "quantities": {"type": "object", "additionalProperties": NUMBER}}
)
_TIME_OR_NULL = {"type": "number", "nullable": True}

SCHEMAS: dict[str, Any] = {
    "Error": _object({"error": TEXT}, ["error"], closed=False),
    "PrometheusError": _object(
        {
            "status": {"type": "string", "enum": ["error"]},
            "errorType": {"type": "string", "enum": ["bad_data", "execution"]},
            "error": TEXT,
        },
        ["status", "errorType", "error"],
    ),
    "Health": _object(
        {
            "status": TEXT,
            "role": {"type": "string", "enum": ["leader", "standby"]},
            "leader": {"type": "boolean"},
            "acting": {"type": "boolean"},
            "master_id": TEXT,
            "grpc_address": {
                "type": "string",
                "description": "This master's gRPC address (what --master takes)",
            },
            "leading_master": _object({"id": TEXT, "grpc_address": TEXT, "http_address": TEXT}),
        },
        ["status", "role", "leader", "acting", "master_id"],
    ),
    "Event": _object(
        {
            "time": NUMBER,
            "kind": TEXT,
            "agent_id": TEXT,
            "message": TEXT,
            "by": TEXT,
            "action": {
                "type": "string",
                "description": "For an operator's action: deactivate, drain, reactivate, pin, "
                "unpin, remove, silence add, silence expire; empty otherwise",
            },
            "principal": {
                "type": "string",
                "description": "Who asked (empty without authentication)",
            },
        }
    ),
    "Resources": _RESOURCES,
    "Agent": _object(
        {
            "id": TEXT,
            "principal": {
                "type": "string",
                "description": "Who registered it (empty without authentication)",
            },
            "hostname": TEXT,
            "http_address": TEXT,
            "status": {"type": "string", "enum": [s.value for s in AgentStatus]},
            "resources": _ref("Resources"),
            "used": _ref("Resources"),
            "offered": _ref("Resources"),
            "attributes": STRINGS,
            "tasks": {"type": "integer"},
            "executors": {
                "type": "array",
                "description": "Framework executors running there; their resources are in "
                "`used` until they end.",
                "items": _object(
                    {"framework_id": TEXT, "executor_id": TEXT, "resources": _ref("Resources")}
                ),
            },
            "registered_time": _TIME_OR_NULL,
            "last_seen": _TIME_OR_NULL,
            "unreachable_since": _TIME_OR_NULL,
            "version": TEXT,
            "maintenance": _object(
                {
                    "mode": {
                        "type": "string",
                        "enum": [name.lower() for name, _ in master_pb2.MaintenanceMode.items()],
                    },
                    "by": TEXT,
                    "reason": TEXT,
                    "since": _TIME_OR_NULL,
                    "drain_grace": NUMBER,
                    "principal": TEXT,
                },
                closed=False,
            ),
            "pin": {
                "type": "object",
                "nullable": True,
                "properties": {
                    "state": {"type": "string", "enum": ["active", "inactive"]},
                    "until": _TIME_OR_NULL,
                    "reason": TEXT,
                },
            },
            "reservations": {
                "type": "array",
                "description": "Dynamic reservations (their resources are in `resources` "
                "under their role)",
                "items": _object(
                    {"role": TEXT, "principal": TEXT, "labels": STRINGS, "resources": TEXT}
                ),
            },
            "volumes": {
                "type": "array",
                "description": "Persistent volumes; their disk is not in `resources`",
                "items": _object(
                    {
                        "persistence_id": TEXT,
                        "role": TEXT,
                        "size": NUMBER,
                        "container_path": TEXT,
                        "principal": TEXT,
                        "labels": STRINGS,
                        "used_by": {
                            "type": "object",
                            "nullable": True,
                            "properties": {"framework_id": TEXT, "task_id": TEXT},
                        },
                    }
                ),
            },
        },
        ["id", "status", "resources"],
    ),
    "HttpSd": {
        "type": "array",
        "items": _object(
            {"targets": {"type": "array", "items": TEXT}, "labels": STRINGS},
            ["targets", "labels"],
        ),
    },
    "Framework": _object(
        {
            "id": TEXT,
            "name": TEXT,
            "roles": {"type": "array", "items": TEXT},
            "status": {"type": "string", "enum": [s.value for s in FrameworkStatus]},
            "tasks": {"type": "integer"},
            "offers": {"type": "integer"},
        },
        ["id", "name", "status"],
        closed=False,
    ),
    "Task": _object(
        {
            "id": TEXT,
            "name": TEXT,
            "framework_id": TEXT,
            "agent_id": TEXT,
            "hostname": TEXT,
            "state": TEXT,
            "resources": _ref("Resources"),
            "message": TEXT,
            "reason": TEXT,
            "exit_code": {"type": "integer", "nullable": True},
            "history": {
                "type": "array",
                "description": "The updates that changed its state, oldest first (one task)",
                "items": _object(
                    {
                        "state": TEXT,
                        "reason": TEXT,
                        "message": TEXT,
                        "source": TEXT,
                        "time": _TIME_OR_NULL,
                    }
                ),
            },
        },
        ["id", "state"],
        closed=False,
    ),
    "TaskList": _object({"tasks": {"type": "array", "items": _ref("Task")}}, ["tasks"]),
    "State": _object(
        {
            "master": {"type": "object"},
            "agents": {"type": "array", "items": _ref("Agent")},
            "frameworks": {"type": "array", "items": _ref("Framework")},
            "tasks": {"type": "array", "items": _ref("Task")},
            "offers": {"type": "integer"},
        },
        ["master", "agents", "frameworks", "tasks"],
        closed=False,
    ),
    "SandboxFile": _object({"path": TEXT, "size": {"type": "integer"}}),
    "Summary": _object(
        {
            "master": {"type": "object"},
            "resources": {
                "type": "object",
                "additionalProperties": _object(
                    {"total": NUMBER, "used": NUMBER, "offered": NUMBER, "idle": NUMBER}
                ),
            },
            "agents": {
                "type": "object",
                "description": "By state: active, deactivated, draining, drained (maintenance),"
                " unreachable, gone",
                "additionalProperties": {"type": "integer"},
            },
            "agent_links": {"type": "object", "additionalProperties": {"type": "integer"}},
            "tasks": {"type": "object", "additionalProperties": {"type": "integer"}},
            "frameworks": {"type": "object", "additionalProperties": {"type": "integer"}},
            "offers": {"type": "integer"},
        },
        ["master", "resources", "agents", "tasks", "frameworks"],
    ),
    "PolicyBudget": _object(
        {
            "total": {"type": "integer", "description": "Agents counted (all but gone)"},
            "allowed": {"type": "integer", "description": "How many may be out at once"},
            "room": {"type": "integer", "description": "How many more may go out now"},
            "out": {"type": "array", "items": TEXT},
            "satellite_out": {"type": "array", "items": TEXT},
            "actions_in_window": {"type": "integer"},
            "max_actions_per_window": {"type": "integer"},
            "window_seconds": NUMBER,
            "min_active_agents": {"type": "integer"},
            "frozen": {"type": "boolean"},
            "dry_run": {"type": "boolean"},
            "fenced": {"type": "boolean"},
        },
        closed=False,
    ),
    "Role": _object(
        {
            "role": _ROLE,
            "weight": NUMBER,
            "frameworks": {"type": "array", "items": TEXT},
            "allocated": {**_AMOUNTS, "description": "What the subtree is offered and uses"},
            "guarantees": _AMOUNTS,
            "limits": _AMOUNTS,
        },
        ["role", "weight", "frameworks", "allocated", "guarantees", "limits"],
    ),
    "Matcher": _object(
        {
            "name": {"type": "string", "pattern": "^[a-zA-Z_][a-zA-Z0-9_]*$"},
            "value": TEXT,
            "isRegex": {"type": "boolean"},
            "isEqual": {"type": "boolean"},
        },
        ["name", "value"],
    ),
    "PostableSilence": _object(
        {
            "id": {"type": "string", "description": "Set to replace that silence"},
            "matchers": {"type": "array", "items": _ref("Matcher"), "minItems": 1},
            "startsAt": {"type": "string", "format": "date-time"},
            "endsAt": {"type": "string", "format": "date-time"},
            "createdBy": TEXT,
            "comment": TEXT,
        },
        ["matchers", "endsAt", "createdBy", "comment"],
    ),
    "Silence": _object(
        {
            "id": TEXT,
            "status": _object(
                {"state": {"type": "string", "enum": ["active", "pending", "expired"]}}
            ),
            "updatedAt": {"type": "string", "format": "date-time"},
            "matchers": {"type": "array", "items": _ref("Matcher")},
            "startsAt": {"type": "string", "format": "date-time"},
            "endsAt": {"type": "string", "format": "date-time"},
            "createdBy": TEXT,
            "comment": TEXT,
        },
        ["id", "status", "matchers", "startsAt", "endsAt", "createdBy", "comment"],
        closed=False,
    ),
    "QueryData": _object(
        {
            "resultType": {"type": "string", "enum": ["vector", "matrix", "scalar", "string"]},
            "result": {"type": "array"},
        },
        ["resultType", "result"],
    ),
    "ScrapeTarget": _object(
        {
            "url": TEXT,
            "labels": STRINGS,
            "up": {"type": "boolean", "nullable": True},
            "last_scrape": _TIME_OR_NULL,
            "last_duration_seconds": NUMBER,
            "samples": {"type": "integer"},
            "last_error": TEXT,
        },
        closed=False,
    ),
    "AlertmanagerWebhook": _object(
        {
            "version": {"type": "string", "enum": ["4"]},
            "status": TEXT,
            "receiver": TEXT,
            "alerts": {
                "type": "array",
                "items": _object(
                    {
                        "status": {"type": "string", "enum": ["firing", "resolved"]},
                        "labels": {
                            "type": "object",
                            "required": ["alertname"],
                            "properties": {"alertname": {"type": "string", "minLength": 1}},
                            "additionalProperties": TEXT,
                        },
                        "annotations": STRINGS,
                        "startsAt": {"type": "string", "format": "date-time"},
                        "endsAt": {"type": "string", "format": "date-time"},
                        "generatorURL": TEXT,
                    },
                    ["status", "labels", "startsAt"],
                    closed=False,
                ),
            },
        },
        ["alerts"],
        closed=False,
    ),
}

SCHEMAS["AgentChange"] = _object(
    {
        **SCHEMAS["Agent"]["properties"],
        "outcome": {
            "type": "string",
            "description": "What the master did, as its log keeps it (the README's words)",
        },
    },
    SCHEMAS["Agent"].get("required"),
)

DOCUMENT: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {
        "title": "Orbiter operator API",
        "version": orbiter.__version__,
        "description": "The master's HTTP API: cluster state, maintenance, silences, and "
        "Satellite's monitoring API (present when the master runs Satellite). Errors are "
        'JSON bodies {"error": message} with a 4xx status (503 from a master that cannot '
        "act), except Prometheus's query API, which answers Prometheus's error envelope "
        "(but for 401, 403 and 429). With authentication on, every operation but /health, "
        "/metrics and the web UI's files (/ and /ui/*) needs a principal (401), and every "
        "one but /health and /metrics is rate limited per principal and host (429 with "
        "Retry-After).",
    },
    "tags": [
        {"name": "cluster", "description": "What the master knows"},
        {"name": "maintenance", "description": "Operator actions on agents"},
        {"name": "tasks", "description": "Operator actions on tasks"},
        {"name": "silences", "description": "Alertmanager API v2 silences"},
        {"name": "roles", "description": "Role weights and quota (hierarchical DRF)"},
        {"name": "satellite", "description": "Satellite's monitoring (when configured)"},
        {"name": "query", "description": "Prometheus's HTTP query API over Satellite's TSDB"},
        {"name": "ui", "description": "The web UI's files"},
    ],
    "paths": PATHS,
    "components": {
        "responses": {
            "Error": {
                "description": "The request was refused; nothing changed",
                "content": {JSON: {"schema": _ref("Error")}},
            },
            "PrometheusError": {
                "description": "Refused (bad_data: 400) or failed (execution: 422)",
                "content": {JSON: {"schema": _ref("PrometheusError")}},
            },
            "Unauthenticated": {
                "description": "Authentication is on and the request has no principal: "
                "send a bearer token or a client certificate",
                "headers": {"WWW-Authenticate": {"schema": TEXT}},
                "content": {JSON: {"schema": _ref("Error")}},
            },
            "Forbidden": {
                "description": "The principal may not do this (an ACL, or an object bound "
                "to another principal); nothing changed",
                "content": {JSON: {"schema": _ref("Error")}},
            },
            "RateLimited": {
                "description": "Too many calls from this principal and host (master.api_rate "
                "and api_burst); nothing changed. Retry after Retry-After seconds",
                "headers": {
                    "Retry-After": {
                        "description": "Seconds until a call would pass",
                        "schema": {"type": "integer", "minimum": 1},
                    }
                },
                "content": {JSON: {"schema": _ref("Error")}},
            },
        },
        "schemas": SCHEMAS,
    },
}
