"""`satellite.archive` in Orbiter's YAML: where samples and events are archived.

    satellite:
      archive:
        influxdb:
          url: http://influx:8086
          version: 1                 # 1: /write with database/retention_policy; 2: org/bucket/token
          database: orbiter
          retention_policy: autogen  # optional
          username: orbiter          # optional (v1)
          password: secret
          timeout: 10s
          select: all                # or a list: [up, '{__name__=~"orbiter_.*",job="agent"}']
          downsample: 1m             # at most one sample per series per minute; default: all
          batch_size: 5000           # samples per write
          flush_interval: 1s
        elasticsearch:
          hosts: [http://es:9200]
          index_prefix: orbiter-events   # daily indices orbiter-events-YYYY.MM.DD
          username: orbiter              # or api_key: ...
          password: secret
          timeout: 10s
        spool:
          max_bytes: 256MiB          # per sink; new data is dropped (and counted) beyond it
          directory: archive         # relative to this file; default <satellite work dir>/archive

Every mistake is a ConfigError naming the file, the line and what was expected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import promql_parser as pp
import yaml

from orbiter.satellite.series import Labels, Matcher, MatchOp
from orbiter.yamlreader import YamlReader

DEFAULT_SPOOL_BYTES = 256 << 20
DEFAULT_INDEX_PREFIX = "orbiter-events"

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?\s*$")
_SIZE_UNITS = {
    None: 1,
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "KiB": 1 << 10,
    "MiB": 1 << 20,
    "GiB": 1 << 30,
}
_OPS = {
    "Equal": MatchOp.EQUAL,
    "NotEqual": MatchOp.NOT_EQUAL,
    "Re": MatchOp.REGEX,
    "NotRe": MatchOp.NOT_REGEX,
}


@dataclass(frozen=True)
class Selector:
    """One `select` entry: a sample is archived when every matcher holds."""

    text: str
    matchers: tuple[Matcher, ...]
    regexes: tuple[re.Pattern[str] | None, ...]

    def matches(self, labels: Labels) -> bool:
        values = dict(labels)
        for m, rx in zip(self.matchers, self.regexes, strict=True):
            v = values.get(m.name, "")
            if m.op is MatchOp.EQUAL:
                ok = v == m.value
            elif m.op is MatchOp.NOT_EQUAL:
                ok = v != m.value
            else:
                assert rx is not None
                ok = rx.fullmatch(v) is not None
                if m.op is MatchOp.NOT_REGEX:
                    ok = not ok
            if not ok:
                return False
        return True


@dataclass(frozen=True)
class InfluxConfig:
    url: str
    version: int = 1
    database: str = ""
    retention_policy: str = ""
    username: str = ""
    password: str = ""
    org: str = ""
    bucket: str = ""
    token: str = ""
    timeout: float = 10.0
    select: tuple[Selector, ...] = ()  # empty: everything
    downsample: float = 0.0  # seconds; 0 keeps every sample
    batch_size: int = 5000
    flush_interval: float = 1.0


@dataclass(frozen=True)
class ElasticConfig:
    hosts: tuple[str, ...]
    index_prefix: str = DEFAULT_INDEX_PREFIX
    username: str = ""
    password: str = ""
    api_key: str = ""
    timeout: float = 10.0
    batch_size: int = 500
    flush_interval: float = 1.0


@dataclass(frozen=True)
class SpoolConfig:
    max_bytes: int = DEFAULT_SPOOL_BYTES
    directory: Path | None = None  # None: <satellite work dir>/archive

    def path(self, work_dir: Path) -> Path:
        return self.directory if self.directory is not None else Path(work_dir) / "archive"


@dataclass(frozen=True)
class ArchiveConfig:
    influxdb: InfluxConfig | None = None
    elasticsearch: ElasticConfig | None = None
    spool: SpoolConfig = field(default_factory=SpoolConfig)


def parse_selector(text: str) -> Selector:
    """A metric name or a PromQL vector selector; ValueError says what is wrong."""
    try:
        expr = pp.parse(text)
    except Exception as e:  # promql_parser raises its own error types
        raise ValueError(f"{text!r} is not a PromQL selector: {e}") from None
    if not isinstance(expr, pp.VectorSelector) or expr.offset or expr.at:
        raise ValueError(
            f"{text!r} must be a plain series selector such as "
            '\'{__name__=~"orbiter_.*",job="agent"}\' (no functions, ranges, offset or @)'
        )
    if expr.matchers.or_matchers:
        raise ValueError(f"{text!r}: 'or' between label matchers is not supported")
    matchers: list[Matcher] = []
    if expr.name:
        matchers.append(Matcher("__name__", MatchOp.EQUAL, expr.name))
    regexes: list[re.Pattern[str] | None] = [None] * len(matchers)
    for m in expr.matchers.matchers:
        op = _OPS[str(m.op).rsplit(".", 1)[-1]]
        matchers.append(Matcher(m.name, op, m.value))
        if op in (MatchOp.REGEX, MatchOp.NOT_REGEX):
            try:
                regexes.append(re.compile(m.value))
            except re.error as e:
                raise ValueError(f"{text!r}: bad regular expression {m.value!r}: {e}") from None
        else:
            regexes.append(None)
    return Selector(text, tuple(matchers), tuple(regexes))


def parse_size(text: str) -> int:
    """Bytes in `1048576`, `512MiB`, `1GB`; ValueError otherwise."""
    m = _SIZE.match(str(text))
    if not m:
        raise ValueError(f"{text!r} is not a size: use e.g. 268435456, 256MiB or 1GB")
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2)])


def _url(r: YamlReader, node: yaml.Node, where: str) -> str:
    url = r.string(node, where)
    if not url.startswith(("http://", "https://")):
        raise r.fail(node, f"{where}: {url!r} is not an http(s) URL")
    return url.rstrip("/")


def _positive_int(r: YamlReader, node: yaml.Node, where: str) -> int:
    n = r.whole(node, where)
    if n < 1:
        raise r.fail(node, f"{where} must be at least 1, got {n}")
    return n


def _influx(r: YamlReader, node: yaml.Node) -> InfluxConfig:
    w = "satellite.archive.influxdb"
    keys = {
        "url",
        "version",
        "database",
        "retention_policy",
        "username",
        "password",
        "org",
        "bucket",
        "token",
        "timeout",
        "select",
        "downsample",
        "batch_size",
        "flush_interval",
    }
    m = r.mapping(node, w, keys)
    if "url" not in m:
        raise r.fail(node, f"{w} needs url (e.g. http://127.0.0.1:8086)")
    version = 1
    if "version" in m:
        version = r.scalar(m["version"], f"{w}.version")
        if version not in (1, 2) or isinstance(version, bool):
            raise r.fail(m["version"], f"{w}.version must be 1 or 2, got {version!r}")
    only = {
        1: ("org", "bucket", "token"),
        2: ("database", "retention_policy", "username", "password"),
    }[version]
    for key in only:
        if key in m:
            raise r.fail(m[key], f"{w}.{key} is not used with version {version}")
    need = ("database",) if version == 1 else ("org", "bucket", "token")
    for key in need:
        if key not in m:
            raise r.fail(node, f"{w} version {version} needs {key}")
    strings = {
        k: r.string(m[k], f"{w}.{k}")
        for k in ("database", "retention_policy", "username", "password", "org", "bucket", "token")
        if k in m
    }
    if ("username" in m) != ("password" in m):
        raise r.fail(node, f"{w}: give username and password together")
    select: tuple[Selector, ...] = ()
    if "select" in m:
        select = _select(r, m["select"], f"{w}.select")
    extra: dict[str, float | int] = {}
    if "timeout" in m:
        extra["timeout"] = r.duration(m["timeout"], f"{w}.timeout")
    if "downsample" in m:
        extra["downsample"] = r.duration(m["downsample"], f"{w}.downsample")
    if "flush_interval" in m:
        extra["flush_interval"] = r.duration(m["flush_interval"], f"{w}.flush_interval")
    if "batch_size" in m:
        extra["batch_size"] = _positive_int(r, m["batch_size"], f"{w}.batch_size")
    return InfluxConfig(
        url=_url(r, m["url"], f"{w}.url"), version=version, select=select, **strings, **extra
    )


def _select(r: YamlReader, node: yaml.Node, where: str) -> tuple[Selector, ...]:
    if isinstance(node, yaml.ScalarNode):
        if r.scalar(node, where) == "all":
            return ()
        raise r.fail(node, f"{where} must be `all` or a list of metric names or selectors")
    if not isinstance(node, yaml.SequenceNode) or not node.value:
        raise r.fail(node, f"{where} must be `all` or a non-empty list of names or selectors")
    out = []
    for i, item in enumerate(node.value):
        text = r.string(item, f"{where}[{i}]")
        try:
            out.append(parse_selector(text))
        except ValueError as e:
            raise r.fail(item, f"{where}[{i}]: {e}") from None
    return tuple(out)


def _elastic(r: YamlReader, node: yaml.Node) -> ElasticConfig:
    w = "satellite.archive.elasticsearch"
    keys = {
        "hosts",
        "index_prefix",
        "username",
        "password",
        "api_key",
        "timeout",
        "batch_size",
        "flush_interval",
    }
    m = r.mapping(node, w, keys)
    if "hosts" not in m:
        raise r.fail(node, f"{w} needs hosts (a list of URLs such as http://127.0.0.1:9200)")
    hosts_node = m["hosts"]
    if not isinstance(hosts_node, yaml.SequenceNode) or not hosts_node.value:
        raise r.fail(hosts_node, f"{w}.hosts must be a non-empty list of http(s) URLs")
    hosts = tuple(_url(r, n, f"{w}.hosts[{i}]") for i, n in enumerate(hosts_node.value))
    strings = {
        k: r.string(m[k], f"{w}.{k}")
        for k in ("index_prefix", "username", "password", "api_key")
        if k in m
    }
    prefix = strings.get("index_prefix", DEFAULT_INDEX_PREFIX)
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", prefix):
        raise r.fail(
            m["index_prefix"],
            f"{w}.index_prefix must be lowercase letters, digits, '.', '_' or '-' "
            f"(an Elasticsearch index name), got {prefix!r}",
        )
    if ("username" in m) != ("password" in m):
        raise r.fail(node, f"{w}: give username and password together")
    if "api_key" in m and "username" in m:
        raise r.fail(m["api_key"], f"{w}: give either api_key or username/password, not both")
    extra: dict[str, float | int] = {}
    if "timeout" in m:
        extra["timeout"] = r.duration(m["timeout"], f"{w}.timeout")
    if "flush_interval" in m:
        extra["flush_interval"] = r.duration(m["flush_interval"], f"{w}.flush_interval")
    if "batch_size" in m:
        extra["batch_size"] = _positive_int(r, m["batch_size"], f"{w}.batch_size")
    return ElasticConfig(hosts=hosts, **strings, **extra)


def _spool(r: YamlReader, node: yaml.Node, base: Path) -> SpoolConfig:
    w = "satellite.archive.spool"
    m = r.mapping(node, w, {"max_bytes", "directory"})
    max_bytes = DEFAULT_SPOOL_BYTES
    if "max_bytes" in m:
        try:
            max_bytes = parse_size(r.scalar(m["max_bytes"], f"{w}.max_bytes"))
        except ValueError as e:
            raise r.fail(m["max_bytes"], f"{w}.max_bytes: {e}") from None
        if max_bytes < 1 << 20:
            raise r.fail(m["max_bytes"], f"{w}.max_bytes must be at least 1MiB, got {max_bytes}")
    directory = None
    if "directory" in m:
        directory = base / r.string(m["directory"], f"{w}.directory")
    return SpoolConfig(max_bytes=max_bytes, directory=directory)


def parse_archive(r: YamlReader, node: yaml.Node, base: Path) -> ArchiveConfig:
    """The `satellite.archive` mapping; relative paths are relative to `base` (the file's dir)."""
    m = r.mapping(node, "satellite.archive", {"influxdb", "elasticsearch", "spool"})
    return ArchiveConfig(
        influxdb=_influx(r, m["influxdb"]) if "influxdb" in m else None,
        elasticsearch=_elastic(r, m["elasticsearch"]) if "elasticsearch" in m else None,
        spool=_spool(r, m["spool"], base) if "spool" in m else SpoolConfig(),
    )
