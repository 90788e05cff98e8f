"""Mesos v1 APIs spoken by Orbiter, translated onto its own."""
