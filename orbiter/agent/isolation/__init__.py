"""Holding tasks to their resources: cgroups (v1 and v2), rlimits where there are
none, the sandbox's disk and the size of its logs.

`cgroups` is the file work (create, limit, place, kill, read, remove), `policy`
the pure decisions (which mechanism, which limits, what is not enforced), `disk`
the sandbox watch and log rotation, and `isolator` the agent's one object that
ties them to task keys.
"""
