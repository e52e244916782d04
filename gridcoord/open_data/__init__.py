"""The city's open data: per-zone aggregates no household can be singled out in."""
