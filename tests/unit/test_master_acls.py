"""The master's state machine under ACLs: roles at Subscribe, users at Accept, operator
teardown; each refusal changes nothing."""

from __future__ import annotations

import pytest

from orbiter.errors import OrbiterError
from orbiter.master.state import Master, MasterConfig
from orbiter.proto import agent_pb2, scheduler_pb2
from orbiter.proto import messages_pb2 as pb
from orbiter.resources import Resources
from orbiter.security import acl, bindings
from orbiter.security.acl import Acls, Rule

ACLS = Acls(
    enabled=True,
    rules={
        acl.REGISTER_FRAMEWORK: (Rule(("web",), ("web",)),),
        acl.RUN_TASK: (Rule(("web",), ("www-data",)),),
        acl.TEARDOWN_FRAMEWORK: (Rule(("ops",), ("*",)),),
    },
)


def master(acls: Acls = ACLS) -> Master:
    m = Master(pb.MasterInfo(id="m1", hostname="m"), MasterConfig(acls=acls), 0.0)
    info = pb.AgentInfo(hostname="h1", http_address="10.0.0.1:5051")
    info.resources.extend(Resources.parse("cpus:4;mem:4096").to_proto())
    m.agent_register(1, agent_pb2.AgentMessage.Register(info=info), 0.0)
    return m


def subscribe(m: Master, principal: str, *roles: str) -> scheduler_pb2.CallHeader:
    info = pb.FrameworkInfo(name="fw", roles=list(roles))
    fw_id, stream_id, _ = m.subscribe(info, 0.0, principal)
    return scheduler_pb2.CallHeader(framework_id=fw_id, stream_id=stream_id)


def launch_as(m: Master, header: scheduler_pb2.CallHeader, user: str) -> list:
    if not m.offers:
        m.allocate(1.0)
    (offer,) = [o for o in m.offers.values() if o.framework_id == header.framework_id]
    task = pb.TaskInfo(task_id="t1", command=pb.CommandInfo(shell=True, value="true", user=user))
    task.resources.extend(Resources.parse("cpus:1;mem:64").to_proto())
    op = scheduler_pb2.Operation(type=scheduler_pb2.Operation.LAUNCH)
    op.launch.task_infos.append(task)
    return m.accept(header, [offer.id], [op], scheduler_pb2.Filters(), 1.0)


def test_a_framework_registers_only_in_the_roles_its_principal_may_use() -> None:
    m = master()
    subscribe(m, "web", "web")
    with pytest.raises(acl.Forbidden) as e:
        subscribe(m, "web", "web", "db")
    assert "'web' may not register a framework in role 'db'" in e.value.message
    with pytest.raises(acl.Forbidden):
        subscribe(m, "web")  # the default role needs a rule too
    assert len(m.frameworks) == 1


def test_tasks_run_only_as_users_the_acls_allow() -> None:
    m = master()
    web = subscribe(m, "web", "web")
    before = m.registry().SerializeToString(deterministic=True)
    with pytest.raises(acl.Forbidden) as e:
        launch_as(m, web, "postgres")
    assert e.value.message.startswith("operation 0, task t1: 'web' may not run tasks as user")
    assert m.registry().SerializeToString(deterministic=True) == before
    assert not m.frameworks[web.framework_id].tasks
    effects = launch_as(m, web, "www-data")
    assert effects and "t1" in m.frameworks[web.framework_id].tasks


def test_without_acls_a_task_may_not_name_root_but_may_name_no_user() -> None:
    m = master(Acls())
    fw = subscribe(m, "")
    with pytest.raises(acl.Forbidden) as e:
        launch_as(m, fw, "root")
    assert "root needs an ACL that names it" in e.value.message
    assert launch_as(m, fw, "")  # the agent's task user (nobody unless set)


def test_an_executor_naming_root_is_refused_too() -> None:
    m = master(Acls())
    fw = subscribe(m, "")
    m.allocate(1.0)
    (offer,) = m.offers.values()
    task = pb.TaskInfo(task_id="t1")
    task.executor.executor_id = "e1"
    task.executor.command.value = "my-executor"
    task.executor.command.user = "root"
    task.resources.extend(Resources.parse("cpus:1;mem:64").to_proto())
    op = scheduler_pb2.Operation(type=scheduler_pb2.Operation.LAUNCH)
    op.launch.task_infos.append(task)
    with pytest.raises(acl.Forbidden):
        m.accept(fw, [offer.id], [op], scheduler_pb2.Filters(), 1.0)


def test_teardown_of_anothers_framework_needs_a_rule() -> None:
    m = master()
    web = subscribe(m, "web", "web")
    fw = m.frameworks[web.framework_id]
    with pytest.raises(OrbiterError) as e:
        bindings.check_teardown(m.config.acls, fw.id, fw.principal, "intruder")
    assert "'intruder' may not tear down frameworks of principal 'web'" in str(e.value)
    bindings.check_teardown(m.config.acls, fw.id, fw.principal, "ops")
    bindings.check_teardown(m.config.acls, fw.id, fw.principal, "web")  # its own
    effects = m.operator_teardown(fw.id, "ops", "moved to the new cluster", 2.0)
    assert fw.status.value == "completed"
    assert any("torn down by ops: moved to the new cluster" in str(x) for x in effects)
    with pytest.raises(OrbiterError, match="already torn down"):
        m.operator_teardown(fw.id, "ops", "", 3.0)


def test_without_acls_another_principals_teardown_stays_refused() -> None:
    m = master(Acls())
    web = subscribe(m, "web")
    fw = m.frameworks[web.framework_id]
    with pytest.raises(bindings.NotYours, match=r"an ACL in security\.acls\.teardown_frameworks"):
        bindings.check_teardown(m.config.acls, fw.id, "web", "bob")
