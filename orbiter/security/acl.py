"""Authorization: Mesos-like ACLs from the config file's `security.acls`, decided purely.

    security:
      acls:
        permissive: false                 # what no rule decides is refused (the default)
        register_frameworks:
          - {principals: [web], roles: [web, "web/*"]}
        run_tasks:
          - {principals: [web], users: [www-data]}
          - {principals: [ops], users: [root]}   # root only where named, never by "*"
        teardown_frameworks:
          - {principals: [ops], framework_principals: ["*"]}
        kill_tasks:                       # operator kills (`orbiter kill`) of others' tasks
          - {principals: [ops], framework_principals: ["*"]}
        read_sandboxes:
          - {principals: [ops], framework_principals: ["*"]}
        maintain_agents:                  # deactivate, drain, reactivate, pin, remove
          - {principals: [ops], agents: ["*"]}
        reserve_resources:                # RESERVE and the operator's /reserve
          - {principals: [db], roles: [db]}
        unreserve_resources:              # others' reservations (your own: always)
          - {principals: [ops], reserver_principals: ["*"]}
        create_volumes:
          - {principals: [db], roles: [db]}
        destroy_volumes:                  # others' volumes (your own: always)
          - {principals: [ops], creator_principals: ["*"]}
        update_weights:                   # role weights (PUT /api/v1/weights)
          - {principals: [ops], roles: ["*"]}
        update_quotas:                    # role quota (POST|DELETE /api/v1/quota)
          - {principals: [ops], roles: [eng, "eng/*"]}
        - ...: register_agents (agents), reload_rules, manage_silences (principals only)

Each action's rules are read in order; the first whose `principals` match the
caller and whose objects match what it acts on decides: allowed, or refused
if the rule says `allow: false`. Patterns are shell-style (`*`, `web/*`);
`*` matches every principal, and every user except root. When no rule
decides, an owner may still act on its own framework (teardown, sandboxes)
and undo its own reservations and volumes,
the trusted principals (the master's own Satellite and in-process agents, and
`satellite_principal` for maintenance) may do their jobs, and everything else
follows `permissive`.

Without an `acls` section every authenticated principal may do everything
except run tasks as root (as Mesos without ACLs, and the issue's safe default:
root needs an explicit rule). Identity bindings (agent ids, framework ids,
maintenance `by`) are enforced where the records live, whatever the ACLs say.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import yaml

from orbiter.errors import Code, OrbiterError
from orbiter.yamlreader import YamlReader


class Forbidden(OrbiterError):
    code = Code.PERMISSION_DENIED


# Actions, with the name of the objects their rules list ('' for none).
REGISTER_FRAMEWORK = "register_frameworks"
RUN_TASK = "run_tasks"
TEARDOWN_FRAMEWORK = "teardown_frameworks"
READ_SANDBOX = "read_sandboxes"
MAINTAIN_AGENT = "maintain_agents"
REGISTER_AGENT = "register_agents"
RELOAD_RULES = "reload_rules"
MANAGE_SILENCES = "manage_silences"
KILL_TASK = "kill_tasks"
RESERVE = "reserve_resources"
UNRESERVE = "unreserve_resources"
CREATE_VOLUME = "create_volumes"
DESTROY_VOLUME = "destroy_volumes"
UPDATE_WEIGHTS = "update_weights"
UPDATE_QUOTAS = "update_quotas"

OBJECTS = {
    REGISTER_FRAMEWORK: "roles",
    RUN_TASK: "users",
    TEARDOWN_FRAMEWORK: "framework_principals",
    KILL_TASK: "framework_principals",
    READ_SANDBOX: "framework_principals",
    MAINTAIN_AGENT: "agents",
    REGISTER_AGENT: "agents",
    RELOAD_RULES: "",
    MANAGE_SILENCES: "",
    RESERVE: "roles",
    UNRESERVE: "reserver_principals",
    CREATE_VOLUME: "roles",
    DESTROY_VOLUME: "creator_principals",
    UPDATE_WEIGHTS: "roles",
    UPDATE_QUOTAS: "roles",
}
# What each action lets a principal do, for refusals that say what to add.
_DOING = {
    REGISTER_FRAMEWORK: "register a framework in role",
    RUN_TASK: "run tasks as user",
    TEARDOWN_FRAMEWORK: "tear down frameworks of principal",
    KILL_TASK: "kill tasks of frameworks of principal",
    READ_SANDBOX: "read sandboxes of frameworks of principal",
    MAINTAIN_AGENT: "deactivate, drain, reactivate, pin or remove agent",
    REGISTER_AGENT: "register agent",
    RELOAD_RULES: "reload rules",
    MANAGE_SILENCES: "add or expire silences",
    RESERVE: "reserve resources for role",
    UNRESERVE: "unreserve resources reserved by principal",
    CREATE_VOLUME: "create persistent volumes in role",
    DESTROY_VOLUME: "destroy persistent volumes created by principal",
    UPDATE_WEIGHTS: "set the weight of role",
    UPDATE_QUOTAS: "set or remove the quota of role",
}
ROOT = "root"


@dataclass(frozen=True)
class Rule:
    principals: tuple[str, ...]
    objects: tuple[str, ...] = ("*",)
    allow: bool = True

    def matches(self, principal: str, objects: Iterable[str]) -> bool:
        if not any(_match(principal, p) for p in self.principals):
            return False
        return any(_match_object(o, p) for o in objects for p in self.objects)


def _example(action: str) -> str:
    key = OBJECTS[action]
    return f"{{principals: [ops]{', ' + key + ': [...]' if key else ''}}}"


@dataclass(frozen=True)
class Acls:
    enabled: bool = False
    permissive: bool = False
    rules: dict[str, tuple[Rule, ...]] = field(default_factory=dict)
    # Principals that may do their own jobs when no rule decides: {principal: actions}.
    trusted: dict[str, frozenset[str]] = field(default_factory=dict)

    def trusting(self, principal: str, *actions: str) -> Acls:
        """These acls, with `principal` also trusted for `actions`."""
        trusted = dict(self.trusted)
        trusted[principal] = trusted.get(principal, frozenset()) | frozenset(actions)
        return replace(self, trusted=trusted)

    def allows(
        self, principal: str, action: str, objects: Iterable[Object] = (), owner: str = ""
    ) -> bool:
        """Whether `principal` may do `action` on every one of `objects`."""
        return all(self._decide(principal, action, _names(o), owner) for o in objects or ("",))

    def _decide(self, principal: str, action: str, names: tuple[str, ...], owner: str) -> bool:
        if action == RUN_TASK:
            names = tuple(ROOT if is_root(n) else n for n in names)
        root = action == RUN_TASK and ROOT in names
        if not self.enabled:
            return not root
        for rule in self.rules.get(action, ()):
            if rule.matches(principal, names):
                return rule.allow
        if owner and owner == principal:
            return True
        if action in self.trusted.get(principal, ()):
            return True
        return self.permissive and not root


# One object, or one object under several names (an agent's id and hostname).
Object = str | tuple[str, ...]


def _names(obj: Object) -> tuple[str, ...]:
    return (obj,) if isinstance(obj, str) else obj


def authorize(
    acls: Acls, principal: str, action: str, objects: Iterable[Object] = (), owner: str = ""
) -> None:
    """Allow, or raise Forbidden saying who may not do what and which rule would allow it."""
    for obj in tuple(objects) or ("",):
        if not acls.allows(principal, action, (obj,), owner):
            raise Forbidden(_refusal(acls, principal, action, _names(obj)[0]))


def _refusal(acls: Acls, principal: str, action: str, obj: str) -> str:
    who = repr(principal) if principal else "the anonymous caller (authentication is off)"
    what = f"{_DOING[action]} {obj!r}" if OBJECTS[action] else _DOING[action]
    if action == RUN_TASK and obj == ROOT and not acls.enabled:
        return (
            f"{who} may not run tasks as root: root needs an ACL that names it, "
            f"security.acls.run_tasks: [{{principals: [{principal or '*'}], users: [root]}}]; "
            "or leave command.user empty to run as the agent's task user"
        )
    objects = f", {OBJECTS[action]}: [{obj}]" if OBJECTS[action] else ""
    return (
        f"{who} may not {what}: no rule in security.acls.{action} allows it "
        f"(to allow it: {{principals: [{principal or '*'}]{objects}}})"
    )


def is_root(user: str) -> bool:
    """root by name or uid, alone or as Docker's user:group ("0", "0:0", "root:wheel")."""
    name = user.split(":", 1)[0]
    return name == ROOT or (name.isdigit() and int(name) == 0)


def _match(value: str, pattern: str) -> bool:
    return pattern == "*" or fnmatch.fnmatchcase(value, pattern)


def _match_object(value: str, pattern: str) -> bool:
    if value == ROOT and pattern != ROOT:
        return False  # "*" or "r*" never grants root: it must be named
    return _match(value, pattern)


# ---------------------------------------------------------------------- config


def parse_acls(r: YamlReader, node: yaml.Node) -> Acls:
    """`security.acls` from the config file; every mistake names its line."""
    m = r.mapping(node, "security.acls", {"permissive", *OBJECTS})
    permissive = "permissive" in m and r.boolean(m["permissive"], "security.acls.permissive")
    rules: dict[str, tuple[Rule, ...]] = {}
    for action, objects_key in OBJECTS.items():
        if action not in m:
            continue
        seq = m[action]
        where = f"security.acls.{action}"
        if not isinstance(seq, yaml.SequenceNode):
            raise r.fail(seq, f"{where} must be a list of rules like {_example(action)}")
        parsed = []
        for i, item in enumerate(seq.value):
            w = f"{where}[{i}]"
            keys = {"principals", "allow"} | ({objects_key} if objects_key else set())
            rule = r.mapping(item, w, keys)
            if "principals" not in rule:
                raise r.fail(item, f"{w} needs principals, e.g. {_example(action)}")
            principals = tuple(_patterns(r, rule["principals"], f"{w}.principals"))
            objects: tuple[str, ...] = ("*",)
            if objects_key:
                if objects_key not in rule:
                    raise r.fail(item, f"{w} needs {objects_key}, e.g. {_example(action)}")
                objects = tuple(_patterns(r, rule[objects_key], f"{w}.{objects_key}"))
            allow = r.boolean(rule["allow"], f"{w}.allow") if "allow" in rule else True
            parsed.append(Rule(principals, objects, allow))
        rules[action] = tuple(parsed)
    return Acls(enabled=True, permissive=permissive, rules=rules)


def _patterns(r: YamlReader, node: yaml.Node, where: str) -> list[str]:
    values = r.strings(node, where)
    if not values:
        raise r.fail(node, f"{where} is empty: list at least one name or pattern ('*' for any)")
    return values
