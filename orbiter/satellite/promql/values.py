"""The values a PromQL evaluation returns, and the errors it raises."""

from __future__ import annotations

from dataclasses import dataclass

from orbiter.satellite.series import Labels, Series


class UnsupportedQuery(ValueError):
    """The expression is valid PromQL but uses a construct this evaluator does not implement."""


class QueryError(ValueError):
    """The expression cannot be parsed or evaluated; Prometheus would fail it too."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One element of an instant vector: a label set and its value at `t_ms`."""

    labels: Labels
    value: float
    t_ms: int


@dataclass(frozen=True, slots=True)
class Scalar:
    value: float
    t_ms: int


@dataclass(frozen=True, slots=True)
class String:
    value: str
    t_ms: int


Vector = list[Sample]
Matrix = list[Series]
"""A range vector: one Series (labels, timestamps, values) per label set."""

Value = Vector | Scalar | Matrix | String
