"""Every operation of the master's OpenAPI document (and the agent's), fuzzed by
schemathesis against live servers: a master with Satellite in its loop (fast: no second
process) and one agent, in a background thread (tests/fuzzcluster.py).

For each operation, hypothesis draws cases from schemathesis's strategies, half valid
(positive: what the document allows) and half not (negative: wrong types, missing
required fields, unknown fields, values out of range), and with the live agent's id in
the path for half of the valid ones, so maintenance calls reach past the 404. Every
answer must be:

- below 500;
- for a refusal (4xx): a JSON object with an "error" string (Prometheus's envelope on
  the query API has one too);
- for a POST or DELETE that was refused: no change to the cluster (/state, with
  heartbeat times left out, and the silences, before and after);
- for a success to a valid request: what the document says (status, content type,
  schema).

A second test sends any bytes with any content type and Content-Encoding to every POST
and DELETE. Not `Content-Encoding: deflate`: after one undecodable deflate body, a later
one on a kept-alive connection can get no answer at all (aiohttp's parser; the client
times out, the server keeps serving others). Status 0 in the counts: the server closed
the connection after refusing an unreadable body while the client still sent.

Case counts per operation and the runtime are printed at the end of the module (pytest -s).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from fuzzcluster import BackgroundCluster, background_cluster
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from orbiter.agent import openapi as agent_openapi
from orbiter.master import openapi

EXAMPLES_PER_OPERATION = int(os.environ.get("ORBITER_FUZZ_EXAMPLES", "100"))

RAW_EXAMPLES_PER_OPERATION = max(5, EXAMPLES_PER_OPERATION // 4)
"""Raw bodies (any bytes, content type and encoding) per POST and DELETE operation."""

MASTER = schemathesis.openapi.from_dict(openapi.DOCUMENT)
AGENT = schemathesis.openapi.from_dict(agent_openapi.DOCUMENT)
OPERATIONS = [("master", op.ok()) for op in MASTER.get_all_operations()] + [
    ("agent", op.ok()) for op in AGENT.get_all_operations()
]
COUNTS: Counter[str] = Counter()
STATUSES: Counter[tuple[str, int]] = Counter()
PROMQL_PATHS = {"/api/v1/query", "/api/v1/query_range", "/api/v1/series", "/api/v1/labels"}
EXPRESSIONS = [
    "up",
    "fuzz_up",
    'up{job="agent"}',
    "sum by (job) (up)",
    "rate(orbiter_master_offers_total[1m])",
    "vector(1) / 0",
    "scalar(vector(1))",
    "fuzz_up[1m]",
    '"a string"',
    "histogram_quantile(0.9, rate(x_bucket[5m]))",
    "sum(" * 600 + "up" + ")" * 600,
    "1" + "+1" * 1000,
]
"""Valid PromQL for half the valid query cases (random text hardly ever is)."""
SLOW_PATHS = {"/metrics"}
"""Routes each case of which costs tens of ms (a full exposition): fewer examples."""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundCluster]:
    started = time.monotonic()
    with background_cluster(tmp_path_factory.mktemp("apifuzz")) as c:
        yield c
    print(f"\nHTTP fuzz: {sum(COUNTS.values())} cases in {time.monotonic() - started:.1f}s")
    for label in sorted(COUNTS):
        statuses = {s: n for (lab, s), n in sorted(STATUSES.items()) if lab == label}
        print(f"  {label}: {COUNTS[label]} {statuses}")


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


@pytest.fixture(scope="module")
def sandbox(cluster: BackgroundCluster) -> dict[str, str]:
    """A task sandbox on the agent (its null containerizer runs nothing) for the /files
    routes' valid cases to name."""
    path = cluster.agent.settings.work_dir / "sandboxes" / "fuzz-fw" / "fuzz-task"
    path.mkdir(parents=True)
    (path / "stdout").write_text("out\n" * 100)
    (path / "stderr").write_text("err\n")
    return {"task_id": "fuzz-task", "framework_id": "fuzz-fw"}


@pytest.fixture(scope="module")
def silence_id(cluster: BackgroundCluster, session: requests.Session) -> str:
    """A silence for the silence routes' valid cases to name."""
    ends = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    body = {
        "matchers": [{"name": "alertname", "value": "Fuzz", "isRegex": False}],
        "endsAt": ends,
        "createdBy": "fuzz",
        "comment": "known id for the fuzzer",
    }
    response = session.post(f"{cluster.url}/api/v2/silences", json=body, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["silenceID"]


def _label(where: str, operation: Any) -> str:
    return f"{where} {operation.method.upper()} {operation.path}"


def snapshot(session: requests.Session, url: str) -> Any:
    """What a refused call must not change: the master's state, its silences."""
    state = session.get(f"{url}/state", timeout=10).json()
    for agent in state["agents"]:
        agent.pop("last_seen", None)  # heartbeats
    silences = session.get(f"{url}/api/v2/silences", timeout=10).json()
    for s in silences:
        s.pop("status", None)  # pending -> active -> expired with the clock alone
    return state, silences


_STRATEGIES: dict[tuple[str, GenerationMode, bool], Any] = {}


def _strategy(operation: Any, label: str, mode: GenerationMode, real: dict[str, str]) -> Any:
    key = (label, mode, bool(real))
    if key not in _STRATEGIES:
        _STRATEGIES[key] = operation.as_strategy(generation_mode=mode, path_parameters=real or None)
    return _STRATEGIES[key]


def _real_ids(operation: Any, cluster: BackgroundCluster, silence_id: str) -> dict[str, str]:
    names = {p.name for p in operation.path_parameters}
    # Not /remove: the agent would be gone for the rest of the module.
    if "agent_id" in names and not operation.path.endswith("/remove"):
        return {"agent_id": cluster.agent.agent_id}
    if operation.path == "/api/v2/silence/{id}":
        return {"id": silence_id}
    return {}


def _with_promql(case: Any, operation: Any, data: st.DataObject) -> None:
    """Put valid PromQL (and valid times) where the generated case has random text."""
    now = time.time()
    values: dict[str, Any] = {
        "query": data.draw(st.sampled_from(EXPRESSIONS)),
        "start": str(now - data.draw(st.integers(0, 3600))),
        "end": str(now),
        "step": data.draw(st.sampled_from(["1", "15s", "1m", "0.5"])),
        "match[]": [
            data.draw(st.sampled_from(["up", '{job="agent"}', "fuzz_up", '{__name__=~".+"}']))
        ],
    }
    if operation.path != "/api/v1/query_range":
        values.pop("step")
    if operation.path in ("/api/v1/series", "/api/v1/labels"):
        values.pop("query")
    else:
        values.pop("match[]")
    target = case.body if operation.method.upper() == "POST" else case.query
    if isinstance(target, dict):
        target.update(values)


def _is_error_body(response: Any) -> str | None:
    """Why a refusal's body is not a JSON error, or None if it is one."""
    ctype = (response.headers.get("content-type") or [""])[0]
    if not ctype.startswith("application/json"):
        return f"content type {ctype!r}, body {response.text[:200]!r}"
    try:
        body = json.loads(response.text)
    except ValueError as e:
        return f"not JSON ({e}): {response.text[:200]!r}"
    if not isinstance(body, dict) or not isinstance(body.get("error"), str) or not body["error"]:
        return f"no error message: {response.text[:200]!r}"
    return None


@pytest.mark.parametrize(
    ("where", "operation"), OPERATIONS, ids=[_label(w, op) for w, op in OPERATIONS]
)
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(data=st.data())
def test_every_operation_answers_bad_input_with_a_json_refusal_and_no_change(
    cluster: BackgroundCluster,
    session: requests.Session,
    silence_id: str,
    sandbox: dict[str, str],
    where: str,
    operation: Any,
    data: st.DataObject,
) -> None:
    label = _label(where, operation)
    if operation.path in SLOW_PATHS and COUNTS[label] >= 5:
        return
    mode = data.draw(st.sampled_from([GenerationMode.POSITIVE, GenerationMode.NEGATIVE]))
    real = _real_ids(operation, cluster, silence_id) if data.draw(st.booleans()) else {}
    if mode == GenerationMode.NEGATIVE:
        real = {}
    case = data.draw(_strategy(operation, label, mode, real), label="case")
    if (
        mode == GenerationMode.POSITIVE
        and operation.path in PROMQL_PATHS
        and data.draw(st.booleans())
    ):
        _with_promql(case, operation, data)
    if (
        mode == GenerationMode.POSITIVE
        and operation.path.startswith("/files/")
        and isinstance(case.query, dict)
        and data.draw(st.booleans())
    ):
        case.query.update(sandbox)
        if "path" in case.query and data.draw(st.booleans()):
            case.query["path"] = data.draw(st.sampled_from(["stdout", "stderr", "../x", "."]))
    base = cluster.url if where == "master" else cluster.agent_url
    changes = where == "master" and operation.method.upper() in ("POST", "DELETE")
    before = snapshot(session, cluster.url) if changes else None

    response = case.call(base_url=base, session=session, timeout=10)

    COUNTS[label] += 1
    STATUSES[(label, response.status_code)] += 1
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if os.environ.get("ORBITER_FUZZ_TRACE") and mode == GenerationMode.POSITIVE:
        print("TRACE", label, response.status_code, response.text[:150].replace("\n", " "))
    if response.status_code >= 400:
        problem = _is_error_body(response)
        assert problem is None, f"{response.status_code}: {problem}"
        if changes:
            assert snapshot(session, cluster.url) == before, "a refused call changed state"
    elif mode == GenerationMode.POSITIVE:
        case.validate_response(
            response,
            checks=[status_code_conformance, content_type_conformance, response_schema_conformance],
        )


POSTS = [(w, op) for w, op in OPERATIONS if op.method.upper() in ("POST", "DELETE")]
CONTENT_TYPES = [
    "application/json",
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=nope",
    "multipart/form-data",
    "multipart/form-data; boundary=zz",
    "text/plain",
    "application/json; charset=latin-1",
    "",
    "\x7f/\x00",
]


@pytest.mark.parametrize(("where", "operation"), POSTS, ids=[_label(w, op) for w, op in POSTS])
@settings(
    max_examples=RAW_EXAMPLES_PER_OPERATION,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(
    body=st.one_of(
        st.binary(max_size=300),
        st.sampled_from(
            [b"[" * 100_000, b'{"a":' * 70 + b"1" + b"}" * 70, b"\xff\xfe", b"", b"null"]
        ),
    ),
    content_type=st.sampled_from(CONTENT_TYPES),
    # Not deflate: see the module docstring.
    encoding=st.sampled_from([None, "gzip", "br", "zstd", "x-nope"]),
)
def test_any_bytes_in_any_content_type_get_a_json_refusal_and_no_change(
    cluster: BackgroundCluster,
    session: requests.Session,
    where: str,
    operation: Any,
    body: bytes,
    content_type: str,
    encoding: str | None,
) -> None:
    label = f"raw {_label(where, operation)}"
    path = operation.path.replace("{agent_id}", cluster.agent.agent_id).replace("{id}", "x")
    headers = {"Content-Type": content_type} if content_type else {}
    if encoding:
        headers["Content-Encoding"] = encoding
    before = snapshot(session, cluster.url)
    try:
        # Its own connection, closed after: an unreadable body may leave it unusable.
        response = requests.request(
            operation.method.upper(),
            cluster.url + path,
            data=body,
            headers={**headers, "Connection": "close"},
            timeout=5,
        )
    except requests.exceptions.InvalidHeader:
        return  # requests will not send it
    except requests.exceptions.ConnectionError:
        # The server answered an unreadable body and closed while the client still sent
        # (a reset): acceptable if it still serves and nothing changed.
        STATUSES[(label, 0)] += 1
        assert session.get(f"{cluster.url}/health", timeout=5).status_code == 200
        assert snapshot(session, cluster.url) == before, "a refused call changed state"
        return
    COUNTS[label] += 1
    STATUSES[(label, response.status_code)] += 1
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code >= 400:
        ctype = response.headers.get("Content-Type", "")
        assert ctype.startswith("application/json"), (ctype, response.text[:200])
        assert isinstance(response.json().get("error"), str)
        assert snapshot(session, cluster.url) == before, "a refused call changed state"
