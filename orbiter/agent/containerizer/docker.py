"""Tasks as Docker containers, through the docker SDK and a real dockerd.

A task whose `container.type` is DOCKER runs in a container of its image:
`cpus` become `nano_cpus`, `mem` the memory limit (swap included), its offered
ports are published (same number inside unless `docker.port_mappings` says
otherwise), its sandbox is mounted at /mnt/mesos/sandbox and is the working
directory, and labels carry the task, framework and agent ids. The daemon, not
the agent, is the container's parent, so containers outlive an agent restart;
the restarted agent finds them by the `orbiter.agent_id` label and takes them
back (`DockerContainerizer.find`, `adopt`).

What a container wrote reaches `stdout` and `stderr` in the sandbox by
following its logs (the daemon keeps them, so a restarted agent rewrites both
files from the start). Both the sandbox copy and dockerd's own json-file log
are capped (`LOG_CAP_BYTES`, the sandbox copy rotated to `stdout.1`): output
written much faster than the copy follows, or while the agent is down, keeps
only what dockerd's capped log still holds. The container is removed once
its end has been read: exit code, and whether the kernel OOM-killed it.

How a container's facts become a task's end is pure (`container_spec`,
`docker_termination`); `DockerContainer` is the thin shell around the SDK.
The SDK blocks, so its calls go to the containerizer's own thread pool (a
`docker stop` holds a thread for the whole grace period, which would starve
asyncio's small default pool), and each container has a watcher thread (plus
one for stderr) that follows its logs for as long as it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import os
import posixpath
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container as SdkContainer

from orbiter.agent import volumes
from orbiter.proto import messages_pb2 as pb
from orbiter.resources import Ranges, Resources

from .base import LaunchError, Termination, exit_termination, kill_termination

log = logging.getLogger(__name__)

SANDBOX_MOUNT = "/mnt/mesos/sandbox"
LABEL_TASK = "orbiter.task_id"
LABEL_FRAMEWORK = "orbiter.framework_id"
LABEL_AGENT = "orbiter.agent_id"
LABEL_SANDBOX = "orbiter.sandbox"
LABEL_WORK_DIR = "orbiter.work_dir"
SIGKILL_EXIT = 128 + 9
_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]")
_NAME_MAX = 200
POOL_THREADS = 16
# As the process containerizer's defaults (orbiter/agent/isolation): output kept in the
# sandbox per stream (then `stdout` -> `stdout.1`), and processes per task.
LOG_CAP_BYTES = 10 * 1024 * 1024
PIDS_LIMIT = 1024


class DockerUnavailable(Exception):
    """dockerd did not answer; the message says where the agent looked."""


def container_name(agent_id: str, framework_id: str, task_id: str) -> str:
    """`orbiter-<agent>-<framework>-<task>`, with what Docker forbids in names as `_`."""
    name = _NAME_UNSAFE.sub("_", f"orbiter-{agent_id}-{framework_id}-{task_id}")
    return name[:_NAME_MAX]


@dataclass(frozen=True)
class PortBinding:
    host_port: int
    container_port: int
    protocol: str = "tcp"


@dataclass(frozen=True)
class DockerSpec:
    """Everything `containers.create` is given for one task."""

    name: str
    image: str
    entrypoint: tuple[str, ...] | None
    command: tuple[str, ...] | None
    environment: dict[str, str]
    labels: dict[str, str]
    ports: tuple[PortBinding, ...]
    mem_mib: int | None
    nano_cpus: int | None
    sandbox: str
    user: str
    log_cap_bytes: int = LOG_CAP_BYTES
    pids_limit: int = PIDS_LIMIT
    # Persistent volumes: (host directory, absolute path in the container).
    mounts: tuple[tuple[str, str], ...] = ()

    def create_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "image": self.image,
            "name": self.name,
            "environment": self.environment,
            "labels": self.labels,
            "volumes": {
                self.sandbox: {"bind": SANDBOX_MOUNT, "mode": "rw"},
                **{host: {"bind": inside, "mode": "rw"} for host, inside in self.mounts},
            },
            "working_dir": SANDBOX_MOUNT,
            # tini as pid 1: the command gets SIGTERM's default action (pid 1 would not).
            "init": True,
            "detach": True,
            "stdin_open": False,
            "tty": False,
        }
        if self.entrypoint is not None:
            kwargs["entrypoint"] = list(self.entrypoint)
        if self.command is not None:
            kwargs["command"] = list(self.command)
        if self.ports:
            kwargs["ports"] = {f"{p.container_port}/{p.protocol}": p.host_port for p in self.ports}
        if self.mem_mib is not None:
            kwargs["mem_limit"] = f"{self.mem_mib}m"
            kwargs["memswap_limit"] = f"{self.mem_mib}m"  # no swap beyond the limit
        if self.nano_cpus is not None:
            kwargs["nano_cpus"] = self.nano_cpus
        if self.user:
            kwargs["user"] = self.user
        if self.pids_limit > 0:
            kwargs["pids_limit"] = self.pids_limit
        if self.log_cap_bytes > 0:
            # dockerd keeps its own copy of the output too: no more than ours.
            kwargs["log_config"] = {
                "type": "json-file",
                "config": {"max-size": str(self.log_cap_bytes), "max-file": "2"},
            }
        return kwargs


def _task_ports(resources: Resources) -> list[int]:
    ports: list[int] = []
    for (name, _role), value in resources.items():
        if name == "ports" and isinstance(value, Ranges):
            for begin, end in value:
                ports.extend(range(begin, end + 1))
    return ports


def port_bindings(
    offered: Iterable[int], mappings: Iterable[pb.ContainerInfo.DockerInfo.PortMapping]
) -> tuple[PortBinding, ...]:
    """Each offered port published: where a mapping names it, as mapped; else as itself."""
    offered = list(offered)
    given: dict[int, PortBinding] = {}
    for m in mappings:
        protocol = m.protocol or "tcp"
        if protocol not in ("tcp", "udp"):
            raise LaunchError(f"port mapping {m.host_port}: protocol {protocol!r} is not tcp/udp")
        if m.host_port not in offered:
            raise LaunchError(
                f"port mapping names host port {m.host_port}, which is not among the task's "
                f"ports resources; add it to the task's ports"
            )
        given[m.host_port] = PortBinding(m.host_port, m.container_port or m.host_port, protocol)
    return tuple(given.get(p, PortBinding(p, p)) for p in offered)


def container_spec(
    task: pb.TaskInfo,
    sandbox: Path,
    env: Mapping[str, str],
    agent_id: str,
    framework_id: str,
    log_cap_bytes: int = LOG_CAP_BYTES,
    pids_limit: int = PIDS_LIMIT,
    default_user: str = "",
) -> DockerSpec:
    """The container a DOCKER task runs in (pure: no daemon needed).

    A task that names no user runs as `default_user` (the agent's task user as
    uid:gid, so the image need not know it), not as the image's user, often root.
    """
    image = task.container.docker.image
    if not image:
        raise LaunchError(
            f"task {task.task_id!r} asks for a DOCKER container but names no image; "
            "set container.docker.image"
        )
    command = task.command
    entrypoint: tuple[str, ...] | None = None
    args: tuple[str, ...] | None = None
    if command.shell:
        if not command.value:
            raise LaunchError("task has no command: with shell=true set command.value")
        entrypoint, args = ("/bin/sh", "-c"), (command.value,)
    elif command.value:
        # Mesos semantics: `arguments` is the whole argv, argv[0] included.
        entrypoint, args = (command.value,), tuple(command.arguments[1:])
    # else: the image's own entrypoint and command.
    environment = {**env, **command.environment}
    environment["ORBITER_SANDBOX"] = environment["MESOS_SANDBOX"] = SANDBOX_MOUNT
    resources = Resources.from_proto(task.resources)
    mem = resources.scalar("mem")
    cpus = resources.scalar("cpus")
    labels = {
        **task.labels,
        LABEL_TASK: task.task_id,
        LABEL_FRAMEWORK: framework_id,
        LABEL_AGENT: agent_id,
        LABEL_SANDBOX: str(sandbox),
        # sandboxes/<framework>/<task> under the agent's work dir
        LABEL_WORK_DIR: str(sandbox.parent.parent.parent),
    }
    return DockerSpec(
        name=container_name(agent_id, framework_id, task.task_id),
        image=image,
        entrypoint=entrypoint,
        command=args,
        environment=environment,
        labels=labels,
        ports=port_bindings(_task_ports(resources), task.container.docker.port_mappings),
        mem_mib=max(6, math.ceil(mem)) if mem > 0 else None,  # dockerd's minimum is 6 MiB
        nano_cpus=round(cpus * 1e9) if cpus > 0 else None,
        sandbox=str(sandbox),
        user=command.user or default_user,
        log_cap_bytes=log_cap_bytes,
        pids_limit=pids_limit,
        mounts=tuple(
            (str(m.host), posixpath.join(SANDBOX_MOUNT, m.container_path))
            for m in volumes.mounts(task, sandbox)
        ),
    )


def docker_termination(
    exit_code: int, oom_killed: bool, killing: bool, grace: float | None, mem_mib: int | None
) -> Termination:
    """A container's end as a task's: killed on request, OOM-killed, or exited."""
    if killing:
        sigkill_after = grace if exit_code == SIGKILL_EXIT else None
        return kill_termination(exit_code, sigkill_after)
    if oom_killed:
        limit = f"{mem_mib} MiB" if mem_mib else "its limit"
        # Worded as the process containerizer's cgroup OOM (orbiter/agent/isolation).
        return Termination(
            pb.TASK_FAILED,
            pb.REASON_CONTAINER_LIMITATION_MEMORY,
            f"Memory limit exceeded: the container reached its memory limit of {limit}, and "
            "the kernel's OOM killer ended it; give the task more `mem`",
            exit_code,
        )
    return exit_termination(exit_code)


def _split_image(image: str) -> tuple[str, str]:
    """`repo[:tag]` (a registry may carry a port): the tag defaults to latest."""
    if "@" in image:
        return image, ""
    repository, sep, tag = image.rpartition(":")
    if sep and "/" not in tag:
        return repository, tag
    return image, "latest"


def _explain(e: Exception) -> str:
    if isinstance(e, docker.errors.APIError) and e.explanation:
        return str(e.explanation)
    return str(e)


class DockerContainer:
    """One task's container: a watcher thread copies its logs and learns its end."""

    def __init__(
        self,
        task_id: str,
        container: SdkContainer,
        sandbox: Path,
        mem_mib: int | None,
        rewrite_logs: bool,
        pool: ThreadPoolExecutor,
        log_cap_bytes: int = LOG_CAP_BYTES,
    ) -> None:
        self.task_id = task_id
        self._pool = pool
        self._log_cap = log_cap_bytes
        self.container = container
        self.id: str = container.id or ""
        self.pid: int | None = (container.attrs.get("State") or {}).get("Pid") or None
        self._sandbox = sandbox
        self._mem_mib = mem_mib
        self._loop = asyncio.get_running_loop()
        self._done: asyncio.Future[Termination] = self._loop.create_future()
        self._killing = False
        self._grace: float | None = None
        self._watcher = threading.Thread(
            target=self._watch, args=(rewrite_logs,), name=f"docker-{task_id}", daemon=True
        )
        self._watcher.start()

    # ---------------------------------------------------------------- the watcher thread

    def _copy(self, path: Path, mode: str, stdout: bool) -> None:
        """Follow one stream into `path`, rotated to `path.1` at the cap."""
        rotated = path.with_name(path.name + ".1")
        if mode == "wb":
            rotated.unlink(missing_ok=True)  # rewritten from the start: rotated again
        out = open(path, mode)  # noqa: SIM115 (reopened on rotation)
        try:
            size = out.tell()
            stream = self.container.logs(stdout=stdout, stderr=not stdout, stream=True, follow=True)
            for chunk in stream:
                if self._log_cap > 0 and size > 0 and size + len(chunk) > self._log_cap:
                    out.close()
                    os.replace(path, rotated)
                    out = open(path, "wb")  # noqa: SIM115
                    size = 0
                out.write(chunk)
                out.flush()
                size += len(chunk)
        finally:
            out.close()

    def _watch(self, rewrite_logs: bool) -> None:
        mode = "wb" if rewrite_logs else "ab"
        try:
            stderr = threading.Thread(
                target=self._copy,
                args=(self._sandbox / "stderr", mode, False),
                name=f"docker-{self.task_id}-stderr",
                daemon=True,
            )
            stderr.start()
            self._copy(self._sandbox / "stdout", mode, True)
            stderr.join()
            self.container.wait()
            self.container.reload()
            state = self.container.attrs["State"]
            self._finish(int(state.get("ExitCode", -1)), bool(state.get("OOMKilled")))
        except Exception as e:  # the daemon went away, the container was removed by hand
            log.warning("lost track of container %s of task %s: %s", self.id, self.task_id, e)
            self._post(
                Termination(
                    pb.TASK_FAILED,
                    pb.REASON_UNSPECIFIED,
                    f"lost track of the task's container {self.id[:12]}: {_explain(e)}",
                    None,
                )
            )

    def _finish(self, exit_code: int, oom_killed: bool) -> None:
        termination = docker_termination(
            exit_code, oom_killed, self._killing, self._grace, self._mem_mib
        )
        try:
            self.container.remove(v=True)
        except docker.errors.APIError as e:
            if e.status_code not in (404, 409):  # gone, or being removed already
                raise
        self._post(termination)

    def _post(self, termination: Termination) -> None:
        def settle() -> None:
            if not self._done.done():
                self._done.set_result(termination)

        with contextlib.suppress(RuntimeError):  # the loop closed while the task ran
            self._loop.call_soon_threadsafe(settle)

    # ---------------------------------------------------------------- the loop's side

    async def wait(self) -> Termination:
        # Shielded so that a cancelled waiter does not cancel the task's outcome.
        return await asyncio.shield(self._done)

    async def kill(self, grace_period: float) -> None:
        """`docker stop` with the grace period (SIGTERM, then SIGKILL); later, a shorter
        grace brings the SIGKILL forward."""
        if self._done.done():
            return
        grace_period = max(0.0, grace_period)
        first = not self._killing
        self._killing = True
        if first or self._grace is None or grace_period < self._grace:
            self._grace = grace_period
            try:
                if grace_period > 0:
                    stop = functools.partial(self.container.stop, timeout=math.ceil(grace_period))
                    await self._loop.run_in_executor(self._pool, stop)
                else:
                    await self._loop.run_in_executor(self._pool, self.container.kill)
            except docker.errors.APIError as e:
                # Not running any more (409) or gone (404): the watcher reports its end.
                log.debug("stopping container %s: %s", self.id, _explain(e))
        await self.wait()


class DockerContainerizer:
    """Runs DOCKER tasks on one dockerd; `connect` checks that it answers."""

    name = "docker"

    def __init__(
        self,
        client: docker.DockerClient,
        version: str = "",
        log_cap_bytes: int = LOG_CAP_BYTES,
        pids_limit: int = PIDS_LIMIT,
        default_user: tuple[int, int] | None = None,
    ) -> None:
        self.client = client
        self.version = version
        self.log_cap_bytes = log_cap_bytes
        self.pids_limit = pids_limit
        # (uid, gid) that tasks naming no user run as; None: the image's user.
        self.default_user = default_user
        self._pool = ThreadPoolExecutor(max_workers=POOL_THREADS, thread_name_prefix="docker")

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    @staticmethod
    async def connect(
        base_url: str = "",
        log_cap_bytes: int = LOG_CAP_BYTES,
        pids_limit: int = PIDS_LIMIT,
        default_user: tuple[int, int] | None = None,
    ) -> DockerContainerizer:
        """A containerizer on the daemon at `base_url` (default: DOCKER_HOST or the
        standard socket), or DockerUnavailable saying why not."""

        def probe() -> DockerContainerizer:
            where = base_url or "DOCKER_HOST or unix:///var/run/docker.sock"
            try:
                if base_url:
                    client = docker.DockerClient(base_url=base_url, timeout=60)
                else:
                    client = docker.from_env(timeout=60)
                version = client.version().get("Version", "")
            except Exception as e:  # DockerException, requests' ConnectionError, ...
                raise DockerUnavailable(f"dockerd does not answer at {where}: {e}") from None
            return DockerContainerizer(client, version, log_cap_bytes, pids_limit, default_user)

        return await asyncio.to_thread(probe)

    @property
    def base_url(self) -> str:
        return str(self.client.api.base_url)

    async def launch(
        self, task: pb.TaskInfo, sandbox: Path, env: Mapping[str, str]
    ) -> DockerContainer:
        spec = container_spec(
            task,
            sandbox,
            env,
            env.get("ORBITER_AGENT_ID", ""),
            env.get("ORBITER_FRAMEWORK_ID", ""),
            self.log_cap_bytes,
            self.pids_limit,
            f"{self.default_user[0]}:{self.default_user[1]}" if self.default_user else "",
        )
        if self.default_user and not task.command.user:
            # The task's user writes the sandbox mounted at /mnt/mesos/sandbox.
            await asyncio.to_thread(os.chown, sandbox, *self.default_user)
        owner = self.default_user if self.default_user and not task.command.user else None
        for m in volumes.mounts(task, sandbox):
            # Made here if the agent has not yet; the task's user writes its top, as the sandbox.
            await asyncio.to_thread(volumes.prepare, m.host, owner)
        container = await self._call(self._create, spec, task.container.docker.force_pull_image)
        return DockerContainer(
            task.task_id,
            container,
            sandbox,
            spec.mem_mib,
            rewrite_logs=True,
            pool=self._pool,
            log_cap_bytes=self.log_cap_bytes,
        )

    def _ensure_image(self, image: str, force_pull: bool) -> None:
        if not force_pull:
            try:
                self.client.images.get(image)
                return
            except docker.errors.ImageNotFound:
                pass
            except docker.errors.APIError as e:
                raise LaunchError(f"cannot look up image {image!r}: {_explain(e)}") from None
        repository, tag = _split_image(image)
        log.info("pulling image %s", image)
        try:
            self.client.images.pull(repository, tag=tag or None)
        except docker.errors.APIError as e:
            raise LaunchError(
                f"image {image!r} is not on this agent and pulling it failed: {_explain(e)}"
            ) from None

    def _create(self, spec: DockerSpec, force_pull: bool) -> SdkContainer:
        self._ensure_image(spec.image, force_pull)
        with contextlib.suppress(docker.errors.NotFound):
            # A leftover of the same task (the agent died mid-launch): it never ran for us.
            self.client.containers.get(spec.name).remove(force=True)
        try:
            container = self.client.containers.create(**spec.create_kwargs())
        except docker.errors.APIError as e:
            raise LaunchError(
                f"cannot create a container of {spec.image!r}: {_explain(e)}"
            ) from None
        try:
            container.start()
        except docker.errors.APIError as e:
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True)
            raise LaunchError(
                f"cannot start the container of {spec.image!r}: {_explain(e)}"
            ) from None
        container.reload()
        return container

    # ---------------------------------------------------------------- recovery

    async def find(self, agent_id: str) -> dict[tuple[str, str], SdkContainer]:
        """This agent's containers, running or not, by (framework id, task id)."""
        if not agent_id:
            return {}

        def listing() -> list[SdkContainer]:
            return self.client.containers.list(
                all=True, filters={"label": f"{LABEL_AGENT}={agent_id}"}
            )

        found = {}
        for c in await self._call(listing):
            found[(c.labels.get(LABEL_FRAMEWORK, ""), c.labels.get(LABEL_TASK, ""))] = c
        return found

    def adopt(self, task: pb.TaskInfo, container: SdkContainer, sandbox: Path) -> DockerContainer:
        """Follow a container a previous run of the agent started (running or ended)."""
        mem = Resources.from_proto(task.resources).scalar("mem")
        mem_mib = max(6, math.ceil(mem)) if mem > 0 else None
        return DockerContainer(
            task.task_id,
            container,
            sandbox,
            mem_mib,
            rewrite_logs=True,
            pool=self._pool,
            log_cap_bytes=self.log_cap_bytes,
        )

    async def remove(self, container: SdkContainer) -> None:
        """Force-remove a container no task of ours owns any more."""
        with contextlib.suppress(docker.errors.NotFound):
            await self._call(functools.partial(container.remove, force=True, v=True))

    def close(self) -> None:
        self._pool.shutdown(wait=False)
        self.client.close()
