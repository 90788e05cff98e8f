"""How much one client may ask of the master: token buckets, the API limiter, and the
registry caps the state machine holds each principal to (orbiter/master/limits.py)."""

from __future__ import annotations

import pytest

from orbiter.alerts import silences
from orbiter.errors import Code
from orbiter.master.limits import CapReached, Limits
from orbiter.master.state import FrameworkStatus, Master, MasterConfig
from orbiter.proto import agent_pb2, scheduler_pb2
from orbiter.proto import messages_pb2 as pb
from orbiter.resources import Resources
from orbiter.security.bindings import ApiLimiter
from orbiter.security.ratelimit import RateLimited, TokenBuckets

# ---------------------------------------------------------------------- rates


@pytest.mark.parametrize(
    ("taken", "at", "retry_after"),
    [
        (0, 0.0, 0.0),  # a full bucket: go now
        (4, 0.0, 0.0),  # one token left
        (5, 0.0, 0.5),  # empty: one token comes at rate 2/s
        (5, 0.25, 0.25),  # half of it has come
        (5, 1.0, 0.0),  # refilled (two tokens)
    ],
)
def test_retry_after_is_the_time_until_a_whole_token(
    taken: int, at: float, retry_after: float
) -> None:
    b = TokenBuckets(rate=2.0, burst=5.0)
    for _ in range(taken):
        assert b.take("k", 0.0)
    assert b.retry_after("k", at) == pytest.approx(retry_after)


@pytest.mark.parametrize(
    ("principal", "host", "limited"),
    [
        ("", "127.0.0.1", False),  # the single-node default: not limited
        ("", "::1", False),
        ("", "10.0.0.5", True),  # --insecure on a network: limited by host
        ("alice", "127.0.0.1", True),  # authenticated: limited, on loopback too
        ("alice", "10.0.0.5", True),
    ],
)
def test_api_calls_are_limited_except_unauthenticated_loopback(
    principal: str, host: str, limited: bool
) -> None:
    limiter = ApiLimiter(rate=1.0, burst=3.0)
    for _ in range(3):
        limiter.admit(principal, host, 0.0)
    if not limited:
        limiter.admit(principal, host, 0.0)
        return
    with pytest.raises(RateLimited) as e:
        limiter.admit(principal, host, 0.0)
    assert e.value.code is Code.RESOURCE_EXHAUSTED
    assert str(e.value) == (
        f"too many API calls from {principal or 'unauthenticated'} at {host}: at most 3 at "
        "once, then 1 per second (master.api_burst, master.api_rate); retry later"
    )
    assert e.value.retry_after == pytest.approx(1.0)
    assert e.value.retry_after_header == "1"


def test_each_principal_and_host_has_its_own_bucket_and_it_refills() -> None:
    limiter = ApiLimiter(rate=2.0, burst=1.0)
    limiter.admit("alice", "10.0.0.1", 0.0)
    with pytest.raises(RateLimited):
        limiter.admit("alice", "10.0.0.1", 0.1)
    limiter.admit("alice", "10.0.0.2", 0.1)  # another host
    limiter.admit("bob", "10.0.0.1", 0.1)  # another principal
    limiter.admit("alice", "10.0.0.1", 0.5)  # refilled at 2/s


def test_a_rate_of_zero_limits_nobody() -> None:
    limiter = ApiLimiter(rate=0.0, burst=1.0)
    for _ in range(1000):
        limiter.admit("alice", "10.0.0.1", 0.0)


def test_retry_after_header_rounds_up_to_whole_seconds() -> None:
    assert RateLimited("x", 0.01).retry_after_header == "1"
    assert RateLimited("x", 2.5).retry_after_header == "3"


@pytest.mark.parametrize(
    ("limits", "problems"),
    [
        (Limits(), []),
        (Limits(api_rate=0), []),
        (Limits(api_rate=-1), ["api_rate"]),
        (Limits(api_rate=float("nan")), ["api_rate"]),
        (Limits(api_burst=0.5), ["api_burst"]),
        (Limits(max_frameworks_per_principal=0, max_silences=0), ["max_frameworks_per_principal",
                                                                  "max_silences"]),
        (Limits(max_agents_per_principal=0), ["max_agents_per_principal"]),
    ],
)  # fmt: skip
def test_limits_that_cannot_be_used_are_named(limits: Limits, problems: list[str]) -> None:
    assert [key for key, _ in limits.problems()] == problems


# ---------------------------------------------------------------------- caps

CAPS = Limits(max_frameworks_per_principal=2, max_agents_per_principal=2, max_silences=3)


def master(limits: Limits = CAPS) -> Master:
    return Master(pb.MasterInfo(id="m1", hostname="m"), MasterConfig(limits=limits), 0.0)


def subscribe(m: Master, principal: str, fw_id: str = "") -> str:
    fw_id, _, _ = m.subscribe(pb.FrameworkInfo(id=fw_id, name="fw"), 0.0, principal)
    return fw_id


def register(m: Master, principal: str, address: str, agent_id: str = "", link: int = 1) -> str:
    info = pb.AgentInfo(id=agent_id, hostname="h", http_address=address)
    info.resources.extend(Resources.parse("cpus:1;mem:128").to_proto())
    message = agent_pb2.AgentMessage.Register(info=info)
    agent_id, _ = m.agent_register(link, message, 0.0, principal)
    return agent_id


def silence(sid: str, ends: float = 1000.0) -> object:
    return silences.new_silence(
        sid, [silences.MatcherSpec("alertname", "A")], 0.0, ends, "me", "why", 0.0
    )


def test_a_principal_past_its_framework_cap_is_refused_and_others_are_not() -> None:
    m = master()
    first = subscribe(m, "alice")
    subscribe(m, "alice")
    registry = m.registry().SerializeToString(deterministic=True)

    with pytest.raises(CapReached) as e:
        subscribe(m, "alice")

    assert e.value.code is Code.RESOURCE_EXHAUSTED
    assert e.value.cap == "max_frameworks_per_principal"
    assert str(e.value) == (
        "principal 'alice' has 2 frameworks registered, the most one principal may have "
        "(master.max_frameworks_per_principal = 2); tear down frameworks it no longer "
        "needs (Teardown), or subscribe again with an existing framework id"
    )
    assert m.registry().SerializeToString(deterministic=True) == registry
    subscribe(m, "bob")  # another principal: its own count
    for _ in range(5):
        subscribe(m, "")  # unauthenticated (loopback): no per-principal cap
    assert subscribe(m, "alice", first) == first  # taking one back is no new framework


def test_a_torn_down_framework_frees_its_place() -> None:
    m = master()
    first = subscribe(m, "alice")
    subscribe(m, "alice")
    stream = m.frameworks[first].stream_id
    m.teardown(scheduler_pb2.CallHeader(framework_id=first, stream_id=stream), 1.0)
    assert first not in m.frameworks or m.frameworks[first].status is FrameworkStatus.COMPLETED
    subscribe(m, "alice")


def test_a_principal_past_its_agent_cap_is_refused() -> None:
    m = master()
    a1 = register(m, "agent", "10.0.0.1:5051")
    register(m, "agent", "10.0.0.2:5051")

    with pytest.raises(CapReached, match=r"principal 'agent' has 2 agents registered.*"
                       r"master\.max_agents_per_principal = 2"):  # fmt: skip
        register(m, "agent", "10.0.0.3:5051")

    assert len(m.agents) == 2
    assert register(m, "agent", "10.0.0.1:5051", a1, link=2) == a1  # no new agent
    m.agent_disconnected(a1, 2, 1.0)
    register(m, "agent", "10.0.0.1:5051", link=3)  # replaces a1: at its address, gone now
    register(m, "other", "10.0.0.4:5051")
    register(m, "", "10.0.0.5:5051")
    register(m, "", "10.0.0.6:5051")


def test_silences_are_capped_in_total_and_expiring_one_frees_a_place() -> None:
    m = master()
    for sid in ("s1", "s2", "s3"):
        m.put_silence(silence(sid), 1.0)

    with pytest.raises(CapReached) as e:
        m.put_silence(silence("s4"), 1.0)

    assert e.value.code.http_status == 429
    assert str(e.value) == (
        "3 silences are active or pending, the most this master keeps (master.max_silences "
        "= 3); expire silences no longer needed (`orbiter silence expire ID`, amtool silence "
        "expire) and retry"
    )
    assert set(m.silences) == {"s1", "s2", "s3"}
    m.put_silence(silence("s2", ends=2000.0), 1.0)  # replacing one by id: no new silence
    m.expire_silence("s1", 2.0)
    m.put_silence(silence("s4"), 3.0)
    assert {s for s, v in m.silences.items() if silences.state(v, 3.0) != "expired"} == {
        "s2",
        "s3",
        "s4",
    }
