"""Satellite: scrape agents, evaluate rules, act on unhealthy agents, archive history."""
