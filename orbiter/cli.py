"""The `orbiter` command: run the parts, run commands, look at the cluster.

Every client command names the master by its gRPC address (--master, or
ORBITER_MASTER) and learns the operator HTTP address from the master itself.
Bad flags stop with a message that names the flag and what was expected.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import grpc
from tabulate import tabulate

from orbiter import hosts
from orbiter.attributes import InvalidAttributes, parse_attributes
from orbiter.durations import format_duration, parse_duration, time_left
from orbiter.errors import OrbiterError
from orbiter.proto import messages_pb2
from orbiter.resources import InvalidResources, Resources
from orbiter.satellite.rules import RuleFileInvalid
from orbiter.security import flags as security_flags
from orbiter.security import settings as security

DEFAULT_MASTER = "127.0.0.1:5050"


def _version() -> str:
    """The installed distribution's version (what pip shows), else the source tree's."""
    from importlib import metadata

    import orbiter

    try:
        return metadata.version("orbiter")
    except metadata.PackageNotFoundError:
        return orbiter.__version__


class UsageError(Exception):
    """A bad flag or argument; the message names it."""


# ---------------------------------------------------------------------- parsing helpers


def master_address(text: str, flag: str = "--master") -> str:
    """HOST:PORT of a master, or zk://hosts/path to follow the leader ZooKeeper names."""
    from orbiter.zk import InvalidZkAddress, is_zk_url, parse_zk_url

    if is_zk_url(text):
        try:
            parse_zk_url(text)
        except InvalidZkAddress as e:
            raise UsageError(f"{flag}: {e}") from None
        return text
    return host_port(text, flag)


def host_port(text: str, flag: str = "--master") -> str:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"{flag}: {text!r} is not HOST:PORT (e.g. 127.0.0.1:5050)")
    return text


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)")
    return int(text)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number")
    return value


def _nonempty(text: str) -> str:
    """An id given on the command line: '' would name no task or agent at all."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a number >= 0")
    return value


def _zk_url(text: str) -> str:
    from orbiter.zk import InvalidZkAddress, parse_zk_url

    if not text:
        return ""
    try:
        parse_zk_url(text)
    except InvalidZkAddress as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def _non_negative_duration(text: str) -> float:
    return 0.0 if text.strip() in ("0", "0s") else _duration(text)


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a whole number >= 1")
    return int(text)


def _containerizers(text: str) -> tuple[str, ...]:
    from orbiter.agent.containerizer import parse_containerizers

    try:
        return parse_containerizers(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


SHOWN_STATES = tuple(
    name.removeprefix("TASK_")
    for name, number in messages_pb2.TaskState.items()
    if number != messages_pb2.TASK_STATE_UNSPECIFIED
)
"""Task states as `orbiter tasks` shows them (RUNNING); the API names them TASK_RUNNING."""


def _task_state(text: str) -> str:
    """A task state as the table shows it (RUNNING) or as the API names it (TASK_RUNNING),
    any case; the API's name."""
    name = text.strip().upper()
    if not name:
        return ""
    name = name.removeprefix("TASK_")
    if name not in SHOWN_STATES:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a task state; use one of {', '.join(SHOWN_STATES)}"
        )
    return f"TASK_{name}"


def _env_pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    return name, value


def _resources_flag(text: str | None) -> Resources | None:
    if text is None:
        return None
    try:
        resources = Resources.parse(text)
    except InvalidResources as e:
        raise UsageError(f"--resources: {e}") from None
    if not resources:
        raise UsageError("--resources: no resources given (e.g. 'cpus:4;mem:8192')")
    return resources


def _attributes_flag(text: str) -> dict[str, str]:
    try:
        return parse_attributes(text)
    except InvalidAttributes as e:
        raise UsageError(f"--attributes: {e}") from None


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


# ---------------------------------------------------------------------- servers


def _config(args: argparse.Namespace) -> Any:
    """The configuration file's settings (validated), or the defaults."""
    from orbiter.config import ConfigError, default_config, load_config

    if getattr(args, "loaded_config", None) is not None:
        return args.loaded_config
    path = getattr(args, "config", None)
    if not path:
        return default_config()
    try:
        args.loaded_config = load_config(path)
    except ConfigError as e:
        raise UsageError(f"--config: {e}") from None
    return args.loaded_config


def _master_settings(args: argparse.Namespace, work_dir: Path, config: Any) -> Any:
    from orbiter.master.server import MasterSettings
    from orbiter.master.state import MasterConfig

    core = MasterConfig(
        offer_timeout=args.offer_timeout,
        agent_timeout=args.agent_timeout,
        agent_heartbeat_interval=min(5.0, args.agent_timeout / 3),
        allocation_interval=args.allocation_interval,
        framework_heartbeat_interval=args.framework_heartbeat_interval,
        agent_reregister_timeout=args.agent_reregister_timeout,
        agent_removal_age=args.agent_removal_age,
        limits=config.limits,
    )
    satellite = None
    if config.satellite_enabled and not args.no_satellite:
        satellite = config.satellite
    return MasterSettings(
        host=args.host,
        port=args.port,
        http_port=args.http_port,
        work_dir=work_dir,
        config=core,
        satellite=satellite,
        satellite_in_master=args.satellite_in_master,
        advertise_host=args.advertise_host or config.master.advertise_host,
        config_path=str(Path(args.config).resolve()) if getattr(args, "config", None) else "",
    )


def _on_sighup(satellite: Any) -> None:
    """SIGHUP reloads the rule files and the notifier's routes; a bad file is refused and
    the old one stays."""
    from orbiter.satellite.rules import RuleFileInvalid
    from orbiter.yamlreader import ConfigError

    def handler() -> None:
        try:
            satellite.load_rules()
            satellite.reload_notifier()
        except (RuleFileInvalid, OSError, ConfigError) as e:
            logging.getLogger("orbiter.satellite").error(
                "reload refused, the old rules and routes stay:\n%s", e
            )

    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, handler)


STOP_TIMEOUT = 15.0
SATELLITE_STOP_TIMEOUT = 8.0  # within the master's grace for its Satellite process (12 s)


async def _bounded(stop: Any, what: str, timeout: float = STOP_TIMEOUT) -> None:
    """Stop a component, but never hang the process on it: log and move on after a while."""
    try:
        await asyncio.wait_for(stop, timeout)
    except TimeoutError:
        logging.getLogger("orbiter").error(
            "%s did not stop within %.0fs; exiting anyway", what, timeout
        )


async def _serve_until_stopped(stopped: asyncio.Event) -> bool:
    """Wait for SIGINT/SIGTERM (True) or for the component to stop by itself (False)."""
    stop = asyncio.create_task(_until_signalled())
    ended = asyncio.create_task(stopped.wait())
    await asyncio.wait({stop, ended}, return_when=asyncio.FIRST_COMPLETED)
    return stop.done()


async def _start_master(args: argparse.Namespace, work_dir: Path, config: Any) -> Any:
    """A started master (its Satellite reloading rules on SIGHUP), or nothing left running."""
    from orbiter.master.server import MasterServer

    settings = _master_settings(args, work_dir, config)
    zk = await _zookeeper(args) if args.zk else None
    server = MasterServer(settings, zk=zk)
    try:
        await server.start()
    except BaseException:
        await server.stop()
        raise
    if server.satellite is not None:
        _on_sighup(server.satellite)
    elif server.satellite_process is not None:
        child = server.satellite_process
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, child.reload)
    return server


async def _satellite_row(server: Any) -> list[str]:
    """`orbiter up`'s line for Satellite: where it runs and what it watches."""
    if server.core is None:
        return ["satellite", "with the leader", "starts when this master leads"]
    if server.satellite is not None:
        rules = sum(len(g.rules) for g in server.satellite.groups)
        return ["satellite", "in the master", f"{rules} rules; orbiter alerts"]
    from orbiter.satellite.process import SatelliteUnavailable

    child = server.satellite_process
    try:
        _, body, _ = await child.request("GET", "/api/v1/rules")
        rules = sum(len(g["rules"]) for g in json.loads(body)["data"]["groups"])
    except (SatelliteUnavailable, ValueError, KeyError) as e:
        return ["satellite", "own process", f"not answering yet ({e})"]
    pid = child.proc.pid if child.proc is not None else "?"
    return ["satellite", f"own process, pid {pid}", f"{rules} rules; orbiter alerts"]


async def _zookeeper(args: argparse.Namespace) -> Any:
    """Connect to the ensemble of --zk and claim its path, or stop with what went wrong."""
    from orbiter.master.server import ZkHandle
    from orbiter.zk import claim_root, connect, parse_zk_url

    address = parse_zk_url(args.zk)
    # kazoo blocks while it connects and claims: a thread, the loop has nothing else yet.
    client = await asyncio.to_thread(connect, address, args.zk_session_timeout, 10.0)
    try:
        await asyncio.to_thread(claim_root, client, address.path)
    except BaseException:
        await asyncio.to_thread(client.stop)
        raise
    return ZkHandle(client, address)


def _hold_work_dirs(*dirs: Path) -> contextlib.ExitStack:
    """Lock each work dir before anything is written there or a port bound (WorkDirBusy)."""
    from orbiter.workdir import WorkDirLock

    locks = contextlib.ExitStack()
    try:
        for work_dir in dirs:
            locks.enter_context(WorkDirLock(work_dir))
    except BaseException:
        locks.close()
        raise
    return locks


async def _run_master(args: argparse.Namespace) -> int:
    config = _config(args)
    with _hold_work_dirs(Path(args.work_dir)):
        server = await _start_master(args, Path(args.work_dir), config)
        print(
            f"master gRPC {server.info.grpc_address}  HTTP "
            f"{security.current().url(server.info.http_address)}/"
            + (
                "  (satellite on)"
                if server.satellite is not None or server.satellite_process is not None
                else ""
            ),
            flush=True,
        )
        signalled = await _serve_until_stopped(server.stopped)
        await _bounded(server.stop(), "the master")
    if server.fenced:
        print(
            f"orbiter master: stepped down: {server.fenced}; restart it and it rejoins as a "
            "standby",
            file=sys.stderr,
        )
    return 0 if signalled else 1


def _agent_settings(args: argparse.Namespace, config: Any, **overrides: Any) -> Any:
    from orbiter.agent.agent import AgentSettings

    containerizers = args.containerizers
    values: dict[str, Any] = {
        "master": args.master,
        "work_dir": Path(args.work_dir),
        "resources": _resources_flag(args.resources),
        "attributes": _attributes_flag(getattr(args, "attributes", "")),
        "containerizer": containerizers[0],
        "docker": "docker" in containerizers,
        "docker_host": getattr(args, "docker_host", ""),
        "host": args.host,
        "watch_paths": list(config.agent.watch_paths),
        "checks": list(config.agent.checks),
        "advertise_host": getattr(args, "advertise_host", "") or config.agent.advertise_host,
    }
    for name in ("http_port", "hostname", "task_user", "pids_max", "disk_watch_interval"):
        if hasattr(args, name):
            values[name] = getattr(args, name)
    if hasattr(args, "no_isolation"):
        values["isolation"] = not args.no_isolation
    if hasattr(args, "log_cap_mib"):
        values["log_cap_bytes"] = int(args.log_cap_mib * 1024 * 1024)
    values.update(overrides)
    return AgentSettings(**values)


async def _run_agent(args: argparse.Namespace) -> int:
    from orbiter.agent.agent import Agent

    config = _config(args)
    with _hold_work_dirs(Path(args.work_dir)):
        agent = Agent(_agent_settings(args, config))
        await agent.start()
        print(
            f"agent HTTP {security.current().url(agent.http_address)}/ resources "
            f"{agent.resources.format()} containerizers {','.join(agent.containerizers)}",
            flush=True,
        )
        if agent.settings.docker and agent.docker is None:
            print(
                "warning: dockerd does not answer; this agent runs no Docker tasks (see its log)",
                file=sys.stderr,
                flush=True,
            )
        await _serve_until_stopped(agent.stopped)
        # A restart or upgrade (SIGTERM) leaves the tasks with the task keeper for the
        # next run to take back; a removed agent, or --kill-tasks-on-stop, ends them.
        kill = bool(agent.refused) or args.kill_tasks_on_stop
        await _bounded(agent.stop(kill_tasks=kill), "the agent")
    if agent.refused:
        print(f"error: the master refused this agent: {agent.refused}", file=sys.stderr)
        return 1
    return 0


async def _run_up(args: argparse.Namespace) -> int:
    config = _config(args)
    root = Path(args.work_dir)
    # The parts' own dirs too, so a lone `orbiter master` or `agent` pointed inside is refused.
    parts = [root / "master", *(root / f"agent-{i}" for i in range(args.agents))]
    with _hold_work_dirs(root, *parts):
        server = await _start_master(args, root / "master", config)
        agents: list[Any] = []
        try:
            return await _up(args, config, root, server, agents)
        finally:
            print("stopping: killing tasks, stopping agents and master", flush=True)
            for agent in agents:
                await _bounded(agent.stop(kill_tasks=True), f"agent {agent.agent_id}")
            await _bounded(server.stop(), "the master")
            print("stopped", flush=True)


async def _up(
    args: argparse.Namespace, config: Any, root: Path, server: Any, agents: list[Any]
) -> int:
    from orbiter.agent.agent import Agent
    from orbiter.agent.host import detect_resources

    # With --zk the agents follow whoever leads, not this process's master.
    master = args.zk or server.info.grpc_address
    if not args.zk and server.settings.advertise_host:  # it may not route back to this host
        local = args.host if args.host not in ("0.0.0.0", "::") else "127.0.0.1"
        master = f"{local}:{server.info.grpc_address.rsplit(':', 1)[1]}"
    from orbiter.security.serving import in_process_agents

    server.security, agent_security = in_process_agents(server.security)
    for i in range(args.agents):
        work = root / f"agent-{i}"
        resources = _resources_flag(args.resources) or detect_resources(work, args.agents, i)
        args.master = master
        settings = _agent_settings(
            args,
            config,
            work_dir=work,
            resources=resources,
            attributes={"agent_index": str(i)},
            http_port=0,
            security=agent_security,
        )
        agent = Agent(settings)
        await agent.start()
        agents.append(agent)
    for agent in agents:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(agent.registered.wait(), 10)
    rows = [
        ["master gRPC", server.info.grpc_address, "clients: --master / ORBITER_MASTER"],
        [
            "master HTTP",
            security.current().url(server.info.http_address, "/"),
            "UI, /state, /metrics, /api/v1",
        ],
    ]
    if args.zk:
        rows[0][2] = f"this master: {server.role}"
        rows.insert(0, ["cluster", args.zk, "clients: --master / ORBITER_MASTER"])
    if server.satellite is not None or server.satellite_process is not None:
        rows.append(await _satellite_row(server))
    for agent in agents:
        rows.append(
            [
                f"agent {agent.agent_id}",
                security.current().url(agent.http_address, "/"),
                agent.resources.format(),
            ]
        )
    print(f"Orbiter is up: 1 master, {len(agents)} agent(s), work dir {root}")
    print(tabulate(rows, tablefmt="plain"))
    print(f"\nTry:  orbiter execute --master {master} --name hello --command 'echo hello'")
    print("      orbiter agents    orbiter tasks\nCtrl-C stops the cluster.", flush=True)
    await _serve_until_stopped(server.stopped)
    return 0


async def _run_satellite(args: argparse.Namespace) -> int:
    """Satellite on its own, watching and acting through the master's operator API."""
    from aiohttp import web

    from orbiter import httperrors
    from orbiter.looplag import LoopLag
    from orbiter.satellite import http_api as satellite_http
    from orbiter.satellite.cluster import HttpCluster
    from orbiter.satellite.process import FENCED
    from orbiter.satellite.service import Satellite, tune_gc

    config = _config(args)
    locks = _hold_work_dirs(Path(args.work_dir))  # held (referenced) until Satellite stops
    cluster = HttpCluster(args.master_http or master_http(args.master))
    follow = asyncio.create_task(
        _follow_leader_http(args.master, cluster) if not args.master_http else asyncio.sleep(0)
    )
    zk, store = await _satellite_state_store(args)
    tune_gc()
    if not config.satellite.external_url:  # alerts link to the master, which serves /graph
        config.satellite.external_url = cluster.base
    satellite = Satellite(config.satellite, cluster, Path(args.work_dir), store=store)
    lag = LoopLag("satellite", satellite.registry)
    lag.start()
    await satellite.start()
    _on_sighup(satellite)
    from orbiter.security import http_auth

    # A master's child serves a private socket behind the master, which authenticated
    # the caller already; on a port, callers authenticate here.
    auth = (
        [http_auth.forwarded_principal]
        if args.unix_socket
        else [http_auth.middleware(security.current), http_auth.acl_middleware(security.current)]
    )
    app = web.Application(middlewares=[httperrors.json_errors, *auth])
    satellite_http.add_routes(app, satellite)

    async def metrics(request: web.Request) -> web.Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return web.Response(
            body=generate_latest(satellite.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "fenced": satellite.fenced})

    app.router.add_get("/metrics", metrics)
    app.router.add_get("/health", health)
    runner = httperrors.JsonErrorsRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site: web.BaseSite
    if args.unix_socket:
        site = web.UnixSite(runner, args.unix_socket)
        where = f"unix:{args.unix_socket}"
    else:
        ssl_context = security.current().server_ssl_context()
        site = web.TCPSite(runner, args.host, args.http_port, ssl_context=ssl_context)
        where = security.current().url(f"{args.host}:{args.http_port}", "/")
    await site.start()
    if args.unix_socket:
        Path(args.unix_socket).chmod(0o600)
    print(f"satellite watching master {cluster.http_address}; API {where}", flush=True)
    over = asyncio.Event()  # a master's child: its master is gone, or it was fenced
    watch = asyncio.create_task(_watch_parent(args.parent_pid, satellite, over))
    status = 0
    if await _serve_until_stopped(over) is False:
        if satellite.fenced:
            status = FENCED  # the master starts a new one, which loads the state again
            logging.getLogger("orbiter.satellite").error(
                "stopping: %s; the master starts Satellite again", satellite.fenced
            )
        else:
            logging.getLogger("orbiter.satellite").error(
                "the master that started this Satellite (pid %d) is gone; stopping",
                args.parent_pid,
            )
    await _bounded(satellite.stop(), "satellite", SATELLITE_STOP_TIMEOUT)
    await lag.stop()
    for task in (follow, watch):
        task.cancel()
    await cluster.close()
    await runner.cleanup()
    if zk is not None:
        await asyncio.to_thread(zk.stop)
    locks.close()
    return status


async def _watch_parent(pid: int, satellite: Any, over: asyncio.Event) -> None:
    """For a master's child: set `over` once process `pid` is no longer our parent (it
    died; we were re-parented), or once the Satellite is fenced (its state is another's,
    or its ZooKeeper session was lost): a fresh child loads the state again."""
    if not pid:
        return
    while os.getppid() == pid and not satellite.fenced:
        await asyncio.sleep(0.5)
    over.set()


async def _satellite_state_store(args: argparse.Namespace) -> tuple[Any, Any]:
    """With --state-zk, Satellite's state document lives in ZooKeeper (as the leader's did)."""
    if not args.state_zk:
        return None, None
    from orbiter.zk import connect, parse_zk_url
    from orbiter.zkstore import ZkBlobStore

    address = parse_zk_url(args.state_zk)
    client = await asyncio.to_thread(connect, address, 10.0, 10.0)
    writer = args.writer_id or f"{socket.gethostname()}:{os.getpid()}"
    return client, ZkBlobStore(client, f"{address.path}/satellite", writer)


async def _follow_leader_http(master: str, cluster: Any) -> None:
    """With zk://, point a standalone Satellite at each new leader's operator API."""
    from orbiter.discovery import MasterLocator

    locator = MasterLocator(master)
    if not locator.follows_zookeeper:
        return
    await locator.start()
    try:
        while True:
            changed = locator.changed
            await changed.wait()
            leader = locator.leader
            if leader is not None and leader.http_address != cluster.http_address:
                logging.getLogger("orbiter.satellite").info(
                    "following the new leader at http://%s/", leader.http_address
                )
                cluster.follow(leader.http_address)
    finally:
        await locator.close()


# ---------------------------------------------------------------------- clients


def master_http(master: str, timeout: float = 5.0) -> str:
    """The master's operator HTTP address, asked of the master over gRPC."""
    from orbiter.discovery import leader_once
    from orbiter.proto import master_pb2, master_pb2_grpc
    from orbiter.zk import is_zk_url

    if is_zk_url(master):
        try:
            return leader_once(master, timeout).http_address
        except OrbiterError as e:
            raise UsageError(str(e)) from None
    from orbiter.security import channels

    with channels.channel(master, security.current()) as channel:
        stub = master_pb2_grpc.MasterStub(channel)
        try:
            info = stub.GetInfo(master_pb2.GetInfoRequest(), timeout=timeout)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.UNAVAILABLE and "standby" in (e.details() or ""):
                raise UsageError(f"{e.details()}; point --master at the leader") from None
            if e.code() == grpc.StatusCode.UNAUTHENTICATED:
                raise UsageError(f"the master at {master} refused: {e.details()}") from None
            if e.code() == grpc.StatusCode.UNAVAILABLE:
                from orbiter.wrongport import probe

                wrong = probe(master)
                if wrong is not None:
                    raise UsageError(wrong) from None
            hint = (
                ""
                if security.current().client_tls
                else " (a master with TLS needs --tls-ca, or ORBITER_TLS_CA)"
            )
            raise UsageError(
                f"cannot reach the master at {master} ({e.code().name}); is it running? "
                "Start one with `orbiter up`, or point --master / ORBITER_MASTER at it" + hint
            ) from None
    return info.http_address


def http_json(
    url: str, method: str = "GET", body: Any = None, what: str = "the master's HTTP API"
) -> Any:
    """One JSON request; a refusal becomes a UsageError carrying the server's message."""
    data = json.dumps(body).encode() if body is not None else None
    s = security.current()
    req = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", **s.auth_headers()},
    )
    try:
        with urllib.request.urlopen(req, timeout=30, context=s.client_ssl_context()) as resp:
            text = resp.read()
            return json.loads(text) if text.strip() else None
    except urllib.error.HTTPError as e:
        raise HttpRefusal(e.code, _error_text(e.read().decode(errors="replace"))) from None
    except urllib.error.URLError as e:
        raise UsageError(f"cannot reach {what} at {url}: {e.reason}") from None


class HttpRefusal(UsageError):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status


def _error_text(body: str) -> str:
    """The message of an {"error": ..., "details": ...} body, or the body as it is."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return body
    if not isinstance(parsed, dict) or "error" not in parsed:
        return body
    details = parsed.get("details")
    return str(parsed["error"]) + (f"\n{details}" if details else "")


def get_json(master: str, path: str, query: dict[str, str] | None = None) -> Any:
    url = security.current().url(master_http(master), path)
    if query:
        url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v})
    return http_json(url)


def post_json(master: str, path: str, body: dict[str, Any] | None, method: str = "POST") -> Any:
    return http_json(security.current().url(master_http(master), path), method, body or {})


def _ago(t: float | None) -> str:
    if not t:
        return "-"
    return f"{format_duration(time.time() - t)} ago"


def _print(data: Any, rows: list[list[Any]], headers: list[str], as_json: bool) -> None:
    if as_json:
        print(json.dumps(data, indent=1))
    elif rows:
        print(tabulate(rows, headers=headers, tablefmt="simple"))
    else:
        print("(none)")


def _mode(agent: dict[str, Any]) -> str:
    m = agent["maintenance"]
    text = m["mode"] + (f" by {m['by']}" if m["mode"] != "active" and m["by"] else "")
    if agent.get("pin"):
        text += f", pinned {agent['pin']['state']}"
    return text


def _why(agent: dict[str, Any]) -> str:
    m = agent["maintenance"]
    reason = m["reason"] if m["mode"] != "active" else ""
    if agent.get("pin"):
        left = time_left(agent["pin"]["until"], time.time())
        reason = "; ".join(x for x in (reason, f"pin ({left}): {agent['pin']['reason']}") if x)
    return reason[:60]


def cmd_agents(args: argparse.Namespace) -> int:
    if args.action == "remove":
        if not args.agent_id:
            raise UsageError("agents remove: name the agent: orbiter agents remove ID --reason R")
        if not args.reason.strip():
            raise UsageError("agents remove: --reason is required: say why (it is kept and shown)")
        agent = urllib.parse.quote(args.agent_id, safe="")
        data = post_json(args.master, f"/api/v1/agents/{agent}/remove", {"reason": args.reason})
        if args.json:
            print(json.dumps(data, indent=1))
            return 0
        print(
            f"agent {args.agent_id} removed: its tasks are reported lost or gone, and it "
            "cannot register again"
        )
        return 0
    if args.agent_id:
        raise UsageError(f"agents: unexpected {args.agent_id!r}; did you mean `agents remove`?")
    data = get_json(args.master, "/api/v1/agents")
    rows = [
        [
            a["id"],
            a["hostname"],
            a["status"],
            _mode(a),
            a["resources"]["text"],
            a["used"]["text"] or "-",
            a["tasks"],
            _ago(a["last_seen"]),
            _why(a),
        ]
        for a in data["agents"]
    ]
    headers = ["ID", "HOST", "LINK", "MODE", "RESOURCES", "USED", "TASKS", "SEEN", "WHY"]
    _print(data, rows, headers, args.json)
    return 0


def cmd_events(args: argparse.Namespace) -> int:
    data = get_json(args.master, "/api/v1/events")
    events = data["events"][-args.limit :]
    rows = [
        [
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e["time"])),
            e["kind"],
            e["agent_id"],
            e["message"],
        ]
        for e in events
    ]
    _print({"events": events}, rows, ["TIME", "EVENT", "AGENT", "WHAT"], args.json)
    return 0


def cmd_maintenance(args: argparse.Namespace) -> int:
    agent = urllib.parse.quote(args.agent_id, safe="")
    body: dict[str, Any] = {}
    if getattr(args, "reason", ""):
        body["reason"] = args.reason
    if args.subcommand == "drain":
        body["grace"] = args.grace
    if args.subcommand == "pin":
        body["state"] = args.state
        body["for_seconds"] = args.duration
    if args.subcommand == "unpin":
        data = post_json(args.master, f"/api/v1/agents/{agent}/pin", None, method="DELETE")
    else:
        data = post_json(args.master, f"/api/v1/agents/{agent}/{args.subcommand}", body)
    if args.subcommand == "drain" and args.wait:
        return _wait_drained(args, data)
    if args.json:
        print(json.dumps(data, indent=1))
        return 0
    if data.get("outcome"):  # what the master did and logged, in the README's words
        print(f"agent {data['id']}: {data['outcome']}")
        return 0
    why = _why(data)
    print(f"agent {data['id']}: {_mode(data)}" + (f" ({why})" if why else ""))
    return 0


def _wait_drained(args: argparse.Namespace, agent: dict[str, Any]) -> int:
    """`drain --wait`: the tasks left, as they go, until the agent is DRAINED; a line
    redrawn in place on a terminal, a line per change otherwise (stderr with --json)."""
    from orbiter.framework.progress import bar

    stream = sys.stderr if args.json else sys.stdout
    tty = stream.isatty()
    timeout = args.timeout if args.timeout is not None else args.grace + 120.0
    deadline = time.monotonic() + timeout
    path = f"/api/v1/agents/{urllib.parse.quote(args.agent_id, safe='')}"
    first = max(agent["tasks"], 1)
    shown = None
    while True:
        mode, left = agent["maintenance"]["mode"], agent["tasks"]
        line = f"agent {agent['id']}: {mode}, {left} task(s) left"
        if tty:
            line = f"{bar(first - min(left, first), first, 20)} {line}"
        if line != shown:
            stream.write(("\r\x1b[K" if tty else "") + line + ("" if tty else "\n"))
            stream.flush()
            shown = line
        if mode != "draining":
            break
        if time.monotonic() > deadline:
            if tty:
                stream.write("\n")
            raise OrbiterError(
                f"agent {agent['id']} is still draining after {format_duration(timeout)} "
                f"with {left} task(s) left; see `orbiter tasks --agent {agent['id']}`"
            )
        time.sleep(0.5)
        agent = get_json(args.master, path)
    if tty:
        stream.write("\n")
    if args.json:
        print(json.dumps(agent, indent=1))
    if agent["maintenance"]["mode"] != "drained":
        print(
            f"orbiter drain: agent {agent['id']} is {agent['maintenance']['mode']} now, "
            "not drained (someone changed it)",
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_frameworks(args: argparse.Namespace) -> int:
    if args.action == "teardown":
        if not args.framework_id:
            raise UsageError(
                "frameworks teardown: name the framework: orbiter frameworks teardown ID --reason R"
            )
        fw = urllib.parse.quote(args.framework_id, safe="")
        post_json(args.master, f"/api/v1/frameworks/{fw}/teardown", {"reason": args.reason})
        print(f"framework {args.framework_id} torn down: its tasks are killed")
        return 0
    if args.framework_id:
        raise UsageError(
            f"frameworks: unexpected {args.framework_id!r}; did you mean `frameworks teardown`?"
        )
    data = get_json(args.master, "/api/v1/frameworks")
    rows = [
        [
            f["id"],
            f["name"],
            f["status"],
            ",".join(f["roles"]),
            f["tasks"],
            f["offers"],
            _ago(f["registered_time"]),
        ]
        for f in data["frameworks"]
    ]
    _print(
        data, rows, ["ID", "NAME", "STATUS", "ROLES", "TASKS", "OFFERS", "REGISTERED"], args.json
    )
    return 0


def cmd_tasks(args: argparse.Namespace) -> int:
    data = get_json(
        args.master,
        "/api/v1/tasks",
        {"framework_id": args.framework, "agent_id": args.agent, "state": args.state},
    )
    rows = [
        [
            t["id"],
            t["state"].removeprefix("TASK_"),
            t["hostname"] or t["agent_id"],
            t["framework_id"],
            t["resources"]["text"],
            (t["message"] or "")[:50],
        ]
        for t in data["tasks"]
    ]
    _print(data, rows, ["ID", "STATE", "AGENT", "FRAMEWORK", "RESOURCES", "MESSAGE"], args.json)
    return 0


def _find_task(args: argparse.Namespace) -> dict[str, Any]:
    """The task TASK (--framework's, else the newest of that id) from the operator API."""
    data = get_json(args.master, f"/api/v1/tasks/{urllib.parse.quote(args.task_id, safe='')}")
    tasks = [t for t in data["tasks"] if not args.framework or t["framework_id"] == args.framework]
    if not tasks:
        raise UsageError(f"framework {args.framework} has no task {args.task_id!r}")
    # Task ids repeat across frameworks (each `orbiter execute` is one): newest by default.
    return max(tasks, key=lambda t: t["updated"] or 0.0)


def _task_ended(master: str, task_id: str, framework_id: str) -> bool:
    from orbiter.framework.progress import TERMINAL_NAMES

    data = get_json(master, f"/api/v1/tasks/{urllib.parse.quote(task_id, safe='')}")
    states = [t["state"] for t in data["tasks"] if t["framework_id"] == framework_id]
    return not states or all(s in TERMINAL_NAMES for s in states)


def cmd_cat(args: argparse.Namespace) -> int:
    from orbiter.sandbox_tail import SandboxFile, SandboxUnreadable, follow

    task = _find_task(args)
    agent = get_json(args.master, f"/api/v1/agents/{urllib.parse.quote(task['agent_id'])}")
    file = SandboxFile(agent["http_address"], task["id"], task["framework_id"], args.file)

    where = {"task_id": task["id"], "framework_id": task["framework_id"],
             "agent_id": agent["id"], "file": args.file}  # fmt: skip
    read: list[bytes] = []

    def write(data: bytes) -> None:
        if args.json and args.follow:
            text = data.decode(errors="replace")
            print(json.dumps({**where, "text": text}), flush=True)
        elif args.json:
            read.append(data)
        else:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()

    try:
        if args.follow:
            follow(file, lambda: _task_ended(args.master, task["id"], task["framework_id"]), write)
        else:
            data = file.read_new(missing_ok=False)
            while data:
                write(data)
                data = file.read_new()
            if args.json:
                text = b"".join(read).decode(errors="replace")
                print(json.dumps({**where, "text": text}, indent=1))
    except SandboxUnreadable as e:
        raise UsageError(f"agent {agent['id']}: {e}") from None
    return 0


def cmd_reserve(args: argparse.Namespace) -> int:
    """`orbiter reserve|unreserve AGENT RESOURCES --role R`: dynamic reservations by hand."""
    agent = urllib.parse.quote(args.agent_id, safe="")
    body: dict[str, Any] = {"resources": args.resources, "role": args.role}
    if args.subcommand == "reserve" and args.label:
        labels = {}
        for item in args.label:
            key, eq, value = item.partition("=")
            if not eq or not key:
                raise UsageError(f"--label {item!r}: expected KEY=VALUE")
            labels[key] = value
        body["labels"] = labels
    data = post_json(args.master, f"/api/v1/agents/{agent}/{args.subcommand}", body)
    if args.json:
        print(json.dumps(data, indent=1))
        return 0
    done = "reserved" if args.subcommand == "reserve" else "unreserved"
    role = f" for {args.role}" if args.role else ""
    print(f"agent {data['id']}: {done} {args.resources}{role}")
    for r in data.get("reservations", []):
        who = f" by {r['principal']}" if r["principal"] else ""
        print(f"  {r['resources']}{who}")
    return 0


def cmd_kill(args: argparse.Namespace) -> int:
    from orbiter.framework.progress import TERMINAL_NAMES

    body: dict[str, Any] = {}
    if args.framework:
        body["framework_id"] = args.framework
    if args.grace is not None:
        body["grace"] = args.grace
    path = f"/api/v1/tasks/{urllib.parse.quote(args.task_id, safe='')}"
    task = post_json(args.master, f"{path}/kill", body)
    if not args.json:
        print(
            f"task {task['id']} of framework {task['framework_id']}: kill sent to agent "
            f"{task['agent_id']} (it was {task['state']})"
        )
    if args.wait:
        deadline = time.monotonic() + (args.grace or 0.0) + 60.0
        while task["state"] not in TERMINAL_NAMES:
            if time.monotonic() > deadline:
                raise OrbiterError(f"task {task['id']} is still {task['state']} a minute on")
            time.sleep(0.25)
            (task,) = [
                t for t in get_json(args.master, path)["tasks"]
                if t["framework_id"] == task["framework_id"]
            ]  # fmt: skip
        if not args.json:
            print(f"task {task['id']}: {task['state']}" + (
                f" ({task['message']})" if task["message"] else ""
            ))  # fmt: skip
    if args.json:
        print(json.dumps(task, indent=1))
    return 0


def _satellite_json(args: argparse.Namespace, path: str, body: Any = None) -> Any:
    """Ask the Satellite API: a standalone one (--satellite) or the master's."""
    base = args.satellite or master_http(args.master)
    try:
        return http_json(
            security.current().url(base, path),
            "POST" if body is not None else "GET",
            body,
            "Satellite",
        )
    except HttpRefusal as e:
        if e.status == 404 and not args.satellite:
            raise UsageError(
                "this master runs no Satellite; start it without --no-satellite, or point "
                "--satellite / ORBITER_SATELLITE at a standalone one"
            ) from None
        raise


def _rfc3339(text: str) -> float | None:
    """Unix seconds of an API time; None for Go's zero time (never)."""
    import datetime as dt

    when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return None if when.year == 1 else when.timestamp()


def _amounts(q: dict[str, float]) -> str:
    from orbiter.master.quota import format_quantities

    return format_quantities(q) or "-"


def cmd_roles(args: argparse.Namespace) -> int:
    data = get_json(args.master, "/api/v1/roles")
    rows = [
        [r["role"], f"{r['weight']:g}", len(r["frameworks"]), _amounts(r["allocated"]),
         _amounts(r["guarantees"]), _amounts(r["limits"])]
        for r in data["roles"]
    ]  # fmt: skip
    headers = ["ROLE", "WEIGHT", "FRAMEWORKS", "HOLDS", "GUARANTEE", "LIMIT"]
    _print(data, rows, headers, args.json)
    return 0


def cmd_weight(args: argparse.Namespace) -> int:
    body = {"weight_infos": [{"role": args.role, "weight": args.weight}]}
    data = post_json(args.master, "/api/v1/weights", body, method="PUT")
    if args.json:
        print(json.dumps(data, indent=1))
    else:
        print(f"role {args.role} weighs {args.weight:g}")
    return 0


def cmd_quota(args: argparse.Namespace) -> int:
    from orbiter.master.quota import InvalidQuota, parse_quantities

    action = args.action or "list"
    if action != "list" and not args.role:
        raise UsageError(f"quota {action}: name the role: orbiter quota {action} ROLE ...")
    if action == "list" and args.role:
        raise UsageError(f"quota: unexpected {args.role!r}; did you mean `quota set`?")
    if action == "set":
        if args.guarantee is None and args.limit is None:
            raise UsageError(
                "quota set: give --guarantee and/or --limit, e.g. --guarantee 'cpus:2;mem:1024' "
                f"--limit cpus:8 (to remove it: orbiter quota remove {args.role})"
            )
        try:
            config = {
                "role": args.role,
                "guarantees": parse_quantities(args.guarantee or "", "--guarantee"),
                "limits": parse_quantities(args.limit or "", "--limit"),
            }
        except InvalidQuota as e:
            raise UsageError(str(e)) from None
        body = {"quota_configs": [config], "force": args.force}
        data = post_json(args.master, "/api/v1/quota", body)
        said = f"role {args.role}: guarantee {_amounts(config['guarantees'])}, limit " + _amounts(
            config["limits"]
        )
    elif action == "remove":
        role = urllib.parse.quote(args.role, safe="/")
        data = post_json(args.master, f"/api/v1/quota/{role}", None, method="DELETE")
        said = f"role {args.role} has no quota now"
    else:
        data = get_json(args.master, "/api/v1/quota")
        rows = [
            [c["role"], _amounts(c["guarantees"]), _amounts(c["limits"])]
            for c in data["quota_configs"]
        ]
        _print(data, rows, ["ROLE", "GUARANTEE", "LIMIT"], args.json)
        return 0
    print(json.dumps(data, indent=1) if args.json else said)
    return 0


def cmd_alerts(args: argparse.Namespace) -> int:
    data = _satellite_json(args, "/api/v1/alerts")["data"]
    rows = [
        [
            a["labels"].get("alertname", ""),
            a["state"],
            a["labels"].get("agent", "") or "-",
            a["labels"].get("action", "") or "-",
            _ago(_rfc3339(a["activeAt"])),
            (a["annotations"].get("summary", "") or "")[:70],
        ]
        for a in data["alerts"]
    ]
    _print(data, rows, ["ALERT", "STATE", "AGENT", "ACTION", "SINCE", "SUMMARY"], args.json)
    return 0


def _login() -> str:
    """Who runs the command: $USER, $LOGNAME or the password database's name for the uid."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


def cmd_silence(args: argparse.Namespace) -> int:
    """Silences live at the master, in Alertmanager's API v2 shape (amtool works too)."""
    from orbiter.alerts.matchers import MatcherError, parse_matcher

    if args.silence_command == "add":
        try:
            parsed = [parse_matcher(text) for text in args.matchers]
        except MatcherError as e:
            raise UsageError(f"{e}; write matchers as name=value, name!=value, name=~regex "
                             "or name!~regex") from None  # fmt: skip
        now = time.time()
        body = {
            "matchers": [_matcher_json(m.name, m.type.value, m.value) for m in parsed],
            "startsAt": _rfc3339_text(now),
            "endsAt": _rfc3339_text(now + args.duration),
            "createdBy": args.author,
            "comment": args.comment,
        }
        answer = post_json(args.master, "/api/v2/silences", body)
        print(json.dumps(answer) if args.json else answer["silenceID"])
        return 0
    if args.silence_command == "expire":
        base = master_http(args.master)
        for silence_id in args.ids:
            http_json(security.current().url(base, f"/api/v2/silence/{silence_id}"), "DELETE")
            if not args.json:
                print(f"expired {silence_id}")
        if args.json:
            print(json.dumps({"expired": args.ids}))
        return 0
    data = get_json(args.master, "/api/v2/silences")
    shown = [s for s in data if args.expired or s["status"]["state"] != "expired"]
    rows = [
        [
            s["id"][:8],
            s["status"]["state"],
            " ".join(_matcher_text(m) for m in s["matchers"]),
            time.strftime("%Y-%m-%d %H:%M", time.localtime(_rfc3339(s["endsAt"]) or 0)),
            s["createdBy"],
            s["comment"][:50],
        ]
        for s in shown
    ]
    _print(shown, rows, ["ID", "STATE", "MATCHERS", "ENDS", "BY", "COMMENT"], args.json)
    return 0


def _matcher_json(name: str, op: str, value: str) -> dict[str, Any]:
    return {"name": name, "value": value, "isRegex": op in ("=~", "!~"),
            "isEqual": op in ("=", "=~")}  # fmt: skip


def _matcher_text(m: dict[str, Any]) -> str:
    op = {(False, True): "=", (False, False): "!=", (True, True): "=~", (True, False): "!~"}
    return f'{m["name"]}{op[(m["isRegex"], m.get("isEqual", True))]}"{m["value"]}"'


def _rfc3339_text(t: float) -> str:
    from orbiter.alerts.payload import format_time

    return format_time(t)


def cmd_satellite(args: argparse.Namespace) -> int:
    if args.action is None:
        return asyncio.run(_run_satellite(args))
    if args.action == "targets":
        data = _satellite_json(args, "/api/v1/satellite/targets")
        rows = [
            [
                t["url"],
                t["labels"].get("agent", t["labels"].get("job", "")),
                {True: "up", False: "DOWN", None: "not yet"}[t["up"]],
                _ago(t["last_scrape"]),
                t["samples"],
                t["last_error"][:50],
            ]
            for t in data["targets"]
        ]
        _print(data, rows, ["URL", "AGENT", "STATE", "SCRAPED", "SAMPLES", "ERROR"], args.json)
        return 0
    data = _satellite_json(args, f"/api/v1/satellite/events?limit={args.limit}")
    rows = [
        [
            time.strftime("%H:%M:%S", time.localtime(e["time"])),
            _actor(e),
            e["outcome"],
            e["action"],
            e["agent"],
            e["rule"],
            e["reason"][:80],
        ]
        for e in data["events"]
    ]
    headers = ["TIME", "BY", "OUTCOME", "ACTION", "AGENT", "RULE", "REASON"]
    _print(data, rows, headers, args.json)
    return 0


def _actor(event: dict[str, Any]) -> str:
    """satellite, operator, or operator alice: who decided (principal '' is local)."""
    actor = event.get("actor", "satellite")
    return f"{actor} {event['principal']}" if event.get("principal") else actor


def cmd_rules(args: argparse.Namespace) -> int:
    from orbiter.satellite import rules_cli

    if args.rules_command == "check":
        return rules_cli.check_main(args.files)
    if args.rules_command == "test":
        return rules_cli.test_main(args.files)
    data = _satellite_json(args, "/api/v1/rules/reload", {})
    if args.json:
        print(json.dumps(data, indent=1))
        return 0
    print(f"reloaded: {data['groups']} group(s), {data['rules']} rule(s)")
    return 0


def cmd_execute(args: argparse.Namespace) -> int:
    from orbiter.framework.execute import ExecuteSpec, execute
    from orbiter.framework.progress import JsonReporter, LineReporter, ProgressReporter

    spec = ExecuteSpec(
        name=args.name,
        command=args.command,
        cpus=args.cpus,
        mem=args.mem,
        disk=args.disk,
        instances=args.instances,
        shell=not args.no_shell,
        environment=dict(args.env),
        kill_grace_period=args.grace,
        docker_image=args.docker_image,
        role=args.role,
        user=args.user,
    )
    http = master_http(args.master)  # fail fast, with a useful message, if it is not there
    # With --follow the tasks' output owns stdout; what execute says goes to stderr.
    say = sys.stderr if args.follow else sys.stdout

    def out(line: str) -> None:
        print(line, file=say, flush=True)

    reporter: Any
    if args.json:
        reporter = JsonReporter(out)
    elif args.instances > 1 and not args.follow and say.isatty():
        reporter = ProgressReporter(say)
    else:
        reporter = LineReporter(out)
    want = {"cpus": spec.cpus, "mem": spec.mem, "disk": spec.disk}
    return asyncio.run(
        execute(
            spec,
            args.master,
            reporter=reporter,
            diagnose=lambda: asyncio.to_thread(_why_unplaced, http, want),
            follow=_follower(http, args.instances > 1) if args.follow else None,
            placement_timeout=args.placement_timeout,
        )
    )


def _why_unplaced(http: str, want: dict[str, float]) -> str | None:
    from orbiter.framework.placement import AgentSnapshot, why_unplaced

    agents = http_json(security.current().url(http, "/api/v1/agents"))["agents"]
    return why_unplaced(want, [AgentSnapshot.from_view(a) for a in agents])


def _follower(http: str, prefixed: bool) -> Any:
    """execute --follow: each launched task's stdout and stderr, read in threads (the
    reads block) until the task has ended."""
    from orbiter.sandbox_tail import LinePrefixer, SandboxFile, SandboxUnreadable, follow

    async def follow_task(task_id: str, agent_id: str, framework_id: str, ended: Any) -> None:
        path = f"/api/v1/agents/{urllib.parse.quote(agent_id, safe='')}"
        agent = await asyncio.to_thread(http_json, security.current().url(http, path))

        async def one(name: str, stream: Any) -> None:
            def write(data: bytes) -> None:
                stream.buffer.write(data)
                stream.buffer.flush()

            sink: Any = LinePrefixer(f"{task_id}| ", write) if prefixed else write
            file = SandboxFile(agent["http_address"], task_id, framework_id, name)
            stopped = threading.Event()
            try:
                await asyncio.to_thread(follow, file, ended, sink, stopped=stopped)
            except SandboxUnreadable as e:
                print(f"{task_id}: cannot follow its {name}: {e}", file=sys.stderr)
            finally:
                # Cancelled (execute gave up on a task that may never end): end the thread
                # too, or asyncio.run would wait for it at exit.
                stopped.set()
            if prefixed:
                sink.flush()

        await asyncio.gather(one("stdout", sys.stdout), one("stderr", sys.stderr))

    return follow_task


# ---------------------------------------------------------------------- argument parser


def _add_master_flag(p: argparse.ArgumentParser, client: bool = True) -> None:
    if client:
        security_flags.add_client_flags(p)
    p.add_argument(
        "--master",
        default=os.environ.get("ORBITER_MASTER", DEFAULT_MASTER),
        help="the master's gRPC address HOST:PORT, or zk://HOSTS/PATH to follow the leader "
        "(env ORBITER_MASTER; default %(default)s)",
    )


def _add_satellite_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--satellite",
        default=os.environ.get("ORBITER_SATELLITE", ""),
        help="HTTP address of a standalone Satellite (default: the one in the master)",
    )


def advertise_host(text: str) -> str:
    """--advertise-host: a host name or address, no port (argparse passes "" too)."""
    try:
        return hosts.advertise_host(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _add_advertise_flag(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--advertise-host",
        type=advertise_host,
        default=os.environ.get("ORBITER_ADVERTISE_HOST", ""),
        help=f"the host name or address others reach {what} at, when --host is 0.0.0.0 or "
        "this host's name is not reachable (env ORBITER_ADVERTISE_HOST; config "
        "advertise_host; default: --host, or the host name)",
    )


def _add_master_server_flags(p: argparse.ArgumentParser, work_dir: str) -> None:
    security_flags.add_server_flags(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    _add_advertise_flag(p, "this master (and the agents `up` starts)")
    p.add_argument("--port", type=_port, default=5050, help="gRPC port (default %(default)s)")
    p.add_argument(
        "--http-port", type=_port, default=5051, help="operator HTTP port (default %(default)s)"
    )
    p.add_argument("--work-dir", default=work_dir, help="state directory (default %(default)s)")
    p.add_argument(
        "--agent-timeout",
        type=_positive,
        default=15.0,
        help="seconds without contact before an agent is unreachable",
    )
    p.add_argument(
        "--offer-timeout",
        type=_positive,
        default=30.0,
        help="seconds before an unanswered offer is rescinded",
    )
    p.add_argument(
        "--allocation-interval",
        type=_positive,
        default=1.0,
        help="seconds between allocation rounds",
    )
    p.add_argument(
        "--config",
        default=os.environ.get("ORBITER_CONFIG"),
        help="YAML configuration file (env ORBITER_CONFIG)",
    )
    p.add_argument("--no-satellite", action="store_true", help="run without Satellite")
    p.add_argument(
        "--satellite-in-master",
        action="store_true",
        help="run Satellite inside the master's event loop, not in its own process (its "
        "rounds then delay the master: for small clusters and comparisons)",
    )
    p.add_argument(
        "--zk",
        default=os.environ.get("ORBITER_ZK", ""),
        type=_zk_url,
        help="run as one of several masters elected through ZooKeeper, e.g. "
        "zk://zk1:2181,zk2:2181/orbiter (env ORBITER_ZK; the registry is kept there)",
    )
    p.add_argument(
        "--zk-session-timeout",
        type=_duration,
        default=3.0,
        help="ZooKeeper session timeout: how long a dead leader holds the lead "
        "(default 3s; the server's tickTime must allow it)",
    )
    p.add_argument(
        "--agent-reregister-timeout",
        type=_duration,
        default=15.0,
        help="after a failover, time for known agents to re-register before they are "
        "unreachable and their tasks lost (default 15s)",
    )
    p.add_argument(
        "--agent-removal-age",
        type=_non_negative_duration,
        default=7 * 86400.0,
        help="remove agents unreachable longer than this, e.g. 7d (0: never; default 7d)",
    )
    p.add_argument(
        "--framework-heartbeat-interval",
        type=_positive,
        default=15.0,
        help="seconds between heartbeats on idle framework streams",
    )


def _add_containerizer_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--containerizers",
        "--containerizer",
        dest="containerizers",
        type=_containerizers,
        default=("process",),
        metavar="NAMES",
        help="comma-separated: process (or null) and, optionally, docker (tasks with a "
        "Docker image run in Docker if dockerd answers at start)",
    )
    p.add_argument(
        "--docker-host",
        default=os.environ.get("DOCKER_HOST", ""),
        help="dockerd to use, e.g. unix:///var/run/docker.sock (default: DOCKER_HOST, "
        "else the standard socket)",
    )


def _add_isolation_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--no-isolation",
        action="store_true",
        help="do not hold process tasks to their resources (no cgroups, rlimits or disk "
        "limit); for comparison",
    )
    p.add_argument(
        "--task-user",
        default="nobody",
        help="user a task that names no command.user runs as (root agents only; default: nobody)",
    )
    p.add_argument(
        "--pids-max", type=int, default=1024, help="processes per task (cgroup pids.max)"
    )
    p.add_argument(
        "--log-cap-mib",
        type=float,
        default=10.0,
        help="rotate a task's stdout/stderr beyond this size, keeping one .1 file (MiB)",
    )
    p.add_argument(
        "--disk-watch-interval",
        type=float,
        default=5.0,
        help="seconds between looks at each sandbox's disk usage (against the task's disk)",
    )


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="orbiter", description="A Mesos-style cluster manager with a built-in Satellite."
    )
    top.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    top.add_argument(
        "--version", action="version", version=f"orbiter {_version()}", help="print the version"
    )
    sub = top.add_subparsers(dest="subcommand", required=True, metavar="COMMAND")

    p = sub.add_parser("up", help="run a single-node cluster: a master and N agents")
    _add_master_server_flags(p, ".orbiter")
    p.add_argument(
        "--agents", type=_count, default=1, help="agents splitting this host (default 1)"
    )
    _add_containerizer_flags(p)
    _add_isolation_flags(p)
    p.add_argument("--resources", help="resources of each agent (default: detected and split)")

    p = sub.add_parser("master", help="run a master")
    _add_master_server_flags(p, ".orbiter/master")

    p = sub.add_parser("agent", help="run an agent")
    _add_master_flag(p, client=False)
    security_flags.add_server_flags(p)
    p.add_argument("--work-dir", default=".orbiter/agent", help="state and sandboxes")
    p.add_argument("--resources", help="e.g. 'cpus:4;mem:8192;disk:20000;ports:[31000-32000]'")
    p.add_argument("--attributes", default="", help="e.g. 'rack:r1;zone:a'")
    _add_containerizer_flags(p)
    p.add_argument("--host", default="127.0.0.1", help="address for the agent's HTTP server")
    p.add_argument("--http-port", type=_port, default=0, help="HTTP port (default: a free one)")
    p.add_argument("--hostname", default="", help="hostname to report (default: this host's)")
    _add_advertise_flag(p, "this agent's HTTP server")
    _add_isolation_flags(p)
    p.add_argument(
        "--kill-tasks-on-stop",
        action="store_true",
        help="kill this agent's tasks when it stops (default: they keep running and the "
        "restarted agent takes them back, as for a rolling restart)",
    )
    p.add_argument(
        "--config",
        default=os.environ.get("ORBITER_CONFIG"),
        help="YAML configuration file: checks, watched paths (env ORBITER_CONFIG)",
    )

    p = sub.add_parser("execute", help="run a command as tasks and follow them")
    _add_master_flag(p)
    p.add_argument("--name", required=True, help="task name (ids are NAME-0, NAME-1, ...)")
    p.add_argument("--command", required=True, help="shell command to run")
    p.add_argument("--cpus", type=_positive, default=0.1, help="CPUs per task (default 0.1)")
    p.add_argument("--mem", type=_positive, default=32.0, help="MiB per task (default 32)")
    p.add_argument("--disk", type=_non_negative, default=0.0, help="MiB per task (default 0)")
    p.add_argument(
        "--instances", type=_count, default=1, help="how many copies of the task (default 1)"
    )
    p.add_argument(
        "--env", type=_env_pair, action="append", default=[], metavar="NAME=VALUE",
        help="set an environment variable in the task (repeatable)",
    )  # fmt: skip
    p.add_argument("--no-shell", action="store_true", help="run COMMAND as an executable path")
    p.add_argument("--role", default="*", help="the role to take offers in (default: *)")
    p.add_argument(
        "--user",
        default="",
        help="run the tasks as this user (subject to security.acls.run_tasks; default: the "
        "agent's task user, nobody unless set)",
    )
    p.add_argument(
        "--docker-image",
        default="",
        metavar="IMAGE",
        help="run in a Docker container of IMAGE (on agents with the docker containerizer)",
    )
    p.add_argument(
        "--grace",
        type=_non_negative,
        default=0.0,
        help="seconds between SIGTERM and SIGKILL on kill",
    )
    p.add_argument(
        "--follow", action="store_true",
        help="print the tasks' stdout and stderr as they run (each line prefixed by the task "
        "when there are several)",
    )  # fmt: skip
    p.add_argument(
        "--json", action="store_true",
        help="print JSON lines: one per state change, then a summary object",
    )  # fmt: skip
    p.add_argument(
        "--placement-timeout", type=_duration, default=5.0, metavar="DURATION",
        help="how long before saying why nothing was placed yet, e.g. 5s (default 5s)",
    )  # fmt: skip

    for name, helptext in (("agents", "list agents"), ("frameworks", "list frameworks")):
        p = sub.add_parser(name, help=helptext)
        _add_master_flag(p)
        p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p = sub._name_parser_map["agents"]  # `orbiter agents remove ID --reason R`
    p.add_argument("action", nargs="?", choices=["remove"], help="remove an agent for good")
    p.add_argument("agent_id", nargs="?", metavar="AGENT", help="the agent to remove")
    p.add_argument("--reason", default="", help="why it is removed (kept and shown)")
    p = sub._name_parser_map["frameworks"]  # `orbiter frameworks teardown ID --reason R`
    p.add_argument(
        "action", nargs="?", choices=["teardown"], help="end a framework and kill its tasks"
    )
    p.add_argument("framework_id", nargs="?", metavar="FRAMEWORK", help="the framework to end")
    p.add_argument("--reason", default="", help="why it is torn down (logged)")
    p = sub.add_parser("events", help="the master's cluster events: agents joining, lost, removed")
    _add_master_flag(p)
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.add_argument("--limit", type=_count, default=50, help="events to show (default 50)")
    p = sub.add_parser("tasks", help="list tasks")
    _add_master_flag(p)
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.add_argument("--framework", default="", help="only this framework's tasks")
    p.add_argument("--agent", default="", help="only tasks on this agent")
    p.add_argument(
        "--state",
        type=_task_state,
        default="",
        help="only tasks in this state: " + ", ".join(SHOWN_STATES) + " (or TASK_RUNNING...)",
    )

    for name, helptext in (
        ("deactivate", "stop offering an agent; its tasks keep running"),
        ("drain", "stop offering an agent and kill its tasks"),
        ("reactivate", "put an agent back in service"),
        ("pin", "put an agent in a state now and keep Satellite off it for a while"),
        ("unpin", "remove an agent's pin; the agent stays as it is"),
    ):
        p = sub.add_parser(name, help=helptext, description=PIN_HELP.get(name, helptext))
        _add_master_flag(p)
        p.add_argument("agent_id", type=_nonempty, metavar="AGENT",
                       help="the agent's id (see `orbiter agents`)")  # fmt: skip
        p.add_argument("--json", action="store_true", help="print the agent after it as JSON")
        if name in ("deactivate", "drain", "pin"):
            p.add_argument("--reason", required=True, help="why (kept and shown)")
        elif name == "reactivate":
            p.add_argument("--reason", default="", help="why (kept and shown)")
        if name == "drain":
            p.add_argument(
                "--grace",
                type=_duration,
                default=30.0,
                help="time between SIGTERM and SIGKILL, e.g. 30s (default 30s)",
            )
            p.add_argument(
                "--wait",
                action="store_true",
                help="show the tasks left until the agent is DRAINED, then exit",
            )
            p.add_argument(
                "--timeout",
                type=_duration,
                default=None,
                metavar="DURATION",
                help="with --wait, give up after this long, e.g. 5m (default: grace + 2m)",
            )
        if name == "pin":
            p.add_argument(
                "--state",
                choices=["active", "inactive"],
                required=True,
                help="what Satellite must leave the agent as",
            )
            p.add_argument("--for", dest="duration", type=_duration, required=True, help="e.g. 2h")

    p = sub.add_parser(
        "satellite",
        help="run Satellite on its own (no ACTION), or list its events or targets",
    )
    p.add_argument("action", nargs="?", choices=["events", "targets"], help="what to list")
    _add_master_flag(p, client=False)
    security_flags.add_server_flags(p)
    _add_satellite_flag(p)
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.add_argument("--limit", type=_count, default=50, help="events to show (default 50)")
    p.add_argument("--config", default=os.environ.get("ORBITER_CONFIG"), help="YAML config")
    p.add_argument("--host", default="127.0.0.1", help="address for its HTTP API")
    p.add_argument("--http-port", type=_port, default=5052, help="its HTTP API port")
    p.add_argument("--work-dir", default=".orbiter/satellite", help="events, spool, history")
    g = p.add_argument_group("used by a master that runs Satellite in its own process")
    g.add_argument("--master-http", default="", help="the master's operator API HOST:PORT")
    g.add_argument("--unix-socket", default="", help="serve the API on this socket, not a port")
    g.add_argument("--parent-pid", type=int, default=0, help="exit when this process is gone")
    g.add_argument("--state-zk", default="", help="keep the state in ZooKeeper (zk://HOSTS/PATH)")
    g.add_argument("--writer-id", default="", help="who writes the state (logged on conflicts)")

    p = sub.add_parser("silence", help="mute alert notifications: add, list or expire silences")
    silence = p.add_subparsers(dest="silence_command", required=True, metavar="ACTION")
    q = silence.add_parser("add", help="mute alerts that match every matcher, for a while")
    _add_master_flag(q)
    q.add_argument(
        "matchers", nargs="+", metavar="MATCHER",
        help='label matchers as in Alertmanager: alertname=AgentDown agent=~"S1|S2" env!=dev',
    )  # fmt: skip
    q.add_argument("--for", dest="duration", type=_duration, default=3600.0,
                   help="how long, e.g. 2h (default 1h)")  # fmt: skip
    q.add_argument("--comment", required=True, help="why (shown to every operator)")
    q.add_argument("--author", default=_login(), help="who (default: your login name)")
    q.add_argument("--json", action="store_true", help="print the new silence's id as JSON")
    q = silence.add_parser("list", help="silences, active first")
    _add_master_flag(q)
    q.add_argument("--expired", action="store_true", help="include expired ones")
    q.add_argument("--json", action="store_true", help="print JSON for scripts")
    q = silence.add_parser("expire", help="end silences now")
    _add_master_flag(q)
    q.add_argument("ids", nargs="+", metavar="ID", help="silence ids (see `silence list`)")
    q.add_argument("--json", action="store_true", help="print the expired ids as JSON")

    p = sub.add_parser(
        "roles", help="roles with their weights, quota, frameworks and what they hold"
    )
    _add_master_flag(p)
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p = sub.add_parser(
        "weight",
        help="set a role's weight in fair sharing (default 1; a parent's covers its subtree)",
    )
    _add_master_flag(p)
    p.add_argument("role", metavar="ROLE", help="the role, e.g. eng or eng/web")
    p.add_argument("weight", metavar="W", type=_positive, help="a number > 0, e.g. 2")
    p.add_argument("--json", action="store_true", help="print the weights after it as JSON")
    p = sub.add_parser(
        "quota",
        help="list role quotas, or set or remove one (guarantees and limits)",
        description="A guarantee is kept aside for the role (and its subroles) even if that "
        "leaves other roles unoffered; a limit caps what the role is offered and uses. "
        "Example: orbiter quota set eng --guarantee 'cpus:2;mem:1024' --limit cpus:8",
    )
    p.add_argument("action", nargs="?", choices=["list", "set", "remove"], help="default: list")
    p.add_argument("role", nargs="?", metavar="ROLE", help="the role to set or remove")
    _add_master_flag(p)
    p.add_argument("--guarantee", metavar="AMOUNTS", help="e.g. 'cpus:2;mem:1024'")
    p.add_argument("--limit", metavar="AMOUNTS", help="e.g. 'cpus:8;mem:8192'")
    p.add_argument("--force", action="store_true",
                   help="keep a guarantee larger than the cluster has now")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print JSON for scripts")

    p = sub.add_parser("alerts", help="list active alerts")
    _add_master_flag(p)
    _add_satellite_flag(p)
    p.add_argument("--json", action="store_true", help="print JSON for scripts")

    p = sub.add_parser("rules", help="check, test or reload alert rule files")
    rules = p.add_subparsers(dest="rules_command", required=True, metavar="ACTION")
    q = rules.add_parser("check", help="validate rule files like `promtool check rules`")
    q.add_argument("files", nargs="+", metavar="FILE", help="Prometheus rule files")
    q = rules.add_parser("test", help="run rule unit tests like `promtool test rules`")
    q.add_argument("files", nargs="+", metavar="FILE", help="promtool rule test files")
    q = rules.add_parser("reload", help="reload the running Satellite's rule files")
    _add_master_flag(q)
    _add_satellite_flag(q)
    q.add_argument("--json", action="store_true", help="print the reloaded counts as JSON")

    p = sub.add_parser("certs", help="make a CA and certificates for a test or small cluster")
    certs = p.add_subparsers(dest="certs_command", required=True, metavar="ACTION")
    q = certs.add_parser("init", help="make a CA: DIR/ca.pem and DIR/ca.key")
    q.add_argument("--dir", required=True, help="where the CA is kept")
    q = certs.add_parser("issue", help="a certificate whose subject NAME is the principal")
    q.add_argument("name", metavar="NAME", help="the principal, e.g. master, agent, alice")
    q.add_argument("--dir", required=True, help="the CA's directory (from certs init)")
    q.add_argument("--san", action="append", default=[], metavar="HOST_OR_IP",
                   help="also valid for this host name or address (repeatable; localhost and "
                        "127.0.0.1 always)")  # fmt: skip

    p = sub.add_parser("config", help="check a configuration file, or print its reference")
    config = p.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    q = config.add_parser("check", help="validate a configuration file; every mistake, at once")
    q.add_argument("file", metavar="FILE", help="the YAML configuration file to check")
    q = config.add_parser("reference", help="every key, type, default and example (Markdown)")
    q.add_argument("--output", default="", metavar="FILE",
                   help="write it to FILE, e.g. docs/configuration.md")  # fmt: skip

    p = sub.add_parser("cat", help="print a file from a task's sandbox")
    _add_master_flag(p)
    p.add_argument("task_id", type=_nonempty, metavar="TASK",
                   help="the task's id (see `orbiter tasks`)")  # fmt: skip
    p.add_argument("file", nargs="?", default="stdout", help="stdout (default) or stderr")
    p.add_argument(
        "--framework", default="", help="the task's framework (default: the newest such task)"
    )
    p.add_argument(
        "-f", "--follow", action="store_true",
        help="keep printing what the task writes until it ends",
    )  # fmt: skip
    p.add_argument(
        "--json", action="store_true",
        help="print JSON: the task, agent and file with the text (with --follow, a line "
        "per piece of text as it comes)",
    )  # fmt: skip

    for name, helptext in (
        ("reserve", "reserve an agent's unreserved resources for a role (dynamic reservation)"),
        ("unreserve", "give an agent's dynamically reserved resources back to everyone"),
    ):
        p = sub.add_parser(name, help=helptext, description=helptext + RESERVE_HELP)
        _add_master_flag(p)
        p.add_argument("agent_id", type=_nonempty, metavar="AGENT",
                       help="the agent's id (see `orbiter agents`)")  # fmt: skip
        p.add_argument(
            "resources", metavar="RESOURCES",
            help="like 'cpus:1;mem:256;disk:100' (with --role) or 'cpus(db):1'",
        )  # fmt: skip
        p.add_argument("--role", default="", help="the role for RESOURCES without one")
        if name == "reserve":
            p.add_argument(
                "--label", action="append", default=[], metavar="KEY=VALUE",
                help="a label kept with the reservation (repeatable)",
            )  # fmt: skip
        p.add_argument("--json", action="store_true", help="print the agent after it as JSON")

    p = sub.add_parser("kill", help="kill a task")
    _add_master_flag(p)
    p.add_argument("task_id", type=_nonempty, metavar="TASK",
                   help="the task's id (see `orbiter tasks`)")  # fmt: skip
    p.add_argument(
        "--framework", default="", help="the task's framework (needed if several run TASK)"
    )
    p.add_argument(
        "--grace", type=_non_negative_duration, default=None, metavar="DURATION",
        help="time between SIGTERM and SIGKILL, e.g. 10s (default: the task's own)",
    )  # fmt: skip
    p.add_argument(
        "--wait", action="store_true", help="wait until the task has ended and print its state"
    )
    p.add_argument("--json", action="store_true", help="print the task as JSON")
    return top


RESERVE_HELP = (
    ". Reserved resources are offered only to frameworks in the role; the reservation "
    "keeps your principal and labels and survives master failover. Resources tasks use "
    "or persistent volumes hold cannot be unreserved."
)

PIN_HELP = {
    "pin": "A pin overrides Satellite only. --state active puts the agent in service now "
    "(reactivating it if it is out) and Satellite will not deactivate or drain it until the "
    "pin expires; --state inactive takes an active agent out now (deactivated by operator) "
    "and Satellite will not reactivate it. deactivate, drain and reactivate still act on a "
    "pinned agent; the pin keeps holding Satellite off. A new pin replaces the old one.",
    "unpin": "Remove the pin: Satellite's automation applies again. The agent stays as it is "
    "(one pinned inactive stays deactivated by operator until `orbiter reactivate`). "
    "Unpinning an agent that is not pinned changes nothing, and says so.",
}


def cmd_certs(args: argparse.Namespace) -> int:
    from orbiter.security import certs

    directory = Path(args.dir)
    if args.certs_command == "init":
        made = certs.init_ca(directory)
        print(f"CA: {made.cert} (give it as --tls-ca), key {made.key} (keep it private)")
    else:
        made = certs.issue(directory, args.name, tuple(args.san))
        print(f"{args.name}: --tls-cert {made.cert} --tls-key {made.key}")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    from orbiter.config import ConfigError, load_config, reference

    if args.config_command == "check":
        try:
            load_config(args.file)
        except ConfigError as e:
            print(str(e), file=sys.stderr)
            return 1
        print(f"{args.file}: OK")
        return 0
    text = reference()
    if args.output:
        Path(args.output).write_text(text)
    else:
        print(text, end="")
    return 0


SERVERS = {"up": "the master", "master": "the master", "agent": "the agent",
           "satellite": "Satellite"}  # fmt: skip


def _configure_security(args: argparse.Namespace) -> None:
    """This process's TLS and identity settings, and the non-loopback bind check."""
    if not hasattr(args, "tls_ca"):
        return
    config = _config(args).security if getattr(args, "config", None) else None
    try:
        settings = security_flags.settings_from(args, config)
        what = SERVERS.get(args.subcommand)
        serving = what is not None and not (
            args.subcommand == "satellite" and (args.action or args.unix_socket)
        )
        if serving:
            security_flags.check_bind(settings, what, args.host)
        security.configure(settings)
    except security.SecurityError as e:
        raise UsageError(str(e)) from None


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if hasattr(args, "master"):
            master_address(args.master)
        _configure_security(args)
        if args.subcommand == "satellite" and args.action is None:
            _setup_logging(args.verbose)
        if args.subcommand in ("up", "master", "agent"):
            _setup_logging(args.verbose)
            runner = {"up": _run_up, "master": _run_master, "agent": _run_agent}[args.subcommand]
            if args.subcommand in ("up", "agent"):
                _resources_flag(args.resources)
            if args.subcommand == "agent":
                _attributes_flag(args.attributes)
            return asyncio.run(runner(args))
        return {
            "agents": cmd_agents,
            "events": cmd_events,
            "frameworks": cmd_frameworks,
            "tasks": cmd_tasks,
            "cat": cmd_cat,
            "kill": cmd_kill,
            "reserve": cmd_reserve,
            "unreserve": cmd_reserve,
            "execute": cmd_execute,
            "deactivate": cmd_maintenance,
            "drain": cmd_maintenance,
            "reactivate": cmd_maintenance,
            "pin": cmd_maintenance,
            "unpin": cmd_maintenance,
            "alerts": cmd_alerts,
            "silence": cmd_silence,
            "roles": cmd_roles,
            "weight": cmd_weight,
            "quota": cmd_quota,
            "satellite": cmd_satellite,
            "rules": cmd_rules,
            "certs": cmd_certs,
            "config": cmd_config,
        }[args.subcommand](args)
    except UsageError as e:
        print(f"orbiter {args.subcommand}: error: {e}", file=sys.stderr)
        return 2
    except (OrbiterError, RuleFileInvalid) as e:
        print(f"orbiter {args.subcommand}: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"orbiter {args.subcommand}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
