"""Weights and quota through a real master: the HTTP API (Mesos's UPDATE_WEIGHTS and
UPDATE_QUOTA shapes) and the `orbiter roles | weight | quota` commands; what is
acknowledged is in the registry, so a new master on the same work dir has it; a bad
request is refused with what to fix and changes nothing."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from orbiter.master.quota import Quota
from orbiter.master.server import MasterServer, MasterSettings
from tests.smallcluster import master_and_agents


def get_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.read().decode()


def call(url: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data, {"Content-Type": "application/json"}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


async def test_weights_and_quota_over_http_survive_a_new_master(tmp_path: Path) -> None:
    async with master_and_agents(tmp_path, agents=2) as (master, _):
        url = f"http://{master.info.http_address}/api/v1"
        status, body = await asyncio.to_thread(
            call, f"{url}/weights", "PUT", {"weight_infos": [{"role": "eng", "weight": 3}]}
        )
        assert status == 200 and body == {"weight_infos": [{"role": "eng", "weight": 3.0}]}
        config = {"role": "eng/web", "guarantees": {"cpus": 0.5}, "limits": {"cpus": 1}}
        status, body = await asyncio.to_thread(
            call, f"{url}/quota", "POST", {"quota_configs": [{"role": "eng", "limits":
                                           {"cpus": 2}}, config]},
        )  # fmt: skip
        assert status == 200, body
        assert [c["role"] for c in body["quota_configs"]] == ["eng", "eng/web"]
        for bad, status_wanted, why in [
            ({"quota_configs": [{"role": "ops", "guarantees": {"cpus": 9}}]}, 400,
             "more than the cluster has"),
            ({"quota_configs": [{"role": "eng/db", "limits": {"cpus": 3}}]}, 400,
             "above its parent 'eng''s limit"),
            ({"quota_configs": [{"role": "ops", "guarantees": {"cpu": 1}}]}, 400,
             "did you mean 'cpus'"),
            ({"quota_configs": [{"role": "ops", "colour": 1}]}, 400, "unknown field(s) colour"),
            ({"quota_configs": []}, 400, "non-empty list"),
        ]:  # fmt: skip
            status, body = await asyncio.to_thread(call, f"{url}/quota", "POST", bad)
            assert status == status_wanted and why in body["error"], (bad, body)
        status, body = await asyncio.to_thread(
            call, f"{url}/weights", "PUT", {"weight_infos": [{"role": "eng", "weight": 0}]}
        )
        assert status == 400 and "must be > 0" in body["error"]
        status, body = await asyncio.to_thread(call, f"{url}/quota/nobody", "DELETE")
        assert status == 404 and "has no quota" in body["error"]
        status, body = await asyncio.to_thread(call, f"{url}/roles")
        roles = {r["role"]: r for r in body["roles"]}
        assert roles["eng"]["weight"] == 3.0 and roles["eng/web"]["limits"] == {"cpus": 1.0}
        metrics = await asyncio.to_thread(get_text, f"http://{master.info.http_address}/metrics")
        assert 'orbiter_master_role_weight{role="eng"} 3.0' in metrics
        assert 'orbiter_master_role_quota_limit{resource="cpus",role="eng/web"} 1.0' in metrics
        assert 'orbiter_master_role_quota_guarantee{resource="cpus",role="eng/web"} 0.5' in metrics
    again = MasterServer(MasterSettings(port=0, http_port=0, work_dir=tmp_path / "m"))
    await again.start()
    try:
        assert again.core is not None
        assert again.core.weights == {"eng": 3.0}
        assert again.core.quotas == {
            "eng": Quota({}, {"cpus": 2.0}),
            "eng/web": Quota({"cpus": 0.5}, {"cpus": 1.0}),
        }
    finally:
        await again.stop()


async def test_orbiter_roles_weight_and_quota_commands(tmp_path: Path) -> None:
    async with master_and_agents(tmp_path, agents=1) as (master, _):

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "orbiter.cli", *args, "--master",
                 master.info.grpc_address],
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip

        done = await asyncio.to_thread(cli, "weight", "eng/web", "2")
        assert done.returncode == 0 and "role eng/web weighs 2" in done.stdout, done.stderr
        done = await asyncio.to_thread(
            cli, "quota", "set", "eng/web", "--guarantee", "cpus:0.5;mem:64", "--limit", "cpus:1"
        )
        assert done.returncode == 0, done.stderr
        assert "guarantee cpus:0.5;mem:64, limit cpus:1" in done.stdout
        table = await asyncio.to_thread(cli, "quota")
        assert "eng/web" in table.stdout and "cpus:0.5;mem:64" in table.stdout
        roles = await asyncio.to_thread(cli, "roles")
        lines = {line.split()[0]: line.split() for line in roles.stdout.splitlines()[2:]}
        assert lines["eng/web"][1] == "2" and lines["eng"][1] == "1", roles.stdout
        refused = await asyncio.to_thread(
            cli, "quota", "set", "eng/web", "--guarantee", "cpus:1", "--limit", "cpus:0.5"
        )
        assert refused.returncode != 0 and "above its limit" in refused.stderr
        refused = await asyncio.to_thread(cli, "quota", "set", "eng/web", "--limit", "cpus")
        assert refused.returncode == 2 and "is not name:amount" in refused.stderr
        done = await asyncio.to_thread(cli, "quota", "remove", "eng/web")
        assert done.returncode == 0 and "has no quota now" in done.stdout, done.stderr
        assert master.core.quotas == {}
