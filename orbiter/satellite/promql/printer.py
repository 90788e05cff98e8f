"""A PromQL expression printed back as Prometheus 2.42 prints it (its AST's `String()`).

/api/v1/rules shows each rule's `query` in this canonical form, so a rule
reads the same in Satellite's API as in Prometheus's: `on () group_left ()`,
`sum by (x) (a)`, matchers sorted and comma-joined, numbers as Go's `%v`
(`0.9`, `1e+06`), durations as Prometheus's `model.Duration` (`1h30m`, `1w`).
promql-parser's own printer differs in several of these (`a{}`, `sum by
(x)(a)`, `or  b`), which is why this exists. Checked against the real
Prometheus in tests/integration/test_promql_printer.py.
"""

from __future__ import annotations

import datetime as dt

import promql_parser as pp

from orbiter.alerts.payload import go_quote
from orbiter.satellite.templates import go_float

_UNITS = (
    ("y", 365 * 86_400_000, True),
    ("w", 7 * 86_400_000, True),
    ("d", 86_400_000, False),
    ("h", 3_600_000, False),
    ("m", 60_000, False),
    ("s", 1000, False),
    ("ms", 1, False),
)
_MATCH_OPS = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def model_duration(ms: int) -> str:
    """Prometheus's `model.Duration.String()`: years and weeks only when exact."""
    if ms == 0:
        return "0s"
    out = []
    for name, unit, exact in _UNITS:
        if exact and ms % unit:
            continue
        if ms >= unit:
            out.append(f"{ms // unit}{name}")
            ms %= unit
    return "".join(out)


def _ms(delta: dt.timedelta | None) -> int:
    if delta is None:
        return 0
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


def _offset(node: object) -> str:
    ms = _ms(node.offset)  # type: ignore[attr-defined]
    if ms > 0:
        return f" offset {model_duration(ms)}"
    if ms < 0:
        return f" offset -{model_duration(-ms)}"
    return ""


def _at(node: object) -> str:
    at = node.at  # type: ignore[attr-defined]
    if at is None:
        return ""
    kind = str(at.type)
    if kind.endswith("Start"):
        return " @ start()"
    if kind.endswith("End"):
        return " @ end()"
    return f" @ {_ms(at.at - _EPOCH) / 1000:.3f}"


def _selector(vs: pp.VectorSelector, with_modifiers: bool = True) -> str:
    name = vs.name or ""
    shown = sorted(
        f"{m.name}{_MATCH_OPS[str(m.op).rsplit('.', 1)[-1]]}{go_quote(m.value)}"
        for m in vs.matchers.matchers
        if not (m.name == "__name__" and str(m.op).endswith(".Equal") and m.value == name)
    )
    mods = _at(vs) + _offset(vs) if with_modifiers else ""
    if not shown:
        return f"{name}{mods}"
    return f"{name}{{{','.join(shown)}}}{mods}"


def _matching(modifier: object) -> str:
    matching = modifier.matching  # type: ignore[attr-defined]
    if matching is None:
        return ""
    on = str(matching.type).endswith("Include")
    labels = list(matching.labels)
    if not labels and not on:
        return ""
    out = f" {'on' if on else 'ignoring'} ({', '.join(labels)})"
    card = repr(modifier.card)  # type: ignore[attr-defined]
    if card.endswith("ManyToOne") or card.endswith("OneToMany"):
        side = "left" if card.endswith("ManyToOne") else "right"
        group = ", ".join(modifier.group_labels or [])  # type: ignore[attr-defined]
        out += f" group_{side} ({group})"
    return out


def format_expr(expr: object) -> str:
    """`expr` (promql-parser's AST) as Prometheus 2.42's `String()` prints it."""
    if isinstance(expr, pp.NumberLiteral):
        return go_float(float(expr.val))
    if isinstance(expr, pp.StringLiteral):
        return go_quote(expr.val)
    if isinstance(expr, pp.ParenExpr):
        return f"({format_expr(expr.expr)})"
    if isinstance(expr, pp.UnaryExpr):
        return f"-{format_expr(expr.expr)}"
    if isinstance(expr, pp.VectorSelector):
        return _selector(expr)
    if isinstance(expr, pp.MatrixSelector):
        vs = expr.vector_selector
        rng = model_duration(_ms(expr.range))
        return f"{_selector(vs, with_modifiers=False)}[{rng}]{_at(vs)}{_offset(vs)}"
    if isinstance(expr, pp.SubqueryExpr):
        step = _ms(expr.step)
        return (
            f"{format_expr(expr.expr)}[{model_duration(_ms(expr.range))}:"
            f"{model_duration(step) if step else ''}]{_at(expr)}{_offset(expr)}"
        )
    if isinstance(expr, pp.Call):
        return f"{expr.func.name}({', '.join(format_expr(a) for a in expr.args)})"
    if isinstance(expr, pp.AggregateExpr):
        head = str(expr.op)
        modifier = expr.modifier
        if modifier is not None:
            labels = ", ".join(modifier.labels)
            if str(modifier.type).endswith("Without"):
                head += f" without ({labels}) "
            elif labels:
                head += f" by ({labels}) "
        param = f"{format_expr(expr.param)}, " if expr.param is not None else ""
        return f"{head}({param}{format_expr(expr.expr)})"
    if isinstance(expr, pp.BinaryExpr):
        modifier = expr.modifier
        returns_bool = " bool" if modifier is not None and modifier.return_bool else ""
        matching = _matching(modifier) if modifier is not None else ""
        lhs, rhs = format_expr(expr.lhs), format_expr(expr.rhs)
        return f"{lhs} {expr.op}{returns_bool}{matching} {rhs}"
    raise TypeError(f"cannot print {type(expr).__name__}")
