"""Alert label and annotation templates: the subset of Go's text/template Prometheus uses.

Prometheus expands `{{ $labels.instance }}`, `{{ $value | humanize }}`, `{{ printf ... }}`
with Go's text/template and its own function map. We parse the same syntax into a
small AST once (at rule load, so a broken template is refused with the file, group
and rule that hold it) and execute it per alert. Output follows Go's formatting
(`fmt.Sprint` of floats, `%.4g`), because `promtool test rules` compares annotation
strings byte for byte and ours must agree.

Supported: text, comments, trim markers, pipelines with `|`, variables and `:=`/`=`,
field chains (`.Labels.x`, `$labels.x`), string/number/bool/nil constants, `if`/`else if`/
`else`, `with`, `range` (with `else`), `break`/`continue`, and the functions in FUNCTIONS.
Refused at parse: `define`, `template`, `block`, unknown functions, undefined variables.
"""

from __future__ import annotations

import math
import re
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


class TemplateError(ValueError):
    """A template that does not parse, or refers to an unknown function or variable."""


class TemplateExecError(ValueError):
    """A template that parsed but failed while expanding (bad argument, failed query, ...)."""


# ---------------------------------------------------------------------------
# Go-compatible value formatting


def _shortest_digits(v: float) -> tuple[str, int]:
    """The shortest decimal digits that round-trip `v`, and the decimal point position."""
    _, digits, exp = Decimal(repr(abs(v))).as_tuple()
    ds = "".join(str(d) for d in digits).rstrip("0") or "0"
    dp = len(digits) + int(exp)
    if ds == "0":
        dp = 1
    return ds, dp


def _go_exp(e: int) -> str:
    return f"e{'-' if e < 0 else '+'}{abs(e):02d}"


def go_float(v: float, verb: str = "v", prec: int = -1) -> str:
    """Format a float64 the way Go's fmt does for %v, %g, %e, %f (and upper-case forms)."""
    upper = verb in "EG"
    verb = verb.lower()
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    neg = v < 0 or (v == 0 and math.copysign(1, v) < 0)
    sign = "-" if neg else ""
    if verb == "f":
        out = f"{abs(v):.{6 if prec < 0 else prec}f}"
    elif verb == "e":
        if prec < 0:
            ds, dp = _shortest_digits(v)
            mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
            out = mant + _go_exp(dp - 1 if ds != "0" else 0)
        else:
            out = f"{abs(v):.{prec}e}"
    else:  # 'v' and 'g'
        if prec < 0:
            ds, dp = _shortest_digits(v)
            exp = dp - 1
            if ds == "0":
                out = "0"
            elif exp < -4 or exp >= 6:
                mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
                out = mant + _go_exp(exp)
            else:
                out = _place_point(ds, dp)
        else:
            out = f"{abs(v):.{max(prec, 1)}g}"
    if upper:
        out = out.upper()
    return sign + out


def _place_point(ds: str, dp: int) -> str:
    if dp <= 0:
        return "0." + "0" * (-dp) + ds
    if dp >= len(ds):
        return ds + "0" * (dp - len(ds))
    return ds[:dp] + "." + ds[dp:]


def go_sprint(v: Any) -> str:
    """fmt.Sprint of one template value."""
    if v is None:
        return "<no value>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return go_float(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return v
    if isinstance(v, _Struct):
        return "{" + " ".join(go_sprint(x) for x in v.values()) + "}"
    if isinstance(v, Mapping):
        return "map[" + " ".join(f"{k}:{go_sprint(v[k])}" for k in sorted(v)) + "]"
    if isinstance(v, list | tuple):
        return "[" + " ".join(go_sprint(x) for x in v) + "]"
    return str(v)


def _go_type(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, int):
        return "int"
    if isinstance(v, str):
        return "string"
    if isinstance(v, Mapping):
        return "map[string]string"
    if v is None:
        return "<nil>"
    return "[]interface {}"


_VERB = re.compile(r"%([-+# 0]*)(\d+|\*)?(?:\.(\d+|\*)?)?([a-zA-Z%])")


def go_sprintf(fmt: str, *args: Any) -> str:
    """Go's fmt.Sprintf for the verbs templates use, including Go's %!verb(type=value) errors."""
    out: list[str] = []
    pos = 0
    argi = 0
    for m in _VERB.finditer(fmt):
        out.append(fmt[pos : m.start()])
        pos = m.end()
        flags, width, prec, verb = m.group(1), m.group(2), m.group(3), m.group(4)
        if verb == "%":
            out.append("%")
            continue
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        arg = args[argi]
        argi += 1
        p = -1 if prec is None else (int(prec) if prec not in ("", "*") else 0)
        out.append(_pad(_format_one(verb, arg, p, flags), flags, width))
    out.append(fmt[pos:])
    if argi < len(args):
        extra = ", ".join(f"{_go_type(a)}={go_sprint(a)}" for a in args[argi:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _pad(s: str, flags: str, width: str | None) -> str:
    if not width or width == "*":
        return s
    w = int(width)
    if "-" in flags:
        return s.ljust(w)
    if "0" in flags and s[:1] in "+-" and s[1:2].isdigit():
        return s[0] + s[1:].rjust(w - 1, "0")
    if "0" in flags and s[:1].isdigit():
        return s.rjust(w, "0")
    return s.rjust(w)


def _format_one(verb: str, arg: Any, prec: int, flags: str) -> str:
    bad = f"%!{verb}({_go_type(arg)}={go_sprint(arg)})"
    plus = "+" in flags
    if verb == "v":
        return go_sprint(arg)
    if verb == "T":
        return _go_type(arg)
    if isinstance(arg, bool):
        return ("true" if arg else "false") if verb == "t" else bad
    if isinstance(arg, float):
        if verb in "eEfFgG":
            if prec < 0 and verb in "eEfF":
                prec = 6
            s = go_float(arg, "f" if verb == "F" else verb, prec)
            return "+" + s if plus and not s.startswith(("-", "+")) else s
        return bad
    if isinstance(arg, int):
        if verb == "d":
            s = str(arg)
        elif verb in "xXob":
            s = format(arg, verb)
        elif verb == "c":
            s = chr(arg)
        else:
            return bad
        return "+" + s if plus and arg >= 0 else s
    if isinstance(arg, str):
        if verb == "s":
            return arg if prec < 0 else arg[:prec]
        if verb == "q":
            return _go_quote(arg)
        if verb in "xX":
            h = arg.encode().hex()
            return h.upper() if verb == "X" else h
        return bad
    if verb == "s":
        return go_sprint(arg)
    return bad


def _go_quote(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


# ---------------------------------------------------------------------------
# Prometheus's template functions


def _to_float(v: Any) -> float:
    if isinstance(v, bool):
        raise TemplateExecError("can't convert bool to float")
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str):
        try:
            return float(_go_parse_float(v))
        except ValueError:
            raise TemplateExecError(
                f"strconv.ParseFloat: parsing {_go_quote(v)}: invalid syntax"
            ) from None
    raise TemplateExecError(f"can't convert {_go_type(v)} to float")


_GO_FLOAT = r"[+-]?(\d[\d_]*\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?0[xX][\da-fA-F.]+(p[+-]?\d+)?"


def _go_parse_float(s: str) -> float:
    low = s.lower()
    if low in ("inf", "+inf", "infinity", "+infinity"):
        return math.inf
    if low in ("-inf", "-infinity"):
        return -math.inf
    if low == "nan":
        return math.nan
    if not re.fullmatch(_GO_FLOAT, s):
        raise ValueError(s)
    return float.fromhex(s) if "x" in low else float(s.replace("_", ""))


def _g4(v: float) -> str:
    return go_float(v, "g", 4)


def humanize(v: Any) -> str:
    """1234567 -> 1.235M: SI prefixes, four significant digits."""
    x = _to_float(v)
    if x == 0 or math.isnan(x) or math.isinf(x):
        return _g4(x)
    if abs(x) >= 1:
        prefix = ""
        for p in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(x) < 1000:
                break
            prefix = p
            x /= 1000
        return _g4(x) + prefix
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(x) >= 1:
            break
        prefix = p
        x *= 1000
    return _g4(x) + prefix


def humanize1024(v: Any) -> str:
    """1048576 -> 1Mi: binary prefixes."""
    x = _to_float(v)
    if abs(x) <= 1 or math.isnan(x) or math.isinf(x):
        return _g4(x)
    prefix = ""
    for p in ("ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"):
        if abs(x) < 1024:
            break
        prefix = p
        x /= 1024
    return _g4(x) + prefix


def humanize_duration(v: Any) -> str:
    """Seconds as `1d 2h 3m 4s`, or `1.5s`, or `12ms`."""
    x = _to_float(v)
    if math.isnan(x) or math.isinf(x):
        return _g4(x)
    if x == 0:
        return _g4(x) + "s"
    if abs(x) >= 1:
        sign = "-" if x < 0 else ""
        x = abs(x)
        d = int(x)
        seconds, minutes, hours, days = d % 60, (d // 60) % 60, (d // 3600) % 24, d // 86400
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{_g4(x)}s"
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(x) >= 1:
            break
        prefix = p
        x *= 1000
    return f"{_g4(x)}{prefix}s"


def humanize_percentage(v: Any) -> str:
    """0.1234 -> 12.34%."""
    return _g4(_to_float(v) * 100) + "%"


def humanize_timestamp(v: Any) -> str:
    """Unix seconds as Go prints a UTC time.Time."""
    import datetime as _dt

    x = _to_float(v)
    if math.isnan(x) or math.isinf(x):
        return _g4(x)
    ms = int(int(x * 1e9) / 1_000_000)  # Prometheus goes through model.Time: milliseconds
    t = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC) + _dt.timedelta(milliseconds=ms)
    frac = f".{t.microsecond:06d}".rstrip("0") if t.microsecond else ""
    return t.strftime("%Y-%m-%d %H:%M:%S") + frac + " +0000 UTC"


def _go_repl(repl: str) -> str:
    """Go's ReplaceAllString `$1`/`${name}` expansion, in Python's `\\g<>` form."""
    return re.sub(
        r"\$(\$|\{(\w+)\}|(\w+))",
        lambda m: "$" if m.group(1) == "$" else f"\\g<{m.group(2) or m.group(3)}>",
        repl.replace("\\", "\\\\"),
    )


def _re_replace_all(pattern: str, repl: str, text: str) -> str:
    try:
        return re.sub(pattern, _go_repl(repl), text)
    except (re.error, IndexError) as e:
        raise TemplateExecError(f"reReplaceAll: {e}") from None


def _match(pattern: str, text: str) -> bool:
    try:
        return re.search(pattern, text) is not None
    except re.error as e:
        raise TemplateExecError(f"match: {e}") from None


def _strip_port(hostport: str) -> str:
    m = re.fullmatch(r"\[([^\]]*)\]:\d*|([^:]*):\d*", hostport)
    if not m:
        return hostport
    return m.group(1) if m.group(1) is not None else m.group(2)


def _title(s: str) -> str:
    return re.sub(r"(^|[^\w])(\w)", lambda m: m.group(1) + m.group(2).upper(), s)


def _parse_duration(s: str) -> float:
    from orbiter.satellite.rules import DurationError, parse_duration

    try:
        return parse_duration(s) / 1000.0
    except DurationError as e:
        raise TemplateExecError(str(e)) from None


# comparison built-ins follow Go's rules: no implicit int/float mixing


_KINDS = {"bool": "bool", "int": "int", "float64": "float", "string": "string"}


def _kind(v: Any) -> str:
    return _KINDS.get(_go_type(v), "other")


def _eq(a: Any, *bs: Any) -> bool:
    if not bs:
        raise TemplateExecError("missing argument for comparison")
    for b in bs:
        if _kind(a) != _kind(b):
            raise TemplateExecError("incompatible types for comparison")
        if a == b:
            return True
    return False


def _ordered(a: Any, b: Any) -> tuple[Any, Any]:
    ka, kb = _kind(a), _kind(b)
    if ka in ("bool", "other") or kb in ("bool", "other"):
        raise TemplateExecError("invalid type for comparison")
    if ka != kb:
        raise TemplateExecError("incompatible types for comparison")
    return a, b


def _truth(v: Any) -> bool:
    if v is None:
        return False
    if isinstance(v, bool | int | float):
        return bool(v)
    if isinstance(v, str | Mapping | list | tuple):
        return len(v) > 0
    return True


def _index(item: Any, *keys: Any) -> Any:
    for k in keys:
        if isinstance(item, Mapping):
            item = item.get(k, "")
        elif isinstance(item, list | tuple | str):
            if not isinstance(k, int) or not 0 <= k < len(item):
                raise TemplateExecError(f"error calling index: index out of range: {k}")
            item = item[k]
        else:
            raise TemplateExecError(f"can't index item of type {_go_type(item)}")
    return item


def _len(v: Any) -> int:
    if isinstance(v, str | Mapping | list | tuple):
        return len(v)
    raise TemplateExecError(f"len of type {_go_type(v)}")


class _Struct(dict):
    """A Go struct value: field access on an unknown name is an error, not a zero value."""


def _sample(labels: Mapping[str, str], value: float) -> _Struct:
    return _Struct(Labels=dict(labels), Value=value)


def _first(v: Any) -> Any:
    if isinstance(v, list) and v:
        return v[0]
    raise TemplateExecError("first() called on vector with no elements")


def _label(name: str, s: Any) -> str:
    return s["Labels"].get(name, "") if isinstance(s, Mapping) else ""


def _value(s: Any) -> float:
    return s["Value"] if isinstance(s, Mapping) else 0.0


def _sort_by_label(name: str, v: list[Any]) -> list[Any]:
    return sorted(v, key=lambda s: s["Labels"].get(name, ""))


QueryFunc = Callable[[str], list[tuple[Mapping[str, str], float]]]
"""Runs a PromQL instant query at the alert's evaluation time: (labels, value) pairs."""


@dataclass(frozen=True)
class TemplateData:
    """What an alert template sees: `.Labels`, `.ExternalLabels`, `.ExternalURL`, `.Value`."""

    labels: Mapping[str, str] = field(default_factory=dict)
    external_labels: Mapping[str, str] = field(default_factory=dict)
    external_url: str = ""
    value: float = 0.0
    query: QueryFunc | None = None


def _make_funcs(data: TemplateData) -> dict[str, Callable[..., Any]]:
    def query(q: str) -> list[Any]:
        if data.query is None:
            raise TemplateExecError("query is not available here")
        try:
            return [_sample(lbls, v) for lbls, v in data.query(q)]
        except TemplateExecError:
            raise
        except Exception as e:
            raise TemplateExecError(f"error calling query: {e}") from None

    def args(*a: Any) -> dict[str, Any]:
        return {f"arg{i}": x for i, x in enumerate(a)}

    return {
        # Go built-ins
        "and": lambda *a: next((x for x in a if not _truth(x)), a[-1]),
        "or": lambda *a: next((x for x in a if _truth(x)), a[-1]),
        "not": lambda a: not _truth(a),
        "len": _len,
        "index": _index,
        "print": lambda *a: _go_print(a),
        "printf": lambda f, *a: go_sprintf(f, *a),
        "println": lambda *a: " ".join(go_sprint(x) for x in a) + "\n",
        "eq": _eq,
        "ne": lambda a, b: not _eq(a, b),
        "lt": lambda a, b: (lambda x, y: x < y)(*_ordered(a, b)),
        "le": lambda a, b: (lambda x, y: x <= y)(*_ordered(a, b)),
        "gt": lambda a, b: (lambda x, y: x > y)(*_ordered(a, b)),
        "ge": lambda a, b: (lambda x, y: x >= y)(*_ordered(a, b)),
        "urlquery": lambda *a: urllib.parse.quote_plus(_go_print(a)),
        "html": lambda *a: _html_escape(_go_print(a)),
        # Prometheus
        "humanize": humanize,
        "humanize1024": humanize1024,
        "humanizeDuration": humanize_duration,
        "humanizePercentage": humanize_percentage,
        "humanizeTimestamp": humanize_timestamp,
        "title": _title,
        "toUpper": lambda s: s.upper(),
        "toLower": lambda s: s.lower(),
        "match": _match,
        "reReplaceAll": _re_replace_all,
        "stripPort": _strip_port,
        "safeHtml": lambda s: s,
        "parseDuration": _parse_duration,
        "externalURL": lambda: data.external_url,
        "pathPrefix": lambda: urllib.parse.urlparse(data.external_url).path,
        "args": args,
        "query": query,
        "first": _first,
        "label": _label,
        "value": _value,
        "strvalue": lambda s: _label("__value__", s),
        "sortByLabel": _sort_by_label,
    }


FUNCTIONS: frozenset[str] = frozenset(_make_funcs(TemplateData()))
"""Every function a template may call; anything else is refused when the rule loads."""


def _go_print(a: Sequence[Any]) -> str:
    # fmt.Sprint adds spaces between operands when neither is a string
    out = []
    for i, x in enumerate(a):
        if i > 0 and not isinstance(x, str) and not isinstance(a[i - 1], str):
            out.append(" ")
        out.append(go_sprint(x))
    return "".join(out)


def _html_escape(s: str) -> str:
    return (
        s.replace("&", "&amp;")
        .replace("'", "&#39;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&#34;")
    )


# ---------------------------------------------------------------------------
# Lexer and parser

_KEYWORDS = {
    "if",
    "else",
    "end",
    "range",
    "with",
    "break",
    "continue",
    "define",
    "template",
    "block",
    "nil",
    "true",
    "false",
}
_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<declare>:=)
  | (?P<assign>=)
  | (?P<pipe>\|)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\\n]|\\.)+')
  | (?P<number>[+-]?(?:0[xX][0-9a-fA-F_]+|(?:\d[\d_]*\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(?![\w.]))
  | (?P<variable>\$\w*(?:\.\w+)*)
  | (?P<field>(?:\.\w+)+|\.)
  | (?P<ident>[A-Za-z_]\w*(?:\.\w+)*)
  | (?P<bad>.)
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass
class _Tok:
    kind: str
    text: str
    line: int


@dataclass
class _Node:
    kind: str  # text | action | if | range | with | break | continue
    line: int
    text: str = ""
    pipe: Any = None
    body: list[_Node] = field(default_factory=list)
    else_body: list[_Node] | None = None


@dataclass
class _Pipe:
    decl: list[str]
    assign: bool
    cmds: list[list[Any]]
    line: int


# arguments: ("const", v) ("field", [names]) ("var", name, [names]) ("dot",) ("func", name)
#            ("pipe", _Pipe, [names])


class _Parser:
    def __init__(self, text: str, name: str) -> None:
        self.text = text
        self.name = name
        self.pos = 0
        self.vars: list[list[str]] = [["$"]]

    def error(self, line: int, msg: str) -> TemplateError:
        return TemplateError(f"template: {self.name}:{line}: {msg}")

    def parse(self) -> list[_Node]:
        body, stop = self.parse_list(top=True)
        if stop is not None:
            raise self.error(stop[1], f"unexpected {{{{{stop[0]}}}}}")
        return body

    def line_at(self, pos: int) -> int:
        return self.text.count("\n", 0, pos) + 1

    def parse_list(
        self, top: bool = False
    ) -> tuple[list[_Node], tuple[str, int, list[_Tok]] | None]:
        """Parse until {{end}}/{{else}}; returns the nodes and the stop keyword with its tokens."""
        nodes: list[_Node] = []
        text = self.text
        while self.pos < len(text):
            start = text.find("{{", self.pos)
            if start < 0:
                nodes.append(_Node("text", self.line_at(self.pos), text=text[self.pos :]))
                self.pos = len(text)
                break
            lit = text[self.pos : start]
            trim_left = (
                text.startswith("{{- ", start)
                or text.startswith("{{-\t", start)
                or text.startswith("{{-\n", start)
            )
            if trim_left:
                lit = lit.rstrip(" \t\r\n")
            if lit:
                nodes.append(_Node("text", self.line_at(self.pos), text=lit))
            line = self.line_at(start)
            inner_start = start + (3 if trim_left else 2)
            # comments
            stripped = text[inner_start:].lstrip() if trim_left else text[inner_start:]
            if stripped.startswith("/*"):
                cstart = len(text) - len(stripped)
                cend = text.find("*/", cstart)
                if cend < 0:
                    raise self.error(line, "unclosed comment")
                after = cend + 2
                close, trim_right = self._close_at(after)
                if close is None:
                    raise self.error(line, "comment ends before closing delimiter")
                self.pos = close
                if trim_right:
                    self._trim_following()
                continue
            toks, end, trim_right = self.lex_action(inner_start, line)
            self.pos = end
            if trim_right:
                self._trim_following()
            if not toks:
                raise self.error(line, "missing value for command")
            head = toks[0]
            if head.kind == "ident" and head.text in ("end", "else"):
                if top:
                    raise self.error(line, f"unexpected {{{{{head.text}}}}}")
                return nodes, (head.text, line, toks[1:])
            nodes.append(self.parse_action(toks, line))
        if not top:
            raise self.error(self.line_at(len(text)), "unexpected EOF")
        return nodes, None

    def _close_at(self, pos: int) -> tuple[int | None, bool]:
        text = self.text
        if text.startswith(" -}}", pos):
            return pos + 4, True
        if text.startswith("}}", pos):
            return pos + 2, False
        return None, False

    def _trim_following(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t\r\n":
            self.pos += 1

    def lex_action(self, pos: int, line: int) -> tuple[list[_Tok], int, bool]:
        toks: list[_Tok] = []
        text = self.text
        depth = 0
        while True:
            if pos >= len(text):
                raise self.error(line, "unclosed action")
            if depth == 0:
                if (
                    text.startswith(" -}}", pos)
                    or text.startswith("\t-}}", pos)
                    or text.startswith("\n-}}", pos)
                ):
                    return toks, pos + 4, True
                if text.startswith("}}", pos):
                    return toks, pos + 2, False
            m = _TOKEN.match(text, pos)
            assert m is not None
            kind = m.lastgroup or "bad"
            tok_text = m.group()
            if kind == "space":
                if "\n" in tok_text and depth == 0:
                    # Go allows newlines inside actions only within parentheses (before 1.16)
                    pass
                pos = m.end()
                continue
            if kind == "bad":
                if tok_text == "}":
                    raise self.error(line, 'unexpected "}" in operand')
                raise self.error(line, f"unexpected {_go_quote(tok_text)} in command")
            if kind == "lparen":
                depth += 1
            elif kind == "rparen":
                depth -= 1
                if depth < 0:
                    raise self.error(line, "unexpected right paren")
            toks.append(_Tok(kind, tok_text, line))
            pos = m.end()

    def parse_action(self, toks: list[_Tok], line: int) -> _Node:
        head = toks[0]
        if head.kind == "ident" and head.text in ("if", "with", "range"):
            self.vars.append([])
            pipe = self.parse_pipe(toks[1:], line, head.text, allow_decl=True)
            body, stop = self.parse_list()
            else_body: list[_Node] | None = None
            assert stop is not None
            if stop[0] == "else":
                rest = stop[2]
                if (
                    rest
                    and rest[0].kind == "ident"
                    and rest[0].text in ("if", "with")
                    and head.text in ("if", "with")
                    and rest[0].text == head.text
                ):
                    # {{else if ...}}: an if nested in the else branch that shares our {{end}}
                    else_body = [self._parse_chained(rest, stop[1])]
                else:
                    if rest:
                        raise self.error(stop[1], f"unexpected {rest[0].text!r} in else")
                    else_body, stop2 = self.parse_list()
                    assert stop2 is not None
                    if stop2[0] != "end":
                        raise self.error(stop2[1], "expected end; found {{else}}")
            self.vars.pop()
            return _Node(head.text, line, pipe=pipe, body=body, else_body=else_body)
        if head.kind == "ident" and head.text in ("define", "template", "block"):
            raise self.error(line, f"{{{{{head.text}}}}} is not supported in alert templates")
        if head.kind == "ident" and head.text in ("break", "continue"):
            return _Node(head.text, line)
        return _Node("action", line, pipe=self.parse_pipe(toks, line, "command", allow_decl=True))

    def _parse_chained(self, toks: list[_Tok], line: int) -> _Node:
        kind = toks[0].text
        self.vars.append([])
        pipe = self.parse_pipe(toks[1:], line, kind, allow_decl=True)
        body, stop = self.parse_list()
        assert stop is not None
        else_body = None
        if stop[0] == "else":
            rest = stop[2]
            if rest and rest[0].kind == "ident" and rest[0].text == kind:
                else_body = [self._parse_chained(rest, stop[1])]
            else:
                else_body, stop2 = self.parse_list()
                assert stop2 is not None
                if stop2[0] != "end":
                    raise self.error(stop2[1], "expected end; found {{else}}")
        self.vars.pop()
        return _Node(kind, line, pipe=pipe, body=body, else_body=else_body)

    def parse_pipe(self, toks: list[_Tok], line: int, ctx: str, allow_decl: bool) -> _Pipe:
        decl: list[str] = []
        assign = False
        i = 0
        # declarations: $x := ..., or $k, $v := ... in range
        if allow_decl and toks and toks[0].kind == "variable":
            j = 0
            names = []
            while j < len(toks) and toks[j].kind == "variable":
                names.append(toks[j].text)
                if j + 1 < len(toks) and toks[j + 1].kind == "comma" and ctx == "range":
                    j += 2
                    continue
                j += 1
                break
            if j < len(toks) and toks[j].kind in ("declare", "assign"):
                assign = toks[j].kind == "assign"
                for n in names:
                    if "." in n:
                        raise self.error(line, f"unexpected {_go_quote(n)} in declaration")
                    if assign and not self._known(n):
                        raise self.error(line, f'undefined variable "{n}"')
                decl = names
                i = j + 1
        cmds: list[list[Any]] = []
        cur: list[Any] = []
        while i < len(toks):
            t = toks[i]
            if t.kind == "pipe":
                if not cur:
                    raise self.error(line, "missing command")
                cmds.append(cur)
                cur = []
                i += 1
                continue
            arg, i = self.parse_operand(toks, i, line)
            cur.append(arg)
        if cur:
            cmds.append(cur)
        elif cmds:
            raise self.error(line, "missing command")
        if not cmds:
            raise self.error(line, f"missing value for {ctx}")
        if decl and not assign:
            self.vars[-1].extend(decl)
        for c in cmds[1:]:
            if c[0][0] not in ("func", "field", "var", "pipe") or (c[0][0] == "var" and len(c) > 1):
                raise self.error(line, "non executable command in pipeline stage 2")
        return _Pipe(decl, assign, cmds, line)

    def _known(self, name: str) -> bool:
        base = name.split(".")[0]
        return any(base in scope for scope in self.vars)

    def parse_operand(self, toks: list[_Tok], i: int, line: int) -> tuple[Any, int]:
        t = toks[i]
        k = t.kind
        if k == "lparen":
            depth = 0
            j = i
            while j < len(toks):
                if toks[j].kind == "lparen":
                    depth += 1
                elif toks[j].kind == "rparen":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            inner = self.parse_pipe(toks[i + 1 : j], line, "parenthesized pipeline", False)
            chain: list[str] = []
            j += 1
            if j < len(toks) and toks[j].kind == "field" and toks[j].text != ".":
                chain = toks[j].text.split(".")[1:]
                j += 1
            return ("pipe", inner, chain), j
        if k == "rparen":
            raise self.error(line, "unexpected right paren")
        if k in ("declare", "assign", "comma"):
            raise self.error(line, f"unexpected {_go_quote(t.text)} in operand")
        if k == "string":
            return ("const", _unquote_go(t.text)), i + 1
        if k == "raw":
            return ("const", t.text[1:-1]), i + 1
        if k == "char":
            s = _unquote_go('"' + t.text[1:-1] + '"')
            return ("const", ord(s[0]) if s else 0), i + 1
        if k == "number":
            return ("const", _go_number(t.text, self, line)), i + 1
        if k == "variable":
            parts = t.text.split(".")
            if not self._known(parts[0]):
                raise self.error(line, f'undefined variable "{parts[0]}"')
            return ("var", parts[0], parts[1:]), i + 1
        if k == "field":
            if t.text == ".":
                return ("dot",), i + 1
            return ("field", t.text.split(".")[1:]), i + 1
        # identifiers: keywords, constants, functions
        word = t.text
        if word in ("true", "false"):
            return ("const", word == "true"), i + 1
        if word == "nil":
            return ("const", None), i + 1
        if "." in word:
            raise self.error(line, f"unexpected {_go_quote(word)}")
        if word in _KEYWORDS:
            raise self.error(line, f"unexpected <{word}> in command")
        if word not in FUNCTIONS:
            raise self.error(line, f'function "{word}" not defined')
        return ("func", word), i + 1


def _go_number(text: str, p: _Parser, line: int) -> int | float:
    t = text.replace("_", "")
    try:
        if re.fullmatch(r"[+-]?0[xX][0-9a-fA-F]+", t):
            return int(t, 16)
        if re.fullmatch(r"[+-]?\d+", t):
            return int(t, 8) if len(t.lstrip("+-")) > 1 and t.lstrip("+-")[0] == "0" else int(t)
        return float(t)
    except ValueError:
        raise p.error(line, f"bad number syntax: {_go_quote(text)}") from None


_ESC = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "\\": "\\",
    '"': '"',
    "'": "'",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
    "0": "\0",
}


def _unquote_go(s: str) -> str:
    body = s[1:-1]
    return re.sub(
        r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|.)",
        lambda m: (
            chr(int(m.group(1)[1:], 16))
            if m.group(1)[0] in "xuU" and len(m.group(1)) > 1
            else chr(int(m.group(1), 8))
            if m.group(1)[0] in "01234567" and len(m.group(1)) == 3
            else _ESC.get(m.group(1), m.group(1))
        ),
        body,
    )


# ---------------------------------------------------------------------------
# Execution


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


@dataclass(frozen=True)
class Template:
    """A parsed template; `expand` runs it against one alert's data."""

    name: str
    source: str
    nodes: tuple[_Node, ...]

    def expand(self, data: TemplateData) -> str:
        """Expand the template; raises TemplateExecError the way Go's Execute would fail."""
        root = {
            "Labels": dict(data.labels),
            "ExternalLabels": dict(data.external_labels),
            "ExternalURL": data.external_url,
            "Value": data.value,
        }
        ex = _Exec(self.name, _make_funcs(data))
        scope: dict[str, Any] = {
            "$": _Struct(root),
            "$labels": root["Labels"],
            "$externalLabels": root["ExternalLabels"],
            "$externalURL": data.external_url,
            "$value": data.value,
        }
        out: list[str] = []
        ex.run(list(self.nodes), _Struct(root), [scope], out)
        return "".join(out)


class _Exec:
    def __init__(self, name: str, funcs: dict[str, Callable[..., Any]]) -> None:
        self.name = name
        self.funcs = funcs

    def err(self, line: int, msg: str) -> TemplateExecError:
        return TemplateExecError(f"template: {self.name}:{line}: {msg}")

    def run(
        self, nodes: list[_Node], dot: Any, scopes: list[dict[str, Any]], out: list[str]
    ) -> None:
        for n in nodes:
            if n.kind == "text":
                out.append(n.text)
            elif n.kind == "action":
                v = self.pipe(n.pipe, dot, scopes)
                if not n.pipe.decl:
                    out.append(go_sprint(v))
            elif n.kind == "break":
                raise _Break()
            elif n.kind == "continue":
                raise _Continue()
            elif n.kind in ("if", "with"):
                scopes.append({})
                v = self.pipe(n.pipe, dot, scopes)
                if _truth(v):
                    self.run(n.body, v if n.kind == "with" else dot, scopes, out)
                elif n.else_body is not None:
                    self.run(n.else_body, dot, scopes, out)
                scopes.pop()
            elif n.kind == "range":
                self._range(n, dot, scopes, out)

    def _range(self, n: _Node, dot: Any, scopes: list[dict[str, Any]], out: list[str]) -> None:
        scopes.append({})
        pipe: _Pipe = n.pipe
        v = self.pipe(_Pipe([], False, pipe.cmds, pipe.line), dot, scopes)
        if isinstance(v, Mapping):
            items = [(k, v[k]) for k in sorted(v)]
        elif isinstance(v, list | tuple):
            items = list(enumerate(v))
        elif isinstance(v, int) and not isinstance(v, bool):
            items = [(i, i) for i in range(v)]
        elif v is None:
            items = []
        else:
            raise self.err(n.line, f"range can't iterate over {go_sprint(v)}")
        if not items and n.else_body is not None:
            self.run(n.else_body, dot, scopes, out)
        for k, elem in items:
            if len(pipe.decl) == 1:
                scopes[-1][pipe.decl[0]] = elem
            elif len(pipe.decl) == 2:
                scopes[-1][pipe.decl[0]] = k
                scopes[-1][pipe.decl[1]] = elem
            try:
                self.run(n.body, elem, scopes, out)
            except _Break:
                break
            except _Continue:
                continue
        scopes.pop()

    def lookup(self, scopes: list[dict[str, Any]], name: str, line: int) -> Any:
        for s in reversed(scopes):
            if name in s:
                return s[name]
        raise self.err(line, f"undefined variable: {name}")

    def pipe(self, p: _Pipe, dot: Any, scopes: list[dict[str, Any]]) -> Any:
        val: Any = _NOVAL
        for cmd in p.cmds:
            val = self.command(cmd, dot, scopes, val, p.line)
        for name in p.decl:
            if p.assign:
                for s in reversed(scopes):
                    if name in s:
                        s[name] = val
                        break
            else:
                scopes[-1][name] = val
        return val

    def command(
        self, cmd: list[Any], dot: Any, scopes: list[dict[str, Any]], final: Any, line: int
    ) -> Any:
        head = cmd[0]
        if head[0] == "func":
            args = [self.arg(a, dot, scopes, line) for a in cmd[1:]]
            if final is not _NOVAL:
                args.append(final)
            fn = self.funcs[head[1]]
            try:
                return fn(*args)
            except TemplateExecError as e:
                raise self.err(line, f"error calling {head[1]}: {e}") from None
            except TypeError:
                raise self.err(line, f"wrong number of args for {head[1]}") from None
            except (AttributeError, KeyError, ValueError) as e:
                raise self.err(line, f"error calling {head[1]}: {e}") from None
        if len(cmd) > 1 or final is not _NOVAL:
            if head[0] in ("field", "var") and (head[-1] if head[0] == "field" else head[2]):
                raise self.err(line, "can't give argument to non-function")
            raise self.err(line, "can't give argument to non-function")
        return self.arg(head, dot, scopes, line)

    def arg(self, a: Any, dot: Any, scopes: list[dict[str, Any]], line: int) -> Any:
        kind = a[0]
        if kind == "const":
            return a[1]
        if kind == "dot":
            return dot
        if kind == "field":
            return self.fields(dot, a[1], line)
        if kind == "var":
            return self.fields(self.lookup(scopes, a[1], line), a[2], line)
        if kind == "pipe":
            return self.fields(self.pipe(a[1], dot, scopes), a[2], line)
        if kind == "func":
            fn = self.funcs[a[1]]
            try:
                return fn()
            except TypeError:
                raise self.err(line, f"wrong number of args for {a[1]}") from None
        raise self.err(line, "bad argument")

    def fields(self, v: Any, names: Sequence[str], line: int) -> Any:
        for name in names:
            if isinstance(v, _Struct):
                if name not in v:
                    raise self.err(line, f"can't evaluate field {name}")
                v = v[name]
            elif isinstance(v, Mapping):
                v = v.get(name, "")
            elif v is None:
                raise self.err(line, f"nil pointer evaluating .{name}")
            else:
                raise self.err(line, f"can't evaluate field {name} in type {_go_type(v)}")
        return v


_NOVAL = object()


def parse_template(text: str, name: str) -> Template:
    """Parse a template as Prometheus does (with `$labels`, `$value`, ... predeclared)."""
    p = _Parser(text, name)
    p.vars = [["$", "$labels", "$externalLabels", "$externalURL", "$value"]]
    return Template(name, text, tuple(p.parse()))


def expand_alert_template(template: Template, data: TemplateData) -> str:
    """Expand for an alert; a failure becomes the text Prometheus puts in its place."""
    try:
        return template.expand(data)
    except TemplateExecError as e:
        return f"<error expanding template: error executing template {template.name}: {e}>"
    except RecursionError:
        return f"<error expanding template: error executing template {template.name}: too deep>"
