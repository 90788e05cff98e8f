"""Alertmanager's label matchers: parsing, matching, printing.

A matcher is `name op value` with op one of `=`, `!=`, `=~`, `!~`, as in
Alertmanager's `matchers:` lists (`'severity="critical"'`, `'team=~"db|web"'`,
`env!=prod`) and, built from plain maps, its legacy `match` / `match_re`.
The semantics follow Alertmanager 0.25's `pkg/labels`:

- a list entry may hold several matchers separated by commas outside double
  quotes, optionally wrapped in `{...}`, with an optional trailing comma;
- the value may be quoted or not; inside it `\\"`, `\\n` and `\\\\` are
  escapes and any other backslash is literal; an unescaped `"` inside the
  value is an error;
- regular expressions are fully anchored (`^(?:re)$`);
- a label the alert does not have matches as the empty string, so
  `team=""` matches alerts without `team` and `team!=""` requires it;
- matchers sort by name, then value, then operator, and print as
  `name op "escaped value"`, joined by `,` inside braces; a route's key is
  made of these strings, so they must be exact.

Regular expressions are Go's RE2 syntax; Python's `re` runs them after
`go_to_python` rewrote the few places where the two read a pattern
differently and refused what RE2 refuses. `\\d`, `\\w`, `\\s`, `\\b` are
ASCII-only as in Go, while `(?i)` folds Unicode case as Go does. Constructs
only Go has (`\\pL`, `\\Q...\\E`, the `U` flag) are refused, with an error that
names the expression.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache


class MatcherError(ValueError):
    """A matcher string or regular expression that Alertmanager would refuse too."""


class MatchType(Enum):
    # Declaration order is Alertmanager's (it breaks ties when sorting).
    EQUAL = "="
    NOT_EQUAL = "!="
    REGEXP = "=~"
    NOT_REGEXP = "!~"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {t: i for i, t in enumerate(MatchType)}

LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
"""Prometheus label names (`model.LabelNameRE`), for `match` keys and `group_by`."""

_GO_SPACE = "[\t\n\f\r ]"  # Go's \s: ASCII only
_MATCHER = re.compile(
    rf"^{_GO_SPACE}*([a-zA-Z_:][a-zA-Z0-9_:]*){_GO_SPACE}*(=~|=|!=|!~){_GO_SPACE}*(.*?)"
    rf"{_GO_SPACE}*\Z",
    re.DOTALL,
)
_REPEAT = re.compile(r"\{(\d+)(,(\d*))?\}")
_GO_MAX_REPEAT = 1000
_FLAGS_ONLY = re.compile(r"\(\?([imsU]*)(?:-([imsU]*))?\)")
_MULTILINE_FLAG = re.compile(r"\(\?[imsU]*m")
_POSIX_CLASSES = {
    "alnum": "0-9A-Za-z", "alpha": "A-Za-z", "ascii": "\\x00-\\x7f", "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f", "digit": "0-9", "graph": "!-~", "lower": "a-z",
    "print": " -~", "punct": "!-/:-@\\[-`{-~", "space": "\\t\\n\\v\\f\\r ", "upper": "A-Z",
    "word": "0-9A-Za-z_", "xdigit": "0-9A-Fa-f",
}


# Go's Perl classes are ASCII; Python's are Unicode. (outside a class, inside one)
_GO_ASCII_CLASSES = {
    "d": ("[0-9]", "0-9"),
    "w": ("[0-9A-Za-z_]", "0-9A-Za-z_"),
    "s": ("[\\t\\n\\f\\r ]", "\\t\\n\\f\\r "),
    "D": ("[^0-9]", "\\D"),
    "W": ("[^0-9A-Za-z_]", "\\W"),
    "S": ("[^\\t\\n\\f\\r ]", "\\S"),
    "b": ("(?a:\\b)", "\\b"),
    "B": ("(?a:\\B)", "\\B"),
}


def _unsupported(pattern: str, what: str) -> MatcherError:
    return MatcherError(
        f"invalid regular expression {pattern!r}: {what} is not in Alertmanager's "
        "(Go RE2) syntax"
    )


def go_to_python(pattern: str) -> str:
    """Rewrite a Go RE2 pattern so Python's `re` reads it the same way; refuse what Go refuses.

    Python-only constructs (lookaround, backreferences, atomic groups,
    possessive quantifiers, comments, `\\Z`, repeats over 1000) are errors, as
    in Go. Rewritten: `\\z` to `\\Z`; an unescaped `$` outside `(?m)` to `\\Z`
    (Go's means the end of the text, Python's also matches before a final
    newline); a `{` that does not start a repeat to a literal one (`a{,2}`);
    POSIX classes (`[[:alpha:]]`) and Perl classes (`\\d`, `\\w`, `\\s`, `\\b`)
    to their ASCII sets, as in Go; a flag group in mid-pattern
    (`a(?i)b`), which Python only takes at the start, to scoped groups up to
    the end of the enclosing group, reopened after each `|`.
    """
    multiline = _MULTILINE_FLAG.search(pattern) is not None
    out: list[str] = []
    flags: list[list[str]] = [[]]  # per open group: the scoped flag groups opened in it
    i, n = 0, len(pattern)
    in_class = False
    class_start = -1
    after_quantifier = False
    while i < n:
        c = pattern[i]
        quantifier = False
        if c == "\\":
            nxt = pattern[i + 1] if i + 1 < n else ""
            if not in_class and nxt and nxt in "123456789":
                raise _unsupported(pattern, f"the backreference \\{nxt}")
            if not in_class and nxt == "Z":
                raise _unsupported(pattern, "\\Z")
            if nxt == "z" and not in_class:
                out.append("\\Z")
            elif nxt in _GO_ASCII_CLASSES:
                out.append(_GO_ASCII_CLASSES[nxt][in_class])
            else:
                out.append(c + nxt)
            i += 2
            after_quantifier = False
            continue
        if in_class:
            if c == "]" and i > class_start:
                in_class = False
                out.append(c)
            elif c == "[" and pattern.startswith("[:", i):
                end = pattern.find(":]", i + 2)
                name = pattern[i + 2:end] if end != -1 else ""
                if name not in _POSIX_CLASSES:
                    raise _unsupported(pattern, f"the class [:{name}:]")
                out.append(_POSIX_CLASSES[name])
                i = end + 2
                continue
            elif c in "[&~|" or (c == "-" and out and out[-1] == "-"):
                out.append("\\" + c)  # literal in Go; Python warns of set operations
            else:
                out.append(c)
            i += 1
            continue
        if c == "[":
            in_class = True
            class_start = i + 1
            if pattern.startswith("^", class_start):
                class_start += 1
            if pattern.startswith("]", class_start):
                class_start += 1
            out.append(c)
        elif c == "(":
            m = _FLAGS_ONLY.match(pattern, i)
            if m is not None and (m.group(1) or m.group(2)):
                if "U" in m.group(0):
                    raise _unsupported(pattern, "the U (ungreedy) flag")
                group = f"(?{m.group(1)}{'-' + m.group(2) if m.group(2) else ''}:"
                flags[-1].append(group)
                out.append(group)
                i = m.end()
                after_quantifier = False
                continue
            for prefix, what in (("(?=", "lookahead"), ("(?!", "lookahead"),
                                 ("(?<=", "lookbehind"), ("(?<!", "lookbehind"),
                                 ("(?>", "an atomic group"), ("(?#", "a comment"),
                                 ("(?P=", "a backreference")):
                if pattern.startswith(prefix, i):
                    raise _unsupported(pattern, what)
            flags.append([])
            out.append(c)
        elif c == ")":
            if len(flags) > 1:
                out.append(")" * len(flags.pop()))
            out.append(c)
        elif c == "|":
            out.append(")" * len(flags[-1]) + "|" + "".join(flags[-1]))
        elif c in "*+?":
            if c == "+" and after_quantifier:
                raise _unsupported(pattern, "a possessive quantifier")
            quantifier = c != "?" or not after_quantifier
            out.append(c)
        elif c == "{":
            m = _REPEAT.match(pattern, i)
            if m is None:
                out.append("\\{")
            else:
                if max(int(m.group(1)), int(m.group(3) or 0)) > _GO_MAX_REPEAT:
                    raise _unsupported(pattern, f"a repeat count over {_GO_MAX_REPEAT}")
                if after_quantifier:
                    raise _unsupported(pattern, "a repeated repeat")
                out.append(m.group(0))
                i = m.end()
                after_quantifier = True
                continue
        elif c == "$" and not multiline:
            out.append("\\Z")
        else:
            out.append(c)
        after_quantifier = quantifier
        i += 1
    out.extend(")" * len(f) for f in reversed(flags))
    return "".join(out)


@lru_cache(maxsize=4096)
def compile_regexp(pattern: str) -> re.Pattern[str]:
    """A Go (RE2) regular expression as a Python one, to be used with `fullmatch`."""
    translated = go_to_python(pattern)
    try:
        return re.compile(f"(?:{translated})")
    except re.error as e:
        raise MatcherError(f"invalid regular expression {pattern!r}: {e}") from None


def _escape(value: str) -> str:
    """OpenMetrics escaping, as Alertmanager prints matcher values."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


@dataclass(frozen=True)
class Matcher:
    name: str
    type: MatchType
    value: str
    _re: re.Pattern[str] | None = field(default=None, compare=False, repr=False, hash=False)

    def __post_init__(self) -> None:
        if self.type in (MatchType.REGEXP, MatchType.NOT_REGEXP) and self._re is None:
            object.__setattr__(self, "_re", compile_regexp(self.value))

    def matches(self, value: str) -> bool:
        if self.type is MatchType.EQUAL:
            return value == self.value
        if self.type is MatchType.NOT_EQUAL:
            return value != self.value
        assert self._re is not None
        found = self._re.fullmatch(value) is not None
        return found if self.type is MatchType.REGEXP else not found

    def __str__(self) -> str:
        return f'{self.name}{self.type.value}"{_escape(self.value)}"'

    def sort_key(self) -> tuple[str, str, int]:
        return (self.name, self.value, self.type.rank)


def sort_matchers(matchers: Iterable[Matcher]) -> tuple[Matcher, ...]:
    return tuple(sorted(matchers, key=Matcher.sort_key))


def matches_all(matchers: Sequence[Matcher], labels: Mapping[str, str]) -> bool:
    """Every matcher holds; a missing label is the empty string."""
    return all(m.matches(labels.get(m.name, "")) for m in matchers)


def format_matchers(matchers: Sequence[Matcher]) -> str:
    """`{a="1",b=~"x"}`: Alertmanager's `Matchers.String()`, which route keys are made of."""
    return "{" + ",".join(str(m) for m in matchers) + "}"


def parse_matcher(text: str) -> Matcher:
    """One matcher, `name op value`, with Alertmanager's quoting and escaping rules."""
    m = _MATCHER.match(text)
    if m is None:
        raise MatcherError(
            f"bad matcher format: {text!r}; expected name=value, name!=value, "
            'name=~"regex" or name!~"regex"'
        )
    name, op, raw = m.group(1), m.group(2), m.group(3)
    quoted = raw.startswith('"')
    if quoted:
        raw = raw[1:]
    out: list[str] = []
    escaped = False
    last = len(raw) - 1
    for i, ch in enumerate(raw):
        if escaped:
            escaped = False
            if ch == "n":
                out.append("\n")
            elif ch in '"\\':
                out.append(ch)
            else:
                out.append("\\" + ch)
            continue
        if ch == "\\":
            if i < last:
                escaped = True
            else:
                out.append("\\")
        elif ch == '"':
            if not quoted or i < last:
                raise MatcherError(f"matcher value contains unescaped double quote: {m.group(3)}")
            quoted = False
        else:
            out.append(ch)
    if quoted:
        raise MatcherError(f"matcher value contains unescaped double quote: {m.group(3)}")
    return Matcher(name, MatchType(op), "".join(out))


def parse_matchers(text: str) -> list[Matcher]:
    """A comma-separated list of matchers, optionally in braces (one `matchers:` entry)."""
    if text.startswith("{"):
        text = text[1:]
    if text.endswith("}"):
        text = text[:-1]
    tokens: list[str] = []
    token: list[str] = []
    inside = escaped = False
    for ch in text:
        if ch == "," and not inside:
            tokens.append("".join(token))
            token = []
            continue
        if ch == '"':
            if not escaped:
                inside = not inside
            else:
                escaped = False
        elif ch == "\\":
            escaped = not escaped
        elif ch != ",":
            escaped = False
        token.append(ch)
    rest = "".join(token).strip()
    if rest:
        tokens.append(rest)
    return [parse_matcher(t) for t in tokens]


def from_match_maps(
    match: Mapping[str, str] | None = None, match_re: Mapping[str, str] | None = None
) -> list[Matcher]:
    """The legacy `match` (equality) and `match_re` (regex) maps as matchers.

    Alertmanager keeps a `match_re` value as its compiled, anchored form, so
    the matcher's value (and the route key printed from it) is `^(?:re)$`.
    """
    out = [Matcher(k, MatchType.EQUAL, v) for k, v in (match or {}).items()]
    out += [Matcher(k, MatchType.REGEXP, f"^(?:{v})$") for k, v in (match_re or {}).items()]
    return out
