"""What TLS and authentication cost a task launch: launch rate with mutual TLS and
tokens on versus off.

Each run starts a fresh master and null-containerizer agents in this process
(one event loop, so the TLS work of master, agents and framework all lands on
one core: an upper bound on the cost), launches `--tasks` tasks with the
bench framework of `_cluster.launch`, and measures first Accept -> every task
RUNNING and acknowledged. Off: plaintext, no principals (the loopback
default). On: TLS on the gRPC wires, client certificates required, a bearer
token on every call, principals bound to agent and framework ids, API rate
limits. ACLs: on, plus default-deny ACLs with the rules the bench needs (its
frameworks' role, the agents' registration).

Run: python bench/security.py [--tasks N] [--agents N] [--runs N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cluster import launch

from orbiter.agent.agent import Agent, AgentSettings
from orbiter.master.server import MasterServer, MasterSettings
from orbiter.resources import Resources
from orbiter.security import acl, certs
from orbiter.security import settings as security
from orbiter.security.credentials import Credentials
from orbiter.security.settings import SecuritySettings

TASK = "cpus:1;mem:32"
TOKENS = {"agent": "agent-token-0123456789", "bench": "bench-token-0123456789"}


ACLS = acl.Acls(
    enabled=True,
    rules={
        acl.REGISTER_FRAMEWORK: (acl.Rule(("bench",), ("*",)),),
        acl.REGISTER_AGENT: (acl.Rule(("agent",), ("*",)),),
    },
)


def settings(pki: Path | None, name: str, acls: bool = False) -> SecuritySettings:
    if pki is None:
        return SecuritySettings()
    creds = Credentials()
    for principal, token in TOKENS.items():
        creds = creds.with_token(principal, token)
    return SecuritySettings(
        tls_cert=str(pki / f"{name}.pem"),
        tls_key=str(pki / f"{name}.key"),
        tls_ca=str(pki / "ca.pem"),
        require_client_cert=True,
        credentials=creds,
        token=TOKENS.get(name, ""),
        acls=ACLS if acls else acl.Acls(),
    )


async def one_run(
    work: Path, pki: Path | None, tasks: int, agents: int, acls: bool = False
) -> tuple[float, float]:
    """(tasks per second to RUNNING acknowledged, seconds for the agents to register)."""
    security.configure(settings(pki, "bench"))  # the framework's (the driver reads it)
    master = MasterServer(
        MasterSettings(
            port=0, http_port=0, work_dir=work / "m", security=settings(pki, "master", acls)
        )
    )
    await master.start()
    started: list[Agent] = []
    try:
        t0 = time.perf_counter()
        per_agent = tasks // agents
        for i in range(agents):
            agent = Agent(
                AgentSettings(
                    master=master.info.grpc_address,
                    work_dir=work / f"a{i}",
                    resources=Resources.parse(f"cpus:{per_agent};mem:{32 * per_agent}"),
                    containerizer="null",
                    security=settings(pki, "agent"),
                )
            )
            await agent.start()
            started.append(agent)
        for agent in started:
            await asyncio.wait_for(agent.registered.wait(), 30)
        registered = time.perf_counter() - t0
        result = await launch(master.info.grpc_address, per_agent * agents, Resources.parse(TASK))
        return result.running_rate, registered
    finally:
        for agent in started:
            await agent.stop()
        await master.stop()
        security.configure(SecuritySettings())


async def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", type=int, default=2000)
    p.add_argument("--agents", type=int, default=10)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="orbiter-bench-security-") as tmp:
        base = Path(tmp)
        pki = base / "pki"
        certs.init_ca(pki)
        for name in ("master", "agent", "bench"):
            certs.issue(pki, name)
        modes = ("off", "on", "acls")
        rates: dict[str, list[float]] = {m: [] for m in modes}
        regs: dict[str, list[float]] = {m: [] for m in modes}
        for run in range(args.runs):
            for mode in modes:  # interleaved, so drift hits all alike
                rate, reg = await one_run(
                    base / f"{mode}-{run}", pki if mode != "off" else None, args.tasks,
                    args.agents, acls=mode == "acls",
                )  # fmt: skip
                rates[mode].append(rate)
                regs[mode].append(reg)
    rate = {m: statistics.median(rates[m]) for m in modes}
    names = {
        "off": "off (plaintext, no principals)",
        "on": "on (mTLS + tokens + bindings + rate limits)",
        "acls": "on + default-deny ACLs",
    }
    rows = [[names[m], f"{rate[m]:,.0f}", f"{statistics.median(regs[m]):.2f}"] for m in modes]
    print(f"launch of {args.tasks} null tasks over {args.agents} agents, median of {args.runs}")
    print(tabulate(rows, headers=["security", "tasks/s to RUNNING", "agents registered (s)"]))
    off, on, acls = rate["off"], rate["on"], rate["acls"]
    print(f"on/off launch rate ratio: {on / off:.2f} (cost {100 * (1 - on / off):.0f}%)")
    print(f"on+ACLs/off launch rate ratio: {acls / off:.2f} (cost {100 * (1 - acls / off):.0f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
