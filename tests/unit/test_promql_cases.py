"""PromQL evaluation cases ported from Prometheus's promql/testdata (operators.test,
functions.test, aggregators.test, histograms.test, staleness.test, subquery.test,
at_modifier.test) plus our own, each as: load series, evaluate at T, expect samples.

Expected values are Prometheus 2.42's answers; where our notes below say so, a
case was recomputed by hand from the 2.42 algorithm (e.g. scalar-on-the-left
comparisons keep the vector's value since prometheus/prometheus#5452).
"""

from __future__ import annotations

import pytest

from orbiter.satellite.promql.engine import QueryError, instant_query
from orbiter.satellite.promql.values import Scalar
from tests.unit.test_promql_support import MemoryStorage, duration_ms, parse_labels, same_value

HTTP_REQUESTS = """
http_requests{job="api-server", instance="0", group="production"} 0+10x10
http_requests{job="api-server", instance="1", group="production"} 0+20x10
http_requests{job="api-server", instance="0", group="canary"} 0+30x10
http_requests{job="api-server", instance="1", group="canary"} 0+40x10
http_requests{job="app-server", instance="0", group="production"} 0+50x10
http_requests{job="app-server", instance="1", group="production"} 0+60x10
http_requests{job="app-server", instance="0", group="canary"} 0+70x10
http_requests{job="app-server", instance="1", group="canary"} 0+80x10
vector_matching_a{l="x"} 0+1x100
vector_matching_a{l="y"} 0+2x50
vector_matching_b{l="x"} 0+4x25
"""

NODES = """
node_var{instance="abc",job="node"} 2
node_role{instance="abc",job="node",role="prometheus"} 1
node_cpu{instance="abc",job="node",mode="idle"} 3
node_cpu{instance="abc",job="node",mode="user"} 1
node_cpu{instance="def",job="node",mode="idle"} 8
node_cpu{instance="def",job="node",mode="user"} 2
random{foo="bar"} 1
threshold{instance="abc",job="node",target="a@b.com"} 0
"""

CHANGES = """
http_requests{path="/foo"} 1 2 3 0 1 0 0 1 2 0
http_requests{path="/bar"} 1 2 3 4 5 1 2 3 4 5
http_requests{path="/biz"} 0 0 0 0 0 1 1 1 1 1
"""

COUNTERS = """
http_requests{path="/foo"} 0+10x10
http_requests{path="/bar"} 0+10x5 0+10x5
"""

HISTOGRAM = """
testhistogram_bucket{le="0.1", start="positive"} 0+5x10
testhistogram_bucket{le=".2", start="positive"} 0+7x10
testhistogram_bucket{le="1e0", start="positive"} 0+11x10
testhistogram_bucket{le="+Inf", start="positive"} 0+12x10
testhistogram_bucket{le="-.2", start="negative"} 0+1x10
testhistogram_bucket{le="-0.1", start="negative"} 0+2x10
testhistogram_bucket{le="0.3", start="negative"} 0+2x10
testhistogram_bucket{le="+Inf", start="negative"} 0+3x10
"""

LABELS = """
testmetric{src="source-value-10",dst="original-destination-value"} 0
testmetric{src="source-value-20",dst="original-destination-value"} 1
"""

# (name, load interval, series, eval time, expression, expected lines)
CASES: list[tuple[str, str, str, str, str, list[str]]] = [
    # --- arithmetic -------------------------------------------------------
    (
        "sum minus count",
        "5m",
        HTTP_REQUESTS,
        "50m",
        "SUM(http_requests) BY (job) - COUNT(http_requests) BY (job)",
        ['{job="api-server"} 996', '{job="app-server"} 2596'],
    ),
    (
        "scalar minus vector",
        "5m",
        HTTP_REQUESTS,
        "50m",
        "2 - SUM(http_requests) BY (job)",
        ['{job="api-server"} -998', '{job="app-server"} -2598'],
    ),
    (
        "unary minus drops the name",
        "5m",
        HTTP_REQUESTS,
        "50m",
        '-http_requests{job="api-server",instance="0",group="production"}',
        ['{job="api-server",instance="0",group="production"} -100'],
    ),
    (
        "unary plus keeps the name",
        "5m",
        HTTP_REQUESTS,
        "50m",
        '+http_requests{job="api-server",instance="0",group="production"}',
        ['http_requests{job="api-server",instance="0",group="production"} 100'],
    ),
    (
        "triple negation",
        "5m",
        HTTP_REQUESTS,
        "50m",
        "- - - SUM(http_requests) BY (job)",
        ['{job="api-server"} -1000', '{job="app-server"} -2600'],
    ),
    (
        "scalar divided by vector",
        "5m",
        HTTP_REQUESTS,
        "50m",
        "1000 / SUM(http_requests) BY (job)",
        ['{job="api-server"} 1', '{job="app-server"} 0.38461538461538464'],
    ),
    (
        "modulo",
        "5m",
        HTTP_REQUESTS,
        "50m",
        "SUM(http_requests) BY (job) % 3",
        ['{job="api-server"} 1', '{job="app-server"} 2'],
    ),
    (
        "float modulo",
        "5m",
        HTTP_REQUESTS,
        "50m",
        "SUM(http_requests) BY (job) % 0.3",
        ['{job="api-server"} 0.1', '{job="app-server"} 0.2'],
    ),
    (
        "power",
        "5m",
        HTTP_REQUESTS,
        "50m",
        "SUM(http_requests) BY (job) ^ 2",
        ['{job="api-server"} 1000000', '{job="app-server"} 6760000'],
    ),
    (
        "power is right associative",
        "5m",
        HTTP_REQUESTS,
        "50m",
        "SUM(http_requests) BY (job) % 2 ^ 3 ^ 2",
        ['{job="api-server"} 488', '{job="app-server"} 40'],
    ),
    (
        "power binds tighter than modulo",
        "5m",
        HTTP_REQUESTS,
        "50m",
        "SUM(http_requests) BY (job) % 2 ^ 3 ^ 2 ^ 2",
        ['{job="api-server"} 1000', '{job="app-server"} 2600'],
    ),
    (
        "vector to the power of vector",
        "5m",
        HTTP_REQUESTS,
        "50m",
        "COUNT(http_requests) BY (job) ^ COUNT(http_requests) BY (job)",
        ['{job="api-server"} 256', '{job="app-server"} 256'],
    ),
    (
        "division by zero is +Inf",
        "5m",
        HTTP_REQUESTS,
        "50m",
        "SUM(http_requests) BY (job) / 0",
        ['{job="api-server"} +Inf', '{job="app-server"} +Inf'],
    ),
    (
        "zero divided by zero is NaN",
        "5m",
        HTTP_REQUESTS,
        "0m",
        "SUM(http_requests) BY (job) / 0",
        ['{job="api-server"} NaN', '{job="app-server"} NaN'],
    ),
    (
        "modulo by zero is NaN",
        "5m",
        HTTP_REQUESTS,
        "50m",
        "SUM(http_requests) BY (job) % 0",
        ['{job="api-server"} NaN', '{job="app-server"} NaN'],
    ),
    (
        "rate in arithmetic",
        "5m",
        HTTP_REQUESTS,
        "50m",
        'http_requests{job="api-server", group="canary"}'
        ' + rate(http_requests{job="api-server"}[5m]) * 5 * 60',
        [
            '{group="canary", instance="0", job="api-server"} 330',
            '{group="canary", instance="1", job="api-server"} 440',
        ],
    ),
    (
        "rate extrapolates to the window start",
        "5m",
        HTTP_REQUESTS,
        "50m",
        "rate(http_requests[25m]) * 25 * 60",
        [
            '{group="canary", instance="0", job="api-server"} 150',
            '{group="canary", instance="0", job="app-server"} 350',
            '{group="canary", instance="1", job="api-server"} 200',
            '{group="canary", instance="1", job="app-server"} 400',
            '{group="production", instance="0", job="api-server"} 50',
            '{group="production", instance="0", job="app-server"} 249.99999999999997',
            '{group="production", instance="1", job="api-server"} 100',
            '{group="production", instance="1", job="app-server"} 300',
        ],
    ),
    # --- set operators -----------------------------------------------------
    (
        "and keeps matching lhs",
        "5m",
        HTTP_REQUESTS,
        "50m",
        'http_requests{group="canary"} and http_requests{instance="0"}',
        [
            'http_requests{group="canary", instance="0", job="api-server"} 300',
            'http_requests{group="canary", instance="0", job="app-server"} 700',
        ],
    ),
    (
        "and after arithmetic",
        "5m",
        HTTP_REQUESTS,
        "50m",
        '(http_requests{group="canary"} + 1) and http_requests{instance="0"}',
        [
            '{group="canary", instance="0", job="api-server"} 301',
            '{group="canary", instance="0", job="app-server"} 701',
        ],
    ),
    (
        "and on",
        "5m",
        HTTP_REQUESTS,
        "50m",
        '(http_requests{group="canary"} + 1) and on(instance)'
        ' http_requests{instance="0", group="production"}',
        [
            '{group="canary", instance="0", job="api-server"} 301',
            '{group="canary", instance="0", job="app-server"} 701',
        ],
    ),
    (
        "and ignoring",
        "5m",
        HTTP_REQUESTS,
        "50m",
        '(http_requests{group="canary"} + 1) and ignoring(group, job)'
        ' http_requests{instance="0", group="production"}',
        [
            '{group="canary", instance="0", job="api-server"} 301',
            '{group="canary", instance="0", job="app-server"} 701',
        ],
    ),
    (
        "or drops rhs overlap",
        "5m",
        HTTP_REQUESTS,
        "50m",
        '(http_requests{group="canary"} + 1) or http_requests{instance="1"}',
        [
            '{group="canary", instance="0", job="api-server"} 301',
            '{group="canary", instance="0", job="app-server"} 701',
            '{group="canary", instance="1", job="api-server"} 401',
            '{group="canary", instance="1", job="app-server"} 801',
            'http_requests{group="production", instance="1", job="api-server"} 200',
            'http_requests{group="production", instance="1", job="app-server"} 600',
        ],
    ),
    (
        "or on instance keeps series without it",
        "5m",
        HTTP_REQUESTS,
        "50m",
        '(http_requests{group="canary"} + 1) or on(instance)'
        " (http_requests or cpu_count or vector_matching_a)",
        [
            '{group="canary", instance="0", job="api-server"} 301',
            '{group="canary", instance="0", job="app-server"} 701',
            '{group="canary", instance="1", job="api-server"} 401',
            '{group="canary", instance="1", job="app-server"} 801',
            'vector_matching_a{l="x"} 10',
            'vector_matching_a{l="y"} 20',
        ],
    ),
    (
        "unless",
        "5m",
        HTTP_REQUESTS,
        "50m",
        'http_requests{group="canary"} unless http_requests{instance="0"}',
        [
            'http_requests{group="canary", instance="1", job="api-server"} 400',
            'http_requests{group="canary", instance="1", job="app-server"} 800',
        ],
    ),
    (
        "unless on job removes all",
        "5m",
        HTTP_REQUESTS,
        "50m",
        'http_requests{group="canary"} unless on(job) http_requests{instance="0"}',
        [],
    ),
    (
        "unless ignoring",
        "5m",
        HTTP_REQUESTS,
        "50m",
        'http_requests{group="canary"} unless ignoring(group) http_requests{instance="0"}',
        [
            'http_requests{group="canary", instance="1", job="api-server"} 400',
            'http_requests{group="canary", instance="1", job="app-server"} 800',
        ],
    ),
    (
        "and on() with vector(1)",
        "5m",
        HTTP_REQUESTS,
        "50m",
        'http_requests{job="api-server",group="canary"} AND ON (dummy) vector(1)',
        [
            'http_requests{group="canary", instance="0", job="api-server"} 300',
            'http_requests{group="canary", instance="1", job="api-server"} 400',
        ],
    ),
    (
        "vector(1) and on() gates on presence",
        "5m",
        HTTP_REQUESTS,
        "50m",
        'vector(1) and on() http_requests{job="api-server"}',
        ["{} 1"],
    ),
    (
        "vector(1) and on() absent series gives nothing",
        "5m",
        HTTP_REQUESTS,
        "50m",
        "vector(1) and on() nonexistent",
        [],
    ),
    # --- one-to-one matching -------------------------------------------------
    (
        "divide on instance and job",
        "5m",
        HTTP_REQUESTS,
        "50m",
        'http_requests{group="canary"} / on(instance,job) http_requests{group="production"}',
        [
            '{instance="0", job="api-server"} 3',
            '{instance="0", job="app-server"} 1.4',
            '{instance="1", job="api-server"} 2',
            '{instance="1", job="app-server"} 1.3333333333333333',
        ],
    ),
    (
        "divide ignoring group",
        "5m",
        HTTP_REQUESTS,
        "50m",
        'http_requests{group="canary"} / ignoring(group) http_requests{group="production"}',
        [
            '{instance="0", job="api-server"} 3',
            '{instance="0", job="app-server"} 1.4',
            '{instance="1", job="api-server"} 2',
            '{instance="1", job="app-server"} 1.3333333333333333',
        ],
    ),
    # --- comparisons ---------------------------------------------------------
    (
        "greater than filters",
        "5m",
        HTTP_REQUESTS,
        "50m",
        "SUM(http_requests) BY (job) > 1000",
        ['{job="app-server"} 2600'],
    ),
    (
        "scalar on the left keeps the vector value",
        "5m",
        HTTP_REQUESTS,
        "50m",
        "1000 < SUM(http_requests) BY (job)",
        ['{job="app-server"} 2600'],
    ),
    (
        "less or equal",
        "5m",
        HTTP_REQUESTS,
        "50m",
        "SUM(http_requests) BY (job) <= 1000",
        ['{job="api-server"} 1000'],
    ),
    (
        "not equal",
        "5m",
        HTTP_REQUESTS,
        "50m",
        "SUM(http_requests) BY (job) != 1000",
        ['{job="app-server"} 2600'],
    ),
    (
        "bool returns 0 or 1",
        "5m",
        HTTP_REQUESTS,
        "50m",
        "SUM(http_requests) BY (job) == bool 1000",
        ['{job="api-server"} 1', '{job="app-server"} 0'],
    ),
    (
        "vector bool vector",
        "5m",
        HTTP_REQUESTS,
        "50m",
        "SUM(http_requests) BY (job) != bool SUM(http_requests) BY (job)",
        ['{job="api-server"} 0', '{job="app-server"} 0'],
    ),
    (
        "bool drops the metric name",
        "5m",
        HTTP_REQUESTS,
        "50m",
        'http_requests{job="api-server", instance="0", group="production"} == bool 100',
        ['{job="api-server", instance="0", group="production"} 1'],
    ),
    (
        "comparison keeps the metric name",
        "5m",
        HTTP_REQUESTS,
        "50m",
        'http_requests{job="api-server", group="production"} > 150',
        ['http_requests{job="api-server", instance="1", group="production"} 200'],
    ),
    (
        "one-to-one on keeps only the on labels",
        "5m",
        'metricA{instance="abc",job="node"} 2',
        "5m",
        "metricA == on (instance) metricA",
        ['{instance="abc"} 2'],
    ),
    # --- group_left / group_right ------------------------------------------------
    (
        "group_right copies role",
        "5m",
        NODES,
        "5m",
        "node_role * on (instance) group_right (role) node_var",
        ['{instance="abc",job="node",role="prometheus"} 2'],
    ),
    (
        "group_left copies role",
        "5m",
        NODES,
        "5m",
        "node_var * on (instance) group_left (role) node_role",
        ['{instance="abc",job="node",role="prometheus"} 2'],
    ),
    (
        "group_left with ignoring",
        "5m",
        NODES,
        "5m",
        "node_cpu * ignoring (role, mode) group_left (role) node_role",
        [
            '{instance="abc",job="node",mode="idle",role="prometheus"} 3',
            '{instance="abc",job="node",mode="user",role="prometheus"} 1',
        ],
    ),
    (
        "ratio of total",
        "5m",
        NODES,
        "5m",
        "node_cpu / on (instance) group_left sum by (instance,job)(node_cpu)",
        [
            '{instance="abc",job="node",mode="idle"} .75',
            '{instance="abc",job="node",mode="user"} .25',
            '{instance="def",job="node",mode="idle"} .80',
            '{instance="def",job="node",mode="user"} .20',
        ],
    ),
    (
        "ratio of total by job",
        "5m",
        NODES,
        "5m",
        "sum by (mode, job)(node_cpu) / on (job) group_left sum by (job)(node_cpu)",
        [
            '{job="node",mode="idle"} 0.7857142857142857',
            '{job="node",mode="user"} 0.21428571428571427',
        ],
    ),
    (
        "group_left of a missing label",
        "5m",
        NODES,
        "5m",
        "node_cpu / ignoring (mode) group_left(dummy) sum without (mode)(node_cpu)",
        [
            '{instance="abc",job="node",mode="idle"} .75',
            '{instance="abc",job="node",mode="user"} .25',
            '{instance="def",job="node",mode="idle"} .80',
            '{instance="def",job="node",mode="user"} .20',
        ],
    ),
    (
        "copy a label from an unrelated metric",
        "5m",
        NODES,
        "5m",
        "node_cpu + on(dummy) group_left(foo) random*0",
        [
            '{instance="abc",job="node",mode="idle",foo="bar"} 3',
            '{instance="abc",job="node",mode="user",foo="bar"} 1',
            '{instance="def",job="node",mode="idle",foo="bar"} 8',
            '{instance="def",job="node",mode="user",foo="bar"} 2',
        ],
    ),
    (
        "threshold from a metric with a default",
        "5m",
        NODES,
        "5m",
        "node_cpu > on(job, instance) group_left(target) "
        "(threshold or on (job, instance) (sum by (job, instance)(node_cpu) * 0 + 1))",
        [
            'node_cpu{instance="abc",job="node",mode="idle",target="a@b.com"} 3',
            'node_cpu{instance="abc",job="node",mode="user",target="a@b.com"} 1',
            'node_cpu{instance="def",job="node",mode="idle"} 8',
            'node_cpu{instance="def",job="node",mode="user"} 2',
        ],
    ),
    (
        "on() with no common labels",
        "5m",
        'random{foo="bar"} 2\nmetricA{baz="meh"} 3',
        "5m",
        "random + on() metricA",
        ["{} 5"],
    ),
    (
        "ignoring() is the default",
        "5m",
        'metricA{baz="meh"} 3\nmetricB{baz="meh"} 4',
        "5m",
        "metricA + ignoring() metricB",
        ['{baz="meh"} 7'],
    ),
    # --- aggregations ------------------------------------------------------
    (
        "sum by",
        "5m",
        HTTP_REQUESTS,
        "50m",
        'SUM BY (group) (http_requests{job="api-server"})',
        ['{group="canary"} 700', '{group="production"} 300'],
    ),
    (
        "sum without",
        "5m",
        HTTP_REQUESTS,
        "50m",
        'sum without (instance) (http_requests{job="api-server"})',
        ['{group="canary",job="api-server"} 700', '{group="production",job="api-server"} 300'],
    ),
    (
        "avg by",
        "5m",
        HTTP_REQUESTS,
        "50m",
        'avg by (group) (http_requests{job="api-server"})',
        ['{group="canary"} 350', '{group="production"} 150'],
    ),
    (
        "count by",
        "5m",
        HTTP_REQUESTS,
        "50m",
        'count by (group) (http_requests{job="api-server"})',
        ['{group="canary"} 2', '{group="production"} 2'],
    ),
    (
        "min and max",
        "5m",
        HTTP_REQUESTS,
        "50m",
        "max(http_requests) - min(http_requests)",
        ["{} 700"],
    ),
    (
        "group",
        "5m",
        HTTP_REQUESTS,
        "50m",
        "group by (job) (http_requests)",
        ['{job="api-server"} 1', '{job="app-server"} 1'],
    ),
    ("stddev", "5m", HTTP_REQUESTS, "50m", "stddev(http_requests)", ["{} 229.128784747792"]),
    ("stdvar", "5m", HTTP_REQUESTS, "50m", "stdvar(http_requests)", ["{} 52500"]),
    (
        "stddev by instance",
        "5m",
        HTTP_REQUESTS,
        "50m",
        "stddev by (instance)(http_requests)",
        ['{instance="0"} 223.60679774997897', '{instance="1"} 223.60679774997897'],
    ),
    (
        "topk keeps names",
        "5m",
        HTTP_REQUESTS,
        "50m",
        "topk(3, http_requests)",
        [
            'http_requests{group="canary", instance="1", job="app-server"} 800',
            'http_requests{group="canary", instance="0", job="app-server"} 700',
            'http_requests{group="production", instance="1", job="app-server"} 600',
        ],
    ),
    (
        "topk by group",
        "5m",
        HTTP_REQUESTS,
        "50m",
        "topk by (group) (1, http_requests)",
        [
            'http_requests{group="canary", instance="1", job="app-server"} 800',
            'http_requests{group="production", instance="1", job="app-server"} 600',
        ],
    ),
    (
        "bottomk",
        "5m",
        HTTP_REQUESTS,
        "50m",
        "bottomk(2, http_requests)",
        [
            'http_requests{group="production", instance="0", job="api-server"} 100',
            'http_requests{group="production", instance="1", job="api-server"} 200',
        ],
    ),
    ("topk with k below one is empty", "5m", HTTP_REQUESTS, "50m", "topk(0, http_requests)", []),
    ("quantile", "5m", HTTP_REQUESTS, "50m", "quantile(0.5, http_requests)", ["{} 450"]),
    (
        "quantile by",
        "5m",
        HTTP_REQUESTS,
        "50m",
        "quantile by (group) (0.5, http_requests)",
        ['{group="canary"} 550', '{group="production"} 350'],
    ),
    (
        "quantile above one is +Inf",
        "5m",
        HTTP_REQUESTS,
        "50m",
        "quantile(1.5, http_requests)",
        ["{} +Inf"],
    ),
    (
        "count_values",
        "5m",
        'v{a="1"} 3\nv{a="2"} 3\nv{a="3"} 1.5',
        "0m",
        'count_values("value", v)',
        ['{value="3"} 2', '{value="1.5"} 1'],
    ),
    (
        "count_values by",
        "5m",
        'v{a="1",b="x"} 3\nv{a="2",b="x"} 3\nv{a="3",b="y"} 3',
        "0m",
        'count_values by (b) ("value", v)',
        ['{b="x",value="3"} 2', '{b="y",value="3"} 1'],
    ),
    ("max ignores NaN", "5m", 'v{a="1"} NaN\nv{a="2"} 1', "0m", "max(v)", ["{} 1"]),
    ("min ignores NaN", "5m", 'v{a="1"} NaN\nv{a="2"} 1', "0m", "min(v)", ["{} 1"]),
    ("sum with NaN is NaN", "5m", 'v{a="1"} NaN\nv{a="2"} 1', "0m", "sum(v)", ["{} NaN"]),
    (
        "topk prefers numbers to NaN",
        "5m",
        'v{a="1"} NaN\nv{a="2"} 1',
        "0m",
        "topk(1, v)",
        ['v{a="2"} 1'],
    ),
    ("avg of infinities", "5m", 'v{a="1"} Inf\nv{a="2"} 1', "0m", "avg(v)", ["{} +Inf"]),
    # --- range functions ------------------------------------------------------
    (
        "resets 5m",
        "5m",
        CHANGES,
        "50m",
        "resets(http_requests[5m])",
        ['{path="/foo"} 0', '{path="/bar"} 0', '{path="/biz"} 0'],
    ),
    (
        "resets 20m",
        "5m",
        CHANGES,
        "50m",
        "resets(http_requests[20m])",
        ['{path="/foo"} 1', '{path="/bar"} 0', '{path="/biz"} 0'],
    ),
    (
        "resets 50m",
        "5m",
        CHANGES,
        "50m",
        "resets(http_requests[50m])",
        ['{path="/foo"} 3', '{path="/bar"} 1', '{path="/biz"} 0'],
    ),
    ("resets of nothing", "5m", CHANGES, "50m", "resets(nonexistent_metric[50m])", []),
    (
        "changes 30m",
        "5m",
        CHANGES,
        "50m",
        "changes(http_requests[30m])",
        ['{path="/foo"} 4', '{path="/bar"} 5', '{path="/biz"} 1'],
    ),
    (
        "changes 50m",
        "5m",
        CHANGES,
        "50m",
        "changes(http_requests[50m])",
        ['{path="/foo"} 8', '{path="/bar"} 9', '{path="/biz"} 1'],
    ),
    (
        "increase handles a counter reset",
        "5m",
        COUNTERS,
        "50m",
        "increase(http_requests[50m])",
        ['{path="/foo"} 100', '{path="/bar"} 90'],
    ),
    # Window [1m, 51m] holds 10 samples 45m apart: extrapolated by 4m at the start
    # and 1m at the end, i.e. by 3000/2700 (hand-computed from 2.42's extrapolatedRate).
    (
        "increase extrapolates",
        "5m",
        COUNTERS,
        "51m",
        "increase(http_requests[50m])",
        ['{path="/foo"} 100', '{path="/bar"} 88.88888888888889'],
    ),
    (
        "irate",
        "5m",
        COUNTERS,
        "50m",
        "irate(http_requests[50m])",
        ['{path="/foo"} .03333333333333333333', '{path="/bar"} .03333333333333333333'],
    ),
    (
        "irate after a reset",
        "5m",
        COUNTERS,
        "30m",
        "irate(http_requests[50m])",
        ['{path="/foo"} .03333333333333333333', '{path="/bar"} 0'],
    ),
    (
        "idelta",
        "5m",
        COUNTERS,
        "30m",
        "idelta(http_requests[50m])",
        ['{path="/foo"} 10', '{path="/bar"} -50'],
    ),
    ("delta of a gauge", "5m", "g 0+10x10", "50m", "delta(g[50m])", ["{} 100"]),
    (
        "delta extrapolates to both edges when close",
        "5m",
        "g 0+10x10",
        "52m30s",
        "delta(g[20m])",
        ["{} 40"],
    ),
    # Samples at 40m..50m in [20m, 50m]: the start is 20m away, beyond 1.1 average
    # intervals, so extrapolation adds only half an interval (600s -> 750s).
    (
        "delta extrapolates half an interval when far",
        "5m",
        "g _x8 80 90 100",
        "50m",
        "delta(g[30m])",
        ["{} 25"],
    ),
    (
        "deriv equals rate for a line",
        "5m",
        'http_requests{job="app"} 0+80x10',
        "50m",
        "deriv(http_requests[50m])",
        ['{job="app"} 0.26666666666666666'],
    ),
    (
        "deriv across a reset",
        "5m",
        "testcounter_reset_middle 0+10x4 0+10x5",
        "50m",
        "deriv(testcounter_reset_middle[100m])",
        ["{} 0.010606060606060607"],
    ),
    # Least squares over X/s = 0, 300, ... 3000 and Y = 0 10 20 30 40 0 10 20 30 40 50:
    # slope 105000/9900000, line at the evaluation time (3000s) 38.636..., as 2.42
    # computes it (intercept taken at the evaluation time, not the last sample).
    (
        "predict_linear",
        "5m",
        "testcounter_reset_middle 0+10x4 0+10x5",
        "50m",
        "predict_linear(testcounter_reset_middle[100m], 3600)",
        ["{} 76.81818181818181"],
    ),
    (
        "predict_linear from now",
        "5m",
        "testcounter_reset_middle 0+10x4 0+10x5",
        "50m",
        "predict_linear(testcounter_reset_middle[100m], 0)",
        ["{} 38.63636363636363"],
    ),
    ("avg_over_time", "1m", "m 1 2 3 4 5", "4m", "avg_over_time(m[4m])", ["{} 3"]),
    ("sum_over_time", "1m", "m 1 2 3 4 5", "4m", "sum_over_time(m[2m])", ["{} 12"]),
    ("count_over_time", "1m", "m 1 2 3 4 5", "4m", "count_over_time(m[150s])", ["{} 3"]),
    ("min_over_time", "1m", "m 3 1 5 2", "3m", "min_over_time(m[3m])", ["{} 1"]),
    ("max_over_time", "1m", "m 3 1 5 2", "3m", "max_over_time(m[3m])", ["{} 5"]),
    ("max_over_time skips NaN", "1m", "m NaN 1 NaN", "2m", "max_over_time(m[3m])", ["{} 1"]),
    ("quantile_over_time", "1m", "m 1 2 3 4 5", "4m", "quantile_over_time(0.25, m[4m])", ["{} 2"]),
    ("stddev_over_time", "1m", "m 2 4 4 4 5 5 7 9", "7m", "stddev_over_time(m[7m])", ["{} 2"]),
    ("stdvar_over_time", "1m", "m 2 4 4 4 5 5 7 9", "7m", "stdvar_over_time(m[7m])", ["{} 4"]),
    (
        "last_over_time keeps the name",
        "1m",
        'm{a="b"} 1 2 3',
        "150s",
        "last_over_time(m[5m])",
        ['m{a="b"} 3'],
    ),
    ("present_over_time", "1m", 'm{a="b"} 1 _ _', "2m", "present_over_time(m[1m])", []),
    (
        "present_over_time in range",
        "1m",
        'm{a="b"} 1 _ _',
        "2m",
        "present_over_time(m[2m])",
        ['{a="b"} 1'],
    ),
    (
        "absent_over_time of a present series",
        "1m",
        'm{a="b"} 1',
        "0m",
        'absent_over_time(m{a="b"}[1m])',
        [],
    ),
    (
        "absent_over_time takes equality labels",
        "1m",
        'm{a="b"} 1',
        "0m",
        'absent_over_time(nope{a="b", c=~"d"}[1m])',
        ['{a="b"} 1'],
    ),
    (
        "range functions drop the name",
        "5m",
        COUNTERS,
        "50m",
        'rate(http_requests{path="/foo"}[50m])',
        ['{path="/foo"} 0.03333333333333333'],
    ),
    # --- instant functions ----------------------------------------------------
    ("abs drops the name", "5m", 'm{a="1"} -3', "0m", "abs(m)", ['{a="1"} 3']),
    ("ceil floor", "5m", 'm{a="1"} 1.5', "0m", "ceil(m) + floor(m)", ['{a="1"} 3']),
    (
        "round ties up",
        "5m",
        'm{a="1"} -2.5\nm{a="2"} 2.5',
        "0m",
        "round(m)",
        ['{a="1"} -2', '{a="2"} 3'],
    ),
    ("round to nearest", "5m", 'm{a="1"} 2.26', "0m", "round(m, 0.1)", ['{a="1"} 2.3']),
    (
        "clamp",
        "5m",
        'm{a="1"} -5\nm{a="2"} 5\nm{a="3"} 50',
        "0m",
        "clamp(m, 0, 10)",
        ['{a="1"} 0', '{a="2"} 5', '{a="3"} 10'],
    ),
    ("clamp with max below min is empty", "5m", 'm{a="1"} 1', "0m", "clamp(m, 5, 0)", []),
    (
        "clamp_min clamp_max",
        "5m",
        'm{a="1"} 5',
        "0m",
        "clamp_min(m, 7) + clamp_max(m, 3)",
        ['{a="1"} 10'],
    ),
    ("exp ln", "5m", 'm{a="1"} 2', "0m", "ln(exp(m))", ['{a="1"} 2']),
    ("ln of zero", "5m", 'm{a="1"} 0', "0m", "ln(m)", ['{a="1"} -Inf']),
    ("ln of negative", "5m", 'm{a="1"} -1', "0m", "ln(m)", ['{a="1"} NaN']),
    ("log2 log10", "5m", 'm{a="1"} 8', "0m", "log2(m) + log10(m * 125)", ['{a="1"} 6']),
    ("sqrt", "5m", 'm{a="1"} 16\nm{a="2"} -1', "0m", "sqrt(m)", ['{a="1"} 4', '{a="2"} NaN']),
    ("time", "5m", "", "60m", "vector(time())", ["{} 3600"]),
    (
        "timestamp reads the sample time",
        "1m",
        'm{a="1"} 1 2',
        "90s",
        "timestamp(m)",
        ['{a="1"} 60'],
    ),
    (
        "timestamp of an expression is the eval time",
        "1m",
        'm{a="1"} 1 2',
        "90s",
        "timestamp(m + 1)",
        ['{a="1"} 90'],
    ),
    ("scalar of one series", "5m", 'm{a="1"} 4', "0m", "vector(scalar(m))", ["{} 4"]),
    (
        "scalar of many series is NaN",
        "5m",
        'm{a="1"} 4\nm{a="2"} 4',
        "0m",
        "vector(scalar(m))",
        ["{} NaN"],
    ),
    (
        "absent of a missing series",
        "5m",
        "",
        "0m",
        'absent(nonexistent{job="x", a=~"y"})',
        ['{job="x"} 1'],
    ),
    ("absent with a repeated label", "5m", "", "0m", 'absent(nonexistent{a="x", a="y"})', ["{} 1"]),
    ("absent of an aggregation", "5m", "", "0m", 'absent(sum(nonexistent{job="x"}))', ["{} 1"]),
    ("absent of a present series", "5m", HTTP_REQUESTS, "0m", "absent(http_requests)", []),
    (
        "sort",
        "5m",
        'm{a="1"} 3\nm{a="2"} NaN\nm{a="3"} 1',
        "0m",
        "sort(m)",
        ['m{a="3"} 1', 'm{a="1"} 3', 'm{a="2"} NaN'],
    ),
    (
        "sort_desc",
        "5m",
        'm{a="1"} 3\nm{a="2"} NaN\nm{a="3"} 1',
        "0m",
        "sort_desc(m)",
        ['m{a="1"} 3', 'm{a="3"} 1', 'm{a="2"} NaN'],
    ),
    (
        "label_replace full match",
        "5m",
        LABELS,
        "0m",
        'label_replace(testmetric, "dst", "destination-value-$1", "src", "source-value-(.*)")',
        [
            'testmetric{src="source-value-10",dst="destination-value-10"} 0',
            'testmetric{src="source-value-20",dst="destination-value-20"} 1',
        ],
    ),
    (
        "label_replace no substring match",
        "5m",
        LABELS,
        "0m",
        'label_replace(testmetric, "dst", "destination-value-$1", "src", "value-(.*)")',
        [
            'testmetric{src="source-value-10",dst="original-destination-value"} 0',
            'testmetric{src="source-value-20",dst="original-destination-value"} 1',
        ],
    ),
    (
        "label_replace several groups",
        "5m",
        LABELS,
        "0m",
        'label_replace(testmetric, "dst", "$1-value-$2", "src", "(.*)-value-(.*)")',
        [
            'testmetric{src="source-value-10",dst="source-value-10"} 0',
            'testmetric{src="source-value-20",dst="source-value-20"} 1',
        ],
    ),
    (
        "label_replace empty source matched",
        "5m",
        LABELS,
        "0m",
        'label_replace(testmetric, "dst", "value-$1", "nonexistent-src", "(.*)")',
        [
            'testmetric{src="source-value-10",dst="value-"} 0',
            'testmetric{src="source-value-20",dst="value-"} 1',
        ],
    ),
    (
        "label_replace empty result drops the label",
        "5m",
        LABELS,
        "0m",
        'label_replace(testmetric, "dst", "", "dst", ".*")',
        ['testmetric{src="source-value-10"} 0', 'testmetric{src="source-value-20"} 1'],
    ),
    (
        "label_replace $1x names group 1x",
        "5m",
        LABELS,
        "0m",
        'label_replace(testmetric, "dst", "$1x-${1}x", "src", "source-value-(.*)")',
        [
            'testmetric{src="source-value-10",dst="-10x"} 0',
            'testmetric{src="source-value-20",dst="-20x"} 1',
        ],
    ),
    (
        "label_join",
        "5m",
        'm{a="x",b="y"} 1',
        "0m",
        'label_join(m, "c", "-", "a", "b", "z")',
        ['m{a="x",b="y",c="x-y-"} 1'],
    ),
    (
        "label_join empty drops",
        "5m",
        'm{a="x",c="y"} 1',
        "0m",
        'label_join(m, "c", "-", "z")',
        ['m{a="x"} 1'],
    ),
    # --- histogram_quantile -----------------------------------------------------
    (
        "histogram quantile too low",
        "5m",
        HISTOGRAM,
        "50m",
        "histogram_quantile(-0.1, testhistogram_bucket)",
        ['{start="positive"} -Inf', '{start="negative"} -Inf'],
    ),
    (
        "histogram quantile too high",
        "5m",
        HISTOGRAM,
        "50m",
        "histogram_quantile(1.01, testhistogram_bucket)",
        ['{start="positive"} +Inf', '{start="negative"} +Inf'],
    ),
    (
        "histogram lowest positive bucket",
        "5m",
        HISTOGRAM,
        "50m",
        'histogram_quantile(0, testhistogram_bucket{start="positive"})',
        ['{start="positive"} 0'],
    ),
    (
        "histogram lowest negative bucket",
        "5m",
        HISTOGRAM,
        "50m",
        'histogram_quantile(0, testhistogram_bucket{start="negative"})',
        ['{start="negative"} -0.2'],
    ),
    (
        "histogram highest bucket",
        "5m",
        HISTOGRAM,
        "50m",
        "histogram_quantile(1, testhistogram_bucket)",
        ['{start="positive"} 1', '{start="negative"} 0.3'],
    ),
    (
        "histogram 0.2",
        "5m",
        HISTOGRAM,
        "50m",
        "histogram_quantile(0.2, testhistogram_bucket)",
        ['{start="positive"} 0.048', '{start="negative"} -0.2'],
    ),
    (
        "histogram 0.5",
        "5m",
        HISTOGRAM,
        "50m",
        "histogram_quantile(0.5, testhistogram_bucket)",
        ['{start="positive"} 0.15', '{start="negative"} -0.15'],
    ),
    (
        "histogram 0.8",
        "5m",
        HISTOGRAM,
        "50m",
        "histogram_quantile(0.8, testhistogram_bucket)",
        ['{start="positive"} 0.72', '{start="negative"} 0.3'],
    ),
    (
        "histogram over rate",
        "5m",
        HISTOGRAM,
        "50m",
        "histogram_quantile(0.5, rate(testhistogram_bucket[10m]))",
        ['{start="positive"} 0.15', '{start="negative"} -0.15'],
    ),
    (
        "histogram forces monotonic buckets",
        "5m",
        'h_bucket{le="1"} 10\nh_bucket{le="2"} 4\nh_bucket{le="3"} 16\nh_bucket{le="+Inf"} 20',
        "0m",
        "histogram_quantile(0.55, h_bucket)",
        ["{} 2.1666666666666665"],
    ),
    (
        "histogram without +Inf is NaN",
        "5m",
        'h_bucket{le="1"} 10\nh_bucket{le="2"} 20',
        "0m",
        "histogram_quantile(0.5, h_bucket)",
        ["{} NaN"],
    ),
    (
        "histogram without observations is NaN",
        "5m",
        'h_bucket{le="1"} 0\nh_bucket{le="+Inf"} 0',
        "0m",
        "histogram_quantile(0.5, h_bucket)",
        ["{} NaN"],
    ),
    (
        "histogram ignores series without le",
        "5m",
        'h_bucket{x="1"} 10',
        "0m",
        "histogram_quantile(0.5, h_bucket)",
        [],
    ),
    # --- staleness and lookback ---------------------------------------------------
    (
        "sample before a staleness marker",
        "10s",
        "metric 0 1 stale 2",
        "10s",
        "metric",
        ["metric 1"],
    ),
    ("staleness marker hides the series", "10s", "metric 0 1 stale 2", "20s", "metric", []),
    ("series returns after staleness", "10s", "metric 0 1 stale 2", "30s", "metric", ["metric 2"]),
    ("lookback includes exactly 5m", "10s", "metric 0 1 stale 2", "330s", "metric", ["metric 2"]),
    ("lookback ends after 5m", "10s", "metric 0 1 stale 2", "331s", "metric", []),
    (
        "range ignores staleness markers",
        "10s",
        "metric 0 1 stale 2",
        "30s",
        "count_over_time(metric[1m])",
        ["{} 3"],
    ),
    (
        "range of only a staleness marker is empty",
        "10s",
        "metric 0 1 stale 2",
        "20s",
        "count_over_time(metric[1s])",
        [],
    ),
    ("single sample lasts 5m", "10s", "metric 0", "300s", "metric", ["metric 0"]),
    ("single sample stale after 5m", "10s", "metric 0", "301s", "metric", []),
    (
        "range window is closed at both ends",
        "10s",
        "metric 0 1 2",
        "20s",
        "count_over_time(metric[20s])",
        ["{} 3"],
    ),
    # --- offset and @ ----------------------------------------------------------------
    (
        "offset",
        "5m",
        COUNTERS,
        "50m",
        'http_requests{path="/foo"} offset 5m',
        ['http_requests{path="/foo"} 90'],
    ),
    (
        "negative offset",
        "5m",
        COUNTERS,
        "40m",
        'http_requests{path="/foo"} offset -5m',
        ['http_requests{path="/foo"} 90'],
    ),
    (
        "range offset",
        "5m",
        COUNTERS,
        "50m",
        'increase(http_requests{path="/foo"}[10m] offset 10m)',
        ['{path="/foo"} 20'],
    ),
    (
        "@ pins the time",
        "5m",
        COUNTERS,
        "50m",
        'http_requests{path="/foo"} @ 300',
        ['http_requests{path="/foo"} 10'],
    ),
    (
        "@ with offset",
        "5m",
        COUNTERS,
        "50m",
        'http_requests{path="/foo"} @ 600 offset 5m',
        ['http_requests{path="/foo"} 10'],
    ),
    (
        "@ on a range",
        "5m",
        COUNTERS,
        "50m",
        'rate(http_requests{path="/foo"}[10m] @ 600)',
        ['{path="/foo"} 0.03333333333333333'],
    ),
    (
        "@ end() is the query time",
        "5m",
        COUNTERS,
        "20m",
        'http_requests{path="/foo"} @ end()',
        ['http_requests{path="/foo"} 40'],
    ),
    (
        "timestamp with @",
        "5m",
        COUNTERS,
        "50m",
        'timestamp(http_requests{path="/foo"} @ 300)',
        ['{path="/foo"} 300'],
    ),
    # --- subqueries ------------------------------------------------------------------
    (
        "subquery before data",
        "10s",
        "metric 1 2",
        "10s",
        "sum_over_time(metric[50s:10s])",
        ["{} 3"],
    ),
    ("subquery finer step", "10s", "metric 1 2", "10s", "sum_over_time(metric[50s:5s])", ["{} 4"]),
    (
        "subquery holds the last value",
        "10s",
        "metric 1 2",
        "5m",
        "sum_over_time(metric[50s:10s])",
        ["{} 12"],
    ),
    (
        "subquery sees staleness",
        "10s",
        "metric 1 2",
        "6m",
        "sum_over_time(metric[50s:10s])",
        ["{} 2"],
    ),
    ("rate over a subquery", "10s", "metric 1 2", "10s", "rate(metric[20s:10s])", ["{} 0.1"]),
    (
        "rate over a subquery later",
        "10s",
        "metric 1 2",
        "20s",
        "rate(metric[20s:10s])",
        ["{} 0.05"],
    ),
    (
        "subquery of a rate",
        "5m",
        COUNTERS,
        "50m",
        'max_over_time(rate(http_requests{path="/foo"}[10m])[30m:5m])',
        ['{path="/foo"} 0.03333333333333333'],
    ),
    (
        "subquery with @",
        "5m",
        COUNTERS,
        "50m",
        'sum_over_time(http_requests{path="/foo"}[10m:5m] @ 600)',
        ['{path="/foo"} 30'],
    ),
    (
        "subquery with offset",
        "5m",
        COUNTERS,
        "50m",
        'sum_over_time(http_requests{path="/foo"}[10m:5m] offset 10m)',
        ['{path="/foo"} 210'],
    ),
    (
        "nested subquery",
        "5m",
        COUNTERS,
        "50m",
        'max_over_time(sum_over_time(http_requests{path="/foo"}[10m:5m])[10m:5m])',
        ['{path="/foo"} 270'],
    ),
    ("subquery default step", "10s", "metric 1 2", "10s", "count_over_time(metric[1m:])", ["{} 1"]),
]


def _expected(lines: list[str]) -> dict:
    out = {}
    for line in lines:
        labels_text, value_text = line.rsplit(" ", 1)
        value = float(value_text.replace("Inf", "inf").replace("NaN", "nan"))
        out[parse_labels(labels_text.strip())] = value
    return out


@pytest.mark.parametrize(
    ("interval", "series", "at", "expr", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_instant_query_matches_prometheus(interval, series, at, expr, expected):
    storage = MemoryStorage().load(interval, series)
    result = instant_query(expr, storage, duration_ms(at) if at != "0m" else 0)
    got = {s.labels: s.value for s in result}
    assert len(got) == len(result), "duplicate label sets in result"
    want = _expected(expected)
    assert set(got) == set(want)
    for labels, value in want.items():
        assert same_value(got[labels], value), (labels, got[labels], value)


def test_sort_orders_the_result():
    storage = MemoryStorage().load("5m", 'm{a="1"} 3\nm{a="2"} NaN\nm{a="3"} 1\nm{a="4"} 2')
    result = instant_query("sort_desc(m)", storage, 0)
    assert [dict(s.labels)["a"] for s in result] == ["1", "4", "3", "2"]


def test_topk_orders_best_first():
    storage = MemoryStorage().load("5m", HTTP_REQUESTS)
    result = instant_query("topk(3, http_requests)", storage, duration_ms("50m"))
    assert [s.value for s in result] == [800, 700, 600]


def test_scalar_expression_returns_a_scalar():
    assert instant_query("1 + 2 * 3", MemoryStorage(), 5000) == Scalar(7.0, 5000)
    assert instant_query("0 == bool 1", MemoryStorage(), 0) == Scalar(0.0, 0)
    assert instant_query("time()", MemoryStorage(), 60_000) == Scalar(60.0, 60_000)


ERROR_CASES = [
    (
        "duplicate labelset after dropping the name",
        "5m",
        'testmetric1{src="a",dst="b"} 0\ntestmetric2{src="a",dst="b"} 1',
        "-{__name__=~'testmetric1|testmetric2'}",
        "same labelset",
    ),
    (
        "many-to-many matching",
        "5m",
        HTTP_REQUESTS,
        "http_requests + on(job) http_requests",
        "many-to-many matching not allowed",
    ),
    (
        "implicit many-to-one",
        "5m",
        HTTP_REQUESTS,
        'http_requests{group="canary"} + on(job) sum by (job) (http_requests)',
        "many-to-one matching must be explicit",
    ),
    (
        "group_left needs unique results",
        "5m",
        'a{x="1"} 1\nb{x="1"} 2\nc{x="1"} 3',
        '{__name__=~"a|b"} * on(x) group_left c',
        "grouping labels must ensure unique matches",
    ),
    (
        "label_replace invalid regex",
        "5m",
        LABELS,
        'label_replace(testmetric, "dst", "value-$1", "src", "(.*")',
        "invalid regular expression",
    ),
    (
        "label_replace invalid destination",
        "5m",
        LABELS,
        'label_replace(testmetric, "invalid-label-name", "", "src", "(.*)")',
        "invalid destination label name",
    ),
    (
        "label_replace producing duplicates",
        "5m",
        LABELS,
        'label_replace(testmetric, "src", "", "", "")',
        "same labelset",
    ),
    (
        "histograms with the same labels",
        "5m",
        'a_bucket{le="+Inf"} 1\nb_bucket{le="+Inf"} 1',
        'histogram_quantile(0.5, {__name__=~"a_bucket|b_bucket"})',
        "same labelset",
    ),
    (
        "rate over two metrics with the same labels",
        "5m",
        'a{x="1"} 1 2\nb{x="1"} 1 2',
        'rate({__name__=~"a|b"}[10m])',
        "same labelset",
    ),
    (
        "count_values with an invalid label",
        "5m",
        "m 1",
        'count_values("a-b", m)',
        "invalid label name",
    ),
    ("parse error", "5m", "", "foo{", "unexpected end of input"),
    ("scalar comparison without bool", "5m", "", "1 > 2", "BOOL"),
]


@pytest.mark.parametrize(
    ("interval", "series", "expr", "message"),
    [pytest.param(*case[1:], id=case[0]) for case in ERROR_CASES],
)
def test_evaluation_errors_are_query_errors(interval, series, expr, message):
    storage = MemoryStorage().load(interval, series)
    with pytest.raises(QueryError, match=message):
        instant_query(expr, storage, duration_ms("5m"))
