"""Orbiter: a Mesos-style cluster manager with a built-in Satellite."""

__version__ = "0.1.0"
