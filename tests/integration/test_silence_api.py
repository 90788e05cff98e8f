"""Silences at the master, in Alertmanager's API v2 shape: the real `amtool` (Debian's
prometheus-alertmanager 0.25) adds, lists and expires them against Orbiter's master as it
would against an Alertmanager; they are in the registry before they are acknowledged, so
a new master (same registry) still has them; bad silences are refused with what to fix."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from orbiter.master.server import MasterServer, MasterSettings
from tests.smallcluster import master_and_agents


def amtool(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("amtool")
    if binary is None:
        pytest.fail("amtool not found: run `make deps` (Debian package prometheus-alertmanager)")
    return subprocess.run(
        [binary, f"--alertmanager.url={url}", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


def post(url: str, body: Any) -> tuple[int, Any]:
    req = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


async def test_amtool_adds_lists_and_expires_silences_at_the_master(tmp_path: Path) -> None:
    async with master_and_agents(tmp_path, agents=0) as (master, _):
        url = f"http://{master.info.http_address}"
        added = await asyncio.to_thread(
            amtool, url, "silence", "add", "alertname=OrbiterAgentDown", 'agent=~"S.*"',
            "--comment=rack 4 maintenance", "--author=alice", "--duration=2h",
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        silence_id = added.stdout.strip()
        assert silence_id in master.core.silences

        listed = await asyncio.to_thread(amtool, url, "silence", "query", "-o", "json")
        assert listed.returncode == 0, listed.stderr
        (got,) = json.loads(listed.stdout)
        assert got["id"] == silence_id and got["status"]["state"] == "active"
        assert got["createdBy"] == "alice" and got["comment"] == "rack 4 maintenance"
        assert sorted((m["name"], m["value"], m["isRegex"]) for m in got["matchers"]) == [
            ("agent", "S.*", True), ("alertname", "OrbiterAgentDown", False),
        ]  # fmt: skip

        expired = await asyncio.to_thread(amtool, url, "silence", "expire", silence_id)
        assert expired.returncode == 0, expired.stderr
        assert json.loads(
            (await asyncio.to_thread(amtool, url, "silence", "query", "-o", "json")).stdout
        ) == []  # amtool lists active ones only
        everything = await asyncio.to_thread(
            amtool, url, "silence", "query", "--expired", "-o", "json"
        )
        assert [s["status"]["state"] for s in json.loads(everything.stdout)] == ["expired"]

        status, body = await asyncio.to_thread(
            post, f"{url}/api/v2/silences",
            {"matchers": [{"name": "x", "value": ".*", "isRegex": True}], "endsAt":
             "2099-01-01T00:00:00Z", "createdBy": "bob", "comment": "everything"},
        )  # fmt: skip
        assert status == 400 and "must not match the empty string" in body["error"]
        for bad, why in [
            ({"matchers": [], "endsAt": "2099-01-01T00:00:00Z", "createdBy": "b",
              "comment": "c"}, "at least one matcher"),
            ({"matchers": [{"name": "a", "value": "b"}], "endsAt": "tomorrow",
              "createdBy": "b", "comment": "c"}, "is not an RFC 3339 time"),
            ({"matchers": [{"name": "a", "value": "("}], "endsAt": "2099-01-01T00:00:00Z",
              "createdBy": "b", "comment": "c"}, ""),
            ({"matchers": [{"name": "a", "value": "(", "isRegex": True}],
              "endsAt": "2099-01-01T00:00:00Z", "createdBy": "b", "comment": "c"},
             "invalid regular expression"),
            ({"matchers": [{"name": "a", "value": "b"}], "endsAt": "2001-01-01T00:00:00Z",
              "createdBy": "b", "comment": "c"}, "must end in the future"),
            ({"matchers": [{"name": "a", "value": "b"}], "endsAt": "2099-01-01T00:00:00Z",
              "createdBy": "b", "comment": " "}, "say why"),
            ({"matchers": [{"name": "1a", "value": "b"}], "endsAt": "2099-01-01T00:00:00Z",
              "createdBy": "b", "comment": "c"}, "not a valid label name"),
            ({"matchers": [{"name": "a", "value": "b"}], "endsAt": "2099-01-01T00:00:00Z",
              "createdBy": "b", "comment": "c", "colour": "red"}, "unknown field(s) colour"),
        ]:  # fmt: skip
            status, body = await asyncio.to_thread(post, f"{url}/api/v2/silences", bad)
            if why:
                assert status == 400 and why in body["error"], (bad, body)
            else:
                assert status == 200, body  # a plain "(" matcher is a literal, not a regex
        assert len(master.core.silences) == 2  # the expired one and the literal "("


async def test_silences_outlive_the_master(tmp_path: Path) -> None:
    async with master_and_agents(tmp_path, agents=0) as (master, _):
        url = f"http://{master.info.http_address}"
        status, body = await asyncio.to_thread(
            post, f"{url}/api/v2/silences",
            {"matchers": [{"name": "alertname", "value": "A"}], "endsAt": "2099-01-01T00:00:00Z",
             "createdBy": "carol", "comment": "kept"},
        )  # fmt: skip
        assert status == 200
        silence_id = body["silenceID"]
    again = MasterServer(MasterSettings(port=0, http_port=0, work_dir=tmp_path / "m"))
    await again.start()
    try:
        assert again.core is not None
        assert again.core.silences[silence_id].comment == "kept"
    finally:
        await again.stop()


async def test_orbiter_silence_add_list_expire(tmp_path: Path) -> None:
    import sys

    async with master_and_agents(tmp_path, agents=0) as (master, _):
        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "orbiter.cli", "silence", *args,
                 "--master", master.info.grpc_address],
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip

        added = await asyncio.to_thread(
            cli, "add", "alertname=OrbiterAgentDown", 'agent=~"S1|S2"', "--for", "30m",
            "--comment", "rack 4", "--author", "alice",
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        silence_id = added.stdout.strip()
        listed = await asyncio.to_thread(cli, "list")
        assert listed.returncode == 0, listed.stderr
        assert silence_id[:8] in listed.stdout and "active" in listed.stdout
        assert 'alertname="OrbiterAgentDown" agent=~"S1|S2"' in listed.stdout
        assert "rack 4" in listed.stdout and "alice" in listed.stdout
        bad = await asyncio.to_thread(cli, "add", "alertname", "--comment", "x")
        assert bad.returncode == 2 and "name=value" in bad.stderr, bad.stderr
        empty = await asyncio.to_thread(cli, "add", 'x=~".*"', "--comment", "x")
        assert empty.returncode == 2 and "must not match the empty string" in empty.stderr
        expired = await asyncio.to_thread(cli, "expire", silence_id)
        assert expired.returncode == 0 and f"expired {silence_id}" in expired.stdout
        listed = await asyncio.to_thread(cli, "list", "--json")
        assert json.loads(listed.stdout) == []
        listed = await asyncio.to_thread(cli, "list", "--expired", "--json")
        assert [s["status"]["state"] for s in json.loads(listed.stdout)] == ["expired"]
        gone = await asyncio.to_thread(cli, "expire", "no-such-id")
        assert gone.returncode == 2 and "no silence no-such-id" in gone.stderr, gone.stderr
