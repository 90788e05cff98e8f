"""ACL decisions (orbiter.security.acl) as tables, and the config section's errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from orbiter.config import load_config
from orbiter.security import acl
from orbiter.security.acl import Acls, Rule
from orbiter.yamlreader import ConfigError

R, U, T, S, M = (
    acl.REGISTER_FRAMEWORK,
    acl.RUN_TASK,
    acl.TEARDOWN_FRAMEWORK,
    acl.READ_SANDBOX,
    acl.MAINTAIN_AGENT,
)

RULES = Acls(
    enabled=True,
    rules={
        R: (Rule(("web",), ("web", "web/*")), Rule(("*",), ("batch",))),
        U: (Rule(("web",), ("www-data",)), Rule(("ops",), ("root",)), Rule(("any",), ("*",))),
        T: (Rule(("ops",), ("*",)),),
        S: (Rule(("ops",), ("*",)), Rule(("auditor",), ("web",))),
        M: (Rule(("intern",), ("*",), allow=False), Rule(("ops*",), ("eu-*",))),
    },
).trusting("satellite", M)


@pytest.mark.parametrize(
    ("principal", "action", "objects", "owner", "allowed"),
    [
        # register_frameworks: patterns on roles, every role must be allowed
        ("web", R, ["web"], "", True),
        ("web", R, ["web/frontend"], "", True),
        ("web", R, ["webby"], "", False),
        ("web", R, ["web", "db"], "", False),
        ("anyone", R, ["batch"], "", True),
        ("anyone", R, ["web"], "", False),
        ("web", R, ["*"], "", False),  # the default role is a role like any other
        # run_tasks: root only where named, never by "*"
        ("web", U, ["www-data"], "", True),
        ("web", U, ["nobody"], "", False),
        ("ops", U, ["root"], "", True),
        ("any", U, ["postgres"], "", True),
        ("any", U, ["root"], "", False),
        ("any", U, ["0"], "", False),  # root by uid, or Docker's user:group
        ("any", U, ["0:0"], "", False),
        ("any", U, ["root:wheel"], "", False),
        ("ops", U, ["0"], "", True),
        ("any", U, ["1000:1000"], "", True),
        # teardown / sandboxes: own always, others by rule
        ("web", T, ["web"], "web", True),
        ("web", T, ["batch"], "batch", False),
        ("ops", T, ["web"], "web", True),
        ("auditor", S, ["web"], "web", True),
        ("auditor", S, ["batch"], "batch", False),
        ("batch", S, ["batch"], "batch", True),
        # maintain_agents: first matching rule decides, deny rules included
        ("ops-eu", M, [("S1", "eu-host-1")], "", True),  # by hostname
        ("ops-eu", M, [("S2", "us-host-1")], "", False),
        ("intern", M, [("S1", "eu-host-1")], "", False),
        ("satellite", M, [("S2", "us-host-1")], "", True),  # trusted for its job
        ("satellite", U, ["nobody"], "", False),  # ... and nothing else
        # no rule for the action at all: default deny
        ("ops", acl.RELOAD_RULES, [], "", False),
        ("ops", acl.MANAGE_SILENCES, [], "", False),
    ],
)
def test_rules_decide(principal, action, objects, owner, allowed) -> None:
    assert RULES.allows(principal, action, objects, owner) is allowed


def test_permissive_allows_what_no_rule_decides_but_never_root() -> None:
    acls = Acls(enabled=True, permissive=True, rules={M: (Rule(("intern",), ("*",), False),)})
    assert acls.allows("someone", acl.RELOAD_RULES)
    assert acls.allows("someone", U, ["postgres"])
    assert not acls.allows("someone", U, ["root"])
    assert not acls.allows("intern", M, [("S1", "h")])


def test_without_acls_everything_is_allowed_but_root_tasks() -> None:
    off = Acls()
    assert off.allows("", R, ["*"])
    assert off.allows("bob", T, ["alice"], owner="alice")  # bindings refuse this, not ACLs
    assert off.allows("bob", U, ["postgres"])
    assert not off.allows("bob", U, ["root"])
    assert not off.allows("", U, ["root"])
    assert not off.allows("", U, ["00:0"])


def test_refusals_say_who_what_and_the_rule_that_would_allow_it() -> None:
    with pytest.raises(acl.Forbidden) as e:
        acl.authorize(RULES, "web", R, ["db"])
    assert e.value.message == (
        "'web' may not register a framework in role 'db': no rule in "
        "security.acls.register_frameworks allows it "
        "(to allow it: {principals: [web], roles: [db]})"
    )
    with pytest.raises(acl.Forbidden) as e:
        acl.authorize(RULES, "ops", acl.RELOAD_RULES)
    assert e.value.message == (
        "'ops' may not reload rules: no rule in security.acls.reload_rules allows it "
        "(to allow it: {principals: [ops]})"
    )
    with pytest.raises(acl.Forbidden) as e:
        acl.authorize(Acls(), "", U, ["root"])
    assert "root needs an ACL that names it" in e.value.message
    assert "users: [root]" in e.value.message
    assert e.value.code.http_status == 403


def _load(tmp_path: Path, body: str):
    path = tmp_path / "orbiter.yml"
    path.write_text(textwrap.dedent(body))
    return load_config(path)


def test_the_config_section_is_read(tmp_path: Path) -> None:
    cfg = _load(
        tmp_path,
        """\
        security:
          acls:
            permissive: false
            register_frameworks:
              - {principals: [web], roles: [web, "web/*"]}
            run_tasks:
              - {principals: [ops], users: [root]}
            maintain_agents:
              - {principals: [intern], agents: ["*"], allow: false}
            reload_rules:
              - {principals: [ops]}
            update_weights:
              - {principals: [ops], roles: ["*"]}
            update_quotas:
              - {principals: [lead], roles: [eng, "eng/*"]}
        """,
    )
    acls = cfg.security.acls
    assert acls.allows("ops", acl.UPDATE_WEIGHTS, ["eng/web"])
    assert acls.allows("lead", acl.UPDATE_QUOTAS, ["eng", "eng/web"])
    assert not acls.allows("lead", acl.UPDATE_QUOTAS, ["ops"])
    assert acls.enabled and not acls.permissive
    assert acls.rules[R] == (Rule(("web",), ("web", "web/*")),)
    assert acls.rules[M] == (Rule(("intern",), ("*",), allow=False),)
    assert acls.rules[acl.RELOAD_RULES] == (Rule(("ops",), ("*",)),)
    assert acls.allows("ops", acl.RELOAD_RULES)
    assert not acls.allows("web", acl.RELOAD_RULES)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (
            "acls: {run_task: []}",
            ":2: unknown key security.acls.run_task; did you mean security.acls.run_tasks?",
        ),
        (
            "acls: {run_tasks: {principals: [a]}}",
            ":2: security.acls.run_tasks must be a list of rules",
        ),
        (
            "acls:\n    run_tasks:\n      - {users: [x]}",
            ":4: security.acls.run_tasks[0] needs principals",
        ),
        (
            "acls:\n    run_tasks:\n      - {principals: [a]}",
            ":4: security.acls.run_tasks[0] needs users",
        ),
        (
            "acls:\n    reload_rules:\n      - {principals: [a], users: [b]}",
            ":4: unknown key security.acls.reload_rules[0].users",
        ),
        (
            "acls:\n    run_tasks:\n      - {principals: [], users: [b]}",
            ":4: security.acls.run_tasks[0].principals is empty",
        ),
        (
            "acls:\n    maintain_agents:\n      - {principals: [a], agents: [b], allow: maybe}",
            ":4: security.acls.maintain_agents[0].allow must be true or false",
        ),
        ("acls: {permissive: 1}", ":2: security.acls.permissive must be true or false"),
    ],
)
def test_config_mistakes_name_the_line(tmp_path: Path, body: str, error: str) -> None:
    with pytest.raises(ConfigError) as e:
        _load(tmp_path, "security:\n  " + body + "\n")
    assert error in str(e.value)
