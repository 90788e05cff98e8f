"""Resource arithmetic: what an agent has, what an offer holds, what a task uses.

A `Resources` value maps (name, role) to a scalar, a set of integer ranges
(ports) or a set of strings. Role "" is the unreserved pool, written "*" in
text. Values are immutable so the master and the allocator can share them
freely; every operation returns a new value.

Scalars are kept as integers in thousandths, Mesos's fixed point, so that
adding and subtracting 0.1 a thousand times comes back exactly to the start
and equality is exact. Zero scalars and empty ranges or sets are dropped, so
two values holding the same resources compare equal.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from orbiter import roles

if TYPE_CHECKING:
    from google.protobuf.internal.containers import RepeatedCompositeFieldContainer

    from orbiter.proto import messages_pb2

__all__ = ["MAX_SCALAR", "InvalidResources", "Ranges", "Resources", "Value", "validate_role"]

MAX_SCALAR = 1e12
"""Largest scalar accepted from input; keeps the fixed point exact through a proto double."""

Kind = Literal["scalar", "ranges", "set"]
Pair = tuple[int, int]

_MAX_RANGE_END = 2**64 - 1  # Range.begin/end are uint64 on the wire.
_MILLI = 1000

_NAME = re.compile(r"[A-Za-z0-9_./-]+")
_ITEM = re.compile(r"[^\s,;{}]+")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_RANGE = re.compile(r"\s*(\d+)\s*-\s*(\d+)\s*")

_FIRST = ("cpus", "mem", "disk", "gpus", "ports")
_RANK = {name: i for i, name in enumerate(_FIRST)}
_WELL_KNOWN_KIND: dict[str, Kind] = {
    "cpus": "scalar",
    "mem": "scalar",
    "disk": "scalar",
    "gpus": "scalar",
    "ports": "ranges",
}


class InvalidResources(ValueError):
    """Resources that cannot be parsed, validated, or subtracted; the message says where."""


def _ranges_unchecked(pairs: tuple[Pair, ...]) -> Ranges:
    """A Ranges from pairs already sorted, merged and valid: the arithmetic's fast path."""
    r = object.__new__(Ranges)
    object.__setattr__(r, "ranges", pairs)
    return r


def _normalize(pairs: Iterable[Pair]) -> tuple[Pair, ...]:
    """Sort and merge overlapping or adjacent valid pairs."""
    out: list[Pair] = []
    for b, e in sorted(pairs):
        if out and b <= out[-1][1] + 1:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e)
        else:
            out.append((b, e))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Ranges:
    """Inclusive integer ranges such as ports, kept sorted with overlaps and neighbours merged.

    `Ranges(((31000, 31005), (31006, 31010)))` equals `Ranges(((31000, 31010),))`,
    so equality and hashing are structural.
    """

    ranges: tuple[Pair, ...] = ()

    def __post_init__(self) -> None:
        pairs = []
        for pair in self.ranges:
            b, e = pair
            if type(b) is not int or type(e) is not int:
                raise InvalidResources(f"range {b!r}-{e!r} must have integer bounds")
            if b < 0:
                raise InvalidResources(f"range {b}-{e} has a negative begin")
            if b > e:
                raise InvalidResources(f"range {b}-{e} has begin > end")
            if e > _MAX_RANGE_END:
                raise InvalidResources(f"range {b}-{e} ends beyond {_MAX_RANGE_END}")
            pairs.append((b, e))
        object.__setattr__(self, "ranges", _normalize(pairs))

    @staticmethod
    def parse(text: str) -> Ranges:
        """Parse `[31000-32000,33000-33005]`; `[]` is the empty set of ranges."""
        body = text.strip()
        if not (body.startswith("[") and body.endswith("]")):
            raise InvalidResources(
                f"malformed ranges {text.strip()!r}: expected [begin-end,...] in square brackets"
            )
        body = body[1:-1]
        if not body.strip():
            return _EMPTY_RANGES
        pairs = []
        for part in body.split(","):
            m = _RANGE.fullmatch(part)
            if m is None:
                raise InvalidResources(
                    f"malformed range {part.strip()!r} in {text.strip()!r}: expected begin-end "
                    "with non-negative integers"
                )
            pairs.append((int(m.group(1)), int(m.group(2))))
        return Ranges(tuple(pairs))

    def format(self) -> str:
        """The `[begin-end,...]` text that `parse` reads back."""
        return "[" + ",".join(f"{b}-{e}" for b, e in self.ranges) + "]"

    def size(self) -> int:
        """How many integers the ranges hold (ports count one each)."""
        n = 0
        for b, e in self.ranges:
            n += e - b + 1
        return n

    def __bool__(self) -> bool:
        return bool(self.ranges)

    def __iter__(self) -> Iterator[Pair]:
        return iter(self.ranges)

    def __add__(self, other: Ranges) -> Ranges:
        if not other.ranges:
            return self
        if not self.ranges:
            return other
        return _ranges_unchecked(_normalize(self.ranges + other.ranges))

    def __sub__(self, other: Ranges) -> Ranges:
        """Set difference: integers in `other` but not in `self` are ignored."""
        if not other.ranges or not self.ranges:
            return self
        out: list[Pair] = []
        theirs = other.ranges
        j = 0
        n = len(theirs)
        for b, e in self.ranges:
            while j < n and theirs[j][1] < b:
                j += 1
            k = j
            cur = b
            while k < n and theirs[k][0] <= e:
                tb, te = theirs[k]
                if tb > cur:
                    out.append((cur, tb - 1))
                cur = max(cur, te + 1)
                if cur > e:
                    break
                k += 1
            if cur <= e:
                out.append((cur, e))
        return _ranges_unchecked(tuple(out))

    def contains(self, other: Ranges) -> bool:
        """Whether every integer in `other` is also in `self`."""
        mine = self.ranges
        i = 0
        n = len(mine)
        for b, e in other.ranges:
            while i < n and mine[i][1] < b:
                i += 1
            if i == n or mine[i][0] > b or mine[i][1] < e:
                return False
        return True


_EMPTY_RANGES = Ranges()

Value = float | Ranges | frozenset[str]
"""What one (name, role) holds, as the public API shows it."""

# Inside, scalars are ints in thousandths.
_Stored = int | Ranges | frozenset[str]
Key = tuple[str, str]


def validate_role(role: str) -> str:
    """The stored form of a role name: "*" becomes "" (unreserved); a bad name raises."""
    if role in ("", "*"):
        return ""
    why = roles.problem(role)
    if why is not None:
        raise InvalidResources(f"bad role {role!r}: {why}")
    return role


def _to_milli(x: float) -> int:
    if not math.isfinite(x):
        raise InvalidResources(f"{x} is not a finite number")
    if x < 0:
        raise InvalidResources(f"{_fmt_float(x)} is negative")
    if x > MAX_SCALAR:
        raise InvalidResources(f"{_fmt_float(x)} is larger than the maximum {MAX_SCALAR:.0f}")
    return round(x * _MILLI)


def _fmt_float(x: float) -> str:
    return repr(int(x)) if x.is_integer() else repr(x)


def _fmt_milli(m: int) -> str:
    whole, frac = divmod(m, _MILLI)
    return str(whole) if frac == 0 else f"{whole}.{frac:03d}".rstrip("0")


def _parse_scalar(text: str) -> float:
    if _NUMBER.fullmatch(text) is None:
        try:
            x = float(text)
        except ValueError:
            x = 0.0
        else:
            if not math.isfinite(x):
                raise InvalidResources(f"{text!r} is not a finite number") from None
        raise InvalidResources(f"{text!r} is not a number")
    x = float(text)
    if not math.isfinite(x):
        raise InvalidResources(f"{text!r} is larger than the maximum {MAX_SCALAR:.0f}")
    return x


def _parse_set(text: str) -> frozenset[str]:
    body = text.strip()
    if not body.endswith("}"):
        raise InvalidResources(f"malformed set {body!r}: expected {{item,...}} in braces")
    inner = body[1:-1]
    if not inner.strip():
        return frozenset()
    return _validate_items([part.strip() for part in inner.split(",")])


def _validate_items(items: Iterable[str]) -> frozenset[str]:
    seen: set[str] = set()
    for item in items:
        if not item:
            raise InvalidResources("set has an empty item")
        if _ITEM.fullmatch(item) is None:
            raise InvalidResources(
                f"set item {item!r} must not contain whitespace, ',', ';', '{{' or '}}'"
            )
        if item in seen:
            raise InvalidResources(f"set item {item!r} given twice")
        seen.add(item)
    return frozenset(seen)


def _validate_name(name: str) -> None:
    if not name:
        raise InvalidResources("empty name")
    if _NAME.fullmatch(name) is None:
        raise InvalidResources(f"bad name {name!r}: use letters, digits, '_', '.', '-' and '/'")


def _kind(v: _Stored) -> Kind:
    if type(v) is int:
        return "scalar"
    return "ranges" if type(v) is Ranges else "set"


def _show(name: str, role: str) -> str:
    return f"{name}({role})" if role else name


def _public(v: _Stored) -> Value:
    return v / _MILLI if type(v) is int else v


def _format_value(v: _Stored) -> str:
    if type(v) is int:
        return _fmt_milli(v)
    if type(v) is Ranges:
        return v.format()
    return "{" + ",".join(sorted(v)) + "}"


def _order(key: Key) -> tuple[int, str, str]:
    return (_RANK.get(key[0], len(_FIRST)), key[0], key[1])


class _Builder:
    """Collects validated entries from text, a mapping or protos into a stored dict.

    `merge` decides what a repeated (name, role) means: an error in text
    (a typo, most likely) or a sum in protos (Mesos's lists may repeat).
    """

    __slots__ = ("kinds", "merge", "seen", "values")

    def __init__(self, merge: bool) -> None:
        self.values: dict[Key, _Stored] = {}
        self.kinds: dict[str, tuple[Kind, str]] = {}
        self.seen: dict[Key, str] = {}
        self.merge = merge

    def add(self, where: object, name: str, role: str, value: _Stored) -> None:
        kind = _kind(value)
        want = _WELL_KNOWN_KIND.get(name)
        if want is not None and want != kind:
            example = "ports:[31000-32000]" if want == "ranges" else f"{name}:4"
            raise InvalidResources(f"'{name}' must be {_a(want)}, like {example}")
        earlier = self.kinds.get(name)
        if earlier is not None and earlier[0] != kind:
            raise InvalidResources(
                f"'{name}' is {_a(kind)} here but {_a(earlier[0])} in {earlier[1]}"
            )
        self.kinds.setdefault(name, (kind, where))
        key = (name, role)
        if key in self.seen:
            if not self.merge:
                raise InvalidResources(f"'{_show(name, role)}' given twice (also {self.seen[key]})")
            value = _plus(self.values[key], value, key)
        else:
            self.seen[key] = where
        self.values[key] = value

    def build(self) -> Resources:
        return Resources._make({k: v for k, v in self.values.items() if v})


def _a(kind: Kind) -> str:
    return {"scalar": "a scalar", "ranges": "ranges", "set": "a set"}[kind]


def _plus(a: _Stored, b: _Stored, key: Key) -> _Stored:
    ta = type(a)
    if ta is type(b):
        if ta is frozenset:
            return a | b  # type: ignore[operator]
        return a + b  # type: ignore[operator]
    raise InvalidResources(f"cannot add {_a(_kind(b))} to {_a(_kind(a))} for '{_show(*key)}'")


class Resources:
    """An immutable bag of resources keyed by (name, role); see the module docstring.

    Build one with `parse`, `from_proto` or `Resources({(name, role): value})`;
    all three validate. Arithmetic between valid values does not re-validate,
    because the allocator runs it thousands of times per pass. The hash and
    the quantities are computed once per value: the allocator and the master
    both ask for an offer's quantities.
    """

    __slots__ = ("_d", "_hash", "_quantities")

    _d: dict[Key, _Stored]
    _hash: int | None
    _quantities: dict[str, float] | None

    def __init__(self, values: Mapping[Key, float | Ranges | Iterable[str]] | None = None) -> None:
        built = _EMPTY._d if values is None else _from_mapping(values)._d
        object.__setattr__(self, "_d", built)
        object.__setattr__(self, "_hash", None)
        object.__setattr__(self, "_quantities", None)

    @classmethod
    def _make(cls, d: dict[Key, _Stored]) -> Resources:
        r = object.__new__(cls)
        object.__setattr__(r, "_d", d)
        object.__setattr__(r, "_hash", None)
        object.__setattr__(r, "_quantities", None)
        return r

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Resources is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Resources is immutable")

    @staticmethod
    def empty() -> Resources:
        """The empty value (shared: it is immutable)."""
        return _EMPTY

    # ---- text -------------------------------------------------------------

    @staticmethod
    def parse(text: str, default_role: str = "") -> Resources:
        """Parse the agent flag syntax, e.g. `cpus:4;mem:8192;ports:[31000-32000];cpus(db):2`.

        Sets are written `zones:{a,b}`. Entries without a role get
        `default_role`. Scalars are rounded to thousandths.
        """
        try:
            default = validate_role(default_role.strip())
        except InvalidResources as e:
            raise InvalidResources(f"bad default role: {e}") from None
        builder = _Builder(merge=False)
        for i, raw in enumerate(text.split(";"), start=1):
            token = raw.strip()
            if not token:
                continue
            where = f"'{token}' (item {i})"
            try:
                name, role, value = _parse_token(token, default)
                builder.add(where, name, role, value)
            except InvalidResources as e:
                raise InvalidResources(f"bad resource {where}: {e}") from None
        return builder.build()

    def format(self) -> str:
        """The text `parse` reads back: cpus, mem, disk, gpus, ports first, then by name."""
        return ";".join(
            f"{_show(*key)}:{_format_value(self._d[key])}" for key in sorted(self._d, key=_order)
        )

    # ---- arithmetic ------------------------------------------------------

    def __add__(self, other: Resources) -> Resources:
        if not other._d:
            return self
        if not self._d:
            return other
        d = dict(self._d)
        for k, v in other._d.items():
            mine = d.get(k)
            if mine is None:
                d[k] = v
            elif type(mine) is int and type(v) is int:
                d[k] = mine + v
            else:
                d[k] = _plus(mine, v, k)
        return Resources._make(d)

    def __sub__(self, other: Resources) -> Resources:
        """What is left after taking `other` away; taking more than is here raises."""
        if not other._d:
            return self
        if other is self:  # all of it (an offer of all an agent has left): skip the walk
            return _EMPTY
        d = dict(self._d)
        for k, v in other._d.items():
            mine = d.get(k)
            if type(v) is int and type(mine) is int and mine >= v:
                rest: _Stored = mine - v
            else:
                rest = _minus(mine, v, k)
            if rest:
                d[k] = rest
            else:
                del d[k]
        return Resources._make(d)

    def contains(self, other: Resources) -> bool:
        """Whether `other` fits inside `self`, (name, role) by (name, role)."""
        d = self._d
        for k, v in other._d.items():
            mine = d.get(k)
            if mine is None:
                return False
            if type(v) is int:
                if type(mine) is not int or mine < v:
                    return False
            elif type(v) is Ranges:
                if type(mine) is not Ranges or not mine.contains(v):
                    return False
            elif type(mine) is not frozenset or not v <= mine:
                return False
        return True

    # ---- queries ---------------------------------------------------------

    def is_empty(self) -> bool:
        return not self._d

    def __bool__(self) -> bool:
        return bool(self._d)

    def get(self, name: str, role: str = "") -> Value | None:
        """What (name, role) holds, or None; scalars come back as floats."""
        v = self._d.get((name, "" if role == "*" else role))
        return None if v is None else _public(v)

    def items(self) -> Iterator[tuple[Key, Value]]:
        """((name, role), value) pairs in `format` order; scalars as floats."""
        for key in sorted(self._d, key=_order):
            yield key, _public(self._d[key])

    def scalar(self, name: str) -> float:
        """The scalar `name` summed over all roles; 0.0 if absent."""
        total = 0
        for (n, _), v in self._d.items():
            if n == name and type(v) is int:
                total += v
        return total / _MILLI

    def unreserved(self) -> Resources:
        return Resources._make({k: v for k, v in self._d.items() if not k[1]})

    def reserved(self, role: str | None = None) -> Resources:
        """What is reserved for `role`, or for any role when None ("" or "*": unreserved)."""
        if role is None:
            return Resources._make({k: v for k, v in self._d.items() if k[1]})
        role = "" if role == "*" else role
        return Resources._make({k: v for k, v in self._d.items() if k[1] == role})

    def has_reserved(self) -> bool:
        """Whether anything is reserved: `bool(self.reserved())` without the copy."""
        return any(role for _, role in self._d)

    def allocatable_to(self, role: str) -> Resources:
        """What a framework in `role` may be offered: unreserved plus the reservations of
        `role` and of its ancestors (Mesos: `eng`'s reservation serves `eng/web` too)."""
        role = "" if role == "*" else role
        return Resources._make(
            {k: v for k, v in self._d.items() if not k[1] or roles.is_within(role, k[1])}
        )

    def reassigned(self, role: str) -> Resources:
        """The same resources, all under `role` ("" or "*": unreserved): a reservation
        moves `cpus:1` to `cpus(db):1`, an unreservation back."""
        role = validate_role(role)
        d: dict[Key, _Stored] = {}
        for (name, _), v in self._d.items():
            key = (name, role)
            d[key] = _plus(d[key], v, key) if key in d else v
        return Resources._make(d)

    def overlap(self, other: Resources) -> Resources:
        """What `self` and `other` both hold, (name, role) by (name, role)."""
        d: dict[Key, _Stored] = {}
        for k, v in self._d.items():
            theirs = other._d.get(k)
            if theirs is None or type(theirs) is not type(v):
                continue
            if type(v) is int:
                common: _Stored = min(v, theirs)  # type: ignore[type-var]
            elif type(v) is Ranges:
                common = v - (v - theirs)  # type: ignore[operator]
            else:
                common = v & theirs  # type: ignore[operator]
            if common:
                d[k] = common
        return Resources._make(d)

    def roles(self) -> set[str]:
        """Roles present, "" included when there are unreserved resources."""
        return {role for _, role in self._d}

    def names(self) -> set[str]:
        return {name for name, _ in self._d}

    def quantities(self) -> dict[str, float]:
        """Amount per name over all roles, for DRF shares: ranges and sets count members.

        A new dict each call (the caller may change it), copied from one computed once.
        """
        out = self._quantities
        if out is None:
            out = {}
            for (name, _), v in self._d.items():
                if type(v) is int:
                    q = v / _MILLI
                elif type(v) is Ranges:
                    q = float(v.size())
                else:
                    q = float(len(v))  # type: ignore[arg-type]
                out[name] = out.get(name, 0.0) + q
            object.__setattr__(self, "_quantities", out)
        return dict(out)

    # ---- value protocol ------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Resources):
            return NotImplemented
        return self._d == other._d

    def __hash__(self) -> int:
        h = self._hash
        if h is None:
            h = hash(frozenset(self._d.items()))
            object.__setattr__(self, "_hash", h)
        return h

    def __repr__(self) -> str:
        return f"Resources.parse({self.format()!r})"

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (Resources.parse, (self.format(),))

    # ---- wire ----------------------------------------------------------------

    def to_proto(self) -> list[messages_pb2.Resource]:
        """One Resource message per (name, role), in `format` order."""
        from orbiter.proto import messages_pb2

        out = []
        for (name, role), v in sorted(self._d.items(), key=lambda kv: _order(kv[0])):
            msg = messages_pb2.Resource(name=name, role=role)
            if type(v) is int:
                msg.type = messages_pb2.Resource.SCALAR
                msg.scalar = v / _MILLI
            elif type(v) is Ranges:
                msg.type = messages_pb2.Resource.RANGES
                for b, e in v.ranges:
                    msg.ranges.add(begin=b, end=e)
            else:
                msg.type = messages_pb2.Resource.SET
                msg.items.extend(sorted(v))  # type: ignore[arg-type]
            out.append(msg)
        return out

    def add_to(self, into: RepeatedCompositeFieldContainer[messages_pb2.Resource]) -> None:
        """Append what `to_proto()` returns to a message's repeated Resource field, built
        in place: extending with `to_proto()` builds each message, then copies it."""
        from orbiter.proto import messages_pb2

        add = into.add
        d = self._d
        for key in sorted(d, key=_order):
            v = d[key]
            msg = add()
            msg.name = key[0]
            if key[1]:  # proto3: "" is the default, setting it costs and changes nothing
                msg.role = key[1]
            if type(v) is int:
                msg.scalar = v / _MILLI
            elif type(v) is Ranges:
                msg.type = messages_pb2.Resource.RANGES
                for b, e in v.ranges:
                    msg.ranges.add(begin=b, end=e)
            else:
                msg.type = messages_pb2.Resource.SET
                msg.items.extend(sorted(v))  # type: ignore[arg-type]

    @staticmethod
    def from_proto(resources: Iterable[messages_pb2.Resource]) -> Resources:
        """Validate and convert messages from the wire (frameworks are not trusted).

        A (name, role) repeated with the same type is summed, as in Mesos.
        Role "*" is read as "" (unreserved).
        """
        from orbiter.proto import messages_pb2

        builder = _Builder(merge=True)
        for i, msg in enumerate(resources):
            where = _Where(i, msg)
            try:
                _validate_name(msg.name)
                role = validate_role(msg.role)
                if msg.type == messages_pb2.Resource.SCALAR:
                    if msg.ranges or msg.items:
                        raise InvalidResources("a SCALAR must not carry ranges or items")
                    value: _Stored = _to_milli(msg.scalar)
                elif msg.type == messages_pb2.Resource.RANGES:
                    if msg.scalar or msg.items:
                        raise InvalidResources("RANGES must not carry a scalar or items")
                    value = Ranges(tuple((r.begin, r.end) for r in msg.ranges))
                elif msg.type == messages_pb2.Resource.SET:
                    if msg.scalar or msg.ranges:
                        raise InvalidResources("a SET must not carry a scalar or ranges")
                    value = _validate_items(msg.items)
                else:
                    raise InvalidResources(f"unknown type {msg.type}")
                builder.add(where, msg.name, role, value)
            except InvalidResources as e:
                raise InvalidResources(f"bad resource {where}: {e}") from None
        return builder.build()


class _Where:
    """Names a resource in an error message; formatted only if there is an error."""

    __slots__ = ("i", "msg")

    def __init__(self, i: int, msg: messages_pb2.Resource) -> None:
        self.i = i
        self.msg = msg

    def __str__(self) -> str:
        return f"resources[{self.i}] (name {self.msg.name!r}, role {self.msg.role!r})"


def _minus(have: _Stored | None, need: _Stored, key: Key) -> _Stored:
    """`have - need` for one key, or InvalidResources saying what is missing."""
    shown = _show(*key)
    if have is None:
        raise InvalidResources(f"cannot subtract {shown}:{_format_value(need)}: no '{shown}' here")
    if type(have) is not type(need):
        raise InvalidResources(
            f"cannot subtract {_a(_kind(need))} from {_a(_kind(have))} for '{shown}'"
        )
    if type(need) is int:
        if have >= need:  # type: ignore[operator]
            return have - need  # type: ignore[operator]
        detail = f"only {_fmt_milli(have)} here"  # type: ignore[arg-type]
    elif type(need) is Ranges:
        if have.contains(need):  # type: ignore[union-attr]
            return have - need  # type: ignore[operator]
        detail = f"{(need - have).format()} not here"  # type: ignore[operator]
    else:
        if need <= have:  # type: ignore[operator]
            return have - need  # type: ignore[operator]
        detail = "{" + ",".join(sorted(need - have)) + "} not here"  # type: ignore[operator]
    raise InvalidResources(f"cannot subtract {shown}:{_format_value(need)}: {detail}")


def _parse_token(token: str, default_role: str) -> tuple[str, str, _Stored]:
    head, colon, body = token.partition(":")
    if not colon:
        raise InvalidResources("missing ':' between name and value")
    head = head.strip()
    role = default_role
    if head.endswith(")") and "(" in head:
        open_at = head.index("(")
        inner = head[open_at + 1 : -1].strip()
        if not inner:
            raise InvalidResources(f"empty role in {head!r}: write '*' (or nothing) for unreserved")
        role = validate_role(inner)
        head = head[:open_at].strip()
    elif "(" in head or ")" in head:
        raise InvalidResources(f"malformed role in {head!r}: expected name(role)")
    _validate_name(head)
    body = body.strip()
    if body.startswith("["):
        value: _Stored = Ranges.parse(body)
    elif body.startswith("{"):
        value = _parse_set(body)
    elif not body:
        raise InvalidResources("missing value after ':'")
    else:
        value = _to_milli(_parse_scalar(body))
    return head, role, value


def _from_mapping(values: Mapping[Key, float | Ranges | Iterable[str]]) -> Resources:
    builder = _Builder(merge=False)
    for (name, role), raw in values.items():
        where = f"'{_show(name, role)}'"
        try:
            _validate_name(name)
            stored_role = validate_role(role)
            value: _Stored
            if isinstance(raw, bool):
                raise InvalidResources(f"{raw!r} is not a resource value")
            if isinstance(raw, int | float):
                value = _to_milli(float(raw))
            elif isinstance(raw, Ranges):
                value = raw
            elif isinstance(raw, str):
                raise InvalidResources(f"{raw!r} is a string; give a set of strings")
            else:
                value = _validate_items(raw)
            builder.add(where, name, stored_role, value)
        except InvalidResources as e:
            raise InvalidResources(f"bad resource {where}: {e}") from None
    return builder.build()


_EMPTY = Resources._make({})
