"""Static scrape jobs beside the cluster's own targets, in Prometheus's `scrape_configs`.

    satellite:
      scrape_configs:
        - job_name: zookeeper
          scrape_interval: 30s        # default: satellite.scrape_interval
          scrape_timeout: 10s         # default: satellite.scrape_timeout (capped)
          metrics_path: /metrics
          scheme: http
          params: {module: [zk]}
          basic_auth: {username: u, password: p}   # or authorization: {credentials: t}
          tls_config: {ca_file: ca.pem}
          static_configs:
            - targets: ["zk1:7000", "zk2:7000"]
              labels: {env: prod}

The supported subset of Prometheus's syntax; anything else (relabel_configs,
service discovery other than static) is refused with its file and line, so a
config that works here means the same in a Prometheus. Each target gets the
labels `job` and `instance` (host:port) plus its group's labels, as in
Prometheus; its series then merge with target labels winning (`exported_`),
exactly as the cluster's own targets do.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from orbiter.httpconfig import HTTPConfig, auth_headers, parse_http
from orbiter.satellite.scrape import Target
from orbiter.satellite.series import labels_of
from orbiter.yamlreader import YamlReader

_JOB_KEYS = {
    "job_name", "scrape_interval", "scrape_timeout", "metrics_path", "scheme", "params",
    "static_configs", "basic_auth", "authorization", "bearer_token", "tls_config",
    "honor_labels",
}  # fmt: skip
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
RESERVED_JOBS = frozenset({"agent", "master"})
"""The cluster's own jobs: a static job of that name would mix with them."""


@dataclass(frozen=True)
class ScrapeJob:
    job_name: str
    targets: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]
    """(host:port, the group's extra labels) for every static target."""
    interval: float = 0.0
    timeout: float = 0.0
    metrics_path: str = "/metrics"
    scheme: str = "http"
    params: tuple[tuple[str, str], ...] = ()
    http: HTTPConfig = field(default_factory=HTTPConfig)

    def scrape_targets(self) -> list[Target]:
        query = urllib.parse.urlencode(self.params)
        return [
            Target(
                f"{self.scheme}://{address}{self.metrics_path}" + (f"?{query}" if query else ""),
                labels_of({**dict(extra), "job": self.job_name, "instance": address}),
                interval=self.interval,
                timeout=self.timeout,
                headers=tuple(auth_headers(self.http).items()),
                tls=self.http.tls_config,
            )
            for address, extra in self.targets
        ]


def _labels(r: YamlReader, node: yaml.Node, where: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(node, yaml.MappingNode):
        raise r.fail(node, f"{where} must be a mapping of label name: value")
    out = []
    for k, v in node.value:
        name = r.string(k, f"{where} key")
        if not _LABEL_NAME.fullmatch(name) or name.startswith("__"):
            raise r.fail(k, f"{where}: {name!r} is not a label name a target may set")
        out.append((name, r.string(v, f"{where}.{name}")))
    return tuple(out)


def parse_scrape_configs(
    r: YamlReader, node: yaml.Node, base: Path, interval: float, timeout: float
) -> list[ScrapeJob]:
    """`satellite.scrape_configs`; `interval`/`timeout` are Satellite's defaults."""
    if not isinstance(node, yaml.SequenceNode):
        raise r.fail(node, "satellite.scrape_configs must be a list of scrape jobs")
    jobs: list[ScrapeJob] = []
    for i, item in enumerate(node.value):
        where = f"satellite.scrape_configs[{i}]"
        m = r.mapping(item, where, _JOB_KEYS)
        if "job_name" not in m:
            raise r.fail(item, f"{where} needs a job_name")
        name = r.string(m["job_name"], f"{where}.job_name")
        if name in RESERVED_JOBS:
            raise r.fail(m["job_name"], f"{where}.job_name {name!r} is the cluster's own job; "
                         "pick another name")  # fmt: skip
        if any(j.job_name == name for j in jobs):
            raise r.fail(m["job_name"], f"{where}.job_name {name!r} is used twice")
        if "honor_labels" in m and r.boolean(m["honor_labels"], f"{where}.honor_labels"):
            raise r.fail(m["honor_labels"], f"{where}.honor_labels: only false is supported")
        job_interval = (
            r.duration(m["scrape_interval"], f"{where}.scrape_interval")
            if "scrape_interval" in m else interval
        )  # fmt: skip
        job_timeout = (
            r.duration(m["scrape_timeout"], f"{where}.scrape_timeout")
            if "scrape_timeout" in m else min(timeout, job_interval)
        )  # fmt: skip
        if job_timeout > job_interval:
            raise r.fail(item, f"{where}: scrape_timeout must not exceed scrape_interval")
        path = r.string(m["metrics_path"], f"{where}.metrics_path") if "metrics_path" in m \
            else "/metrics"  # fmt: skip
        if not path.startswith("/"):
            raise r.fail(m["metrics_path"], f"{where}.metrics_path must start with /")
        scheme = r.string(m["scheme"], f"{where}.scheme") if "scheme" in m else "http"
        if scheme not in ("http", "https"):
            raise r.fail(m["scheme"], f"{where}.scheme must be http or https")
        params: list[tuple[str, str]] = []
        if "params" in m:
            p = m["params"]
            if not isinstance(p, yaml.MappingNode):
                raise r.fail(p, f"{where}.params must map names to lists of values")
            for k, v in p.value:
                key = r.string(k, f"{where}.params key")
                params += [(key, value) for value in r.strings(v, f"{where}.params.{key}")]
        targets: list[tuple[str, tuple[tuple[str, str], ...]]] = []
        if "static_configs" not in m:
            raise r.fail(item, f"{where} needs static_configs (the only discovery supported "
                         "besides the cluster's own)")  # fmt: skip
        seq = m["static_configs"]
        if not isinstance(seq, yaml.SequenceNode):
            raise r.fail(seq, f"{where}.static_configs must be a list of {{targets, labels}}")
        for j, group in enumerate(seq.value):
            w = f"{where}.static_configs[{j}]"
            g = r.mapping(group, w, {"targets", "labels"})
            if "targets" not in g:
                raise r.fail(group, f"{w} needs targets: a list of host:port")
            extra = _labels(r, g["labels"], f"{w}.labels") if "labels" in g else ()
            for k, t in enumerate(g["targets"].value if isinstance(g["targets"],
                                                                  yaml.SequenceNode) else []):
                address = r.string(t, f"{w}.targets[{k}]")
                host, sep, port = address.rpartition(":")
                if not sep or not host or not port.isdigit() or "/" in address:
                    raise r.fail(t, f"{w}.targets[{k}]: {address!r} is not host:port")
                targets.append((address, extra))
            if not isinstance(g["targets"], yaml.SequenceNode):
                raise r.fail(g["targets"], f"{w}.targets must be a list of host:port")
        jobs.append(
            ScrapeJob(
                name,
                tuple(targets),
                job_interval,
                job_timeout,
                path,
                scheme,
                tuple(params),
                parse_http(r, m, where, base),
            )
        )
    return jobs
