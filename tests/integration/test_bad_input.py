"""Bad input to the master's and an agent's HTTP servers gets a JSON refusal, never a 500
or aiohttp's plain text, and changes nothing (issue 11's crashes, each with its input)."""

from __future__ import annotations

import asyncio
import json
import math
import socket
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from smallcluster import master_and_agents

from orbiter import httperrors
from orbiter.master.server import MasterServer, MasterSettings
from orbiter.satellite.promql import engine


async def _call(
    method: str, url: str, data: bytes | str | None = None, **headers: str
) -> tuple[int, str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, data=data, headers=headers) as resp,
    ):
        text = await resp.text()
        return resp.status, resp.content_type, text


async def _get(url: str, query: dict[str, str]) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as session, session.get(url, params=query) as resp:
        return resp.status, resp.content_type, await resp.text()


def _error_of(status: int, content_type: str, text: str) -> str:
    assert content_type == "application/json", (status, content_type, text[:200])
    body = json.loads(text)
    assert isinstance(body["error"], str) and body["error"], body
    return body["error"]


def _raw_request(host: str, port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are (aiohttp's client would refuse to build a bad request)."""
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(request)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, body


def test_deeply_nested_json_is_refused_without_recursion() -> None:
    with pytest.raises(httperrors.BadJson, match="too deeply nested"):
        httperrors.parse_json("[" * 100_000)
    with pytest.raises(httperrors.BadJson, match="too deeply nested"):
        httperrors.parse_json('{"a":' * 100 + "1" + "}" * 100)
    inside_a_string = '{"a": "' + "[" * 100 + '"}'
    assert httperrors.parse_json(inside_a_string) == {"a": "[" * 100}


def test_views_write_non_finite_floats_as_null() -> None:
    text = httperrors.json_text({"until": math.inf, "xs": [math.nan, 1.5], "n": -math.inf})
    assert json.loads(text) == {"until": None, "xs": [None, 1.5], "n": None}


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_json_constants_that_are_not_json_are_refused(constant: str) -> None:
    with pytest.raises(httperrors.BadJson, match="not a JSON number"):
        httperrors.parse_json(f'{{"for_seconds": {constant}}}')


@pytest.fixture
async def cluster(tmp_path: Path):
    async with master_and_agents(tmp_path) as (master, agents):
        yield master, agents


def _base(master: MasterServer) -> str:
    return f"http://{master.info.http_address}"


async def test_a_hundred_thousand_open_brackets_get_a_400_naming_the_nesting(cluster) -> None:
    master, agents = cluster
    url = f"{_base(master)}/api/v1/agents/{agents[0].agent_id}/drain"
    for path in (url, f"{_base(master)}/api/v2/silences"):
        status, ctype, text = await _call("POST", path, "[" * 100_000)
        assert status == 400
        assert "too deeply nested" in _error_of(status, ctype, text)


@pytest.mark.parametrize(
    "for_seconds", ["Infinity", "-Infinity", "NaN", "1e400", "-5", "0", "1e300"]
)
async def test_a_pin_for_no_finite_positive_time_is_refused(cluster, for_seconds: str) -> None:
    master, agents = cluster
    url = f"{_base(master)}/api/v1/agents/{agents[0].agent_id}/pin"
    body = f'{{"state": "inactive", "for_seconds": {for_seconds}, "reason": "x"}}'
    status, ctype, text = await _call("POST", url, body)
    assert status == 400, text
    _error_of(status, ctype, text)
    status, _, text = await _call("GET", f"{_base(master)}/api/v1/agents")
    assert status == 200
    assert json.loads(text)["agents"][0]["pin"] is None


async def test_agents_stay_valid_json_even_with_an_infinite_pin_in_the_registry(
    cluster,
) -> None:
    """A registry written before the pin check may hold one: the view says null."""
    master, agents = cluster
    master.core.set_pin(agents[0].agent_id, "active", math.inf, "old", 0.0)
    status, _, text = await _call("GET", f"{_base(master)}/api/v1/agents")
    assert status == 200
    (agent,) = json.loads(text)["agents"]  # strict: json.loads refuses nothing, so check:
    assert "Infinity" not in text and "NaN" not in text
    assert agent["pin"]["until"] is None


async def test_an_oversized_body_gets_a_json_413(cluster) -> None:
    master, _ = cluster
    url = f"{_base(master)}/api/v2/silences"
    status, ctype, text = await _call("POST", url, b"x" * (2 << 20))
    assert status == 413
    _error_of(status, ctype, text)


async def test_an_oversized_url_gets_a_json_414(cluster) -> None:
    master, _ = cluster
    host, port = master.info.http_address.rsplit(":", 1)
    request = b"GET /api/v1/tasks?state=" + b"A" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    status, headers, body = await asyncio.to_thread(_raw_request, host, int(port), request)
    assert status == 414
    assert headers["content-type"].startswith("application/json")
    assert json.loads(body)["error"]


async def test_an_oversized_header_gets_a_json_431(cluster) -> None:
    master, _ = cluster
    host, port = master.info.http_address.rsplit(":", 1)
    request = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"A" * 20_000 + b"\r\n\r\n"
    status, headers, body = await asyncio.to_thread(_raw_request, host, int(port), request)
    assert status == 431
    assert headers["content-type"].startswith("application/json")
    assert json.loads(body)["error"]


async def test_an_unknown_path_and_a_wrong_method_are_json(cluster) -> None:
    master, _ = cluster
    status, ctype, text = await _call("GET", f"{_base(master)}/no/such/thing")
    assert status == 404
    assert "/api/v1/openapi.json" in _error_of(status, ctype, text)
    status, ctype, text = await _call("PUT", f"{_base(master)}/api/v1/agents")
    assert status == 405
    assert _error_of(status, ctype, text) == "PUT is not allowed on /api/v1/agents; use GET, HEAD"


@pytest.mark.parametrize("param", ["task_id", "framework_id", "path"])
@pytest.mark.parametrize("route", ["/files/read", "/files/browse"])
async def test_a_nul_byte_in_files_parameters_is_a_400(cluster, param: str, route: str) -> None:
    _, agents = cluster
    query = {"task_id": "t", "framework_id": "f", "path": "stdout", param: "a\x00b"}
    status, ctype, text = await _get(f"http://{agents[0].http_address}{route}", query)
    assert status == 400
    assert "NUL" in _error_of(status, ctype, text)


async def test_a_file_name_too_long_for_the_file_system_is_a_404(cluster) -> None:
    _, agents = cluster
    query = {"task_id": "t" * 5000, "framework_id": "f"}
    status, ctype, text = await _get(f"http://{agents[0].http_address}/files/read", query)
    assert status == 404
    _error_of(status, ctype, text)


async def test_satellite_in_its_own_process_refuses_bad_input_with_json_too(
    tmp_path: Path,
) -> None:
    """The master forwards Satellite's routes to Satellite's process: refusals made there
    (its own middleware) come back as JSON like the master's own."""
    config = tmp_path / "orbiter.yml"
    config.write_text("satellite:\n  evaluation_interval: 1s\n")
    async with master_and_agents(tmp_path, config=config) as (master, _):
        base = _base(master)
        url = f"{base}/api/v1/satellite/alertmanager"
        status, ctype, text = await _call("POST", url, "[" * 100_000)
        assert status == 400
        assert "too deeply nested" in _error_of(status, ctype, text)
        status, ctype, text = await _call("POST", url, '{"alerts": [], "version": NaN}')
        assert status == 400
        _error_of(status, ctype, text)
        status, ctype, text = await _call("GET", f"{base}/api/v1/query?query=sum(")
        assert status == 400
        assert json.loads(text)["errorType"] == "bad_data"
        status, ctype, text = await _call("GET", f"{base}/api/v1/satellite/events?limit=x")
        assert status == 400
        _error_of(status, ctype, text)


@pytest.mark.parametrize("offset", [str(10**30), str(2**63), "-1"])
async def test_an_offset_past_any_file_size_is_a_400(cluster, offset: str) -> None:
    """A seek past 2**63 raised OverflowError: a 500."""
    _, agents = cluster
    sandbox = agents[0].settings.work_dir / "sandboxes" / "fw" / "t1"
    sandbox.mkdir(parents=True)
    (sandbox / "stdout").write_text("hello\n")
    url = f"http://{agents[0].http_address}/files/read"
    status, _, text = await _get(url, {"task_id": "t1", "framework_id": "fw"})
    assert (status, text) == (200, "hello\n")
    query = {"task_id": "t1", "framework_id": "fw", "offset": offset}
    status, ctype, text = await _get(url, query)
    assert status == 400
    assert "offset must be between 0 and" in _error_of(status, ctype, text)


@pytest.mark.parametrize("grace", ["1" + "0" * 400, "1e999", "-1", "86401", "NaN"])
async def test_a_drain_grace_out_of_range_is_a_400(cluster, grace: str) -> None:
    """An integer too large for a float made float() raise OverflowError: a 500."""
    master, agents = cluster
    url = f"{_base(master)}/api/v1/agents/{agents[0].agent_id}/drain"
    status, ctype, text = await _call("POST", url, f'{{"reason": "x", "grace": {grace}}}')
    assert status == 400, text
    _error_of(status, ctype, text)
    (agent,) = json.loads((await _call("GET", f"{_base(master)}/api/v1/agents"))[2])["agents"]
    assert agent["maintenance"]["mode"] == "active"


@pytest.mark.parametrize(
    "expr", ["sum(" * 600 + "up" + ")" * 600, "1" + "+1" * 1000, "(" * 3000 + "1" + ")" * 3000]
)
async def test_a_promql_expression_nested_a_thousand_deep_is_bad_data(expr: str) -> None:
    """The evaluator's RecursionError was a 500; Prometheus's envelope says bad_data."""
    from orbiter.satellite import query_api
    from orbiter.satellite.tsdb import TSDB

    async def query(request: Any) -> Any:
        engine.check_supported(expr)
        engine.value_type(expr)
        engine.instant_query(expr, TSDB(), 0, 1)
        return "evaluated"

    response = await query_api._answer(query)(None)  # type: ignore[arg-type]
    if response.status == 200:  # evaluated within the interpreter's recursion limit: fine
        return
    body = json.loads(response.text)
    assert (response.status, body["errorType"]) == (400, "bad_data")
    assert body["error"] == query_api.TOO_DEEP


async def test_a_body_that_does_not_decompress_is_a_400(cluster) -> None:
    """Content-Encoding: gzip over bytes that are not gzip raised out of request.read()."""
    master, agents = cluster
    url = f"{_base(master)}/api/v1/agents/{agents[0].agent_id}/drain"
    status, ctype, text = await _call("POST", url, b"abcd", **{"Content-Encoding": "gzip"})
    assert status == 400
    assert "cannot be read" in _error_of(status, ctype, text)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data", b"hello"),
        ("multipart/form-data; boundary=zz", b"hello"),
        ("application/x-www-form-urlencoded; charset=nope", b"query=up"),
    ],
)
async def test_a_query_body_that_is_not_a_form_is_bad_data(
    tmp_path: Path, content_type: str, body: bytes
) -> None:
    """request.post() raised (no boundary, an unknown charset): a 500."""
    from orbiter.satellite.service import SatelliteConfig

    settings = MasterSettings(
        port=0,
        http_port=0,
        work_dir=tmp_path / "m",
        satellite=SatelliteConfig(),
        satellite_in_master=True,
    )
    master = MasterServer(settings)
    await master.start()
    try:
        url = f"{_base(master)}/api/v1/query"
        status, _, text = await _call("POST", url, body, **{"Content-Type": content_type})
        assert status == 400, text
        answer = json.loads(text)
        assert answer["errorType"] == "bad_data" and "not a form" in answer["error"]
    finally:
        await master.stop()


async def test_an_offset_past_the_file_systems_largest_file_reads_nothing(cluster) -> None:
    """Found by the fuzzer: seek(2**63 - 2) is EINVAL on Linux, a 500."""
    _, agents = cluster
    sandbox = agents[0].settings.work_dir / "sandboxes" / "fw" / "t2"
    sandbox.mkdir(parents=True)
    (sandbox / "stdout").write_text("hello\n")
    url = f"http://{agents[0].http_address}/files/read"
    query = {"task_id": "t2", "framework_id": "fw", "offset": str(2**63 - 2)}
    status, _, text = await _get(url, query)
    assert (status, text) == (200, "")
