"""What an operator does by hand: `orbiter up` and Ctrl-C, a bad config file,
reloading rules (API and SIGHUP), and `orbiter rules check|test` from the shell."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from orbiter.config import DEFAULT_RULES

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ORBITER = [sys.executable, "-m", "orbiter.cli"]

RULE = """      - alert: {name}
        expr: vector(1) == 0
"""


def rules_file(path: Path, names: list[str]) -> None:
    path.write_text(
        "groups:\n  - name: ops\n    rules:\n" + "".join(RULE.format(name=n) for n in names)
    )


def http_json(url: str, method: str = "GET") -> Any:
    req = urllib.request.Request(url, data=b"{}" if method == "POST" else None, method=method)
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.load(resp)


def rule_names(http: str) -> list[str]:
    groups = http_json(f"http://{http}/api/v1/rules")["data"]["groups"]
    return [r["name"] for g in groups for r in g["rules"]]


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ORBITER, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_up_runs_tasks_and_ctrl_c_stops_the_cluster_and_its_tasks(
    tmp_path: Path, processes: Any, wait_until: Any
) -> None:
    port, http = _free_port(), _free_port()
    log = tmp_path / "up.log"
    up = processes.start(
        [
            *ORBITER,
            "up",
            "--agents",
            "2",
            "--port",
            str(port),
            "--http-port",
            str(http),
            "--work-dir",
            str(tmp_path / "cluster"),
        ],
        log,
    )
    wait_until(lambda: "Ctrl-C stops the cluster" in log.read_text(), 30, "orbiter up ready")
    # Satellite runs in its own process, with the shipped rules.
    shipped = sum(len(g["rules"]) for g in yaml.safe_load(DEFAULT_RULES.read_text())["groups"])
    satellite = re.search(
        rf"satellite\s+own process, pid (\d+)\s+{shipped} rules", log.read_text()
    )
    assert satellite, log.read_text()
    master = f"127.0.0.1:{port}"
    done = run("execute", "--master", master, "--name", "hi", "--command", "echo hi there")
    assert done.returncode == 0, done.stdout + done.stderr
    assert run("cat", "--master", master, "hi-0").stdout == "hi there\n"

    # A long task is running when the operator presses Ctrl-C.
    sleeper = subprocess.Popen(
        [*ORBITER, "execute", "--master", master, "--name", "long", "--command", "sleep 300"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(
            lambda: any(
                t["state"] == "TASK_RUNNING"
                for t in http_json(f"http://127.0.0.1:{http}/api/v1/tasks")["tasks"]
            ),
            20,
            "the long task running",
        )
        pid = next(
            t["pid"]
            for a in http_json(f"http://127.0.0.1:{http}/api/v1/agents")["agents"]
            for t in http_json(f"http://{a['http_address']}/state")["tasks"]
            if t["id"] == "long-0"
        )
        up.send_signal(signal.SIGINT)
        assert up.wait(30) == 0
    finally:
        sleeper.kill()
        sleeper.wait()
    text = log.read_text()
    assert "stopping: killing tasks" in text and text.rstrip().endswith("stopped")
    assert not alive(pid), "the task outlived orbiter up"
    assert not alive(int(satellite[1])), "Satellite's process outlived orbiter up"


def alive(pid: int) -> bool:
    """Running, not merely a zombie left for init to reap (this container's init is slow)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_bad_config_file_stops_the_master_with_file_line_and_expectation(tmp_path: Path) -> None:
    config = tmp_path / "orbiter.yml"
    config.write_text("satellite:\n  scrape_interval: 15s\n  policy:\n    cooldown: later\n")
    result = run(
        "master",
        "--config",
        str(config),
        "--port",
        str(_free_port()),
        "--http-port",
        str(_free_port()),
        "--work-dir",
        str(tmp_path / "m"),
    )
    assert result.returncode == 2
    assert f"{config}:4: satellite.policy.cooldown: 'later' is not a duration" in result.stderr
    assert not (tmp_path / "m").exists()


def test_rules_reload_takes_good_files_and_refuses_bad_ones_keeping_the_old_rules(
    tmp_path: Path, processes: Any, wait_until: Any
) -> None:
    rules = tmp_path / "ops.rules.yml"
    rules_file(rules, ["One"])
    config = tmp_path / "orbiter.yml"
    config.write_text(f"satellite:\n  rule_files: [{rules}]\n")
    port, http = _free_port(), _free_port()
    log = tmp_path / "master.log"
    master = processes.start(
        [
            *ORBITER,
            "master",
            "--config",
            str(config),
            "--port",
            str(port),
            "--http-port",
            str(http),
            "--work-dir",
            str(tmp_path / "m"),
        ],
        log,
    )
    addr = f"127.0.0.1:{http}"
    wait_until(lambda: rule_names(addr) == ["One"], 20, "the first rules loaded")

    rules_file(rules, ["One", "Two"])
    ok = run("rules", "reload", "--master", f"127.0.0.1:{port}")
    assert ok.returncode == 0 and "1 group(s), 2 rule(s)" in ok.stdout
    assert rule_names(addr) == ["One", "Two"]

    rules.write_text(
        "groups:\n  - name: ops\n    rules:\n      - alert: Bad\n        expr: rate(x[5m]\n"
    )
    bad = run("rules", "reload", "--master", f"127.0.0.1:{port}")
    assert bad.returncode == 2
    assert "the old rules stay" in bad.stderr and f"{rules}:" in bad.stderr
    assert rule_names(addr) == ["One", "Two"]

    # SIGHUP does the same: a bad file is refused and logged, the master keeps running.
    master.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload refused" in log.read_text(), 10, "the refusal logged")
    assert master.poll() is None and rule_names(addr) == ["One", "Two"]
    rules_file(rules, ["One", "Two", "Three"])
    master.send_signal(signal.SIGHUP)
    wait_until(lambda: rule_names(addr) == ["One", "Two", "Three"], 10, "SIGHUP reload")


def test_rules_test_and_check_work_from_the_shell(tmp_path: Path) -> None:
    shipped = run("rules", "test", "alerts/default.rules.test.yml")
    assert shipped.returncode == 0, shipped.stdout + shipped.stderr
    assert "SUCCESS" in shipped.stdout
    good = run("rules", "check", "alerts/default.rules.yml")
    assert good.returncode == 0 and "SUCCESS" in good.stdout
    broken = tmp_path / "broken.rules.yml"
    broken.write_text("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up ==\n")
    result = run("rules", "check", str(broken))
    assert result.returncode == 1
    assert str(broken) in result.stderr + result.stdout
