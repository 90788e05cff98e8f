"""Remote write without a network: the wire encoding (decoded with the code generated from
orbiter/proto/remote_write.proto), write_relabel_configs, the configuration's errors and
the queue's bound."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import cramjam
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from orbiter.proto import remote_write_pb2 as pb
from orbiter.satellite.remote_write import (
    Authorization,
    BasicAuth,
    BatchEncoder,
    QueueConfig,
    RelabelAction,
    RemoteWriteConfig,
    RemoteWriter,
    TLSConfig,
    compress,
    encode_write_request,
    parse_remote_write,
    relabel,
)
from orbiter.satellite.series import STALE_NAN_BITS, Labels, labels_of
from orbiter.yamlreader import ConfigError, YamlReader

STALE = struct.unpack("<d", struct.pack("<Q", STALE_NAN_BITS))[0]


def L(**kv: str) -> Labels:
    return labels_of(kv)


def decoded(body: bytes) -> list[tuple[list[tuple[str, str]], list[tuple[int, float]]]]:
    req = pb.WriteRequest.FromString(body)
    return [
        ([(lb.name, lb.value) for lb in ts.labels], [(s.timestamp, s.value) for s in ts.samples])
        for ts in req.timeseries
    ]


def bits(value: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", value))[0]


# ---------------------------------------------------------------------- encoding


def test_a_write_request_decodes_to_the_same_labels_times_and_values() -> None:
    up = L(__name__="up", instance="a:1", job="agent")
    info = L(__name__="orbiter_info", version="0.1.0", ünï="çødé ✓")
    body = encode_write_request(
        [
            (up, [(1_700_000_000_000, 1.0), (1_700_000_015_000, 0.0)]),
            (info, [(0, -2.5e-300), (-1, math.inf), (2**62, -math.inf)]),
        ]
    )
    assert decoded(body) == [
        (list(up), [(1_700_000_000_000, 1.0), (1_700_000_015_000, 0.0)]),
        (list(info), [(0, -2.5e-300), (-1, math.inf), (2**62, -math.inf)]),
    ]


def test_a_staleness_marker_keeps_its_exact_nan_bits() -> None:
    body = encode_write_request([(L(__name__="up"), [(5, STALE), (6, math.nan)])])
    ((_, samples),) = decoded(body)
    assert [bits(v) for _, v in samples] == [STALE_NAN_BITS, bits(math.nan)]


def test_the_generated_code_encodes_the_very_same_bytes() -> None:
    labels = L(__name__="http_requests_total", code="200", path="/api")
    req = pb.WriteRequest()
    ts = req.timeseries.add()
    for name, value in labels:
        ts.labels.add(name=name, value=value)
    ts.samples.add(value=12.5, timestamp=1_700_000_000_123)
    ts.samples.add(value=-1.0, timestamp=1_700_000_001_123)
    mine = encode_write_request([(labels, [(1_700_000_000_123, 12.5), (1_700_000_001_123, -1.0)])])
    assert mine == req.SerializeToString()


def test_compression_is_snappy_block_format() -> None:
    body = encode_write_request([(L(__name__="x", i=str(i)), [(i, float(i))]) for i in range(500)])
    squeezed = compress(body)
    assert len(squeezed) < len(body)
    assert bytes(cramjam.snappy.decompress_raw(squeezed)) == body
    assert not squeezed.startswith(b"\xff\x06\x00\x00sNaPpY")  # not the framed format


def test_a_batch_groups_each_series_samples_oldest_first() -> None:
    a, b = L(__name__="a"), L(__name__="b")
    encoder = BatchEncoder([])
    out = encoder.encode([([(a, 1.0), (b, 2.0)], 1000), ([(a, 3.0)], 2000), ([(b, 4.0)], 3000)])
    assert out.samples == 4 and out.highest_ms == 3000
    assert decoded(out.body) == [
        (list(a), [(1000, 1.0), (2000, 3.0)]),
        (list(b), [(1000, 2.0), (3000, 4.0)]),
    ]
    assert out.body == encode_write_request(
        [(a, [(1000, 1.0), (2000, 3.0)]), (b, [(1000, 2.0), (3000, 4.0)])]
    )


def test_scrapes_queued_out_of_time_order_are_sent_in_time_order() -> None:
    a = L(__name__="a")
    out = BatchEncoder([]).encode([([(a, 2.0)], 2000), ([(a, 1.0)], 1000), ([(a, 3.0)], 3000)])
    assert decoded(out.body) == [(list(a), [(1000, 1.0), (2000, 2.0), (3000, 3.0)])]


label_names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,20}", fullmatch=True)
label_sets = st.dictionaries(label_names, st.text(min_size=1, max_size=30), min_size=1).map(
    labels_of
)
points = st.lists(
    st.tuples(st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False)), max_size=5
)


@given(st.lists(st.tuples(label_sets, points), max_size=8))
def test_any_series_round_trip_through_the_generated_code(
    series: list[tuple[Labels, list[tuple[int, float]]]],
) -> None:
    assert decoded(encode_write_request(series)) == [(list(ls), ps) for ls, ps in series]


@given(
    st.lists(
        st.tuples(
            st.sampled_from([L(__name__="a"), L(__name__="b", x="1")]), st.floats(allow_nan=False)
        ),
        max_size=20,
    ),
    st.lists(st.integers(0, 10**13), min_size=1, max_size=6),
)
def test_a_batch_holds_every_sample_once_each_series_in_time_order(
    scrape: list[tuple[Labels, float]], times: list[int]
) -> None:
    chunks = [(scrape, t) for t in times]
    out = BatchEncoder([]).encode(chunks)
    assert out.samples == len(scrape) * len(times)
    got = decoded(out.body)
    assert sorted((tuple(ls), t, v) for ls, ps in got for t, v in ps) == sorted(
        (ls, t, v) for t in times for ls, v in scrape
    )
    for _, ps in got:
        assert [t for t, _ in ps] == sorted(t for t, _ in ps)


def test_an_empty_label_value_is_no_label() -> None:
    body = encode_write_request([((("__name__", "x"), ("empty", "")), [(1, 1.0)])])
    assert decoded(body) == [([("__name__", "x")], [(1, 1.0)])]


# ---------------------------------------------------------------------- write_relabel_configs


def relabel_configs(text: str) -> RemoteWriteConfig:
    node = yaml.compose(f"- url: http://rw:9090/api/v1/write\n  write_relabel_configs:\n{text}")
    (config,) = parse_remote_write(YamlReader("t.yml"), node, Path("."))
    return config


UP_A = L(__name__="up", job="agent", instance="a:1")
UP_M = L(__name__="up", job="master", instance="m:1")
GO = L(__name__="go_goroutines", job="agent", instance="a:1")


@pytest.mark.parametrize(
    ("rules", "series", "expected"),
    [
        # keep: only what the regex matches, fully anchored ("agen" is not "agent")
        ("- {action: keep, source_labels: [job], regex: agent}", UP_A, UP_A),
        ("- {action: keep, source_labels: [job], regex: agent}", UP_M, None),
        ("- {action: keep, source_labels: [job], regex: agen}", UP_A, None),
        ("- {action: keep, source_labels: [job], regex: 'age.*'}", UP_A, UP_A),
        # drop: the opposite; source labels joined with the separator, a missing one is ""
        ("- {action: drop, source_labels: [__name__, job], regex: 'up;agent'}", UP_A, None),
        ("- {action: drop, source_labels: [__name__, job], regex: 'up;agent'}", UP_M, UP_M),
        (
            "- {action: drop, source_labels: [job, __name__], separator: /, regex: 'agent/go_.*'}",
            GO,
            None,
        ),
        ("- {action: drop, source_labels: [nope, job], regex: ';agent'}", UP_A, None),
        ("- {action: DROP, source_labels: [job], regex: master}", UP_M, None),
        # labeldrop / labelkeep act on label names
        ("- {action: labeldrop, regex: inst.*}", UP_A, L(__name__="up", job="agent")),
        ("- {action: labeldrop, regex: inst}", UP_A, UP_A),
        ("- {action: labelkeep, regex: __name__|job}", UP_A, L(__name__="up", job="agent")),
        ("- {action: labelkeep, regex: nothing}", UP_A, None),
        # in order: a later rule sees what the earlier ones left
        (
            "- {action: labeldrop, regex: job}\n- {action: keep, source_labels: [job], regex: ''}",
            UP_A,
            L(__name__="up", instance="a:1"),
        ),
    ],
)
def test_write_relabel_configs(rules: str, series: Labels, expected: Labels | None) -> None:
    text = "\n".join("    " + line for line in rules.splitlines()) + "\n"
    config = relabel_configs(text)
    assert relabel(series, config.write_relabel_configs) == expected


def test_relabel_drops_are_not_sent_and_merged_series_are_one() -> None:
    config = relabel_configs(
        "    - {action: drop, source_labels: [__name__], regex: go_.*}\n"
        "    - {action: labeldrop, regex: instance}\n"
    )
    a1, a2 = L(__name__="up", job="a", instance="1"), L(__name__="up", job="a", instance="2")
    out = BatchEncoder(config.write_relabel_configs).encode(
        [([(a1, 1.0), (GO, 5.0)], 1000), ([(a2, 0.0)], 2000), ([(GO, 6.0)], 3000)]
    )
    assert out.samples == 2 and out.highest_ms == 2000
    assert decoded(out.body) == [([("__name__", "up"), ("job", "a")], [(1000, 1.0), (2000, 0.0)])]


# ---------------------------------------------------------------------- configuration


def parse(text: str, base: Path = Path(".")) -> list[RemoteWriteConfig]:
    return parse_remote_write(YamlReader("orbiter.yml"), yaml.compose(text), base)


def test_a_full_configuration(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("s3cret\n")
    (tmp_path / "ca.pem").write_text("")
    configs = parse(
        """
- url: https://mimir:443/api/v1/push
  name: mimir
  remote_timeout: 10s
  headers: {X-Scope-OrgID: team-a}
  basic_auth: {username: orbiter, password_file: pw}
  tls_config: {ca_file: ca.pem, server_name: mimir.internal, insecure_skip_verify: false}
  write_relabel_configs:
    - {action: drop, source_labels: [__name__], regex: 'go_.*'}
  queue_config:
    capacity: 5000
    max_samples_per_send: 100
    batch_send_deadline: 1s
    min_backoff: 100ms
    max_backoff: 10s
    retry_on_http_429: false
- url: http://prometheus:9090/api/v1/write
  bearer_token: abc
- url: http://other:9090/api/v1/write
  authorization: {type: Token, credentials: xyz}
""",
        tmp_path,
    )
    mimir, prom, other = configs
    assert mimir.remote == "mimir"
    assert mimir.remote_timeout == 10.0
    assert mimir.headers == (("X-Scope-OrgID", "team-a"),)
    assert mimir.basic_auth == BasicAuth("orbiter", password_file=str(tmp_path / "pw"))
    assert mimir.tls_config == TLSConfig(
        ca_file=str(tmp_path / "ca.pem"), server_name="mimir.internal"
    )
    (rule,) = mimir.write_relabel_configs
    assert rule.action is RelabelAction.DROP and rule.source_labels == ("__name__",)
    assert mimir.queue_config == QueueConfig(5000, 100, 1.0, 0.1, 10.0, False)
    assert prom.remote == "http://prometheus:9090/api/v1/write"
    assert prom.authorization == Authorization("Bearer", "abc")
    assert prom.remote_timeout == 30.0 and prom.queue_config == QueueConfig()
    assert prom.queue_config.retry_on_http_429 is True
    assert other.authorization == Authorization("Token", "xyz")


GOOD = "- url: http://rw:9090/api/v1/write\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("url: http://x/api/v1/write\n", "orbiter.yml:1: remote_write must be a list"),
        ("- name: x\n", "orbiter.yml:1: remote_write[0].url is required"),
        ("- url: ftp://x/write\n", "orbiter.yml:1: remote_write[0].url: 'ftp://x/write' is not"),
        ("- url: http:///write\n", "is not an http(s) URL with a host"),
        (GOOD + "  urls: x\n", "orbiter.yml:2: unknown key remote_write[0].urls; did you mean"),
        (GOOD + "  remote_timeout: soon\n", "orbiter.yml:2: remote_write[0].remote_timeout:"),
        (GOOD + "  remote_timeout: 0s\n", "remote_timeout must be longer than 0s"),
        (GOOD + GOOD, "orbiter.yml:2: remote_write[1]: a second remote named 'http://rw:9090"),
        (
            GOOD + "  name: a\n- url: http://other/\n  name: a\n",
            "orbiter.yml:3: remote_write[1]: a second remote named 'a' (line 1)",
        ),
        (GOOD + "  headers: [a]\n", "orbiter.yml:2: remote_write[0].headers must be a mapping"),
        (
            GOOD + "  headers: {Content-Type: text/plain}\n",
            "orbiter.yml:2: remote_write[0].headers: Content-Type is set by Orbiter itself",
        ),
        (
            GOOD + "  bearer_token: a\n  basic_auth: {username: u, password: p}\n",
            "orbiter.yml:3: remote_write[0]: at most one of basic_auth, bearer_token",
        ),
        (GOOD + "  basic_auth: {password: p}\n", "remote_write[0].basic_auth.username is required"),
        (
            GOOD + "  basic_auth: {username: u, password: p, password_file: f}\n",
            "give password or password_file, not both",
        ),
        (
            GOOD + "  basic_auth:\n    username: u\n    password_file: /nonexistent/pw\n",
            "orbiter.yml:4: remote_write[0].basic_auth.password_file: /nonexistent/pw does not",
        ),
        (
            GOOD + "  authorization: {type: Basic, credentials: x}\n",
            "authorization.type cannot be Basic: use basic_auth instead",
        ),
        (GOOD + "  authorization: {type: Bearer}\n", "credentials or credentials_file is required"),
        (
            GOOD + "  tls_config: {cert_file: /etc/hostname}\n",
            "cert_file and key_file must be given together",
        ),
        (GOOD + "  tls_config: {ca: x}\n", "unknown key remote_write[0].tls_config.ca;"),
        (
            GOOD + "  tls_config:\n    insecure_skip_verify: maybe\n",
            "orbiter.yml:3: remote_write[0].tls_config.insecure_skip_verify must be true or false",
        ),
        (
            GOOD + "  write_relabel_configs: {action: drop}\n",
            "write_relabel_configs must be a list",
        ),
        (
            GOOD + "  write_relabel_configs:\n    - {source_labels: [a], target_label: b}\n",
            "orbiter.yml:3: unknown key remote_write[0].write_relabel_configs[0].target_label",
        ),
        (
            GOOD + "  write_relabel_configs:\n    - {source_labels: [a]}\n",
            "write_relabel_configs[0].action 'replace' is not supported; use keep, drop, labelkeep",
        ),
        (
            GOOD + "  write_relabel_configs:\n    - action: hashmod\n",
            "orbiter.yml:3: remote_write[0].write_relabel_configs[0].action 'hashmod' is not",
        ),
        (
            GOOD + "  write_relabel_configs:\n    - {action: keep, regex: '('}\n",
            "write_relabel_configs[0].regex '(' is invalid",
        ),
        (
            GOOD + "  write_relabel_configs:\n    - {action: keep, source_labels: [0bad]}\n",
            "source_labels: '0bad' is not a valid label name",
        ),
        (
            GOOD + "  write_relabel_configs:\n    - {action: labeldrop, source_labels: [a]}\n",
            "labeldrop takes only regex, not source_labels",
        ),
        (
            GOOD + "  queue_config:\n    max_shards: 10\n",
            "orbiter.yml:3: unknown key remote_write[0].queue_config.max_shards",
        ),
        (
            GOOD + "  queue_config:\n    capacity: -1\n",
            "orbiter.yml:3: remote_write[0].queue_config.capacity must be a whole number >= 0",
        ),
        (GOOD + "  queue_config: {capacity: 0}\n", "queue_config.capacity must be at least 1"),
        (
            GOOD + "  queue_config: {max_samples_per_send: 1.5}\n",
            "max_samples_per_send must be a whole number",
        ),
        (
            GOOD + "  queue_config: {min_backoff: 10s, max_backoff: 1s}\n",
            "queue_config.min_backoff (10.0s) must not exceed max_backoff (1.0s)",
        ),
        (GOOD + "  queue_config: {retry_on_http_429: 1}\n", "must be true or false, got 1"),
    ],
)
def test_configuration_errors_name_the_line_and_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse(text)
    assert message in str(e.value)


# ---------------------------------------------------------------------- the queue's bound


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_a_full_queue_counts_exactly_the_samples_it_refuses() -> None:
    registry = CollectorRegistry()
    config = RemoteWriteConfig("http://rw/write", name="rw", queue_config=QueueConfig(capacity=10))
    writer = RemoteWriter(config, registry=registry)
    scrape = [(L(__name__="m", i=str(i)), float(i)) for i in range(7)]
    writer.offer(scrape, 1000)
    writer.offer(scrape, 2000)  # 3 fit, 4 do not
    writer.offer(scrape, 3000)  # none fit
    writer.offer([], 4000)
    assert writer.pending == 10
    dropped = "orbiter_remote_write_samples_dropped_total"
    assert sample(registry, dropped, remote="rw", reason="queue_full") == 11
    assert sample(registry, "orbiter_remote_write_samples_pending", remote="rw") == 10
    assert sample(registry, dropped, remote="rw", reason="rejected") == 0
    # what was queued is the oldest samples, in order
    taken = writer._take(100)
    assert [(len(s), t) for s, t in taken] == [(7, 1000), (3, 2000)]
    assert list(taken[1][0]) == scrape[:3]


def test_batches_take_from_the_head_across_and_within_scrapes() -> None:
    config = RemoteWriteConfig("http://rw/write", queue_config=QueueConfig(capacity=100))
    writer = RemoteWriter(config)
    scrape = [(L(__name__="m", i=str(i)), float(i)) for i in range(5)]
    for t in (1, 2, 3):
        writer.offer(scrape, t)
    first = writer._take(4)
    assert [(list(s), t) for s, t in first] == [(scrape[:4], 1)]
    assert writer.pending == 15  # in flight still counts against the capacity
    writer._in_flight = 0
    second = writer._take(4)
    assert [(list(s), t) for s, t in second] == [(scrape[4:], 1), (scrape[:3], 2)]
    assert writer.pending == 11


def test_the_remote_label_is_the_name_or_the_url_without_credentials() -> None:
    assert RemoteWriteConfig("http://u:p@rw:9090/api/v1/write").remote == (
        "http://rw:9090/api/v1/write"
    )
    assert RemoteWriteConfig("https://rw/write?x=1").remote == "https://rw/write?x=1"
    assert RemoteWriteConfig("https://u:p@rw/write", name="rw").remote == "rw"


def test_writers_share_one_registry_each_with_its_own_remote_label() -> None:
    registry = CollectorRegistry()
    a = RemoteWriter(RemoteWriteConfig("http://a/write", name="a"), registry=registry)
    b = RemoteWriter(RemoteWriteConfig("http://b/write", name="b"), registry=registry)
    a.offer([(L(__name__="x"), 1.0)], 1)
    assert sample(registry, "orbiter_remote_write_samples_pending", remote="a") == 1
    assert sample(registry, "orbiter_remote_write_samples_pending", remote="b") == 0
    assert b.pending == 0
