"""Orbiter: a Mesos-style cluster manager with a built-in Satellite."""

from prometheus_client import disable_created_metrics

__version__ = "0.1.0"

# Every process exposes /metrics; none exports prometheus-client's `*_created` series
# (one extra series per counter and histogram that no rule or dashboard reads, and that
# `promtool check metrics` users do not expect). Set once here, where every process starts.
disable_created_metrics()
