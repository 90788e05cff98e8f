"""`--master` pointed at an HTTP port: what answers there, and the port to use instead."""

from __future__ import annotations

from typing import Any

import pytest

from orbiter.wrongport import explain

MASTER_HEALTH = {"status": "ok", "role": "leader", "leader": True, "acting": True,
                 "master_id": "m1", "grpc_address": "0.0.0.0:5050"}  # fmt: skip
AGENT_HEALTH = {"status": "ok", "registered": True}
AGENT_STATE = {"id": "S1", "master": "10.0.0.5:6050"}


def answers(pages: dict[str, Any]) -> Any:
    def fetch(path: str) -> Any:
        if path not in pages:
            raise OSError("connection refused")
        return pages[path]

    return fetch


CASES = [
    (
        "127.0.0.1:5051",
        {"/health": MASTER_HEALTH},
        "127.0.0.1:5051 is the master's HTTP port; its gRPC port is 5050, "
        "use --master 127.0.0.1:5050",
    ),
    (
        "m.example:80",
        {"/health": {**MASTER_HEALTH, "grpc_address": ""}, },
        "m.example:80 is a master's HTTP port; give its gRPC port (default 5050)",
    ),
    (
        "127.0.0.1:7001",
        {"/health": {k: v for k, v in MASTER_HEALTH.items() if k != "grpc_address"}
         | {"leading_master": {"grpc_address": "127.0.0.1:6000"}}},
        "its gRPC port is 6000, use --master 127.0.0.1:6000",
    ),
    (
        "127.0.0.1:36837",
        {"/health": AGENT_HEALTH, "/state": AGENT_STATE},
        "127.0.0.1:36837 is an agent's HTTP port; its master is 10.0.0.5:6050, "
        "use --master 10.0.0.5:6050",
    ),
    (
        "127.0.0.1:36837",
        {"/health": AGENT_HEALTH},
        "127.0.0.1:36837 is an agent's HTTP port; give the master's gRPC address",
    ),
    (
        "127.0.0.1:5052",
        {"/health": {"status": "ok", "fenced": ""}},
        "127.0.0.1:5052 is Satellite's HTTP API",
    ),
    ("127.0.0.1:8080", {"/health": None}, "127.0.0.1:8080 answers HTTP, not gRPC"),
    ("127.0.0.1:8080", {"/health": {"hello": 1}}, "127.0.0.1:8080 answers HTTP, not gRPC"),
    ("127.0.0.1:1", {}, None),
]  # fmt: skip


@pytest.mark.parametrize(("address", "pages", "said"), CASES)
def test_the_message_names_whose_port_it_is_and_the_one_to_use(
    address: str, pages: dict[str, Any], said: str | None
) -> None:
    message = explain(address, answers(pages))
    if said is None:
        assert message is None
    else:
        assert message is not None and said in message, message
