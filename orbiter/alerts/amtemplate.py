"""Alertmanager's notification templates: the data they see and the defaults they start from.

A message to a receiver (the webhook payload of `payload.py`) becomes
Alertmanager's template `Data` (`template/template.go`): `.Receiver`,
`.Status`, `.Alerts` (with `.Firing` and `.Resolved`), `.GroupLabels`,
`.CommonLabels`, `.CommonAnnotations` and `.ExternalURL`; label and
annotation sets are `KV`s with `SortedPairs`, `Names`, `Values` and `Remove`
(`alertname` sorts first, as in Alertmanager). Config strings (a Slack
title, an email header, an HTML body) are Go text/templates over that data
and may call the named templates Alertmanager users know
(`{{ template "email.default.subject" . }}`, `"slack.default.title"`, ...);
ours are written for Orbiter but give the same kind of text, e.g. the
subject `[FIRING:2] HighLatency (api prod)`.

Parsing and execution reuse `orbiter.satellite.templates` (the engine of
Prometheus's alert templates) and add what Alertmanager's templates need on
top of it, here rather than there: Alertmanager's function map instead of
Prometheus's, methods on values (`.CommonLabels.Remove .GroupLabels.Names`),
`define`/`template`/`block`, and HTML escaping of every action's output for
HTML bodies (an approximation of Go's html/template, which escapes by
context; `safeHtml` opts out).
"""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from orbiter.alerts.receiver_configs import ReceiverConfig
from orbiter.satellite import templates as gotmpl
from orbiter.satellite.templates import TemplateError, TemplateExecError, go_sprint

__all__ = [
    "DEFAULT_TEMPLATES",
    "FUNCTIONS",
    "KV",
    "AMTemplate",
    "Alerts",
    "GoTime",
    "Pairs",
    "SafeHTML",
    "Strings",
    "TemplateError",
    "TemplateExecError",
    "TemplateSet",
    "check_templates",
    "default_templates",
    "defaults",
    "receiver_templates",
    "template_data",
]

# ---------------------------------------------------------------------- data model


class SafeHTML(str):
    """Text that an HTML body prints as it is (what `safeHtml` returns)."""

    __slots__ = ()


class Strings(list[str]):
    """Alertmanager's `Strings`: a list of strings with `Join`."""

    template_methods: ClassVar[frozenset[str]] = frozenset({"Join"})

    def Join(self, sep: str) -> str:
        return sep.join(self)


class Pairs(list[Any]):
    """Alertmanager's `Pairs`: (`.Name`, `.Value`) structs in order, with `Names`/`Values`."""

    template_methods: ClassVar[frozenset[str]] = frozenset({"Names", "Values"})

    def Names(self) -> Strings:
        return Strings(p["Name"] for p in self)

    def Values(self) -> Strings:
        return Strings(p["Value"] for p in self)

    def go_string(self) -> str:
        return ", ".join(f"{p['Name']}={p['Value']}" for p in self)


class KV(dict[str, str]):
    """Alertmanager's `KV`: a label or annotation set with sorting helpers.

    A missing key reads as "" (Go's map zero value), so `{{ .Labels.job }}`
    on an alert without `job` prints nothing.
    """

    template_methods: ClassVar[frozenset[str]] = frozenset(
        {"SortedPairs", "Names", "Values", "Remove"}
    )

    def SortedPairs(self) -> Pairs:
        """Pairs sorted by name, `alertname` first."""
        names = sorted(self, key=lambda k: (k != "alertname", k))
        return Pairs(gotmpl._Struct(Name=k, Value=self[k]) for k in names)

    def Names(self) -> Strings:
        return self.SortedPairs().Names()

    def Values(self) -> Strings:
        return self.SortedPairs().Values()

    def Remove(self, keys: Iterable[str]) -> KV:
        """A copy without `keys`."""
        drop = set(keys)
        return KV({k: v for k, v in self.items() if k not in drop})

    def go_string(self) -> str:
        return self.SortedPairs().go_string()


class Alerts(list[Any]):
    """Alertmanager's `Alerts`, with `Firing` and `Resolved` subsets."""

    template_methods: ClassVar[frozenset[str]] = frozenset({"Firing", "Resolved"})

    def Firing(self) -> list[Any]:
        return [a for a in self if a["Status"] == "firing"]

    def Resolved(self) -> list[Any]:
        return [a for a in self if a["Status"] == "resolved"]


_LAYOUT = re.compile(
    r"January|Jan|Monday|Mon|MST|2006|002|01|02|03|04|05|06|15|1|2|3|4|5|__2|_2"
    r"|PM|pm|Z07:00:00|Z070000|Z07:00|Z0700|Z07|-07:00:00|-070000|-07:00|-0700|-07"
    r"|[.,](?:0+|9+)(?!\d)"
)


def _zone(offset: int, chunk: str) -> str:
    if chunk.startswith("Z") and offset == 0:
        return "Z"
    sign = "-" if offset < 0 else "+"
    h, rest = divmod(abs(offset), 3600)
    m, sec = divmod(rest, 60)
    digits = chunk.lstrip("Z-")
    colon = ":" if ":" in digits else ""
    parts = [f"{h:02d}", f"{m:02d}", f"{sec:02d}"][: len(digits.replace(":", "")) // 2]
    return sign + colon.join(parts)


def _layout_chunk(t: datetime, chunk: str) -> str:
    h12 = t.hour % 12 or 12
    yday = t.timetuple().tm_yday
    offset = int(t.utcoffset().total_seconds()) if t.utcoffset() is not None else 0
    fixed = {
        "January": t.strftime("%B"),
        "Jan": t.strftime("%b"),
        "Monday": t.strftime("%A"),
        "Mon": t.strftime("%a"),
        "MST": t.tzname() or "UTC",
        "2006": f"{t.year:04d}",
        "06": f"{t.year % 100:02d}",
        "002": f"{yday:03d}",
        "__2": f"{yday:>3}",
        "01": f"{t.month:02d}",
        "1": str(t.month),
        "02": f"{t.day:02d}",
        "2": str(t.day),
        "_2": f"{t.day:>2}",
        "15": f"{t.hour:02d}",
        "03": f"{h12:02d}",
        "3": str(h12),
        "04": f"{t.minute:02d}",
        "4": str(t.minute),
        "05": f"{t.second:02d}",
        "5": str(t.second),
        "PM": "PM" if t.hour >= 12 else "AM",
        "pm": "pm" if t.hour >= 12 else "am",
    }
    if chunk in fixed:
        return fixed[chunk]
    if chunk[0] in "Z-":
        return _zone(offset, chunk)
    digits = f"{t.microsecond:06d}000"[: len(chunk) - 1]  # nanoseconds, from microseconds
    if chunk[1] == "9":
        digits = digits.rstrip("0")
        return chunk[0] + digits if digits else ""
    return chunk[0] + digits


def go_format(t: datetime, layout: str) -> str:
    """Go's `time.Format`: `layout` spells the reference time Mon Jan 2 15:04:05 MST 2006."""
    return _LAYOUT.sub(lambda m: _layout_chunk(t, m.group()), layout)


class GoTime(datetime):
    """A time that prints as Go's `time.Time` does (`2024-05-01 10:00:00 +0000 UTC`)."""

    template_methods: ClassVar[frozenset[str]] = frozenset({"Unix", "IsZero", "Format", "UTC"})

    @classmethod
    def of(cls, t: datetime) -> GoTime:
        return cls(
            t.year, t.month, t.day, t.hour, t.minute, t.second, t.microsecond, tzinfo=t.tzinfo
        )

    def Unix(self) -> int:
        return int(self.timestamp())

    def IsZero(self) -> bool:
        return self.astimezone(UTC).replace(tzinfo=None) == datetime(1, 1, 1)

    def Format(self, layout: str) -> str:
        return go_format(self, layout)

    def UTC(self) -> GoTime:
        return GoTime.of(self.astimezone(UTC))

    def go_string(self) -> str:
        return go_format(self, "2006-01-02 15:04:05.999999999 -0700 MST")

    def __str__(self) -> str:
        return self.go_string()


def _go_time(text: str) -> GoTime:
    return GoTime.of(datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC))


def _date(layout: str, t: Any) -> str:
    if not isinstance(t, datetime):
        raise TemplateExecError(f"date: {go_sprint(t)} is not a time")
    return go_format(t, layout)


def _tz(name: str, t: Any) -> GoTime:
    if not isinstance(t, datetime):
        raise TemplateExecError(f"tz: {go_sprint(t)} is not a time")
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise TemplateExecError(f"tz: unknown time zone {name!r} ({e})") from None
    return GoTime.of(t.astimezone(zone))


def template_data(payload: Mapping[str, Any]) -> gotmpl._Struct:
    """Alertmanager's template `Data` for one message (a `webhook_payload` dict)."""
    alerts = Alerts(
        gotmpl._Struct(
            Status=a["status"],
            Labels=KV(a.get("labels", {})),
            Annotations=KV(a.get("annotations", {})),
            StartsAt=_go_time(a.get("startsAt", "0001-01-01T00:00:00Z")),
            EndsAt=_go_time(a.get("endsAt", "0001-01-01T00:00:00Z")),
            GeneratorURL=a.get("generatorURL", ""),
            Fingerprint=a.get("fingerprint", ""),
        )
        for a in payload.get("alerts", [])
    )
    return gotmpl._Struct(
        Receiver=payload.get("receiver", ""),
        Status=payload.get("status", ""),
        Alerts=alerts,
        GroupLabels=KV(payload.get("groupLabels", {})),
        CommonLabels=KV(payload.get("commonLabels", {})),
        CommonAnnotations=KV(payload.get("commonAnnotations", {})),
        ExternalURL=payload.get("externalURL", ""),
    )


# ---------------------------------------------------------------------- functions


def _go_string(v: Any) -> str:
    """fmt.Sprint, calling a value's String() method the way Go's fmt does."""
    method = getattr(v, "go_string", None)
    return method() if callable(method) else go_sprint(v)


def _join(sep: str, items: Any) -> str:
    if not isinstance(items, list | tuple):
        raise TemplateExecError(f"join: expected a list of strings, got {go_sprint(items)}")
    return sep.join(str(x) for x in items)


def _re_replace_all(pattern: str, repl: str, text: str) -> str:
    return gotmpl._re_replace_all(pattern, repl, text)


def _dict(*values: Any) -> dict[str, Any]:
    if len(values) % 2:
        raise TemplateExecError("dict requires an even number of arguments")
    out: dict[str, Any] = {}
    for k, v in zip(values[::2], values[1::2], strict=True):
        if not isinstance(k, str):
            raise TemplateExecError("dict keys must be strings")
        out[k] = v
    return out


def _base64decode(text: str) -> str:
    try:
        return base64.urlsafe_b64decode(text.encode()).decode()
    except ValueError as e:
        raise TemplateExecError(f"base64decode: {e}") from None


def _to_json(v: Any) -> str:
    try:
        return json.dumps(v, separators=(",", ":"), default=str)
    except (TypeError, ValueError) as e:
        raise TemplateExecError(f"toJson: {e}") from None


def _title(text: str) -> str:
    return re.sub(r"\w+", lambda m: m.group()[0].upper() + m.group()[1:].lower(), text)


_GO_BUILTINS = [
    "and",
    "or",
    "not",
    "len",
    "index",
    "print",
    "printf",
    "println",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "urlquery",
    "html",
]


def _functions() -> dict[str, Callable[..., Any]]:
    base = gotmpl._make_funcs(gotmpl.TemplateData())
    funcs: dict[str, Callable[..., Any]] = {name: base[name] for name in _GO_BUILTINS}
    funcs.update(
        {
            "toUpper": lambda s: str(s).upper(),
            "toLower": lambda s: str(s).lower(),
            "title": _title,
            "trimSpace": lambda s: str(s).strip(),
            "join": _join,
            "match": base["match"],
            "safeHtml": lambda s: SafeHTML(s),
            "safeUrl": lambda s: SafeHTML(s),
            "urlUnescape": lambda s: urllib.parse.unquote_plus(s),
            "reReplaceAll": _re_replace_all,
            "stringSlice": lambda *s: Strings(s),
            "humanizeDuration": gotmpl.humanize_duration,
            "toJson": _to_json,
            "base64encode": lambda s: base64.urlsafe_b64encode(s.encode()).decode(),
            "base64decode": _base64decode,
            "list": lambda *a: list(a),
            "append": lambda lst, *a: [*lst, *a],
            "dict": _dict,
            "date": _date,
            "tz": _tz,
        }
    )
    return funcs


FUNCTIONS: dict[str, Callable[..., Any]] = _functions()
"""What Alertmanager templates may call here (Go's built-ins and Alertmanager's map)."""


# ---------------------------------------------------------------------- parser


class _Parser(gotmpl._Parser):
    """The Prometheus-template parser with Alertmanager's functions and named templates."""

    def __init__(self, text: str, name: str, defines: dict[str, list[Any]]) -> None:
        super().__init__(text, name)
        self.vars = [["$"]]
        self.defines = defines
        self.calls: list[tuple[str, int]] = []

    def parse_action(self, toks: list[Any], line: int) -> Any:
        head = toks[0]
        if head.kind == "ident" and head.text in ("define", "block"):
            return self._parse_define(toks, line)
        if head.kind == "ident" and head.text == "template":
            name, pipe = self._template_call(toks, line, "template")
            return gotmpl._Node("template", line, text=name, pipe=pipe)
        return super().parse_action(toks, line)

    def _template_call(self, toks: list[Any], line: int, word: str) -> tuple[str, Any]:
        if len(toks) < 2 or toks[1].kind not in ("string", "raw"):
            raise self.error(line, f"{{{{{word}}}}} needs a quoted template name")
        name = gotmpl._unquote_go(toks[1].text) if toks[1].kind == "string" else toks[1].text[1:-1]
        pipe = self.parse_pipe(toks[2:], line, word, allow_decl=False) if toks[2:] else None
        self.calls.append((name, line))
        return name, pipe

    def _parse_define(self, toks: list[Any], line: int) -> Any:
        word = toks[0].text
        if word == "define" and len(toks) != 2:
            raise self.error(line, "{{define}} takes exactly one quoted template name")
        name, pipe = self._template_call(toks, line, word)
        if word == "define":
            self.calls.pop()
        outer, self.vars = self.vars, [["$"]]  # a named template has a scope of its own
        body, stop = self.parse_list()
        self.vars = outer
        assert stop is not None
        if stop[0] != "end":
            raise self.error(stop[1], f"unexpected {{{{else}}}} in {word}")
        self.defines[name] = body
        if word == "block":
            return gotmpl._Node("template", line, text=name, pipe=pipe)
        return gotmpl._Node("text", line, text="")

    def parse_operand(self, toks: list[Any], i: int, line: int) -> tuple[Any, int]:
        t = toks[i]
        if t.kind == "ident" and "." not in t.text and t.text not in gotmpl._KEYWORDS:
            if t.text not in FUNCTIONS:
                raise self.error(line, f'function "{t.text}" not defined')
            return ("func", t.text), i + 1
        return super().parse_operand(toks, i, line)


# ---------------------------------------------------------------------- execution

_MAX_DEPTH = 100


class _Exec(gotmpl._Exec):
    """Execution with methods on values, named templates and (optionally) HTML escaping."""

    def __init__(self, name: str, defines: Mapping[str, list[Any]], html: bool) -> None:
        super().__init__(name, FUNCTIONS)
        self.defines = defines
        self.html = html
        self.depth = 0

    def run(self, nodes: list[Any], dot: Any, scopes: list[dict[str, Any]], out: list[str]) -> None:
        for n in nodes:
            if n.kind == "template":
                self._call(n, dot, scopes, out)
            elif n.kind == "action":
                v = self.pipe(n.pipe, dot, scopes)
                if not n.pipe.decl:
                    out.append(self._print(v))
            else:
                super().run([n], dot, scopes, out)

    def _print(self, v: Any) -> str:
        s = _go_string(v)
        if self.html and not isinstance(v, SafeHTML):
            return gotmpl._html_escape(s)
        return s

    def _call(self, n: Any, dot: Any, scopes: list[dict[str, Any]], out: list[str]) -> None:
        body = self.defines.get(n.text)
        if body is None:
            raise self.err(n.line, f'no such template "{n.text}"')
        value = self.pipe(n.pipe, dot, scopes) if n.pipe is not None else None
        if self.depth >= _MAX_DEPTH:
            raise self.err(n.line, f'exceeded maximum template depth ({_MAX_DEPTH}) in "{n.text}"')
        self.depth += 1
        try:
            self.run(body, value, [{"$": value}], out)
        finally:
            self.depth -= 1

    def fields(self, v: Any, names: Sequence[str], line: int) -> Any:
        for name in names:
            if name in getattr(type(v), "template_methods", ()):
                v = self._method(v, name, [], line)
            else:
                v = super().fields(v, [name], line)
        return v

    def _method(self, v: Any, name: str, args: list[Any], line: int) -> Any:
        try:
            return getattr(v, name)(*args)
        except TypeError:
            raise self.err(line, f"wrong number of args for {name}: got {len(args)}") from None
        except TemplateExecError as e:
            raise self.err(line, f"error calling {name}: {e}") from None

    def command(
        self, cmd: list[Any], dot: Any, scopes: list[dict[str, Any]], final: Any, line: int
    ) -> Any:
        head = cmd[0]
        has_args = len(cmd) > 1 or final is not gotmpl._NOVAL
        chain = head[1] if head[0] == "field" else head[2] if head[0] in ("var", "pipe") else []
        if has_args and chain:
            # `.CommonLabels.Remove .GroupLabels.Names`: the last name is a method taking args
            if head[0] == "field":
                base = dot
            elif head[0] == "var":
                base = self.lookup(scopes, head[1], line)
            else:
                base = self.pipe(head[1], dot, scopes)
            receiver = self.fields(base, chain[:-1], line)
            if chain[-1] in getattr(type(receiver), "template_methods", ()):
                args = [self.arg(a, dot, scopes, line) for a in cmd[1:]]
                if final is not gotmpl._NOVAL:
                    args.append(final)
                return self._method(receiver, chain[-1], args, line)
        return super().command(cmd, dot, scopes, final, line)


# ---------------------------------------------------------------------- templates


@dataclass(frozen=True)
class AMTemplate:
    """One parsed config string, executed against a message's template data."""

    name: str
    nodes: tuple[Any, ...]
    defines: Mapping[str, list[Any]]

    def execute(self, data: Any, *, html: bool = False) -> str:
        """Expand; raises TemplateExecError saying where it failed."""
        ex = _Exec(self.name, self.defines, html)
        out: list[str] = []
        try:
            ex.run(list(self.nodes), data, [{"$": data}], out)
        except RecursionError:
            raise TemplateExecError(f"template: {self.name}: nested too deeply") from None
        return "".join(out)


@dataclass
class TemplateSet:
    """Named templates (`define`d) that config strings may call, defaults first.

    `add` loads a template file's definitions (Alertmanager's `templates:`);
    a later definition of a name replaces the earlier one, so a file may
    override a default such as "email.default.subject".
    """

    defines: dict[str, list[Any]] = field(default_factory=dict)

    def add(self, text: str, name: str) -> None:
        """Load definitions; raises TemplateError if the text does not parse."""
        defines = dict(self.defines)
        p = _Parser(text, name, defines)
        p.parse()
        self._check_calls(p, defines)
        self.defines = defines

    def parse(self, text: str, name: str) -> AMTemplate:
        """Parse a config string; its own `define`s are visible only to it."""
        defines = dict(self.defines)
        p = _Parser(text, name, defines)
        nodes = p.parse()
        self._check_calls(p, defines)
        return AMTemplate(name, tuple(nodes), defines)

    def render(self, text: str, name: str, data: Any, *, html: bool = False) -> str:
        return self.parse(text, name).execute(data, html=html)

    @staticmethod
    def _check_calls(p: _Parser, defines: Mapping[str, Any]) -> None:
        for called, line in p.calls:
            if called not in defines:
                raise p.error(line, f'no such template "{called}"')


# Our own default texts. The names are Alertmanager's, so a config that says
# `{{ template "email.default.subject" . }}` works unchanged.
DEFAULT_TEMPLATES = r"""
{{ define "__orbiter" }}Orbiter{{ end }}

{{ define "__subject" -}}
[{{ toUpper .Status }}{{ if eq .Status "firing" }}:{{ len .Alerts.Firing }}{{ end }}]
{{- with .GroupLabels.Values }} {{ join " " . }}{{ end }}
{{- with .CommonLabels.Remove .GroupLabels.Names }} ({{ join " " .Values }}){{ end }}
{{- end }}

{{ define "__text_alert" -}}
{{ .Labels.alertname }} [{{ .Status }}] since {{ .StartsAt }}
  Labels:
{{- range .Labels.SortedPairs }}
    {{ .Name }} = {{ .Value }}
{{- end }}
{{- with .Annotations }}
  Annotations:
{{- range .SortedPairs }}
    {{ .Name }} = {{ .Value }}
{{- end }}
{{- end }}
{{- with .GeneratorURL }}
  Source: {{ . }}
{{- end }}
{{ end }}

{{ define "email.default.subject" }}{{ template "__subject" . }}{{ end }}

{{ define "email.default.text" -}}
{{ template "__subject" . }}
{{ with .Alerts.Firing }}
{{ len . }} firing:
{{ range . }}
{{ template "__text_alert" . }}{{ end }}{{ end }}
{{- with .Alerts.Resolved }}
{{ len . }} resolved:
{{ range . }}
{{ template "__text_alert" . }}{{ end }}{{ end }}
{{- with .ExternalURL }}
Sent by Orbiter: {{ . }}
{{ end }}
{{- end }}

{{ define "__html_alert" -}}
<tr><td style="padding:8px;border-top:1px solid #ddd">
<strong>{{ .Labels.alertname }}</strong> ({{ .Status }} since {{ .StartsAt }})<br>
<em>Labels</em><br>
{{ range .Labels.SortedPairs }}{{ .Name }} = {{ .Value }}<br>
{{ end }}
{{- with .Annotations }}<em>Annotations</em><br>
{{ range .SortedPairs }}{{ .Name }} = {{ .Value }}<br>
{{ end }}{{ end }}
{{- with .GeneratorURL }}<a href="{{ . }}">Source</a>
{{ end -}}
</td></tr>
{{ end }}

{{ define "email.default.html" -}}
<!DOCTYPE html>
<html>
<head><meta charset="UTF-8"><title>{{ template "__subject" . }}</title></head>
<body style="font-family:sans-serif">
<table style="border-collapse:collapse;width:100%">
<tr><td style="padding:8px;color:#fff;background:
{{- if eq .Status "firing" }}#c0392b{{ else }}#27ae60{{ end }}">
{{- template "__subject" . }}</td></tr>
{{ with .Alerts.Firing }}<tr><td style="padding:8px"><b>{{ len . }} firing</b></td></tr>
{{ range . }}{{ template "__html_alert" . }}{{ end }}{{ end }}
{{- with .Alerts.Resolved }}<tr><td style="padding:8px"><b>{{ len . }} resolved</b></td></tr>
{{ range . }}{{ template "__html_alert" . }}{{ end }}{{ end }}
{{- with .ExternalURL }}<tr><td style="padding:8px">Sent by <a href="{{ . }}">Orbiter</a></td></tr>
{{ end -}}
</table>
</body>
</html>
{{ end }}

{{ define "slack.default.title" }}{{ template "__subject" . }}{{ end }}
{{ define "slack.default.username" }}{{ template "__orbiter" . }}{{ end }}
{{ define "slack.default.titlelink" }}{{ .ExternalURL }}{{ end }}
{{ define "slack.default.color" }}{{ if eq .Status "firing" }}danger{{ else }}good{{ end }}{{ end }}
{{ define "slack.default.text" -}}
{{ range .Alerts -}}
*{{ .Labels.alertname }}* {{ .Status }}
{{- with .Annotations.summary }}: {{ . }}
{{- else }}{{ with .Annotations.description }}: {{ . }}{{ end }}{{ end }}
{{ end -}}
{{ end }}
{{ define "slack.default.fallback" -}}
{{ template "slack.default.title" . }}{{ with .ExternalURL }} | {{ . }}{{ end }}
{{- end }}
"""


def default_templates() -> TemplateSet:
    """A fresh set holding Orbiter's default templates."""
    s = TemplateSet()
    s.add(DEFAULT_TEMPLATES, "default.tmpl")
    return s


_DEFAULTS = default_templates()


def defaults() -> TemplateSet:
    """The shared default set (parsed once); do not `add` to it, copy with `default_templates`."""
    return _DEFAULTS


def receiver_templates(receiver: ReceiverConfig) -> list[tuple[str, str, bool]]:
    """Every template string of a receiver: (where, text, is HTML), for checking and rendering."""
    out: list[tuple[str, str, bool]] = []
    for i, e in enumerate(receiver.email_configs):
        where = f"receiver {receiver.name}: email_configs[{i}]"
        out.append((f"{where}.to", e.to, False))
        out.append((f"{where}.from", e.from_, False))
        out.extend((f"{where}.headers.{k}", v, False) for k, v in e.headers)
        out.append((f"{where}.text", e.text, False))
        out.append((f"{where}.html", e.html, True))
    for i, s in enumerate(receiver.slack_configs):
        where = f"receiver {receiver.name}: slack_configs[{i}]"
        for name in ("channel", "username", "title", "text"):
            out.append((f"{where}.{name}", getattr(s, name), False))
    return out


def check_templates(receiver: ReceiverConfig, templates: TemplateSet | None = None) -> None:
    """Parse every template of `receiver`; raise ValueError naming the field and the mistake.

    For the config loader: a broken template is refused when the file is
    read, not discovered when the first alert fires.
    """
    tset = templates or _DEFAULTS
    for where, text, _html in receiver_templates(receiver):
        try:
            tset.parse(text, where)
        except TemplateError as e:
            raise ValueError(f"{where}: {e}") from None
